# Grafana on the head, with the cluster's Prometheus as its data source when it has one.
runtime "grafana" {
  description = "Grafana on the head"
  after       = ["prometheus"]

  param "version" {
    default     = "11.2.2"
    description = "Grafana's version"
  }
  param "arch" {
    default     = "linux-amd64"
    description = "the release's architecture"
  }
  param "mirror" {
    default     = "https://dl.grafana.com/oss/release"
    description = "where releases are fetched from"
  }
  # Empty: ${mirror}/grafana-${version}.${arch}.tar.gz
  param "url" {
    default     = ""
    description = "the archive's address; empty: from mirror, version and arch"
  }
  # Empty: the sha256 Grafana publishes beside the archive (URL.sha256).
  param "checksum" {
    default     = ""
    description = "sha256 of the archive; empty: the one published beside it"
  }
  param "port" {
    type        = number
    default     = 3000
    description = "Grafana's port on the head"
  }
  # The admin user's; a changed one is set on the next start.
  param "admin_password" {
    sensitive   = true
    description = "the admin user's password"
    validation {
      condition     = param.admin_password != "" && trimspace(param.admin_password) == param.admin_password
      error_message = "admin_password must not be empty nor begin or end with a space or line break: Grafana trims them"
    }
  }
  # The default data source. Empty: the cluster's Prometheus on the head (port
  # 9090; the prometheus runtime); "none": no data source.
  param "prometheus_url" {
    default     = ""
    description = "the default data source; empty: the cluster's Prometheus on the head; none: no data source"
  }

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
