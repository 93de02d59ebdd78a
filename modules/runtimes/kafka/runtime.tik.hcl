# Apache Kafka: a broker on every worker, coordinated by the cluster's ZooKeeper
# (added when missing).
runtime "kafka" {
  description = "Apache Kafka brokers on the workers, with ZooKeeper"
  requires    = ["zookeeper"]

  param "version" { default = "3.7.1" }
  param "scala_version" { default = "2.13" }
  param "mirror" { default = "https://archive.apache.org/dist" }
  # Empty: ${mirror}/kafka/${version}/kafka_${scala_version}-${version}.tgz
  param "url" { default = "" }
  param "checksum" { default = "" }
  param "port" {
    type    = number
    default = 9092
  }
  param "heap" { default = "1g" }
  param "partitions" {
    type    = number
    default = 3
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
