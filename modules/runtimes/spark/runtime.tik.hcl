# Apache Spark in standalone mode: a master on the head, a worker on every worker
# node. Installed from Apache's archive (version, url, checksum, mirror) or, with
# install_method = "pip", from PyPI's pyspark, which carries Spark's jars.
runtime "spark" {
  description = "Apache Spark standalone: master on the head, workers on the workers"

  param "version" { default = "3.5.7" }
  param "install_method" { default = "archive" } # "archive" or "pip"
  param "mirror" { default = "https://archive.apache.org/dist" }
  # Empty: ${mirror}/spark/spark-${version}/spark-${version}-bin-hadoop3.tgz
  param "url" { default = "" }
  # sha512 of the archive (or sha256 of pyspark's sdist with pip); empty: the one
  # Apache publishes beside the archive (with pip: PyPI's, over TLS).
  param "checksum" { default = "" }
  param "pip_index" { default = "" }
  param "python" { default = "python3" }
  param "master_port" { default = 7077 }
  param "master_ui_port" { default = 8080 }
  param "worker_ui_port" { default = 8081 }
  param "worker_cores" { default = 1 }
  param "worker_memory" { default = "1g" }
  param "daemon_memory" { default = "512m" }

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

  endpoint "master_url" { value = "spark://${cluster.head.private_ip}:${param.master_port}" }
  endpoint "ui_url" { value = "http://${cluster.head.private_ip}:${param.master_ui_port}/" }
}
