# Apache Hadoop HDFS: the NameNode on the head, a DataNode on every worker.
runtime "hdfs" {
  description = "Apache Hadoop HDFS: NameNode on the head, DataNodes on the workers"
  # The head downloads; the workers take it from the head.
  download_once = true

  param "version" {
    default     = "3.3.6"
    description = "Hadoop's version"
  }
  param "mirror" {
    default     = "https://archive.apache.org/dist"
    description = "where Apache's archives are fetched from"
  }
  # Empty: ${mirror}/hadoop/common/hadoop-${version}/hadoop-${version}.tar.gz
  param "url" {
    default     = ""
    description = "the archive's address; empty: from mirror and version"
  }
  param "checksum" {
    default     = ""
    description = "sha512 of the archive; empty: the one published beside it"
  }
  param "namenode_port" {
    type        = number
    default     = 9000
    description = "the NameNode's RPC port (hdfs://HEAD:PORT)"
  }
  param "namenode_ui_port" {
    type        = number
    default     = 9870
    description = "the NameNode's web UI"
  }
  param "datanode_ui_port" {
    type        = number
    default     = 9864
    description = "each DataNode's web UI"
  }
  # Copies of each block; at most the number of DataNodes (workers) counts.
  param "replication" {
    type        = number
    default     = 2
    description = "copies HDFS keeps of each block"
    validation {
      condition     = param.replication >= 1 && floor(param.replication) == param.replication
      error_message = "replication is how many copies of each block HDFS keeps: a whole number, 1 or more (got ${param.replication})"
    }
  }
  param "heap" {
    default     = "512m"
    description = "heap of the NameNode and DataNodes"
  }

  service "namenode" {
    on             = "head"
    ports          = [param.namenode_port, param.namenode_ui_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("start-namenode.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/hdfs/namenode.pid\""
    health         = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_NAMENODE_UI_PORT/jmx?qry=Hadoop:service=NameNode,name=NameNodeStatus\""
    health_timeout = 120
  }

  service "datanode" {
    on             = "workers"
    ports          = [param.datanode_ui_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("start-datanode.sh")}"
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/hdfs/datanode.pid\""
    health         = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_DATANODE_UI_PORT/jmx?qry=Hadoop:service=DataNode,name=DataNodeInfo\""
    health_timeout = 120
  }

  endpoint "default_fs" { value = "hdfs://${cluster.head.private_ip}:${param.namenode_port}" }
  endpoint "ui_url" { value = "http://${cluster.head.private_ip}:${param.namenode_ui_port}/" }
}
