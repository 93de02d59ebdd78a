# MinIO: an S3-compatible object store, one server on the head.
runtime "minio" {
  description = "MinIO object storage on the head"

  # A MinIO release name (RELEASE.<date>).
  param "version" {
    default     = "RELEASE.2024-10-13T13-34-11Z"
    description = "MinIO's release"
  }
  param "arch" {
    default     = "linux-amd64"
    description = "the release's architecture"
  }
  param "mirror" {
    default     = "https://dl.min.io/server/minio/release"
    description = "where releases are fetched from"
  }
  # Empty: ${mirror}/${arch}/archive/minio.${version}
  param "url" {
    default     = ""
    description = "the binary's address; empty: from mirror, arch and version"
  }
  # Empty: the sha256 MinIO publishes beside the binary (URL.sha256sum).
  param "checksum" {
    default     = ""
    description = "sha256 of the binary; empty: the one published beside it"
  }
  param "port" {
    type        = number
    default     = 9000
    description = "the S3 API's port on the head"
  }
  param "console_port" {
    type        = number
    default     = 9001
    description = "the web console's port"
  }
  param "root_user" {
    default     = "tik"
    description = "the root user's name"
    validation {
      condition     = length(param.root_user) >= 3 && length(split("\n", param.root_user)) == 1
      error_message = "root_user must be at least 3 characters on one line, as MinIO requires (got \"${param.root_user}\")"
    }
  }
  param "root_password" {
    sensitive   = true
    description = "the root user's password"
    validation {
      condition     = length(param.root_password) >= 8 && length(split("\n", param.root_password)) == 1
      error_message = "root_password must be at least 8 characters on one line, as MinIO requires"
    }
  }

  service "server" {
    on        = "head"
    ports     = [param.port, param.console_port]
    install   = "${file("../_lib/tik.sh")}\n${file("install.sh")}"
    configure = file("configure.sh")
    start     = "${file("../_lib/tik.sh")}\n${file("start.sh")}"
    stop      = "${file("../_lib/tik.sh")}\ntik_stop_pid \"$TIK_HOME/minio/server.pid\""
    health    = "${file("../_lib/tik.sh")}\ntik_http_ok \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/minio/health/live\""
  }

  endpoint "url" { value = "http://${cluster.head.private_ip}:${param.port}" }
  endpoint "console_url" { value = "http://${cluster.head.private_ip}:${param.console_port}/" }
}
