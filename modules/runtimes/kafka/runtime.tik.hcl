# Apache Kafka: a broker on every worker, coordinated by the cluster's ZooKeeper
# (added when missing).
runtime "kafka" {
  description = "Apache Kafka brokers on the workers, with ZooKeeper"
  requires    = ["zookeeper"]

  param "version" {
    default     = "3.7.1"
    description = "Kafka's version"
  }
  param "scala_version" {
    default     = "2.13"
    description = "the Scala build of the release"
  }
  param "mirror" {
    default     = "https://archive.apache.org/dist"
    description = "where Apache's archives are fetched from"
  }
  # Empty: ${mirror}/kafka/${version}/kafka_${scala_version}-${version}.tgz
  param "url" {
    default     = ""
    description = "the archive's address; empty: from mirror and version"
  }
  param "checksum" {
    default     = ""
    description = "sha512 of the archive; empty: the one published beside it"
  }
  param "port" {
    type        = number
    default     = 9092
    description = "each broker's port"
  }
  param "heap" {
    default     = "1g"
    description = "each broker's heap (1g, 512m)"
  }
  param "partitions" {
    type        = number
    default     = 3
    description = "partitions of a topic made without saying"
  }

  service "broker" {
    on             = "workers"
    ports          = [param.port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    # The cluster's ZooKeeper servers, as its endpoint lists them (one, or an ensemble).
    configure      = "TIK_ZK_CONNECT=\"${runtime.zookeeper.endpoint.connect}\"\n${file("../_lib/tik.sh")}\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/kafka/broker.pid\""
    health         = "${file("../_lib/tik.sh")}\ntik_port_open \"$TIK_NODE_IP\" \"$TIK_PARAM_PORT\""
    health_timeout = 120
  }

  endpoint "bootstrap_servers" {
    value = join(",", [for n in cluster.nodes : "${n.private_ip}:${param.port}" if n.role == "worker"])
  }
}
