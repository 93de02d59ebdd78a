//! The life of a local cluster, as a user types it: plan, apply, change, drift, destroy.

use crate::common::{cluster_config, Project};

fn node_dir(p: &Project, name: &str) -> std::path::PathBuf {
    p.file(&format!(".tik/local/workspaces/dev/clusters/etl/{name}"))
}

#[test]
fn plan_lists_every_resource_and_exits_by_what_it_found() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    for addr in [
        "workspace.dev.directory",
        "cluster.etl.node.head",
        "cluster.etl.node.worker[\"default\"][0]",
        "cluster.etl.node.worker[\"default\"][1]",
    ] {
        assert!(
            r.stdout.contains(&format!("# {addr} will be created")),
            "{addr}\n{}",
            r.out()
        );
    }
    assert!(
        r.stdout.contains("      + instance_type = \"small\"\n"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("      + private_ip    = (known after apply)\n"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("Plan: 4 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    assert_eq!(p.ok(&["plan"], 0).code, 0);
    p.write("bad.tik.hcl", "cluster \"x\" {\n");
    p.ok(&["plan", "--detailed-exitcode"], 1);
}

#[test]
fn apply_creates_in_dependency_order_and_a_second_plan_is_empty() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    let pos = |s: &str| {
        r.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing\n{}", r.out()))
    };
    assert!(
        pos("workspace.dev.directory: Creation complete")
            < pos("cluster.etl.node.head: Creating...")
    );
    assert!(
        r.stdout
            .contains("Apply complete! Resources: 4 added, 0 changed, 0 replaced, 0 destroyed."),
        "{}",
        r.out()
    );
    assert!(node_dir(&p, "head").join("node.json").exists());
    let state = p.ok(&["state", "list"], 0).stdout;
    assert_eq!(state.lines().count(), 4, "{state}");
    let r = p.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(r.stdout.contains("No changes."), "{}", r.out());
    // Each node has its own loopback address.
    let mut ips: Vec<String> = (0..2)
        .map(|i| {
            p.read(&format!(
                ".tik/local/workspaces/dev/clusters/etl/worker-default-{i}/node.json"
            ))
        })
        .collect();
    ips.push(p.read(".tik/local/workspaces/dev/clusters/etl/head/node.json"));
    let ips: std::collections::HashSet<String> = ips
        .iter()
        .map(|j| {
            serde_json::from_str::<serde_json::Value>(j).unwrap()["private_ip"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 3);
    assert!(ips.iter().all(|ip| ip.starts_with("127.")));
    let head_ip = p.ok(&["output", "head_ip", "--raw"], 0).stdout;
    assert!(ips.contains(&head_ip), "{head_ip}");
}

#[test]
fn scaling_up_adds_one_node_and_a_new_instance_type_replaces() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("main.tik.hcl", &cluster_config(3, "small"));
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        r.stdout
            .contains("Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("# cluster.etl.node.worker[\"default\"][2] will be created"),
        "{}",
        r.out()
    );
    assert_eq!(
        r.stdout.matches("will be created").count(),
        1,
        "{}",
        r.out()
    );

    p.write("main.tik.hcl", &cluster_config(3, "large"));
    let r = p.ok(&["plan"], 0);
    assert!(r.stdout.contains("# cluster.etl.node.head must be replaced\n  # (instance_type forces replacement)\n-/+ local_node {"), "{}", r.out());
    assert!(
        r.stdout
            .contains("~ instance_type = \"small\" -> \"large\" # forces replacement"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("Plan: 1 to add, 0 to change, 1 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 1 added, 0 changed, 1 replaced, 0 destroyed."),
        "{}",
        r.out()
    );
    assert!(p
        .read(".tik/local/workspaces/dev/clusters/etl/head/node.json")
        .contains("\"large\""));
    p.ok(&["plan", "--detailed-exitcode"], 0);

    p.write("main.tik.hcl", &cluster_config(1, "large"));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 0 added, 0 changed, 0 replaced, 2 destroyed."),
        "{}",
        r.out()
    );
    assert!(
        !node_dir(&p, "worker-default-2").exists() && !node_dir(&p, "worker-default-1").exists()
    );
}

#[test]
fn a_node_deleted_by_hand_is_drift_and_is_recreated() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["drift"], 0);
    std::fs::remove_dir_all(node_dir(&p, "worker-default-1")).unwrap();
    let before = p.read("tik.tikstate");
    let r = p.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("# cluster.etl.node.worker[\"default\"][1] was deleted outside of tik"),
        "{}",
        r.out()
    );
    let r = p.ok(&["drift", "--json"], 2);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("drift --json is JSON");
    assert_eq!(json["drift"][0]["kind"], "deleted");
    assert_eq!(json["drift_found"], true);
    let r = p.ok(&["drift", "--markdown"], 2);
    assert!(
        r.stdout
            .contains("| `cluster.etl.node.worker[\"default\"][1]` | deleted |"),
        "{}",
        r.out()
    );
    assert_eq!(p.read("tik.tikstate"), before, "drift must not write state");

    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    let drift_at = r
        .stdout
        .find("Objects changed outside of tik:")
        .expect("drift section");
    let changes_at = r
        .stdout
        .find("tik will perform the following actions:")
        .expect("changes section");
    assert!(drift_at < changes_at, "{}", r.out());
    assert!(
        r.stdout
            .contains("# cluster.etl.node.worker[\"default\"][1] will be created"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert!(node_dir(&p, "worker-default-1").exists());
    p.ok(&["drift"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // An attribute changed by hand is drift with the attribute named.
    let node_json = node_dir(&p, "head").join("node.json");
    let text = std::fs::read_to_string(&node_json)
        .unwrap()
        .replace("\"small\"", "\"tiny\"");
    std::fs::write(&node_json, text).unwrap();
    let r = p.ok(&["drift"], 2);
    assert!(
        r.stdout.contains("~ instance_type = \"small\" -> \"tiny\""),
        "{}",
        r.out()
    );
}

#[test]
fn a_saved_plan_applies_exactly_and_goes_stale() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    let r = p.ok(&["plan", "--out", "first.plan"], 0);
    assert!(r.stdout.contains("tik apply first.plan"), "{}", r.out());
    let shown = p.ok(&["show", "first.plan"], 0);
    assert!(shown.stdout.contains("Plan: 3 to add"), "{}", shown.out());
    let r = p.ok(&["apply", "first.plan"], 0);
    assert!(r.stdout.contains("Resources: 3 added"), "{}", r.out());
    assert!(
        !r.stdout.contains("will be created"),
        "a saved plan is not shown again\n{}",
        r.out()
    );
    // Applying it twice: the state moved on.
    let r = p.ok(&["apply", "first.plan"], 1);
    assert!(r.stderr.contains("the saved plan is stale"), "{}", r.out());

    p.write("main.tik.hcl", &cluster_config(2, "small"));
    p.ok(&["plan", "--out", "second.plan"], 0);
    p.write("main.tik.hcl", &cluster_config(3, "small"));
    let r = p.ok(&["apply", "second.plan"], 1);
    assert!(
        r.stderr.contains("configuration files changed"),
        "{}",
        r.out()
    );
    p.write("main.tik.hcl", &cluster_config(2, "small"));
    p.ok(&["plan", "--out", "third.plan"], 0);
    p.ok(&["state", "rm", "cluster.etl.node.head"], 0);
    let r = p.ok(&["apply", "third.plan"], 1);
    assert!(r.stderr.contains("the saved plan is stale"), "{}", r.out());
}

#[test]
fn destroy_removes_everything_in_reverse_order() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    let r = p.ok(&["destroy", "--auto-approve"], 0);
    let pos = |s: &str| {
        r.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing\n{}", r.out()))
    };
    assert!(
        pos("cluster.etl.node.head: Destruction complete")
            < pos("workspace.dev.directory: Destroying...")
    );
    assert!(
        r.stdout
            .contains("Destroy complete! Resources: 4 destroyed."),
        "{}",
        r.out()
    );
    assert_eq!(p.ok(&["state", "list"], 0).stdout, "");
    assert!(!p.file(".tik/local/workspaces/dev").exists());
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    assert_eq!(state["resources"], serde_json::json!([]));
    assert_eq!(state["outputs"], serde_json::json!({}));
}

#[test]
fn apply_without_approval_changes_nothing() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    let r = p.ok(&["apply"], 1);
    assert!(
        r.stdout.contains("Apply cancelled: nothing was changed."),
        "{}",
        r.out()
    );
    assert!(!p.file(".tik/local/workspaces").exists());
}

#[test]
fn an_object_taken_out_of_state_is_imported_back_by_its_id() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["state", "rm", "workspace.dev"], 0);
    assert!(p
        .ok(&["plan"], 0)
        .stdout
        .contains("# workspace.dev.directory will be created"));
    // This provider finds a workspace by its name: another id is not it.
    let r = p.ok(
        &["import", "workspace.dev.directory", "local-workspace-prod"],
        1,
    );
    assert!(
        r.stderr.contains(
            "workspace.dev.directory is local_workspace local-workspace-dev, not local-workspace-prod"
        ) && r
            .stderr
            .contains("tik import 'workspace.dev.directory' local-workspace-dev"),
        "{}",
        r.out()
    );
    let r = p.ok(
        &["import", "workspace.dev.directory", "local-workspace-dev"],
        0,
    );
    assert!(
        r.stdout
            .contains("Imported local_workspace local-workspace-dev as workspace.dev.directory."),
        "{}",
        r.out()
    );
    assert!(p
        .ok(&["plan", "--detailed-exitcode"], 0)
        .stdout
        .contains("No changes."));
    // What tik makes itself is not imported.
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"d\" {\n  input = 1\n}\n",
    );
    let r = p.ok(&["import", "tik_data.d", "x"], 1);
    assert!(
        r.stderr
            .contains("tik_data.d is a tik_data, which tik makes itself"),
        "{}",
        r.out()
    );
}

/// The README's drift demo: a node's directory deleted by hand. What ran on it is
/// ended before it is made again at the same address, so its server starts and
/// serves; health is that server's, not whatever answers on the port.
#[test]
fn a_node_deleted_by_hand_comes_back_serving_and_leaves_no_process_behind() {
    let config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/main.tik.hcl"),
    )
    .unwrap();
    let p = Project::new(&[("main.tik.hcl", &config)]);
    p.ok(&["apply", "--auto-approve"], 0);
    let dir = p.file(".tik/local/workspaces/dev/clusters/etl/worker-default-1");
    let pid_of = || {
        std::fs::read_to_string(dir.join("home/web.pid"))
            .unwrap()
            .trim()
            .to_string()
    };
    // Running: a process that ended but was not reaped yet (a zombie) is not.
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    let old = pid_of();
    assert!(alive(&old));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        alive(&old),
        "the server outlives its directory, as a process does"
    );
    p.ok(&["drift"], 2);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(!r.stdout.contains("Address already in use"), "{}", r.out());
    assert!(
        !alive(&old),
        "the old server was ended before the node came back"
    );
    let new = pid_of();
    assert!(alive(&new));
    p.ok(&["status"], 0);
    // Now something else holds the port, and tik's server is gone: not healthy.
    let _ = std::process::Command::new("kill").arg(&new).status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive(&new) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ip = std::fs::read_to_string(dir.join("node.json")).unwrap();
    let ip: serde_json::Value = serde_json::from_str(&ip).unwrap();
    let ip = ip["private_ip"].as_str().unwrap().to_string();
    let mut impostor = std::process::Command::new("python3")
        .args(["-m", "http.server", "8000", "--bind", &ip, "--directory"])
        .arg(dir.join("home/web"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = p.ok(&["status"], 2).stdout;
    let _ = impostor.kill();
    let _ = impostor.wait();
    assert!(status.contains("unhealthy"), "{status}");
}

/// A runtime that downloads once: its workers' install steps run after the head's,
/// which they take the download from. The head's install takes 2 s and leaves a
/// marker; a worker's install fails where the marker is not there yet.
#[test]
fn a_download_once_runtimes_workers_install_after_the_head() {
    let runtime = r#"
runtime "once" {
  description   = "installs on the head first"
  download_once = true
  param "marker" {}
  service "s" {
    on      = "all"
    install = "if [ \"$TIK_ROLE\" = head ]; then sleep 2; echo done >\"$TIK_PARAM_MARKER\"; else test -e \"$TIK_PARAM_MARKER\" || { echo 'the head has not installed yet' >&2; exit 1; }; fi"
  }
}
"#;
    let p = Project::new(&[("runtimes/once/runtime.tik.hcl", runtime)]);
    let marker = p.path().join("head-installed");
    p.write(
        "main.tik.hcl",
        &crate::common::cluster_config_with(
            2,
            "small",
            &format!(
                "  runtime \"once\" {{\n    marker = \"{}\"\n  }}\n",
                marker.display()
            ),
        ),
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(!r.out().contains("has not installed yet"), "{}", r.out());
    p.ok(&["destroy", "--auto-approve"], 0);
}

/// A removed node's processes end with it, as a machine's do: one that takes two
/// seconds to end on SIGTERM has ended when destroy returns.
#[test]
fn a_removed_nodes_processes_have_ended_when_destroy_returns() {
    let runtime = r#"
runtime "slow" {
  description = "a process slow to end"
  service "s" {
    on    = "workers"
    start = "nohup sh -c 'trap \"sleep 2; exit 0\" TERM; while :; do sleep 0.1; done' >/dev/null 2>&1 &\necho $! >slow.pid"
  }
}
"#;
    let p = Project::new(&[
        ("runtimes/slow/runtime.tik.hcl", runtime),
        (
            "main.tik.hcl",
            &crate::common::cluster_config_with(1, "small", "  runtime \"slow\" {}\n"),
        ),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let pid = std::fs::read_to_string(node_dir(&p, "worker-default-0").join("home/slow.pid"))
        .unwrap()
        .trim()
        .to_string();
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    assert!(alive(&pid));
    p.ok(&["destroy", "--auto-approve"], 0);
    assert!(!alive(&pid), "the worker's process outlived its node");
}
