# Prometheus on the head, scraping itself, a node exporter on every node of the
# cluster, and the targets it is given.
runtime "prometheus" {
  description = "Prometheus on the head, node exporters on every node"

  # "archive": upstream's release, downloaded and verified; "package": the node's
  # distribution's prometheus and prometheus-node-exporter, installed with apt-get.
  param "install_method" {
    default = "archive"
    validation {
      condition     = contains(["archive", "package"], param.install_method)
      error_message = "install_method must be \"archive\" or \"package\""
    }
  }
  param "version" { default = "2.53.2" }
  param "arch" { default = "linux-amd64" }
  param "mirror" { default = "https://github.com/prometheus/prometheus/releases/download" }
  # Empty: ${mirror}/v${version}/prometheus-${version}.${arch}.tar.gz
  param "url" { default = "" }
  # Empty: the archive's line in the release's sha256sums.txt.
  param "checksum" { default = "" }
  param "port" {
    type    = number
    default = 9090
  }
  # More scrape targets, "host:port" separated by commas.
  param "targets" { default = "" }
  param "retention" { default = "15d" }
  param "scrape_interval" { default = "15s" }

  # A node exporter on every node (its host's CPU, memory, disks, network), which
  # Prometheus scrapes as job "node".
  param "node_exporter" {
    type    = bool
    default = true
  }
  param "node_exporter_version" { default = "1.8.2" }
  param "node_exporter_mirror" { default = "https://github.com/prometheus/node_exporter/releases/download" }
  # Empty: the archive's line in the release's sha256sums.txt.
  param "node_exporter_checksum" { default = "" }
  param "node_exporter_port" {
    type    = number
    default = 9100
  }

  service "server" {
    on    = "head"
    ports = [param.port]
    install = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    # The node exporters' addresses, as the shell sees them (none without them); the
    # script adds their port from $TIK_PARAM_NODE_EXPORTER_PORT: a param reaches a
    # script as a variable, never as text spliced into it.
    configure = "TIK_NODE_HOSTS=\"${param.node_exporter ? join(" ", [for n in cluster.nodes : n.private_ip]) : ""}\"\n${file("configure.sh")}"
    start     = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop      = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/prometheus/server.pid\""
    health    = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/-/ready\""
  }

  service "node_exporter" {
    on      = param.node_exporter
    ports   = [param.node_exporter_port]
    install = "${file("../_lib/tik.sh")}\n${file("install-node-exporter.sh")}"
    start   = "${file("../_lib/tik.sh")}\n${file("start-node-exporter.sh")}"
    stop    = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/node_exporter/exporter.pid\""
    health  = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_NODE_EXPORTER_PORT/metrics\""
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}/" }
}
