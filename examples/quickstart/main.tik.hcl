# A workspace and a cluster on this machine: no cloud account needed.
# Try:  tik -C examples/quickstart apply --auto-approve

variable "workers" {
  type        = number
  default     = 2
  description = "How many workers the default pool has"
  validation {
    condition     = var.workers >= 0 && var.workers <= 16
    error_message = "workers must be between 0 and 16"
  }
}

locals {
  name = "quickstart"
}

workspace "dev" {
  provider = "local"
  network {
    cidr = "127.77.0.0/16"
  }
}

cluster "etl" {
  workspace = workspace.dev
  head {
    instance_type = "small"
  }
  workers "default" {
    instance_type = "small"
    min           = var.workers
    max           = 16
  }

  # A web server on every node, answering on the node's own address.
  runtime "web" {
    title = "Hello from ${local.name}"
  }
}

resource "local_file" "inventory" {
  path    = ".tik/${local.name}-inventory.txt"
  content = <<-EOT
    head ${cluster.etl.node.head.private_ip}
    %{ for w in cluster.etl.node.worker["default"] ~}
    worker ${w.private_ip}
    %{ endfor ~}
  EOT
}

output "head_ip" {
  value = cluster.etl.node.head.private_ip
}

output "web_url" {
  value = cluster.etl.runtime.web.endpoint.url
}

output "worker_ips" {
  value = [for w in cluster.etl.node.worker["default"] : w.private_ip]
}
