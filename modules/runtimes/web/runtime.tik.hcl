# A static web server on every node (Python's http.server), serving a page that
# names the node: the smallest runtime that really runs and answers.
runtime "web" {
  description = "static web server on every node, from Python's standard library"

  param "port" {
    type        = number
    default     = 8000
    description = "the port each node's server listens on"
  }
  param "title" {
    default     = "tik"
    description = "the page's title"
  }

  service "server" {
    on        = "all"
    ports     = [param.port]
    install   = file("install.sh")
    configure = file("configure.sh")
    start     = <<-EOT
      nohup python3 -m http.server "$TIK_PARAM_PORT" --bind "$TIK_NODE_IP" --directory "$TIK_HOME/web" >"$TIK_HOME/web.log" 2>&1 &
      echo $! >"$TIK_HOME/web.pid"
    EOT
    stop      = file("stop.sh")
    health    = file("health.sh")
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}/" }
}
