# Apache Spark in standalone mode: a master on the head, a worker on every worker
# node. Installed from Apache's archive (version, url, checksum, mirror) or, with
# install_method = "pip", from PyPI's pyspark, which carries Spark's jars.
runtime "spark" {
  description = "Apache Spark standalone: master on the head, workers on the workers"
  # The head downloads; the workers take it from the head.
  download_once = true

  param "version" {
    default     = "3.5.7"
    description = "Spark's version; installed in $TIK_HOME/spark/current, spark-submit in its bin/"
  }
  param "install_method" {
    allowed     = ["archive", "pip"]
    default     = "archive"
    description = "archive: Apache's binary release; pip: PyPI's pyspark, which carries Spark's jars"
  }
  param "mirror" {
    default     = "https://archive.apache.org/dist"
    description = "where Apache's archives are fetched from (an internal mirror, when the node has no internet)"
  }
  param "url" {
    default     = ""
    description = "the archive's address; empty: MIRROR/spark/spark-VERSION/spark-VERSION-bin-hadoop3.tgz"
  }
  param "checksum" {
    default     = ""
    description = "sha512 of the archive (sha256 of pyspark's sdist with pip); empty: the one published beside it"
  }
  param "pip_index" {
    default     = ""
    description = "the PyPI index pip uses with install_method = \"pip\"; empty: pip's default"
  }
  param "python" {
    default     = "python3"
    description = "the Python that runs pip and PySpark's workers"
  }
  param "master_port" {
    type        = number
    default     = 7077
    description = "the master's port, for spark://HEAD:PORT"
  }
  param "master_ui_port" {
    type        = number
    default     = 8080
    description = "the master's web UI"
  }
  param "worker_ui_port" {
    type        = number
    default     = 8081
    description = "each worker's web UI"
  }
  param "worker_cores" {
    type        = number
    default     = 1
    description = "cores each worker offers to applications"
  }
  param "worker_memory" {
    default     = "1g"
    description = "memory each worker offers to applications (512m, 4g)"
  }
  param "daemon_memory" {
    default     = "512m"
    description = "heap of the master and worker daemons themselves"
  }

  service "master" {
    on             = "head"
    ports          = [param.master_port, param.master_ui_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("configure-master.sh")}"
    start          = file("start-master.sh")
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/spark/master.pid\""
    health         = file("health-master.sh")
    health_timeout = 120
  }

  service "worker" {
    on             = "workers"
    ports          = [param.worker_ui_port]
    install        = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("configure-worker.sh")}"
    start          = file("start-worker.sh")
    stop           = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/spark/worker.pid\""
    health         = file("health-worker.sh")
    health_timeout = 120
  }

  # For a pool with idle_timeout: an application the master keeps waiting wants a
  # worker; a worker with no core in use is idle.
  scaling {
    demand = file("demand.sh")
    idle   = file("idle.sh")
  }

  endpoint "master_url" { value = "spark://${cluster.head.private_ip}:${param.master_port}" }
  endpoint "ui_url" { value = "http://${cluster.head.private_ip}:${param.master_ui_port}/" }
}
