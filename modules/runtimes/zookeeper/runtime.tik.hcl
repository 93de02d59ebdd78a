# Apache ZooKeeper: one server on the head (standalone), for Kafka and friends.
runtime "zookeeper" {
  description = "Apache ZooKeeper, a standalone server on the head"

  param "version" { default = "3.8.4" }
  param "mirror" { default = "https://archive.apache.org/dist" }
  # Empty: ${mirror}/zookeeper/zookeeper-${version}/apache-zookeeper-${version}-bin.tar.gz
  param "url" { default = "" }
  # sha512 (or "sha256:HEX"); empty: the one Apache publishes beside the archive.
  param "checksum" { default = "" }
  param "client_port" { default = 2181 }
  param "heap" { default = "512m" }

  service "server" {
    on             = "head"
    ports          = [param.client_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = file("configure.sh")
    start          = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/zookeeper/server.pid\""
    health         = file("health.sh")
    health_timeout = 60
  }

  endpoint "connect" { value = "${cluster.head.private_ip}:${param.client_port}" }
}
