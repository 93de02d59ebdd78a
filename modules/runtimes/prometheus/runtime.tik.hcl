# Prometheus on the head, scraping itself and the targets it is given.
runtime "prometheus" {
  description = "Prometheus on the head"

  param "version" { default = "2.53.2" }
  param "arch" { default = "linux-amd64" }
  param "mirror" { default = "https://github.com/prometheus/prometheus/releases/download" }
  # Empty: ${mirror}/v${version}/prometheus-${version}.${arch}.tar.gz
  param "url" { default = "" }
  # Empty: the archive's line in the release's sha256sums.txt.
  param "checksum" { default = "" }
  param "port" { default = 9090 }
  # More scrape targets, "host:port" separated by commas.
  param "targets" { default = "" }
  param "retention" { default = "15d" }

  service "server" {
    on        = "head"
    ports     = [param.port]
    install   = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure = file("configure.sh")
    start     = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop      = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/prometheus/server.pid\""
    health    = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/-/ready\""
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}/" }
}
