//! No configuration of clusters and runtimes may panic tik: damaged copies of one
//! that uses the shipped runtimes, a runtime of its own, sensitive values and
//! outputs naming nodes go through loading, the graph and the local provider's plan,
//! and must come back as plans or errors. (The engine's own test does the same for
//! the language without clusters.)

use std::path::Path;
use std::sync::Arc;
use tik_engine::config::remote::Fetch;
use tik_engine::config::Config;
use tik_engine::plan::{Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::State;
use tik_engine::walk::Inputs;
use tik_nodes::TikProvider;
use tik_provider_local::LocalProvider;

const MAIN: &str = r#"variable "db_password" {
  type      = string
  default   = "s3cret-'quoted'"
  sensitive = true
}
variable "pools" {
  type    = map(object({ min = number, max = optional(number, 4) }))
  default = { small = { min = 1 }, big = { min = 0, max = 2 } }
}
locals {
  greeting = upper("hello ${length(var.pools)}")
  ports    = { for k, p in var.pools : k => 9000 + p.min }
}
workspace "dev" {
  provider = "local"
  network {
    cidr = "127.78.0.0/16"
  }
}
cluster "db" {
  workspace = workspace.dev
  head {
    instance_type = "small"
  }
  workers "small" {
    instance_type = "small"
    min           = var.pools.small.min
    max           = var.pools.small.max
  }
  workers "big" {
    instance_type = "small"
    min           = var.pools["big"].min
    max           = 2
  }
  runtime "postgres" {
    install_method = "package"
    password       = var.db_password
    replicas       = 1
    settings       = { max_connections = 50 }
  }
  runtime "echo" {
    greeting = local.greeting
    port     = local.ports["small"]
  }
}
cluster "web" {
  workspace = workspace.dev
  head {
    instance_type = "small"
  }
  runtime "web" {
    title = "db at ${cluster.db.runtime.echo.endpoint.addr}"
  }
}
output "db_head" {
  value = cluster.db.node.head
}
output "echo" {
  value = cluster.db.runtime.echo.endpoint.addr
}
output "secret_len" {
  value     = length(var.db_password)
  sensitive = true
}
"#;

const RUNTIME: &str = r#"runtime "echo" {
  after = ["postgres"]
  param "greeting" {}
  param "port" {
    default = 7700
    validation {
      condition     = param.port > 1024 && param.port < 65536
      error_message = "port ${param.port} is not a user port"
    }
  }
  param "token" {
    default   = "t0k"
    sensitive = true
  }
  service "echo" {
    on        = "all"
    ports     = [param.port]
    install   = "command -v python3"
    configure = <<-EOT
      mkdir -p "$TIK_HOME/echo"
      printf '%s\n' ${param.greeting} > "$TIK_HOME/echo/greeting"
      printf '%s\n' ${param.token} > "$TIK_HOME/echo/token"
    EOT
    start     = "nohup python3 -m http.server ${param.port} --bind \"$TIK_NODE_IP\" >/dev/null 2>&1 &"
    stop      = "pkill -f 'http.server ${param.port}' || true"
    health    = "true"
  }
  endpoint "addr" { value = "${cluster.head.private_ip}:${param.port}" }
}
"#;

/// Loads and plans `main` with `runtime` as the project's own runtime "echo":
/// the number of changes, or None where it is refused.
fn pipeline(dir: &Path, main: &[u8], runtime: &[u8]) -> Option<usize> {
    std::fs::write(dir.join("main.tik.hcl"), main).unwrap();
    std::fs::create_dir_all(dir.join("runtimes/echo")).unwrap();
    std::fs::write(dir.join("runtimes/echo/runtime.tik.hcl"), runtime).unwrap();
    // The project's runtimes are the tik provider's: it loads them with the project.
    let mut providers = Providers::new();
    providers.add(Arc::new(TikProvider::new(dir.join(".tik/logs"))));
    providers.add(Arc::new(LocalProvider::new(dir.to_path_buf())));
    let config = Config::load_fetching(dir, Fetch::Never, &providers).ok()?.0;
    let p = plan_of(&config, &providers, Inputs::default()).ok()?;
    Some(p.changes.len())
}

/// A small deterministic generator, so a failure names a case that can be rerun.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

fn mutate(text: &str, rng: &mut Lcg, edits: usize) -> Vec<u8> {
    let interesting = b"{}[]()\"$%~=.,:?!<>\n#*/\\09a_- \xff\xc3";
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..edits {
        let at = rng.next() % bytes.len();
        let b = interesting[rng.next() % interesting.len()];
        match rng.next() % 3 {
            0 => bytes[at] = b,
            1 => bytes.insert(at, b),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

#[test]
fn the_cluster_configuration_plans() {
    let dir = tempfile::tempdir().unwrap();
    let changes = pipeline(dir.path(), MAIN.as_bytes(), RUNTIME.as_bytes());
    // Both clusters' nodes and steps: were it refused, the damaged copies below
    // would test nothing past loading.
    assert!(changes.is_some_and(|n| n > 20), "{changes:?}");
}

#[test]
fn damaged_clusters_and_runtimes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(11);
    for case in 0..600 {
        let edits = 1 + case % 3;
        if case % 2 == 0 {
            pipeline(
                dir.path(),
                &mutate(MAIN, &mut rng, edits),
                RUNTIME.as_bytes(),
            );
        } else {
            pipeline(
                dir.path(),
                MAIN.as_bytes(),
                &mutate(RUNTIME, &mut rng, edits),
            );
        }
    }
}

#[test]
fn every_cut_is_an_error_or_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    for end in (0..RUNTIME.len()).step_by(3) {
        pipeline(dir.path(), MAIN.as_bytes(), &RUNTIME.as_bytes()[..end]);
    }
    for end in (0..MAIN.len()).step_by(5) {
        pipeline(dir.path(), &MAIN.as_bytes()[..end], RUNTIME.as_bytes());
    }
}

/// The plan of an empty state through the one entry point, without refresh.
fn plan_of(
    config: &Config,
    providers: &Providers,
    inputs: Inputs,
) -> Result<Plan, tik_engine::diag::Diagnostics> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(tik_engine::ops::make_plan(
            config,
            providers,
            &State::new("l".into()),
            inputs,
            &PlanOptions::default(),
            false,
        ))
}
