# Ray: the head node's GCS and dashboard on the head, a Ray worker on every worker.
runtime "ray" {
  description = "Ray: head on the head, workers on the workers"
  # The head downloads; the workers take it from the head.
  download_once = true

  param "version" {
    default     = "2.37.0"
    description = "Ray's version (pip: ray[default])"
  }
  param "python" {
    default     = "python3"
    description = "the Python that makes its venv"
  }
  param "pip_index" {
    default     = ""
    description = "the PyPI index pip uses; empty: pip's default"
  }
  param "port" {
    type        = number
    default     = 6379
    description = "the head's GCS port, which workers join"
  }
  param "dashboard_port" {
    type        = number
    default     = 8265
    description = "the dashboard's port on the head"
  }
  # CPUs each node offers Ray; empty: what the node has.
  param "num_cpus" {
    default     = ""
    description = "CPUs each node offers to Ray; empty: all of them"
  }

  service "head" {
    on             = "head"
    ports          = [param.port, param.dashboard_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "mkdir -p \"$TIK_HOME/ray/logs\""
    start          = "${file("../_lib/tik.sh")}\n${file("start-head.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/ray/head.pid\""
    health         = file("health.sh")
    health_timeout = 120
  }

  service "worker" {
    on             = "workers"
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "mkdir -p \"$TIK_HOME/ray/logs\""
    start          = "${file("../_lib/tik.sh")}\n${file("start-worker.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/ray/worker.pid\""
    health         = file("health.sh")
    health_timeout = 120
  }

  endpoint "address" { value = "${cluster.head.private_ip}:${param.port}" }
  endpoint "dashboard_url" { value = "http://${cluster.head.private_ip}:${param.dashboard_port}/" }
}
