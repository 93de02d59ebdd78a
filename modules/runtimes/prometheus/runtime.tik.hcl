# Prometheus on the head, scraping itself, a node exporter on every node of the
# cluster, and the targets it is given.
runtime "prometheus" {
  description = "Prometheus on the head, node exporters on every node"
  # The head downloads; the workers take it from the head.
  download_once = true

  # "archive": upstream's release, downloaded and verified; "package": the node's
  # distribution's prometheus and prometheus-node-exporter, installed with apt-get.
  param "install_method" {
    default     = "archive"
    description = "archive: upstream's release; package: the distribution's prometheus and node exporter (apt)"
    allowed     = ["archive", "package"]
  }
  param "version" {
    default     = "2.53.2"
    description = "Prometheus's version (archive)"
  }
  param "arch" {
    default     = "linux-amd64"
    description = "the release's architecture"
  }
  param "mirror" {
    default     = "https://github.com/prometheus/prometheus/releases/download"
    description = "where releases are fetched from"
  }
  # Empty: ${mirror}/v${version}/prometheus-${version}.${arch}.tar.gz
  param "url" {
    default     = ""
    description = "the archive's address; empty: from mirror, version and arch"
  }
  # Empty: the archive's line in the release's sha256sums.txt.
  param "checksum" {
    default     = ""
    description = "sha256 of the archive; empty: its line in the release's sha256sums.txt"
  }
  param "port" {
    type        = number
    default     = 9090
    description = "Prometheus's port on the head"
  }
  # More scrape targets, "host:port" separated by commas.
  param "targets" {
    default     = ""
    description = "more scrape targets, host:port separated by commas"
  }
  param "retention" {
    default     = "15d"
    description = "how long samples are kept (15d)"
  }
  param "scrape_interval" {
    default     = "15s"
    description = "how often targets are scraped (15s)"
  }

  # A node exporter on every node (its host's CPU, memory, disks, network), which
  # Prometheus scrapes as job "node".
  param "node_exporter" {
    type        = bool
    default     = true
    description = "a node exporter on every node, scraped as job node"
  }
  param "node_exporter_version" {
    default     = "1.8.2"
    description = "the node exporter's version (archive)"
  }
  param "node_exporter_mirror" {
    default     = "https://github.com/prometheus/node_exporter/releases/download"
    description = "where the node exporter's releases are fetched from"
  }
  # Empty: the archive's line in the release's sha256sums.txt.
  param "node_exporter_checksum" {
    default     = ""
    description = "sha256 of its archive; empty: its line in the release's sha256sums.txt"
  }
  param "node_exporter_port" {
    type        = number
    default     = 9100
    description = "each node exporter's port"
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
