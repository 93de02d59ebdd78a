//! A real moto server on loopback for each test, and the engine driven against it.

#![allow(dead_code)]

mod faults;
mod server;
pub use faults::Faults;
#[allow(unused_imports)]
pub use server::{free_port, moto_server, wait_for, Moto};

use std::sync::Arc;
use tik_engine::apply::{apply, ApplyOptions, ApplyReport};
use tik_engine::config::Config;
use tik_engine::plan::{Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::{Backend, MemoryBackend, StateStore};
use tik_engine::walk::Inputs;
use tik_provider_aws::AwsProvider;

impl Moto {
    /// A plain EC2 client, to change the world behind tik's back.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .load()
            .await;
        aws_sdk_ec2::Client::new(&conf)
    }

    /// An S3 client, paths in the URL as moto's server takes them.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_at(&self.endpoint).await
    }

    /// Terminates an instance by hand, as a spot reclaim or a person would.
    pub async fn terminate(&self, id: &str) {
        self.ec2()
            .await
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("terminate by hand");
    }

    /// A VPC made by hand, as a user's own network would be.
    pub async fn vpc(&self, cidr: &str) -> String {
        let out = self
            .ec2()
            .await
            .create_vpc()
            .cidr_block(cidr)
            .send()
            .await
            .expect("create a VPC by hand");
        out.vpc()
            .and_then(|v| v.vpc_id())
            .expect("a VPC id")
            .to_string()
    }
}

/// An S3 client for the server at `endpoint` (moto's, or a proxy in front of it),
/// paths in the URL as moto takes them.
pub async fn s3_at(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    )
}

/// A configuration directory, the AWS provider, and state in memory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub aws: Arc<AwsProvider>,
    pub providers: Providers,
    pub backend: MemoryBackend,
}

impl World {
    pub fn new(config: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tik.hcl"), config).unwrap();
        let aws = Arc::new(AwsProvider::default());
        let mut providers = Providers::new();
        providers.add(aws.clone());
        World {
            dir,
            aws,
            providers,
            backend: MemoryBackend::default(),
        }
    }

    pub fn write(&self, config: &str) {
        std::fs::write(self.dir.path().join("main.tik.hcl"), config).unwrap();
    }

    pub async fn plan(&self) -> Plan {
        let config = Config::load(self.dir.path())
            .map_err(|(s, d)| d.render(&s))
            .unwrap();
        let store = StateStore::load(&self.backend).unwrap();
        tik_engine::ops::make_plan(
            &config,
            &self.providers,
            &store.state,
            Inputs::default(),
            &PlanOptions::default(),
            true,
        )
        .await
        .map_err(|d| d.render(&config.sources))
        .unwrap()
    }

    pub async fn apply_with(
        &self,
        options: PlanOptions,
        parallelism: usize,
    ) -> (Plan, ApplyReport) {
        let config = Config::load(self.dir.path())
            .map_err(|(s, d)| d.render(&s))
            .unwrap();
        let mut store = StateStore::load(&self.backend).unwrap();
        let plan = tik_engine::ops::make_plan(
            &config,
            &self.providers,
            &store.state,
            Inputs::default(),
            &options,
            true,
        )
        .await
        .map_err(|d| d.render(&config.sources))
        .unwrap();
        let never = std::future::pending::<()>();
        let report = apply(
            &config,
            &self.providers,
            &mut store,
            &plan,
            &ApplyOptions {
                parallelism,
                ..Default::default()
            },
            never,
            &mut |_| {},
        )
        .await
        .map_err(|d| d.render(&config.sources))
        .unwrap();
        (plan, report)
    }

    pub async fn apply(&self) -> (Plan, ApplyReport) {
        self.apply_with(PlanOptions::default(), 10).await
    }

    /// Plans and applies the destruction of everything state records.
    pub async fn destroy(&self) -> (Plan, ApplyReport) {
        self.apply_with(
            PlanOptions {
                destroy: true,
                ..Default::default()
            },
            10,
        )
        .await
    }

    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&self.backend.read_snapshot().unwrap().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn attr(&self, address: &str, name: &str) -> serde_json::Value {
        let state = self.state();
        state["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["address"] == address))
            .map(|r| r["attributes"][name].clone())
            .unwrap_or(serde_json::Value::Null)
    }
}

pub fn config(endpoint: &str, workers: u32, extra: &str) -> String {
    format!(
        r#"workspace "lab" {{
  provider = "aws"
  region   = "us-east-1"
  endpoint = "{endpoint}"
  network {{
    cidr        = "10.20.0.0/16"
    allowed_ssh = ["203.0.113.0/24"]
  }}
  storage {{
    managed         = true
    bucket          = "lab-data"
    keep_on_destroy = true
  }}
}}

cluster "etl" {{
  workspace = workspace.lab
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
  workers "default" {{
    instance_type = "m5.large"
    min           = {workers}
    max           = 200
  }}
}}
{extra}"#
    )
}
