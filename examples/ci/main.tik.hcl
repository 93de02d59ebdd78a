# A cluster whose state the team shares in S3, checked for drift on a schedule by
# drift.yml. The bucket is kept out of git: give it to tik init as
# --backend-config bucket=NAME, or as TIK_BACKEND_BUCKET (as drift.yml does).
tik {
  backend "s3" {
    key    = "prod/etl.tikstate"
    region = "us-east-1"
  }
}

workspace "lab" {
  provider = "aws"
  region   = "us-east-1"
}

cluster "etl" {
  workspace = workspace.lab
  head {
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }
  workers "default" {
    min = 1
    max = 2
  }
}
