//! The shipped runtimes that install from PyPI, for real, on local clusters over SSH:
//! JupyterLab behind its token, and Ray with a worker behind the head running the
//! tasks a driver on the head sends it.

use crate::common::{http_request, need_python_venv, need_sshd, processes_with, Cleanup, Project};

/// One of these tests at a time: each installs from PyPI and starts CPU-hungry
/// servers. Run side by side on two cores, a Ray driver once saw only the worker
/// alive (the head's raylet, starved, most likely missed the GCS's health checks).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn state_attr(p: &Project, address: &str, attr: &str) -> String {
    let state: serde_json::Value =
        serde_json::from_str(&p.read("tik.tikstate")).expect("state is JSON");
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .and_then(|r| r["attributes"][attr].as_str())
        .unwrap_or_else(|| panic!("no {attr} on {address} in state"))
        .to_string()
}

const JUPYTER: &str = r#"variable "token" {
  type      = string
  sensitive = true
}

workspace "lab" {
  provider  = "local"
  transport = "ssh"
}

cluster "nb" {
  workspace = workspace.lab
  head {}
  runtime "jupyter" {
    token = var.token
  }
}

output "url" { value = cluster.nb.runtime.jupyter.endpoint.url }
"#;

#[test]
fn jupyter_from_pypi_serves_the_lab_to_its_token_only() {
    let _turn = one_at_a_time();
    need_sshd();
    need_python_venv();
    let p = Cleanup(Project::new(&[("main.tik.hcl", JUPYTER)]));
    // A token a shell would trip over.
    let token = "it's $(touch pwned) `id` \"x\"";
    let plan = p.tik_env(&["plan"], &[("TIK_VAR_token", token)]);
    assert_eq!(plan.code, 0, "{}", plan.out());
    assert!(!plan.stdout.contains("pwned"), "{}", plan.out());
    let r = p.tik_env(&["apply", "--auto-approve"], &[("TIK_VAR_token", token)]);
    assert_eq!(r.code, 0, "{}", r.out());
    let ip = state_attr(&p, "cluster.nb.node.head", "private_ip");
    let url = p.ok(&["output", "--raw", "url"], 0).stdout;
    assert_eq!(url.trim(), format!("http://{ip}:8888/lab"));
    let addr = format!("{ip}:8888");

    // The server answers its API to the token, and refuses everyone else.
    let (code, body) = http_request(
        &addr,
        "/api/status",
        &[&format!("Authorization: token {token}")],
    )
    .expect("the lab answers");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON status");
    assert!(status["started"].is_string(), "{body}");
    let (code, _) = http_request(&addr, "/api/status", &[]).expect("the lab answers");
    assert_eq!(code, 403, "no token, no lab");
    let (code, _) = http_request(&addr, "/api/status", &["Authorization: token guess"])
        .expect("the lab answers");
    assert_eq!(code, 403, "a wrong token, no lab");
    // The token never ran as shell, and is on no process's command line.
    let home = p.file(".tik/local/workspaces/lab/clusters/nb/head/home");
    assert!(!home.join("pwned").exists() && !p.file("pwned").exists());
    assert!(processes_with("touch pwned").is_empty());
    let status = p.ok(&["status", "nb"], 0).stdout;
    assert!(status.contains("1 of 1 service well."), "{status}");

    let daemons = processes_with(&home.display().to_string());
    assert!(!daemons.is_empty(), "the lab runs from the node's home");
    let r = p.tik_env(&["destroy", "--auto-approve"], &[("TIK_VAR_token", token)]);
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(
        http_request(&addr, "/api/status", &[]).is_none(),
        "the lab still answers"
    );
    for pid in daemons {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of the lab still runs after destroy"
        );
    }
}

const RAY: &str = r#"workspace "lab" {
  provider  = "local"
  transport = "ssh"
  network { mode = "public-head" }
}

cluster "r" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 1
    max = 1
  }
  runtime "ray" {
    num_cpus = 1
  }
}

output "address" { value = cluster.r.runtime.ray.endpoint.address }
"#;

/// A driver on the head: one task pinned to each live node, each answering with the
/// address it ran on, and a sum over 20 tasks wherever Ray puts them.
const JOB: &str = r#"cat >job.py <<'EOF'
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
ray.init(logging_level="ERROR")
@ray.remote(num_cpus=1)
def where():
    return ray.util.get_node_ip_address()
@ray.remote
def square(i):
    return i * i
nodes = [n for n in ray.nodes() if n["Alive"]]
ran = ray.get([where.options(scheduling_strategy=On(n["NodeID"], soft=False)).remote() for n in nodes])
print("RESULT", sum(ray.get([square.remote(i) for i in range(20)])), " ".join(sorted(ran)))
EOF
RAY_ADDRESS="$TIK_NODE_IP:6379" ray/venv/bin/python job.py"#;

#[test]
fn ray_from_pypi_runs_tasks_on_the_head_and_on_a_worker_behind_it() {
    let _turn = one_at_a_time();
    need_sshd();
    need_python_venv();
    let p = Cleanup(Project::new(&[("main.tik.hcl", RAY)]));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("Apply complete!"), "{}", r.out());
    let head = state_attr(&p, "cluster.r.node.head", "private_ip");
    let worker = state_attr(&p, "cluster.r.node.worker[\"w\"][0]", "private_ip");
    let address = p.ok(&["output", "--raw", "address"], 0).stdout;
    assert_eq!(address.trim(), format!("{head}:6379"));
    // The dashboard answers on the head (its health check).
    let (code, _) =
        http_request(&format!("{head}:8265"), "/api/version", &[]).expect("the dashboard answers");
    assert_eq!(code, 200);

    // The worker joins the head: a task pinned to each node runs there. (A worker
    // still registering is given a few tries.)
    let mut want = [head.clone(), worker.clone()];
    want.sort();
    let want = format!("RESULT 2470 {}", want.join(" "));
    let mut last = String::new();
    for _ in 0..10 {
        let job = p.tik(&["exec", "r", "--node", "head", "--", JOB]);
        last = job.out();
        if job.stdout.lines().any(|l| l == want) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    if !last.contains(&want) {
        // What the head's Ray said, to tell why a node was missing.
        let logs =
            p.file(".tik/local/workspaces/lab/clusters/r/head/home/ray/tmp/session_latest/logs");
        let tails: String = ["raylet.out", "raylet.err", "gcs_server.out"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(logs.join(f)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {f}\n{}\n",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                )
            })
            .collect();
        panic!("want {want}:\n{last}\n{tails}");
    }
    let status = p.ok(&["status", "r"], 0).stdout;
    assert!(status.contains("2 of 2 services well."), "{status}");

    // Destroy stops Ray on both nodes: none of its processes (from the nodes' venvs)
    // runs any more once they had a few seconds to end.
    let nodes = p.file(".tik/local/workspaces/lab/clusters/r");
    let ray = |pid: &String| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .ok()
            .filter(|c| c.contains("/ray/venv/"))
    };
    let before: Vec<String> = processes_with(&nodes.display().to_string())
        .into_iter()
        .filter(|pid| ray(pid).is_some())
        .collect();
    assert!(before.len() > 2, "Ray runs from the nodes' venvs");
    p.ok(&["destroy", "--auto-approve"], 0);
    let mut left: Vec<String> = Vec::new();
    for _ in 0..30 {
        left = before.iter().filter_map(ray).collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(left.is_empty(), "Ray still runs after destroy: {left:?}");
}
