# tik's cluster controller on the head: what `controller { on = "head" }` in a
# cluster makes apply install (docs/controller.md). tik fills its params; it is not
# for runtime blocks.
runtime "_controller" {
  description = "tik's cluster controller, run on the head (controller { on = \"head\" })"

  param "cluster" {
    description = "the address of the cluster it keeps"
  }
  param "interval" {
    type        = number
    description = "seconds between its rounds"
  }
  param "platform" {
    description = "the system and machine tik's binary runs on, as uname -s and -m say them"
  }
  param "config_hash" {
    description = "a hash of the files' contents: another one copies them again"
  }
  param "backend" {
    description = "the state backend's settings, as .tik/backend.json"
  }
  param "env" {
    sensitive   = true
    description = "export lines of the environment it runs with"
  }

  service "controller" {
    on             = "head"
    install        = file("install.sh")
    configure      = file("configure.sh")
    start          = file("start.sh")
    stop           = file("stop.sh")
    health         = file("health.sh")
    health_timeout = 30
  }
}
