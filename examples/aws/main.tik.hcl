# A workspace and a Spark-ready cluster on AWS.
#
#   tik -C examples/aws plan --var image=ami-0123456789abcdef0
#
# Credentials come from the standard AWS chain (environment, profile, SSO,
# instance role). AWS_ENDPOINT_URL, or endpoint = "..." below, points tik at
# another endpoint (a test server, a proxy).

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "image" {
  type        = string
  description = "The AMI the nodes boot from"
}

variable "workers" {
  type    = number
  default = 3
}

workspace "analytics" {
  provider = "aws"
  region   = var.region
  network {
    cidr               = "10.0.0.0/16"
    allowed_ssh        = ["203.0.113.0/24"]
    availability_zones = ["${var.region}a", "${var.region}b"]
  }
  storage {
    managed = true # a bucket for the clusters, kept when the workspace is destroyed
  }
  iam {
    head_statements = [{
      Effect   = "Allow"
      Action   = ["cloudwatch:PutMetricData"]
      Resource = "*"
    }]
  }
  tags = { team = "data" }
}

cluster "etl" {
  workspace = workspace.analytics
  head {
    image         = var.image
    instance_type = "m5.2xlarge"
    disk_gb       = 100
  }
  workers "default" {
    instance_type = "m5.2xlarge"
    min           = var.workers
    max           = 10
  }
}

output "head_public_ip" {
  value = cluster.etl.node.head.public_ip
}

output "private_key" {
  value     = cluster.etl.key_pair.private_key
  sensitive = true
}
