//! The shipped prometheus runtime, run for real over each node's sshd with the
//! distribution's Prometheus and node exporter (install_method = "package"): the
//! server on the head scrapes itself and an exporter on every node, finds a dead
//! exporter, and sees it again after tik starts it.

mod common;

use common::{http_request, need_sshd, processes_with, Cleanup, Project};
use std::path::Path;
use std::time::{Duration, Instant};

fn need_prometheus() {
    assert!(
        Path::new("/usr/bin/prometheus").exists()
            && Path::new("/usr/bin/prometheus-node-exporter").exists(),
        "this test runs the prometheus runtime with the distribution's Prometheus and node exporter, which are missing: install them with\n  apt-get install prometheus prometheus-node-exporter\n(without starting their system-wide services; .ci/run does this)"
    );
}

fn config(node_exporter: bool) -> String {
    format!(
        r#"workspace "lab" {{
  provider  = "local"
  transport = "ssh"
}}

cluster "mon" {{
  workspace = workspace.lab
  head {{}}
  workers "w" {{
    min = 2
    max = 2
  }}
  runtime "prometheus" {{
    install_method  = "package"
    scrape_interval = "1s"
    node_exporter   = {node_exporter}
  }}
}}

output "url" {{
  value = cluster.mon.runtime.prometheus.endpoint.url
}}

output "ips" {{
  value = [for n in concat([cluster.mon.node.head], cluster.mon.node.worker["w"]) : n.private_ip]
}}
"#
    )
}

/// What Prometheus says `up` is: (job, instance, value) for each target, sorted.
fn up(server: &str) -> Vec<(String, String, String)> {
    let Some((200, body)) = http_request(server, "/api/v1/query?query=up", &[]) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON answer");
    let mut out: Vec<(String, String, String)> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&r["metric"]["job"]),
                s(&r["metric"]["instance"]),
                s(&r["value"][1]),
            )
        })
        .collect();
    out.sort();
    out
}

/// Waits until `up` is `want`.
fn wait_for_up(server: &str, want: &[(String, String, String)]) {
    let start = Instant::now();
    loop {
        let now = up(server);
        if now == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "after 60 s Prometheus at {server} has up = {now:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn prometheus_scrapes_a_node_exporter_on_every_node() {
    need_sshd();
    need_prometheus();
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config(true))]));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Resources: 16 added"),
        "the workspace, 3 nodes, their sessions, the server's 3 steps and 2 per exporter: {}",
        r.out()
    );
    let url: String = serde_json::from_str(&p.ok(&["output", "--json", "url"], 0).stdout).unwrap();
    let ips: Vec<String> =
        serde_json::from_str(&p.ok(&["output", "--json", "ips"], 0).stdout).unwrap();
    let server = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    assert_eq!(server, format!("{}:9090", ips[0]));
    let targets = |dead: Option<&str>| {
        let mut want: Vec<(String, String, String)> = ips
            .iter()
            .map(|ip| {
                let value = if Some(ip.as_str()) == dead { "0" } else { "1" };
                ("node".to_string(), format!("{ip}:9100"), value.to_string())
            })
            .collect();
        want.push(("prometheus".into(), server.clone(), "1".into()));
        want.sort();
        want
    };
    wait_for_up(&server, &targets(None));

    // A worker's exporter dies: Prometheus sees it down, tik's plan starts it again.
    let pid =
        p.read(".tik/local/workspaces/lab/clusters/mon/worker-w-1/home/node_exporter/exporter.pid");
    assert!(std::process::Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap()
        .success());
    wait_for_up(&server, &targets(Some(&ips[2])));
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout.contains(
            "cluster.mon.node.worker[\"w\"][1].runtime.prometheus.service.node_exporter.start will run again"
        ) && plan.stdout.contains("Plan: 0 to add, 1 to change"),
        "{}",
        plan.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    wait_for_up(&server, &targets(None));

    p.ok(&["destroy", "--auto-approve"], 0);
    assert!(http_request(&server, "/-/ready", &[]).is_none());
    assert!(
        processes_with(&p.path().display().to_string()).is_empty(),
        "destroy ends the server and every exporter"
    );
}

/// Without node exporters: no exporter steps, and no "node" job to scrape.
#[test]
fn without_node_exporters_prometheus_scrapes_only_itself() {
    let p = Project::new(&[("main.tik.hcl", &config(false))]);
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(!plan.contains("node_exporter.install"), "{plan}");
    assert!(plan.contains("TIK_NODE_TARGETS=\\\"\\\"\\n"), "{plan}");
    assert!(plan.contains("Plan: 10 to add"), "{plan}");
}
