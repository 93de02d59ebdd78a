//! A real moto server on loopback for each test, and the engine driven against it.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tik_engine::apply::{apply, ApplyOptions, ApplyReport};
use tik_engine::config::Config;
use tik_engine::plan::{Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::{Backend, MemoryBackend, StateStore};
use tik_engine::walk::Inputs;
use tik_provider_aws::AwsProvider;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("TIK_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server was not found. Install it with:\n  python3 -m venv .venv-test && .venv-test/bin/pip install 'moto[server]'\n(run from the repository root; .ci/run does this), or set TIK_MOTO_SERVER to its path"
        )
    })
}

impl Moto {
    /// Starts a moto server on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        // Credentials and settings for the SDK's standard chain: never the user's own.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ] {
            std::env::set_var(k, v);
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Validate AMIs and instance types as AWS does.
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// A plain EC2 client, to change the world behind tik's back.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .load()
            .await;
        aws_sdk_ec2::Client::new(&conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
            &ApplyOptions { parallelism },
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
