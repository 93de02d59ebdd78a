# Grafana on the head, with the cluster's Prometheus as its data source when it has one.
runtime "grafana" {
  description = "Grafana on the head"
  after       = ["prometheus"]

  param "version" { default = "11.2.2" }
  param "arch" { default = "linux-amd64" }
  param "mirror" { default = "https://dl.grafana.com/oss/release" }
  # Empty: ${mirror}/grafana-${version}.${arch}.tar.gz
  param "url" { default = "" }
  # Empty: the sha256 Grafana publishes beside the archive (URL.sha256).
  param "checksum" { default = "" }
  param "port" {
    type    = number
    default = 3000
  }
  # The admin user's; a changed one is set on the next start.
  param "admin_password" {
    sensitive = true
    validation {
      condition     = param.admin_password != "" && trimspace(param.admin_password) == param.admin_password
      error_message = "admin_password must not be empty nor begin or end with a space or line break: Grafana trims them"
    }
  }
  # The default data source. Empty: the cluster's Prometheus on the head (port
  # 9090; the prometheus runtime); "none": no data source.
  param "prometheus_url" { default = "" }

  service "server" {
    on        = "head"
    ports     = [param.port]
    install   = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure = "${file("../_lib/tik.sh")}\n${file("configure.sh")}"
    start     = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop      = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/grafana/server.pid\""
    health    = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/api/health\""
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}/" }
}
