# PostgreSQL: one server on the head, a database and a login role for the cluster.
runtime "postgres" {
  description = "PostgreSQL, a server on the head"

  # "source": upstream's source archive, built on the node (needs cc and make);
  # "package": the distribution's packages (apt), major version ${version}'s first number.
  param "install_method" { default = "source" }
  param "version" { default = "17.6" }
  param "mirror" { default = "https://ftp.postgresql.org/pub" }
  # Empty: ${mirror}/source/v${version}/postgresql-${version}.tar.gz
  param "url" { default = "" }
  # sha256 or sha512 hex; empty: the sha256 PostgreSQL publishes beside the archive.
  param "checksum" { default = "" }
  param "port" { default = 5432 }
  param "database" { default = "tik" }
  param "user" { default = "tik" }
  param "password" { sensitive = true }
  # Who may connect with the password: a pg_hba address ("samenet": the node's subnets).
  param "allowed" { default = "samenet" }
  # More postgresql.conf settings, name = value.
  param "settings" { default = {} }

  service "server" {
    on             = "head"
    ports          = [param.port]
    install        = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("start.sh")}"
    stop           = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\npg_as \"$TIK_HOME/postgres/bin/pg_ctl\" -D \"$TIK_HOME/postgres/data\" status >/dev/null 2>&1 || exit 0\npg_as \"$TIK_HOME/postgres/bin/pg_ctl\" -D \"$TIK_HOME/postgres/data\" -m fast -w stop"
    health         = "\"$TIK_HOME/postgres/bin/pg_isready\" -q -h \"$TIK_NODE_IP\" -p \"$TIK_PARAM_PORT\""
    health_timeout = 60
  }

  endpoint "url" { value = "postgresql://${param.user}@${cluster.head.private_ip}:${param.port}/${param.database}" }
  endpoint "host" { value = cluster.head.private_ip }
}
