# PostgreSQL: the primary on the head, a database and a login role for the
# cluster, and streaming replicas on the first workers.
runtime "postgres" {
  description = "PostgreSQL: a primary on the head, streaming replicas on workers"
  # The head downloads; the workers take it from the head.
  download_once = true

  param "install_method" {
    allowed     = ["source", "package"]
    default     = "source"
    description = "source: upstream's release archive, built on the node (needs cc and make); package: the distribution's packages (apt)"
  }
  param "version" {
    default     = ""
    description = "empty: 17.6 from source, the distribution's own with package; with package, its first number picks the major version (PGDG's apt has them all)"
  }
  param "mirror" {
    default     = "https://ftp.postgresql.org/pub"
    description = "where PostgreSQL's source archives are fetched from"
  }
  # Empty: ${mirror}/source/v${version}/postgresql-${version}.tar.gz
  param "url" {
    default     = ""
    description = "the source archive's address; empty: from mirror and version"
  }
  # sha256 or sha512 hex; empty: the sha256 PostgreSQL publishes beside the archive.
  param "checksum" {
    default     = ""
    description = "sha256 or sha512 of the archive; empty: the sha256 published beside it"
  }
  param "port" {
    type        = number
    default     = 5432
    description = "the server's port"
  }
  param "database" {
    default     = "tik"
    description = "the database made for the cluster"
  }
  param "user" {
    default     = "tik"
    description = "the login role made for the cluster"
  }
  param "password" {
    sensitive   = true
    description = "the login role's password"
  }
  # Who may connect with the password: a pg_hba address ("samenet": the node's subnets).
  param "allowed" {
    default     = "samenet"
    description = "who may log in, as pg_hba.conf's address column (samenet, a CIDR)"
  }
  # More postgresql.conf settings, name = value (on the primary and the replicas).
  param "settings" {
    default     = {}
    description = "postgresql.conf settings, as a map"
  }
  # Hot standbys that stream the primary's changes and serve reads, one on each
  # of the first workers; they log in to the primary as replication_user, with
  # the password.
  param "replicas" {
    type        = number
    default     = 0
    description = "hot standbys on the first workers, streaming from the head"
    validation {
      condition     = param.replicas >= 0 && param.replicas < length(cluster.nodes)
      error_message = "replicas = ${param.replicas} but the cluster has ${length(cluster.nodes) - 1} workers to run them; give it more workers (their min) or fewer replicas"
    }
  }
  param "replication_user" {
    default     = "replicator"
    description = "the role replicas log in to the primary as"
  }

  service "server" {
    on             = "head"
    ports          = [param.port]
    install        = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("install.sh")}"
    # The replicas' addresses: where a head without data finds its copy.
    configure      = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\nTIK_PG_ROLE=primary\nTIK_PG_REPLICAS=\"${join(" ", [for i, n in cluster.nodes : n.private_ip if i >= 1 && i <= param.replicas])}\"\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("start.sh")}"
    stop           = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("stop.sh")}"
    health         = "\"$TIK_HOME/postgres/bin/pg_isready\" -q -h \"$TIK_NODE_IP\" -p \"$TIK_PARAM_PORT\""
    health_timeout = 60
  }

  service "replica" {
    on             = node.index >= 1 && node.index <= param.replicas
    ports          = [param.port]
    install        = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("install.sh")}"
    configure      = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\nTIK_PG_ROLE=replica\n${file("configure.sh")}"
    start          = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("replica.sh")}"
    stop           = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("stop.sh")}"
    health         = "${file("../_lib/tik.sh")}\n${file("pg.sh")}\n${file("replica_health.sh")}"
    health_timeout = 60
  }

  endpoint "url" { value = "postgresql://${param.user}@${cluster.head.private_ip}:${param.port}/${param.database}" }
  endpoint "host" { value = cluster.head.private_ip }
  # For reads: a replica where there is one (libpq 14 and later), else the primary.
  endpoint "read_url" {
    value = param.replicas == 0 ? "postgresql://${param.user}@${cluster.head.private_ip}:${param.port}/${param.database}" : "postgresql://${param.user}@${join(",", [for i, n in cluster.nodes : "${n.private_ip}:${param.port}" if i >= 1 && i <= param.replicas])}/${param.database}?target_session_attrs=prefer-standby"
  }
}
