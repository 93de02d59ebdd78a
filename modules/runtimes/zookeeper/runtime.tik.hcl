# Apache ZooKeeper: a standalone server on the head, or an ensemble on the cluster's
# first `servers` nodes (the head, then the workers in address order).
runtime "zookeeper" {
  description = "Apache ZooKeeper: standalone on the head, or an ensemble"
  # The head downloads; the workers take it from the head.
  download_once = true

  # "archive": Apache's release, downloaded and verified; "package": the node's
  # distribution's zookeeper package (Debian, Ubuntu), installed with apt-get.
  param "install_method" {
    default     = "archive"
    description = "archive: Apache's release; package: the distribution's zookeeper (apt)"
    allowed     = ["archive", "package"]
  }
  param "version" {
    default     = "3.8.4"
    description = "ZooKeeper's version (archive)"
  }
  param "mirror" {
    default     = "https://archive.apache.org/dist"
    description = "where Apache's archives are fetched from"
  }
  # Empty: ${mirror}/zookeeper/zookeeper-${version}/apache-zookeeper-${version}-bin.tar.gz
  param "url" {
    default     = ""
    description = "the archive's address; empty: from mirror and version"
  }
  # sha512 (or "sha256:HEX"); empty: the one Apache publishes beside the archive.
  param "checksum" {
    default     = ""
    description = "sha512 of the archive; empty: the one published beside it"
  }
  # How many nodes run a server: 1 is standalone on the head; 3 or 5 make an
  # ensemble that keeps serving while fewer than half of them are down.
  param "servers" {
    type        = number
    default     = 1
    description = "servers in the ensemble: 1, or an odd number on the head and the first workers"
    validation {
      condition     = param.servers >= 1 && param.servers % 2 == 1
      error_message = "servers must be odd (1, 3, 5, ...): an ensemble of 2n servers survives no more failures than one of 2n-1, and needs more of them to agree"
    }
    validation {
      condition     = param.servers <= length(cluster.nodes)
      error_message = "servers = ${param.servers} but the cluster has ${length(cluster.nodes)} nodes; give it more workers (their min) or fewer servers"
    }
  }
  param "client_port" {
    type        = number
    default     = 2181
    description = "the port clients connect to"
  }
  # Between the servers of an ensemble: followers to the leader, and leader election.
  param "peer_port" {
    type        = number
    default     = 2888
    description = "the port servers follow the leader on"
  }
  param "election_port" {
    type        = number
    default     = 3888
    description = "the port servers elect a leader on"
  }
  param "heap" {
    default     = "512m"
    description = "each server's heap"
  }

  service "server" {
    on    = node.index < param.servers
    ports = param.servers > 1 ? [param.client_port, param.peer_port, param.election_port] : [param.client_port]
    install = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    # The server's id, and the ensemble's members (none when standalone).
    configure = "TIK_ZK_ID=${node.index + 1}\nTIK_ZK_SERVERS=\"${join(" ", [for i, n in cluster.nodes : "server.${i + 1}=${n.private_ip}" if i < param.servers && param.servers > 1])}\"\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/zookeeper/server.pid\""
    health         = file("health.sh")
    health_timeout = 60
  }

  # The servers, as clients and Kafka's zookeeper.connect want them.
  endpoint "connect" {
    value = join(",", [for i, n in cluster.nodes : "${n.private_ip}:${param.client_port}" if i < param.servers])
  }
}
