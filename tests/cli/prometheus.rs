//! The shipped prometheus runtime, run for real over each node's sshd with the
//! distribution's Prometheus and node exporter (install_method = "package"): the
//! server on the head scrapes itself and an exporter on every node, finds a dead
//! exporter, and sees it again after tik starts it.

use crate::common::{
    checksum_line, http_request, need_sshd, pack_release, processes_with, Cleanup, Mirror, Project,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn need_prometheus() {
    assert!(
        Path::new("/usr/bin/prometheus").exists()
            && Path::new("/usr/bin/prometheus-node-exporter").exists(),
        "this test runs the prometheus runtime with the distribution's Prometheus and node exporter, which are missing: install them with\n  apt-get install prometheus prometheus-node-exporter\n(without starting their system-wide services; tests/run does this)"
    );
}

/// The cluster, its prometheus runtime given `params` (lines of `name = value`).
fn config(params: &str) -> String {
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
    scrape_interval = "1s"
{params}
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

/// The distribution's binaries, with or without node exporters.
fn package(node_exporter: bool) -> String {
    format!("    install_method = \"package\"\n    node_exporter  = {node_exporter}")
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
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config(&package(true)))]));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Resources: 17 added"),
        "the workspace, 3 nodes, their sessions, the server's 3 steps, 2 per exporter and the endpoints' record: {}",
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
    let plan = p.ok(&["plan", "--verbose"], 0);
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
    let p = Project::new(&[("main.tik.hcl", &config(&package(false)))]);
    let plan = p.ok(&["plan", "--verbose"], 0).stdout;
    assert!(!plan.contains("node_exporter.install"), "{plan}");
    assert!(
        plan.contains("\n            TIK_NODE_HOSTS=\"\"\n"),
        "{plan}"
    );
    // (With the record of prometheus's endpoints.)
    assert!(plan.contains("Plan: 11 to add"), "{plan}");
}

/// An upstream release on the test's mirror: `DIR/vVERSION/NAME-VERSION.linux-amd64.tar.gz`
/// whose top directory holds `binary` as `NAME`, listed in the release's
/// `sha256sums.txt` beside another file, as upstream publishes them.
fn release(mirror: &Path, name: &str, version: &str, binary: &str) {
    let dir = mirror.join(format!("v{version}"));
    let top = format!("{name}-{version}.linux-amd64");
    std::fs::create_dir_all(dir.join(&top)).unwrap();
    std::fs::copy(binary, dir.join(&top).join(name)).unwrap();
    let archive = pack_release(&dir, &top);
    let line = checksum_line("sha256", &dir, &archive);
    std::fs::write(
        dir.join("sha256sums.txt"),
        format!(
            "{}  {name}-{version}.darwin-arm64.tar.gz\n{line}",
            "0".repeat(64)
        ),
    )
    .unwrap();
}

/// The archive installs (the default) take upstream's release layout from the
/// runtime's mirror params, verified against the published checksums: here the
/// distribution's binaries, packed as upstream packs its releases and served on
/// loopback. A release whose checksum does not match is refused, and what runs
/// keeps running.
#[test]
fn archive_installs_come_from_the_mirror_and_are_verified() {
    need_sshd();
    need_prometheus();
    let p = Cleanup(Project::new(&[]));
    let served = p.file("mirror");
    release(
        &served.join("prometheus"),
        "prometheus",
        "2.53.2",
        "/usr/bin/prometheus",
    );
    let exporter = "/usr/bin/prometheus-node-exporter";
    release(
        &served.join("node_exporter"),
        "node_exporter",
        "1.8.2",
        exporter,
    );
    let mirror = Mirror::start(&served);
    let params = |exporter_version: &str| {
        format!(
            "    mirror                = \"{0}/prometheus\"\n    node_exporter_mirror  = \"{0}/node_exporter\"\n    node_exporter_version = \"{exporter_version}\"",
            mirror.url
        )
    };
    p.write("main.tik.hcl", &config(&params("1.8.2")));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    let ips: Vec<String> =
        serde_json::from_str(&p.ok(&["output", "--json", "ips"], 0).stdout).unwrap();
    let server = format!("{}:9090", ips[0]);
    let mut want: Vec<(String, String, String)> = ips
        .iter()
        .map(|ip| ("node".into(), format!("{ip}:9100"), "1".into()))
        .collect();
    want.push(("prometheus".into(), server.clone(), "1".into()));
    want.sort();
    wait_for_up(&server, &want);
    // What runs is what was unpacked from the mirror's archives.
    let home = |node: &str| {
        p.file(&format!(
            ".tik/local/workspaces/lab/clusters/mon/{node}/home"
        ))
    };
    let link = std::fs::read_link(home("head").join("prometheus/current")).unwrap();
    assert!(
        link.ends_with("prometheus-2.53.2.linux-amd64"),
        "{link:?}\n{}",
        r.out()
    );
    let link = std::fs::read_link(home("worker-w-0").join("node_exporter/current")).unwrap();
    assert!(
        link.ends_with("node_exporter-1.8.2.linux-amd64"),
        "{link:?}"
    );

    // A new release whose archive is not the one its checksums list: refused on
    // every node, the download removed, and the old exporters still answer.
    release(
        &served.join("node_exporter"),
        "node_exporter",
        "1.9.0",
        exporter,
    );
    let sums = served.join("node_exporter/v1.9.0/sha256sums.txt");
    let listed = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, listed.replace("  node_exporter-1.9.0.linux", "  x\n1111111111111111111111111111111111111111111111111111111111111111  node_exporter-1.9.0.linux")).unwrap();
    p.write("main.tik.hcl", &config(&params("1.9.0")));
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.out().contains("checksum mismatch for ") && r.out().contains("the download was removed"),
        "{}",
        r.out()
    );
    let downloads = home("worker-w-0").join("node_exporter/downloads");
    let kept: Vec<String> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        kept,
        ["node_exporter-1.8.2.linux-amd64.tar.gz"],
        "{}",
        r.out()
    );
    wait_for_up(&server, &want);

    p.ok(&["destroy", "--auto-approve"], 0);
    assert!(processes_with(&p.path().display().to_string()).is_empty());
}
