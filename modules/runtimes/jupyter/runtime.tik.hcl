# JupyterLab on the head, from PyPI into a venv of its own.
runtime "jupyter" {
  description = "JupyterLab on the head"
  after       = ["spark"]

  param "version" {
    default     = "4.2.5"
    description = "JupyterLab's version (pip)"
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
    default     = 8888
    description = "JupyterLab's port on the head"
  }
  # The token that opens the lab: set it (from a sensitive variable).
  param "token" {
    sensitive   = true
    description = "the token a browser logs in with"
  }

  service "lab" {
    on        = "head"
    ports     = [param.port]
    install   = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure = file("configure.sh")
    start     = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop      = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/jupyter/lab.pid\""
    health    = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/api\""
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}/lab" }
}
