//! `tik controller`: rounds that keep clusters at the configuration last applied and
//! the recorded pool sizes, and act only then.

use crate::common::{cluster_config, http_get, Project};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn node_dir(p: &Project, name: &str) -> std::path::PathBuf {
    p.file(&format!(".tik/local/workspaces/dev/clusters/etl/{name}"))
}

fn quickstart() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/main.tik.hcl"),
    )
    .unwrap()
}

#[test]
fn a_round_replaces_a_lost_worker_and_brings_a_pool_to_its_recorded_size() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(2, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    // Nothing wrong: the round reads and does nothing, state untouched.
    let state = p.read("tik.tikstate");
    let r = p.ok(&["controller", "--once"], 0);
    assert!(
        r.stdout.contains("watching cluster etl (state: "),
        "{}",
        r.out()
    );
    assert!(!r.stdout.contains("acting"), "{}", r.out());
    assert_eq!(p.read("tik.tikstate"), state);

    std::fs::remove_dir_all(node_dir(&p, "worker-default-1")).unwrap();
    let r = p.ok(&["controller", "etl", "--once"], 0);
    assert!(
        r.stdout
            .contains("cluster.etl.node.worker[\"default\"][1] was deleted outside of tik"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("acting: Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("cluster.etl.node.worker[\"default\"][1]: Creation complete"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("round done: 1 added, 0 changed, 0 replaced, 0 destroyed"),
        "{}",
        r.out()
    );
    assert!(node_dir(&p, "worker-default-1").exists());
    // What the controller did is neither drift nor a change.
    p.ok(&["drift"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // A recorded size: the round brings the pool there, and back down newest first.
    p.ok(&["scale", "etl", "4"], 0);
    let r = p.ok(&["controller", "--once"], 0);
    assert!(r.stdout.contains("round done: 2 added"), "{}", r.out());
    assert!(node_dir(&p, "worker-default-3").exists());
    p.ok(&["scale", "etl", "3"], 0);
    let r = p.ok(&["controller", "--once"], 0);
    assert!(
        r.stdout
            .contains("round done: 0 added, 0 changed, 0 replaced, 1 destroyed"),
        "{}",
        r.out()
    );
    assert!(!node_dir(&p, "worker-default-3").exists());
    assert!(node_dir(&p, "worker-default-2").exists());
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // An unknown cluster gets the close name, and nothing runs.
    let r = p.ok(&["controller", "elt", "--once"], 1);
    assert!(
        r.stderr
            .contains("no cluster \"elt\" in this configuration"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("did you mean \"etl\"?"), "{}", r.out());
    let r = p.ok(&["controller", "--once", "--interval", "soon"], 1);
    assert!(
        r.stderr.contains("--interval: \"soon\" is not a duration"),
        "{}",
        r.out()
    );
}

#[test]
fn files_edited_and_not_applied_pause_the_controller() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    // Nothing applied yet: nothing to keep.
    let r = p.ok(&["controller", "--once"], 2);
    assert!(
        r.stdout.contains("paused: nothing is applied yet"),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    std::fs::remove_dir_all(node_dir(&p, "worker-default-0")).unwrap();
    // An edit not applied: the controller applies neither it nor the repair.
    p.write("main.tik.hcl", &cluster_config(1, "large"));
    let state = p.read("tik.tikstate");
    let r = p.ok(&["controller", "--once"], 2);
    assert!(
        r.stdout
            .contains("paused: the configuration files differ from those applied at "),
        "{}",
        r.out()
    );
    assert_eq!(p.read("tik.tikstate"), state);
    assert!(!node_dir(&p, "worker-default-0").exists());
    assert!(p
        .read(".tik/local/workspaces/dev/clusters/etl/head/node.json")
        .contains("\"small\""));
    // The controller plans with the variables the last apply had, as state records
    // them: none need be given to it, even one without a default.
    p.write(
        "main.tik.hcl",
        &cluster_config(1, "small")
            .replace(
                "workspace \"dev\"",
                "variable \"size\" {\n  type = string\n}\n\nworkspace \"dev\"",
            )
            .replace(
                "instance_type = \"small\"\n    min",
                "instance_type = var.size\n    min",
            ),
    );
    p.ok(&["apply", "--auto-approve", "--var", "size=medium"], 0);
    std::fs::remove_dir_all(node_dir(&p, "worker-default-0")).unwrap();
    let r = p.ok(&["controller", "--once"], 0);
    assert!(r.stdout.contains("round done: 1 added"), "{}", r.out());
    assert!(p
        .read(".tik/local/workspaces/dev/clusters/etl/worker-default-0/node.json")
        .contains("\"medium\""));
    p.ok(&["plan", "--detailed-exitcode", "--var", "size=medium"], 0);
}

#[test]
fn a_round_that_needs_the_lock_while_an_apply_holds_it_names_the_holder() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    std::fs::remove_dir_all(node_dir(&p, "worker-default-0")).unwrap();
    // An apply waiting for its "yes" holds the lock.
    let mut apply = p
        .command(&["apply"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(apply.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Enter a value") {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(out.get_mut(), &mut buf).unwrap();
        assert!(n > 0, "apply ended before asking: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let r = p.ok(&["controller", "--once"], 2);
    assert!(
        r.stdout.contains("waiting: the state lock is held by "),
        "{}",
        r.out()
    );
    assert!(r.stdout.contains("(operation apply, since "), "{}", r.out());
    assert!(!node_dir(&p, "worker-default-0").exists());
    apply.stdin.take().unwrap().write_all(b"no\n").unwrap();
    apply.wait().unwrap();
    p.ok(&["controller", "--once"], 0);
    assert!(node_dir(&p, "worker-default-0").exists());
}

/// A controller running in the background: its log lines as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(p: &Project, args: &[&str]) -> Running {
        Running::start_env(p, args, &[])
    }

    fn start_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut command = p.command(args);
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a line holding `text`; fails with the log after `secs`.
    fn wait_for(&mut self, text: &str, secs: u64) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(text);
                    self.log.push(line);
                    if hit {
                        return Instant::now();
                    }
                }
                Err(_) => panic!("no line with {text:?} in {secs}s:\n{}", self.log.join("\n")),
            }
        }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        self.log.extend(self.lines.try_iter());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        assert!(
            status.success(),
            "the controller exits 0 on SIGTERM:\n{}",
            self.log.join("\n")
        );
        self.log
    }
}

#[test]
fn a_running_controller_brings_back_a_lost_worker_serving_and_lets_an_apply_in() {
    keeps_a_lost_worker_serving("local");
}

#[test]
fn a_running_controller_brings_back_a_lost_worker_with_its_sshd() {
    crate::common::need_sshd();
    keeps_a_lost_worker_serving("ssh");
}

fn keeps_a_lost_worker_serving(transport: &str) {
    let quickstart = || {
        quickstart().replace(
            "  provider = \"local\"\n",
            &format!("  provider = \"local\"\n  transport = \"{transport}\"\n"),
        )
    };
    let p = Project::new(&[("main.tik.hcl", &quickstart())]);
    p.ok(&["apply", "--auto-approve"], 0);
    let node = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(node_dir(&p, name).join("node.json")).unwrap(),
        )
        .unwrap()
    };
    let mut c = Running::start(&p, &["controller", "--interval", "300ms"]);
    c.wait_for("watching cluster etl", 30);

    let lost = Instant::now();
    std::fs::remove_dir_all(node_dir(&p, "worker-default-1")).unwrap();
    c.wait_for("was deleted outside of tik", 60);
    c.wait_for("round done", 120);
    let ip = node("worker-default-1")["private_ip"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&format!("{ip}:8000")).is_none() {
        assert!(
            Instant::now() < deadline,
            "the new worker's web server does not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "transport {transport}: a lost worker serving again {:.1}s after its loss",
        lost.elapsed().as_secs_f64()
    );
    // Its steps ran through its transport: over ssh, its new sshd answers.
    p.ok(
        &[
            "exec",
            "etl",
            "--node",
            "worker-default-1",
            "--",
            "echo",
            "hello",
        ],
        0,
    );
    // The inventory that lists the workers followed: nothing is left for an apply.
    p.ok(&["plan", "--detailed-exitcode"], 0);
    // Status says where the controller runs and what it did last.
    let status = p.ok(&["status"], 0).stdout;
    assert!(
        status.contains("  controller  running in the foreground as "),
        "{status}"
    );
    assert!(status.contains("round done: "), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["status", "--json"], 0).stdout).unwrap();
    assert_eq!(json["controllers"][0]["cluster"], "etl", "{json}");
    assert_eq!(json["controllers"][0]["running"], true, "{json}");
    // A second controller for the cluster is refused, naming the first.
    let r = p.ok(&["controller", "--once"], 1);
    assert!(
        r.stderr
            .contains("cluster etl is kept by another controller: ")
            && r.stderr
                .contains(&format!("(pid {}, in the foreground)", c.child.id())),
        "{}",
        r.out()
    );
    // A user's apply gets in between rounds (waiting for the lock where a round
    // holds it), and its change stays.
    p.write(
        "main.tik.hcl",
        &quickstart().replace("default     = 2", "default     = 3"),
    );
    p.ok(&["apply", "--auto-approve", "--lock-timeout", "60s"], 0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(node_dir(&p, "worker-default-2").exists());
    let log = c.stop();
    assert!(
        log.last().is_some_and(|l| l.ends_with("stopped")),
        "{}",
        log.join("\n")
    );
    let status = p.ok(&["status"], 0).stdout;
    assert!(status.contains("  controller  stopped at "), "{status}");
    assert!(
        !log.iter()
            .any(|l| l.contains("destroyed") && !l.contains("0 destroyed")),
        "the controller undid nothing:\n{}",
        log.join("\n")
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);
    p.ok(&["destroy", "--auto-approve"], 0);
}

/// A service whose health is a file: sick while `$TIK_HOME/sick` exists, which a start
/// removes where `$TIK_HOME/cure` exists. Each start is counted in `$TIK_HOME/starts`.
const FLAKY: &str = r#"
runtime "flaky" {
  description = "a service that is well unless its node holds a file named sick"
  service "s" {
    on     = "workers"
    start  = "echo started >>\"$TIK_HOME/starts\"; if [ -e \"$TIK_HOME/cure\" ]; then rm -f \"$TIK_HOME/sick\"; fi"
    stop   = "true"
    health = "test ! -e \"$TIK_HOME/sick\""
    health_timeout = 2
  }
}
"#;

/// A cluster whose one worker runs the flaky service, applied, with these
/// `controller` settings: the project, and the worker's home.
fn flaky_cluster(controller: &str) -> (Project, std::path::PathBuf) {
    let config = crate::common::cluster_config_with(
        1,
        "small",
        &format!("  runtime \"flaky\" {{}}\n  controller {{\n{controller}  }}\n"),
    );
    let p = Project::new(&[
        ("main.tik.hcl", &config),
        ("runtimes/flaky/runtime.tik.hcl", FLAKY),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let home = node_dir(&p, "worker-default-0").join("home");
    (p, home)
}

#[test]
fn a_service_failing_its_checks_is_restarted_after_its_threshold_then_its_node_replaced() {
    let (p, home) = flaky_cluster(
        "    unhealthy_after   = 2\n    recovery_attempts = 2\n    health_interval   = 1\n",
    );
    let starts = || {
        std::fs::read_to_string(home.join("starts"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(starts(), 1);
    let node_id = || p.read(".tik/local/workspaces/dev/clusters/etl/worker-default-0/node.json");
    let first_node = node_id();

    let mut c = Running::start(&p, &["controller", "--interval", "300ms"]);
    c.wait_for("watching cluster etl", 30);
    let check = "cluster.etl.node.worker[\"default\"][0].runtime.flaky.service.s.start";
    // A service a restart cures: restarted once, after its threshold, and well again.
    std::fs::write(home.join("cure"), "").unwrap();
    std::fs::write(home.join("sick"), "").unwrap();
    c.wait_for(
        &format!("{check}: its health check failed (2 of 2 checks"),
        30,
    );
    c.wait_for(&format!("{check}: restarting it (recovery 1 of 2"), 5);
    c.wait_for(
        "round done: 0 added, 1 changed, 0 replaced, 0 destroyed",
        30,
    );
    assert_eq!(starts(), 2);
    assert!(!home.join("sick").exists());
    // One that stays sick: its restarts fail, and then its node is replaced.
    std::fs::remove_file(home.join("cure")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(home.join("sick"), "").unwrap();
    c.wait_for(
        &format!("{check}: its health check failed (1 of 2 checks"),
        30,
    );
    c.wait_for(
        &format!("{check}: its health check failed (2 of 2 checks"),
        30,
    );
    c.wait_for(&format!("{check}: restarting it (recovery 2 of 2"), 5);
    // The restart runs the start step, whose service does not become well: a failed
    // recovery, counted as one.
    c.wait_for("round failed: 0 added, 0 changed", 30);
    assert_eq!(starts(), 3, "the restart ran the start step again");
    c.wait_for(
        &format!("cluster.etl.node.worker[\"default\"][0]: replacing the node: {check} kept failing its health check after 2 restarts"),
        30,
    );
    c.wait_for("round done", 60);
    // A new node, whose service is well: no more failed checks.
    assert_ne!(node_id(), first_node);
    assert_eq!(starts(), 1, "the new node started its service once");
    std::thread::sleep(Duration::from_secs(2));
    let log = c.stop();
    let after = log.iter().rposition(|l| l.contains("round done")).unwrap();
    assert!(
        !log[after..]
            .iter()
            .any(|l| l.contains("health check failed")),
        "{}",
        log.join("\n")
    );
    p.ok(&["status"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// Health is checked every `health_interval`, not every round: a service that
/// turns sick right after a check is found at the next one, the rounds between
/// reading the nodes alone.
#[test]
fn health_is_checked_every_health_interval_not_every_round() {
    let (p, home) = flaky_cluster("    health_interval = 4\n");
    let mut c = Running::start(&p, &["controller", "--interval", "200ms"]);
    // The first round checks health (status shows its end); the next check is 4 s
    // after it.
    c.wait_for("watching cluster etl", 30);
    eventually("the first round ends", 30, || {
        p.tik(&["status"]).stdout.contains(": idle")
    });
    let sick = Instant::now();
    std::fs::write(home.join("sick"), "").unwrap();
    c.wait_for("its health check failed (1 of 3 checks", 30);
    let found = sick.elapsed();
    c.stop();
    assert!(
        found >= Duration::from_secs(2),
        "found after {found:?}: a check every round (200 ms) would have found it at once"
    );
}

#[test]
fn a_bad_controller_block_is_named_where_it_is_written() {
    let config = crate::common::cluster_config_with(
        1,
        "small",
        "  controller {\n    backoff = \"5m\"\n    recovery_atempts = 2\n  }\n",
    );
    let p = Project::new(&[("main.tik.hcl", &config)]);
    let r = p.ok(&["validate"], 1);
    assert!(r.stderr.contains("recovery_atempts"), "{}", r.out());
    assert!(
        r.stderr.contains("did you mean \"recovery_attempts\"?"),
        "{}",
        r.out()
    );
    let fixed = config.replace("    recovery_atempts = 2\n", "");
    p.write("main.tik.hcl", &fixed);
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains(
            "controller backoff must be a whole number from 1 to 86400 seconds, got \"5m\""
        ),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:16:15"), "{}", r.out());
}

/// An AWS cluster (the API at AWS_ENDPOINT_URL) with these worker pools, whose
/// controller backs off `backoff` seconds.
fn aws_cluster(workers: &str, backoff: u64) -> String {
    format!(
        r#"workspace "lab" {{
  provider = "aws"
  region   = "us-east-1"
}}

cluster "etl" {{
  workspace = workspace.lab
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
{workers}  controller {{
    backoff = {backoff}
  }}
}}
"#
    )
}

/// On moto: an instance terminated by hand is replaced; a round whose replacement
/// meets no capacity (from the fault proxy, once) backs off, and the round after the
/// backoff makes it.
#[test]
fn on_aws_a_terminated_worker_is_replaced_after_a_capacity_error_backs_off() {
    use crate::moto::{Faults, Moto};
    let moto = Moto::start();
    let faults = Faults::start(
        &moto,
        r#"[{"when": ["Action=RunInstances"], "status": 500, "code": "InsufficientInstanceCapacity",
            "message": "We currently do not have sufficient m5.large capacity in the Availability Zone you requested.",
            "times": 1}]"#,
    );
    let config = aws_cluster(
        "  workers \"default\" {\n    min = 2\n    max = 4\n  }\n",
        2,
    );
    let p = Project::new(&[("main.tik.hcl", &config)]);
    let on_moto = [("AWS_ENDPOINT_URL", moto.endpoint.as_str())];
    let r = p.tik_env(&["apply", "--auto-approve"], &on_moto);
    assert_eq!(r.code, 0, "{}", r.out());
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let id_of = |state: &serde_json::Value| {
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == "cluster.etl.node.worker[\"default\"][1]")
            .map(|r| r["attributes"]["id"].as_str().unwrap().to_string())
    };
    let old = id_of(&state).unwrap();
    crate::common::block_on(moto.terminate(&old));
    let mut c = Running::start_env(
        &p,
        &["controller", "--interval", "300ms"],
        &[("AWS_ENDPOINT_URL", faults.endpoint.as_str())],
    );
    c.wait_for(
        "cluster.etl.node.worker[\"default\"][1] was deleted outside of tik",
        60,
    );
    c.wait_for("InsufficientInstanceCapacity", 60);
    c.wait_for("round failed: 0 added", 30);
    let backing = c.wait_for("backing off until ", 30);
    c.wait_for(
        "round done: 1 added, 0 changed, 0 replaced, 0 destroyed",
        60,
    );
    let waited = backing.elapsed();
    let log = c.stop();
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("backing off until"))
            .count(),
        1,
        "said once:\n{}",
        log.join("\n")
    );
    // The round after the failure waited out the backoff (2 s from the failure).
    assert!(
        waited >= Duration::from_secs(1),
        "{waited:?}:\n{}",
        log.join("\n")
    );
    assert_eq!(faults.fired(), [1], "one capacity error");
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let new = id_of(&state).unwrap();
    assert_ne!(new, old);
    let r = p.tik_env(&["plan", "--detailed-exitcode"], &on_moto);
    assert_eq!(r.code, 0, "{}", r.out());
    let r = p.tik_env(&["destroy", "--auto-approve"], &on_moto);
    assert_eq!(r.code, 0, "{}", r.out());
}

/// On moto: a pool whose nodes cannot be made (no GPU capacity, from the fault
/// proxy, every time) backs off alone: the controller says so while nothing else is
/// wrong, and meanwhile replaces a worker of another pool terminated by hand.
#[test]
fn on_aws_a_pool_without_capacity_backs_off_alone_and_the_others_are_kept() {
    use crate::moto::{Faults, Moto};
    let moto = Moto::start();
    let faults = Faults::start(
        &moto,
        r#"[{"when": ["Action=RunInstances", "InstanceType=g4dn.xlarge"], "status": 500,
            "code": "InsufficientInstanceCapacity",
            "message": "We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone you requested.",
            "times": 1000}]"#,
    );
    let config = aws_cluster(
        "  workers \"cpu\" {\n    min = 1\n    max = 2\n  }\n  workers \"gpu\" {\n    instance_type = \"g4dn.xlarge\"\n    min           = 1\n    max           = 2\n  }\n",
        600,
    );
    let p = Project::new(&[("main.tik.hcl", &config)]);
    let on_moto = [("AWS_ENDPOINT_URL", moto.endpoint.as_str())];
    let r = p.tik_env(&["apply", "--auto-approve"], &on_moto);
    assert_eq!(r.code, 0, "{}", r.out());
    // The state as tik reads it (its file and its journal).
    let id_of = |pool: &str| {
        let pulled = p.ok(&["state", "pull", "--lock-timeout", "60s"], 0).stdout;
        let state: serde_json::Value = serde_json::from_str(&pulled).unwrap();
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == format!("cluster.etl.node.worker[\"{pool}\"][0]"))
            .and_then(|r| r["attributes"]["id"].as_str().map(str::to_string))
    };
    let (cpu, gpu) = (id_of("cpu").unwrap(), id_of("gpu").unwrap());
    crate::common::block_on(moto.terminate(&cpu));
    crate::common::block_on(moto.terminate(&gpu));
    let mut c = Running::start_env(
        &p,
        &["controller", "--interval", "300ms"],
        &[("AWS_ENDPOINT_URL", faults.endpoint.as_str())],
    );
    // One round makes both: the cpu worker is made, the gpu one meets no capacity.
    c.wait_for("round failed: 1 added", 60);
    c.wait_for("cluster etl, workers \"gpu\": backing off until ", 30);
    let first_cpu = id_of("cpu").expect("a new cpu worker");
    assert_ne!(first_cpu, cpu);
    assert_eq!(id_of("gpu"), None);
    // While the gpu pool waits, a lost cpu worker is replaced all the same.
    crate::common::block_on(moto.terminate(&first_cpu));
    c.wait_for(
        "cluster.etl.node.worker[\"cpu\"][0] was deleted outside of tik",
        60,
    );
    c.wait_for(
        "round done: 1 added, 0 changed, 0 replaced, 0 destroyed",
        60,
    );
    // tik status shows what waits beside the last round, which acted.
    let status = p.tik_env(&["status"], &on_moto).out();
    assert!(
        status.contains(": round done: 1 added")
            && status.contains("    cluster etl, workers \"gpu\": backing off until ")
            && status.contains("InsufficientInstanceCapacity"),
        "{status}"
    );
    let log = c.stop();
    let new_cpu = id_of("cpu").expect("another cpu worker");
    assert_ne!(new_cpu, first_cpu);
    assert_eq!(id_of("gpu"), None, "{}", log.join("\n"));
    // The gpu pool was tried once: it waits its 600 s.
    assert_eq!(faults.fired(), [1], "{}", log.join("\n"));
    let r = p.tik_env(&["destroy", "--auto-approve"], &on_moto);
    assert_eq!(r.code, 0, "{}", r.out());
}

/// Polls `check` every 100 ms until it holds; fails saying `what` after `secs`.
fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

#[test]
fn a_controller_on_the_head_keeps_the_cluster_follows_applies_and_goes_with_destroy() {
    // With a runtime of the project's own whose script is a file of its directory:
    // the head's copy has it too.
    let with_head_controller = |workers: &str| {
        quickstart()
            .replace(
                "  runtime \"web\" {",
                "  controller {\n    on       = \"head\"\n    interval = 1\n  }\n\n  runtime \"note\" {}\n\n  runtime \"web\" {",
            )
            .replace("default     = 2", &format!("default     = {workers}"))
    };
    let note = "runtime \"note\" {\n  description = \"a note on the head\"\n  service \"n\" {\n    on    = \"head\"\n    start = file(\"start.sh\")\n  }\n}\n";
    let p = Project::new(&[
        ("main.tik.hcl", &with_head_controller("2")),
        ("runtimes/note/runtime.tik.hcl", note),
        ("runtimes/note/start.sh", "echo noted >note.txt\n"),
    ]);
    let r = p.ok(&["plan"], 0);
    assert!(
        r.stdout
            .contains("_controller controller: install, configure, start"),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let status = || p.tik(&["status"]).stdout;
    eventually("the head's controller runs and is idle", 60, || {
        let s = status();
        s.contains("controller  running on the head (head) of cluster etl as ")
            && s.contains(": idle")
    });
    // A lost worker comes back without anyone running tik.
    std::fs::remove_dir_all(node_dir(&p, "worker-default-1")).unwrap();
    let took = eventually("the head's controller brings the worker back", 60, || {
        node_dir(&p, "worker-default-1").join("node.json").exists() && p.tik(&["status"]).code == 0
    });
    eprintln!(
        "the head's controller had the worker back in {:.1}s",
        took.as_secs_f64()
    );
    // The round that brought it back may still hold the lock: a person waits for it.
    p.ok(&["plan", "--detailed-exitcode", "--lock-timeout", "60s"], 0);
    // An apply of new files (waiting for the lock where a round holds it) installs
    // them on the head: the controller keeps three workers from then on.
    p.write("main.tik.hcl", &with_head_controller("3"));
    p.ok(&["apply", "--auto-approve", "--lock-timeout", "60s"], 0);
    let copy = node_dir(&p, "head").join("home/controller/project/main.tik.hcl");
    assert!(
        std::fs::read_to_string(copy)
            .unwrap()
            .contains("default     = 3"),
        "apply copied the files it applied to the head"
    );
    std::fs::remove_dir_all(node_dir(&p, "worker-default-2")).unwrap();
    eventually(
        "the head's controller brings the third worker back",
        60,
        || node_dir(&p, "worker-default-2").join("node.json").exists(),
    );
    // The controller dies: its supervisor starts it again.
    let pid_of = || -> Option<u64> {
        let json: serde_json::Value =
            serde_json::from_str(&p.tik(&["status", "--json"]).stdout).ok()?;
        let c = &json["controllers"][0];
        (c["running"] == true)
            .then(|| c["status"]["pid"].as_u64())
            .flatten()
    };
    let first = pid_of().expect("a running controller");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status();
    eventually("the supervisor starts the controller again", 60, || {
        pid_of().is_some_and(|p| p != first)
    });
    // Destroy (waiting for the lock where a round holds it) stops it, and nothing of
    // it is left running.
    p.ok(&["destroy", "--auto-approve", "--lock-timeout", "60s"], 0);
    let home = p.path().canonicalize().unwrap().display().to_string();
    eventually("nothing of the controller is left", 20, || {
        crate::common::processes_with(&format!("{home}/.tik/local")).is_empty()
    });
}

/// A queue whose work is files on the head: `wanted` holds how many more workers it
/// wants, `idle` the addresses of the workers with nothing to do; `hang` makes its
/// demand command hang.
const QUEUE: &str = r#"
runtime "queue" {
  description = "a queue whose work is files on the head"
  service "q" {
    on    = "head"
    start = "mkdir -p \"$TIK_HOME/queue\""
  }
  scaling {
    demand  = "if [ -e \"$TIK_HOME/queue/hang\" ]; then sleep 30; fi; cat \"$TIK_HOME/queue/wanted\" 2>/dev/null || echo 0"
    idle    = "cat \"$TIK_HOME/queue/idle\" 2>/dev/null || true"
    timeout = 2
  }
}
"#;

#[test]
fn a_pool_scales_on_its_runtimes_demand_and_sheds_its_newest_idle_workers() {
    let config = cluster_config(1, "small")
        .replace(
            "    min           = 1\n    max           = 10\n",
            "    min           = 1\n    max           = 4\n    idle_timeout  = 2\n",
        )
        .replace(
            "output \"head_ip\"",
            "output \"unused\" {\n  value = 1\n}\n\noutput \"head_ip\"",
        )
        .replace(
            "  workers \"default\" {",
            "  runtime \"queue\" {}\n  controller {\n    health_interval = 1\n  }\n  workers \"default\" {",
        );
    let p = Project::new(&[
        ("main.tik.hcl", &config),
        ("runtimes/queue/runtime.tik.hcl", QUEUE),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let queue = node_dir(&p, "head").join("home/queue");
    let ip = |name: &str| -> String {
        let n: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(node_dir(&p, name).join("node.json")).unwrap(),
        )
        .unwrap();
        n["private_ip"].as_str().unwrap().to_string()
    };
    let mut c = Running::start(&p, &["controller", "--interval", "300ms"]);
    c.wait_for("watching cluster etl", 30);
    // Work that wants two more workers: they are added, within max.
    std::fs::write(queue.join("wanted"), "2\n").unwrap();
    c.wait_for(
        "cluster etl, workers \"default\": 1 -> 3 workers (queue want 2 more workers)",
        30,
    );
    std::fs::write(queue.join("wanted"), "0\n").unwrap();
    c.wait_for("round done: 4 added", 60); // two nodes and their sessions
    assert!(node_dir(&p, "worker-default-2").exists());
    p.ok(&["plan", "--detailed-exitcode"], 0);
    // What it prints wrong, or a command that hangs, decides nothing and is said.
    std::fs::write(queue.join("wanted"), "lots\n").unwrap();
    c.wait_for(
        "cluster.etl.scaling[\"queue\"]: its demand command printed \"lots\", not a whole number of workers (no scaling decision from it)",
        30,
    );
    std::fs::write(queue.join("hang"), "").unwrap();
    c.wait_for("its demand command still running after 2 s: stopped it", 30);
    std::fs::remove_file(queue.join("hang")).unwrap();
    std::fs::write(queue.join("wanted"), "0\n").unwrap();
    // The oldest idle alone: the newest go first, so none goes.
    std::fs::write(queue.join("idle"), format!("{}\n", ip("worker-default-0"))).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // The two newest idle: they go once idle for idle_timeout, down to min.
    let newest = format!(
        "{}\n{}\n{}\n",
        ip("worker-default-0"),
        ip("worker-default-1"),
        ip("worker-default-2")
    );
    std::fs::write(queue.join("idle"), newest).unwrap();
    c.wait_for(
        "cluster etl, workers \"default\": 3 -> 1 workers (2 workers had nothing to do for 2s)",
        30,
    );
    c.wait_for(
        "round done: 0 added, 0 changed, 0 replaced, 4 destroyed",
        60,
    );
    let log = c.stop();
    assert!(
        !log.iter().any(|l| l.contains("3 -> 2 workers")),
        "the oldest idle worker alone removed nothing:\n{}",
        log.join("\n")
    );
    assert!(node_dir(&p, "worker-default-0").exists());
    assert!(
        !node_dir(&p, "worker-default-1").exists() && !node_dir(&p, "worker-default-2").exists()
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"]["cluster.etl"]["default"], 1, "{shown}");
}

/// A person's `tik scale` that lands while a round decides a pool's size on demand
/// (between the round's read and its lock) stands: the round drops its own
/// decision, says so, and brings the pool to the person's size.
#[test]
fn a_tik_scale_landing_while_a_round_decides_stands() {
    let p = Project::new(&[]);
    // The queue's demand command is where the person's scale lands: it runs `tik
    // scale` once, then tells that its work wants two more workers, once.
    let queue = format!(
        r#"runtime "queue" {{
  service "q" {{
    on    = "head"
    start = "mkdir -p \"$TIK_HOME/queue\""
  }}
  scaling {{
    demand  = "q=\"$TIK_HOME/queue\"; [ -e \"$q/wanted\" ] || {{ echo 0; exit 0; }}; if [ -e \"$q/person\" ]; then rm \"$q/person\"; (cd '{}' && '{}' scale etl 2) >/dev/null 2>&1 || exit 1; fi; cat \"$q/wanted\"; rm \"$q/wanted\""
    idle    = "true"
    timeout = 30
  }}
}}
"#,
        p.path().display(),
        crate::common::tik_bin()
    );
    let config = cluster_config(1, "small")
        .replace(
            "    min           = 1\n    max           = 10\n",
            "    min           = 1\n    max           = 4\n    idle_timeout  = 600\n",
        )
        .replace(
            "  workers \"default\" {",
            "  runtime \"queue\" {}\n  controller {\n    health_interval = 1\n  }\n  workers \"default\" {",
        );
    p.write("main.tik.hcl", &config);
    p.write("runtimes/queue/runtime.tik.hcl", &queue);
    p.ok(&["apply", "--auto-approve"], 0);
    let q = node_dir(&p, "head").join("home/queue");
    let mut c = Running::start(&p, &["controller", "--interval", "300ms"]);
    c.wait_for("watching cluster etl", 30);
    std::fs::write(q.join("person"), "").unwrap();
    std::fs::write(q.join("wanted"), "2\n").unwrap();
    c.wait_for(
        "cluster etl, workers \"default\": not 1 -> 3 workers (queue want 2 more workers): its size was set to 2 meanwhile, which stands",
        30,
    );
    c.wait_for("round done: 2 added", 60); // the person's node and its session
    let log = c.stop();
    assert!(
        !log.iter().any(|l| l.contains(": 1 -> 3 workers (")),
        "the round recorded no size of its own:\n{}",
        log.join("\n")
    );
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"]["cluster.etl"]["default"], 2, "{shown}");
    assert!(!node_dir(&p, "worker-default-2").exists());
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

/// A PySpark application on the head that holds one core for `secs`, in the
/// background: its exit status tells whether it ran.
fn spark_app(p: &Project, name: &str, secs: u64) -> Child {
    let job = format!(
        "cat >{name}.py <<'EOF'\nimport time\nfrom pyspark import SparkContext\nsc = SparkContext(appName=\"{name}\")\nsc.parallelize([0], 1).map(lambda _: time.sleep({secs})).collect()\nsc.stop()\nEOF\nspark/current/bin/spark-submit --conf spark.cores.max=1 --conf spark.executor.cores=1 {name}.py 2>{name}.err || {{ tail -30 {name}.err; exit 1; }}"
    );
    p.command(&["exec", "spark", "--node", "head", "--", &job])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn spark_work_that_waits_gets_a_worker_which_goes_once_idle() {
    crate::spark::need_java_and_pip();
    let config = format!(
        r#"workspace "lab" {{
  provider = "local"
}}

cluster "spark" {{
  workspace = workspace.lab
  head {{}}
  workers "w" {{
    min          = 1
    max          = 2
    idle_timeout = 15
  }}
  runtime "spark" {{
    install_method = "pip"
    checksum       = "{}"
  }}
  controller {{
    health_interval = 2
  }}
}}
"#,
        crate::spark::PYSPARK_SHA256
    );
    let p = crate::common::Cleanup(Project::new(&[("main.tik.hcl", &config)]));
    p.ok(&["apply", "--auto-approve"], 0);
    let mut c = Running::start(&p, &["controller", "--interval", "1s"]);
    c.wait_for("watching cluster spark", 30);
    // One application takes the one worker's core; the next one waits for a worker.
    let mut holds = spark_app(&p, "holds", 60);
    let head: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(node_dir_of(&p, "spark", "head").join("node.json")).unwrap(),
    )
    .unwrap();
    let url = format!("http://{}:8080/json/", head["private_ip"].as_str().unwrap());
    let running = |state: &str| {
        let probe = format!(
            "python3 -c 'import json, sys, urllib.request\ns = json.load(urllib.request.urlopen(sys.argv[1]))\nprint(sum(1 for a in s[\"activeapps\"] if a[\"state\"] == sys.argv[2]))' {url} {state}"
        );
        p.tik(&["exec", "spark", "--node", "head", "--", &probe])
            .stdout
            .trim()
            .to_string()
    };
    eventually("the first application runs", 120, || {
        running("RUNNING") == "1"
    });
    let mut waits = spark_app(&p, "waits", 5);
    c.wait_for(
        "cluster spark, workers \"w\": 1 -> 2 workers (spark want 1 more worker)",
        120,
    );
    c.wait_for("round done: ", 300);
    assert!(
        waits.wait().unwrap().success(),
        "the waiting application ran on the new worker"
    );
    assert!(holds.wait().unwrap().success());
    // Idle again: the new worker goes once it has had nothing to do for 15 s.
    c.wait_for(
        "cluster spark, workers \"w\": 2 -> 1 workers (1 worker had nothing to do for 15s)",
        180,
    );
    c.wait_for("round done: 0 added", 120);
    let log = c.stop();
    assert!(
        !log.iter().any(|l| l.contains("no scaling decision")),
        "{}",
        log.join("\n")
    );
    assert!(!node_dir_of(&p, "spark", "worker-w-1").exists());
    p.ok(&["plan", "--detailed-exitcode"], 0);
    p.ok(&["destroy", "--auto-approve"], 0);
}

fn node_dir_of(p: &Project, cluster: &str, name: &str) -> std::path::PathBuf {
    p.file(&format!(
        ".tik/local/workspaces/lab/clusters/{cluster}/{name}"
    ))
}

/// A status record is read from the store: one holding control characters prints
/// none, and one that does not parse is left out.
#[test]
fn a_hostile_or_broken_status_record_does_not_reach_the_terminal() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["controller", "--once"], 0);
    let record = "tik.tikstate.records/controller-cluster_2eetl.json";
    let mut json: serde_json::Value = serde_json::from_str(&p.read(record)).unwrap();
    json["who"] = "evil\u{1b}]0;pwned\u{7}@host".into();
    json["actions"] = serde_json::json!(["\u{1b}[2Jcleared"]);
    p.write(record, &json.to_string());
    let r = p.ok(&["status"], 0);
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.contains("evil?]0;pwned?@host"), "{}", r.stdout);
    p.write(record, "{not json");
    let r = p.ok(&["status"], 0);
    assert!(!r.stdout.contains("  controller  "), "{}", r.out());
}
