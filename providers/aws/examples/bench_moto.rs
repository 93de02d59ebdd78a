//! Times plan, apply and destroy of a workspace and a cluster against moto's server and
//! counts the API calls of each, for 10 and 100 workers.
//!
//!     cargo run -p tik-provider-aws --example bench_moto [-- 10,100]
//!
//! moto is an emulator: the times say how much work tik itself adds and how well it
//! parallelises, not how long AWS takes.

#[path = "../tests/moto/server.rs"]
mod server;

use std::sync::Arc;
use std::time::Instant;
use tik_engine::apply::{apply, ApplyOptions};
use tik_engine::config::Config;
use tik_engine::plan::PlanOptions;
use tik_engine::provider::Providers;
use tik_engine::state::{MemoryBackend, StateStore};
use tik_engine::walk::Inputs;
use tik_provider_aws::AwsProvider;

fn config(endpoint: &str, workers: usize) -> String {
    format!(
        r#"workspace "bench" {{
  provider = "aws"
  region   = "us-east-1"
  endpoint = "{endpoint}"
}}
cluster "c" {{
  workspace = workspace.bench
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
  workers "w" {{
    min = {workers}
    max = 1000
  }}
}}
"#
    )
}

async fn phase(
    label: &str,
    aws: &AwsProvider,
    providers: &Providers,
    dir: &std::path::Path,
    backend: &MemoryBackend,
    options: PlanOptions,
    run: bool,
) -> (f64, u64, usize) {
    let config = Config::load(dir)
        .map_err(|(s, d)| d.render(&s))
        .expect("config loads");
    let mut store = StateStore::load(backend).expect("state loads");
    let calls = aws.api_calls();
    let started = Instant::now();
    let plan = tik_engine::ops::make_plan(
        &config,
        providers,
        &store.state,
        Inputs::default(),
        &options,
        true,
    )
    .await
    .unwrap_or_else(|d| panic!("{label}: {}", d.render(&config.sources)));
    let changes = plan.changes.len();
    if run {
        let report = apply(
            &config,
            providers,
            &mut store,
            &plan,
            &ApplyOptions::default(),
            std::future::pending(),
            &mut |_| {},
        )
        .await
        .unwrap_or_else(|d| panic!("{label}: {}", d.render(&config.sources)));
        assert!(report.ok(), "{label}: {report:?}");
    }
    (
        started.elapsed().as_secs_f64(),
        aws.api_calls() - calls,
        changes,
    )
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10,100".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    println!("| workers | phase | changes | time | API calls |\n|---|---|---|---|---|");
    for workers in sizes {
        let moto = server::Moto::start();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("main.tik.hcl"),
            config(&moto.endpoint, workers),
        )
        .expect("write config");
        let aws = Arc::new(AwsProvider::default());
        let mut providers = Providers::new();
        providers.add(aws.clone());
        let backend = MemoryBackend::default();
        for (label, options, run) in [
            ("plan (empty state)", PlanOptions::default(), false),
            ("apply", PlanOptions::default(), true),
            ("no-op plan", PlanOptions::default(), false),
            (
                "destroy",
                PlanOptions {
                    destroy: true,
                    ..Default::default()
                },
                true,
            ),
        ] {
            let (secs, calls, changes) =
                phase(label, &aws, &providers, dir.path(), &backend, options, run).await;
            println!("| {workers} | {label} | {changes} | {secs:.2} s | {calls} |");
        }
    }
}
