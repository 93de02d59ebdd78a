//! Kill tik at every write point of its state, once each, and check that nothing is
//! lost: the chosen-point method (strace's syscall injection) finds what random
//! `kill -9`s never hit.
//!
//! For each phase (the first apply, a change, a destroy), a traced run lists the
//! system calls that touch the state's files (`openat`, `write`, `fsync`, `rename`,
//! `unlink`); then, for each of them, a fresh project is brought to the phase and its
//! command is run again under `strace -e inject=SYSCALL:signal=KILL:when=N`, so that
//! tik dies right at that call. After each kill: the state parses; every node and
//! workspace directory that exists, and every address the project claims, is in the
//! state; a second run killed at its own second write loses nothing either; the next
//! run converges; the plan after it is empty; a destroy leaves nothing behind.

use crate::common;
use crate::common::{block_on, Project};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const STRACE: &str = "/usr/bin/strace";
const STATE: &str = "tik.tikstate";
/// The files tik writes state through.
const STATE_FILES: [&str; 5] = ["", ".journal", ".tmp", ".backup", ".backup.tmp"];
const SYSCALLS: [&str; 5] = ["openat", "write", "fsync", "rename", "unlink"];

const CONFIG: &str = r#"
variable "workers" {
  type    = number
  default = 2
}
variable "extra" {
  type    = bool
  default = false
}
workspace "w" {
  provider = "local"
}
cluster "c" {
  workspace = workspace.w
  head {
    instance_type = "small"
  }
  workers "default" {
    instance_type = "small"
    min           = var.workers
    max           = 8
  }
}
resource "tik_data" "a" {
  input = "a"
}
resource "tik_data" "b" {
  input = "${tik_data.a.output}-${cluster.c.node.head.private_ip}"
}
resource "tik_data" "c" {
  count = var.extra ? 2 : 0
  input = count.index
}
output "b" {
  value = tik_data.b.output
}
"#;

fn need_strace() {
    assert!(
        Path::new(STRACE).exists(),
        "the kill-point tests inject kills with strace, and {STRACE} is missing: install it with\n  apt-get install strace\n(tests/run does this)"
    );
}

struct Phase {
    name: &'static str,
    /// What brings a fresh project to the phase.
    setup: &'static [&'static [&'static str]],
    /// The command killed at each of its write points.
    command: &'static [&'static str],
    /// The variables of the world the phase wants (none: a destroy).
    wants: Option<&'static [&'static str]>,
}

const PHASES: [Phase; 3] = [
    Phase {
        name: "first apply",
        setup: &[],
        command: &["apply", "--auto-approve"],
        wants: Some(&[]),
    },
    Phase {
        name: "change",
        setup: &[&["apply", "--auto-approve"]],
        command: &[
            "apply",
            "--auto-approve",
            "--var",
            "workers=4",
            "--var",
            "extra=true",
        ],
        wants: Some(&["--var", "workers=4", "--var", "extra=true"]),
    },
    Phase {
        name: "destroy",
        setup: &[&[
            "apply",
            "--auto-approve",
            "--var",
            "workers=3",
            "--var",
            "extra=true",
        ]],
        command: &["destroy", "--auto-approve"],
        wants: None,
    },
];

/// tik under strace, tracing the state files' system calls into `log`, and killed at
/// the `when`-th call of `inject` if given. True when tik was killed.
fn traced(p: &Project, args: &[&str], log: &Path, inject: Option<(&str, usize)>) -> bool {
    let mut c = Command::new(STRACE);
    c.args(["-f", "-qq", "-o"]).arg(log);
    c.arg("-e").arg(format!("trace={}", SYSCALLS.join(",")));
    for suffix in STATE_FILES {
        c.arg("-P").arg(p.path().join(format!("{STATE}{suffix}")));
    }
    if let Some((syscall, when)) = inject {
        c.arg("-e")
            .arg(format!("inject={syscall}:signal=KILL:when={when}"));
    }
    let out = c
        .arg(common::tik_bin())
        .args(args)
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("strace runs");
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let killed = log.contains("+++ killed by SIGKILL +++");
    if !killed {
        assert!(
            out.status.success(),
            "tik {} under strace failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    killed
}

/// The write points of a run: each traced system call on the state's files, as
/// (syscall, its ordinal among that syscall's calls). They must all come from one
/// thread, since strace counts `when` per thread.
fn write_points(log: &Path) -> Vec<(&'static str, usize)> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut threads = BTreeSet::new();
    let mut points = Vec::new();
    for line in text.lines() {
        let Some((tid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        let Some(name) = SYSCALLS.iter().find(|s| call.starts_with(&format!("{s}("))) else {
            continue;
        };
        threads.insert(tid.to_string());
        let n = points.iter().filter(|(s, _)| s == name).count() + 1;
        points.push((*name, n));
    }
    assert!(
        threads.len() == 1,
        "state files are written from {} threads ({threads:?}); strace counts kill points per thread, so the harness needs them on one:\n{text}",
        threads.len()
    );
    points
}

/// What a failed check said, from its panic.
fn failure(panic: Box<dyn std::any::Any + Send>, context: String) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or(context)
}

/// Prints how many kill points were covered and passed, and fails naming each failure.
fn report(what: &str, covered: usize, failures: &[String]) {
    eprintln!(
        "{what}: {covered} covered, {} passed",
        covered - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {covered} {what} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn node_address(dir_name: &str) -> String {
    match dir_name.strip_prefix("worker-default-") {
        Some(i) => format!("cluster.c.node.worker[\"default\"][{i}]"),
        None => format!("cluster.c.node.{dir_name}"),
    }
}

/// The addresses of what exists on this machine for the project: node and workspace
/// directories, and address claims.
fn what_exists(p: &Project) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ws = p.path().join(".tik/local/workspaces");
    if ws.join("w").exists() {
        found.insert("workspace.w.directory".to_string());
    }
    if let Ok(nodes) = std::fs::read_dir(ws.join("w/clusters/c")) {
        for n in nodes.flatten() {
            found.insert(node_address(&n.file_name().to_string_lossy()));
        }
    }
    found.extend(claims(p));
    found
}

/// The addresses whose loopback address claims this project holds.
fn claims(p: &Project) -> BTreeSet<String> {
    let owner = format!("{}#", p.path().canonicalize().unwrap().display());
    let dir = std::env::temp_dir().join("tik-local-addresses");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .parse::<std::net::Ipv4Addr>()
                        .is_ok()
                })
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|c| c.strip_prefix(&owner).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn recorded(p: &Project, context: &str) -> BTreeSet<String> {
    let r = p.tik(&["state", "list"]);
    assert_eq!(r.code, 0, "{context}: the state does not load\n{}", r.out());
    r.stdout.lines().map(str::to_string).collect()
}

/// Everything that exists is in the state.
fn nothing_unknown(p: &Project, context: &str) {
    let state = recorded(p, context);
    let unknown: Vec<_> = what_exists(p).difference(&state).cloned().collect();
    assert!(
        unknown.is_empty(),
        "{context}: {unknown:?} exist but the state does not know them\nstate: {state:?}"
    );
}

fn with(args: &[&str], vars: &[&str]) -> Vec<String> {
    args.iter().chain(vars).map(|s| s.to_string()).collect()
}

fn run(p: &Project, args: &[String], code: i32, context: &str) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = p.tik(&args);
    assert_eq!(
        r.code,
        code,
        "{context}: tik {}\n{}",
        args.join(" "),
        r.out()
    );
}

/// One kill point: bring a fresh project to the phase, kill its command there, and
/// check what is left and that it converges.
/// Returns whether tik was killed there: apply writes what completes together at once,
/// so a run may make fewer writes than the traced one did, and then finishes instead;
/// the checks after it hold either way.
fn kill_at(phase: &Phase, syscall: &str, when: usize, scratch: &Path) -> Result<bool, String> {
    let p = Project::new(&[("main.tik.hcl", CONFIG)]);
    let context = format!("{} killed at {syscall} #{when}", phase.name);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for setup in phase.setup {
            p.ok(setup, 0);
        }
        let log = scratch.join("kill.log");
        let killed = traced(&p, phase.command, &log, Some((syscall, when)));
        nothing_unknown(&p, &context);
        // A second crash, at the next run's second write, loses nothing either.
        let next: Vec<&str> = match phase.wants {
            Some(vars) => ["apply", "--auto-approve"]
                .iter()
                .chain(vars)
                .copied()
                .collect(),
            None => vec!["destroy", "--auto-approve"],
        };
        traced(&p, &next, &scratch.join("second.log"), Some(("write", 2)));
        nothing_unknown(&p, &format!("{context}, then again at write #2"));
        match phase.wants {
            Some(vars) => {
                run(&p, &with(&["apply", "--auto-approve"], vars), 0, &context);
                run(
                    &p,
                    &with(&["plan", "--detailed-exitcode"], vars),
                    0,
                    &context,
                );
                nothing_unknown(&p, &context);
                run(&p, &with(&["destroy", "--auto-approve"], vars), 0, &context);
            }
            None => run(&p, &with(&["destroy", "--auto-approve"], &[]), 0, &context),
        }
        let left = what_exists(&p);
        assert!(left.is_empty(), "{context}: destroy left {left:?}");
        assert!(
            recorded(&p, &context).is_empty(),
            "{context}: destroy left records"
        );
        killed
    }));
    if outcome.is_err() {
        // Whatever the failed check left: the project's claims and processes.
        let _ = p.tik(&["destroy", "--auto-approve"]);
    }
    outcome.map_err(|e| failure(e, context))
}

#[test]
fn a_kill_at_any_write_of_the_state_loses_nothing() {
    need_strace();
    let scratch = tempfile::tempdir().unwrap();
    let mut covered = 0;
    let mut unreached = 0;
    let mut failures = Vec::new();
    for phase in &PHASES {
        let p = Project::new(&[("main.tik.hcl", CONFIG)]);
        for setup in phase.setup {
            p.ok(setup, 0);
        }
        let log: PathBuf = scratch.path().join("trace.log");
        assert!(!traced(&p, phase.command, &log, None));
        let points = write_points(&log);
        assert!(
            points.len() >= 8,
            "{}: only {} write points traced",
            phase.name,
            points.len()
        );
        let _ = p.tik(&["destroy", "--auto-approve"]);
        let mut killed = 0;
        for (syscall, when) in &points {
            covered += 1;
            match kill_at(phase, syscall, *when, scratch.path()) {
                Ok(true) => killed += 1,
                Ok(false) => unreached += 1,
                Err(e) => failures.push(e),
            }
        }
        // Runs differ in how many writes their rounds take, never by much.
        assert!(
            killed * 5 >= points.len() * 4,
            "{}: tik was killed at only {killed} of {} traced write points",
            phase.name,
            points.len()
        );
    }
    eprintln!("kill points not reached (that run made fewer writes): {unreached}");
    report("kill points", covered, &failures);
}

/// A controller round that replaces a lost worker and grows its pool to a recorded
/// size, killed at each of its write points: what it made is in state, and the next
/// round finishes the work.
#[test]
fn a_kill_at_any_write_of_a_controller_round_loses_nothing() {
    need_strace();
    let scratch = tempfile::tempdir().unwrap();
    let round = ["controller", "--once"];
    let prepare = || {
        let p = Project::new(&[("main.tik.hcl", CONFIG)]);
        p.ok(&["apply", "--auto-approve"], 0);
        std::fs::remove_dir_all(
            p.path()
                .join(".tik/local/workspaces/w/clusters/c/worker-default-1"),
        )
        .unwrap();
        p.ok(&["scale", "c", "4"], 0);
        p
    };
    let p = prepare();
    let log = scratch.path().join("trace.log");
    assert!(!traced(&p, &round, &log, None));
    let points = write_points(&log);
    assert!(
        points.len() >= 4,
        "only {} write points traced",
        points.len()
    );
    p.ok(&["destroy", "--auto-approve"], 0);
    let (mut killed, mut failures) = (0, Vec::new());
    for (syscall, when) in &points {
        let p = prepare();
        let context = format!("a controller round killed at {syscall} #{when}");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let hit = traced(
                &p,
                &round,
                &scratch.path().join("kill.log"),
                Some((syscall, *when)),
            );
            nothing_unknown(&p, &context);
            let r = p.tik(&round);
            assert_eq!(r.code, 0, "{context}: the next round\n{}", r.out());
            nothing_unknown(&p, &context);
            run(
                &p,
                &with(&["plan", "--detailed-exitcode"], &[]),
                0,
                &context,
            );
            let workers = what_exists(&p)
                .iter()
                .filter(|a| a.starts_with("cluster.c.node.worker") && !a.contains('#'))
                .count();
            assert!(workers >= 4, "{context}: {:?}", what_exists(&p));
            run(&p, &with(&["destroy", "--auto-approve"], &[]), 0, &context);
            assert!(
                what_exists(&p).is_empty(),
                "{context}: destroy left {:?}",
                what_exists(&p)
            );
            hit
        }));
        match outcome {
            Ok(hit) => killed += usize::from(hit),
            Err(e) => {
                let _ = p.tik(&["destroy", "--auto-approve"]);
                failures.push(failure(e, context));
            }
        }
    }
    assert!(
        killed * 5 >= points.len() * 4,
        "the controller was killed at only {killed} of {} traced write points",
        points.len()
    );
    report("controller kill points", points.len(), &failures);
}

/// A node whose create is killed before its `node.json` is in place (the provider's own
/// write point), then the pool shrinks below it: its directory and address go too.
#[test]
fn a_node_killed_half_made_goes_when_its_pool_shrinks() {
    need_strace();
    let p = Project::new(&[("main.tik.hcl", CONFIG)]);
    let tmp = p
        .path()
        .join(".tik/local/workspaces/w/clusters/c/worker-default-7/node.json.tmp");
    let out = Command::new(STRACE)
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=rename"])
        .arg("-P")
        .arg(&tmp)
        .args(["-e", "inject=rename:signal=KILL"])
        .arg(common::tik_bin())
        .args(["apply", "--auto-approve", "--var", "workers=8"])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "tik was not killed at the rename");
    let half = p
        .path()
        .join(".tik/local/workspaces/w/clusters/c/worker-default-7");
    assert!(half.exists() && !half.join("node.json").exists());
    let seven = "cluster.c.node.worker[\"default\"][7]".to_string();
    assert!(claims(&p).contains(&seven));
    let r = p.ok(&["apply", "--auto-approve", "--var", "workers=4"], 0);
    assert!(r.stdout.contains("was found half made"), "{}", r.out());
    assert!(!half.exists(), "{}", r.out());
    assert!(!claims(&p).contains(&seven));
    p.ok(&["plan", "--detailed-exitcode", "--var", "workers=4"], 0);
    // Made again where the pool still wants it.
    p.ok(&["apply", "--auto-approve", "--var", "workers=8"], 0);
    p.ok(&["plan", "--detailed-exitcode", "--var", "workers=8"], 0);
    p.ok(&["destroy", "--auto-approve"], 0);
    assert!(what_exists(&p).is_empty());
}

use crate::moto::{Faults, Moto};

/// A workspace (with its NAT gateway, S3 endpoint, roles and bucket) and a cluster of
/// a head and a worker, on the endpoint of `AWS_ENDPOINT_URL`.
const AWS_CONFIG: &str = r#"
variable "workers" {
  type    = number
  default = 1
}
workspace "lab" {
  provider = "aws"
  region   = "us-east-1"
  network {
    cidr        = "10.20.0.0/16"
    allowed_ssh = ["203.0.113.0/24"]
  }
  storage {
    managed = true
  }
}
cluster "etl" {
  workspace = workspace.lab
  head {
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }
  workers "default" {
    instance_type = "m5.large"
    min           = var.workers
    max           = 4
  }
}
"#;

/// tik against `endpoint` (moto, or the proxy in front of it).
fn aws_command(p: &Project, endpoint: &str, args: &[&str]) -> Command {
    let mut c = p.command(args);
    c.env("AWS_ENDPOINT_URL", endpoint);
    c
}

fn aws_run(p: &Project, endpoint: &str, args: &[&str], context: &str) -> common::Run {
    let out = aws_command(p, endpoint, args).output().expect("tik runs");
    let r = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 0, "{context}: tik {}\n{}", args.join(" "), r.out());
    r
}

/// Every EC2 object tagged with `lineage` that is alive, as (what, id, address tag).
async fn live_objects(endpoint: &str, lineage: &str) -> Vec<(String, String, String)> {
    use aws_sdk_ec2::types::{Filter, Tag};
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let by_lineage = || {
        Filter::builder()
            .name("tag:tik:lineage")
            .values(lineage)
            .build()
    };
    let tag = |tags: &[Tag]| {
        tags.iter()
            .find(|t| t.key() == Some("tik:address"))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_string()
    };
    let mut live = Vec::new();
    let mut add = |what: &str, id: Option<&str>, tags: &[Tag]| {
        live.push((
            what.to_string(),
            id.unwrap_or_default().to_string(),
            tag(tags),
        ));
    };
    // Each type: its Describe call, the list in the answer, its id, whether it is alive.
    macro_rules! each {
        ($what:literal, $call:ident . $filter:ident, $list:ident, $id:ident) => {
            each!($what, $call.$filter, $list, $id, |_| true)
        };
        ($what:literal, $call:ident . $filter:ident, $list:ident, $id:ident, $alive:expr) => {
            let out = ec2.$call().$filter(by_lineage()).send().await.unwrap();
            for o in out.$list().iter().filter(|o| $alive(*o)) {
                add($what, o.$id(), o.tags());
            }
        };
    }
    let state_alive = |state: Option<&str>| {
        !matches!(
            state.map(str::to_ascii_lowercase).as_deref(),
            Some("deleted" | "deleting" | "failed" | "terminated" | "shutting-down")
        )
    };
    let instances: Vec<_> = ec2
        .describe_instances()
        .filters(by_lineage())
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect();
    for i in &instances {
        if state_alive(i.state().and_then(|s| s.name()).map(|n| n.as_str())) {
            add("instance", i.instance_id(), i.tags());
        }
    }
    each!("vpc", describe_vpcs.filters, vpcs, vpc_id);
    each!("subnet", describe_subnets.filters, subnets, subnet_id);
    each!(
        "internet gateway",
        describe_internet_gateways.filters,
        internet_gateways,
        internet_gateway_id
    );
    each!(
        "route table",
        describe_route_tables.filters,
        route_tables,
        route_table_id
    );
    each!(
        "security group",
        describe_security_groups.filters,
        security_groups,
        group_id
    );
    each!(
        "NAT gateway",
        describe_nat_gateways.filter,
        nat_gateways,
        nat_gateway_id,
        |n: &aws_sdk_ec2::types::NatGateway| state_alive(n.state().map(|s| s.as_str()))
    );
    each!(
        "VPC endpoint",
        describe_vpc_endpoints.filters,
        vpc_endpoints,
        vpc_endpoint_id,
        |e: &aws_sdk_ec2::types::VpcEndpoint| state_alive(e.state().map(|s| s.as_str()))
    );
    each!(
        "key pair",
        describe_key_pairs.filters,
        key_pairs,
        key_pair_id
    );
    each!(
        "elastic IP",
        describe_addresses.filters,
        addresses,
        allocation_id
    );
    let ours = |tags: &[aws_sdk_iam::types::Tag]| {
        tags.iter()
            .any(|t| t.key() == "tik:lineage" && t.value() == lineage)
    };
    let iam_address = |tags: &[aws_sdk_iam::types::Tag]| {
        tags.iter()
            .find(|t| t.key() == "tik:address")
            .map(|t| t.value().to_string())
            .unwrap_or_default()
    };
    let iam = aws_sdk_iam::Client::new(&conf);
    let details = iam
        .get_account_authorization_details()
        .send()
        .await
        .unwrap();
    for r in details.role_detail_list().iter().filter(|r| ours(r.tags())) {
        live.push((
            "IAM role".into(),
            r.role_id().unwrap_or_default().into(),
            iam_address(r.tags()),
        ));
    }
    // Instance profiles, with a role or not.
    let profiles = iam.list_instance_profiles().send().await.unwrap();
    for ip in profiles
        .instance_profiles()
        .iter()
        .filter(|ip| ours(ip.tags()))
    {
        live.push((
            "instance profile".into(),
            ip.instance_profile_id().into(),
            iam_address(ip.tags()),
        ));
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        let name = b.name().unwrap_or_default();
        let Ok(tags) = s3.get_bucket_tagging().bucket(name).send().await else {
            continue;
        };
        let tag = |k: &str| {
            tags.tag_set()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value().to_string())
        };
        if tag("tik:lineage").as_deref() == Some(lineage) {
            live.push((
                "bucket".into(),
                name.into(),
                tag("tik:address").unwrap_or_default(),
            ));
        }
    }
    live
}

/// The ids and addresses the state knows, and the ids of the orphans a plan reports.
fn known_to_tik(p: &Project, endpoint: &str, context: &str) -> (String, BTreeSet<String>) {
    let shown: serde_json::Value =
        serde_json::from_str(&aws_run(p, endpoint, &["show", "--json"], context).stdout).unwrap();
    let mut known = BTreeSet::new();
    for r in shown["resources"].as_array().unwrap() {
        known.insert(r["address"].as_str().unwrap().to_string());
        for k in ["id", "allocation_id"] {
            if let Some(v) = r["attributes"][k].as_str() {
                known.insert(v.to_string());
            }
        }
    }
    let plan: serde_json::Value =
        serde_json::from_str(&aws_run(p, endpoint, &["plan", "--json"], context).stdout).unwrap();
    for o in plan["orphans"].as_array().unwrap() {
        if let Some(id) = o["attributes"]["id"].as_str() {
            known.insert(id.to_string());
        }
    }
    (shown["lineage"].as_str().unwrap().to_string(), known)
}

const AWS_PHASES: [Phase; 3] = [
    Phase {
        name: "first apply",
        setup: &[],
        command: &["apply", "--auto-approve"],
        wants: Some(&[]),
    },
    Phase {
        name: "change",
        setup: &[&["apply", "--auto-approve"]],
        command: &["apply", "--auto-approve", "--var", "workers=2"],
        wants: Some(&["--var", "workers=2"]),
    },
    Phase {
        name: "destroy",
        setup: &[&["apply", "--auto-approve"]],
        command: &["destroy", "--auto-approve"],
        wants: None,
    },
];

fn reset(moto: &Moto) {
    use std::io::{Read, Write};
    let addr = moto.endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Runs tik (the command `tik` makes for an endpoint) through a proxy in front of moto
/// that kills it at the `at`-th write call: once moto did it, or (`before`) as it
/// arrives. Returns how tik ended, and the proxy, which saw the writes.
fn killed_through(
    p: &Project,
    moto: &Moto,
    at: usize,
    before: bool,
    tik: impl FnOnce(&str) -> Command,
) -> (std::process::ExitStatus, Faults) {
    let pid_file = p.path().join("tik.pid");
    std::fs::write(&pid_file, "").unwrap();
    let proxy = Faults::killing(moto, at, &pid_file, before);
    let mut child = tik(&proxy.endpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    (child.wait().unwrap(), proxy)
}

/// One AWS kill point: tik dies right after moto has done its `at`-th write call.
/// Then the world it wants is applied (when `converge`), or it is destroyed at once.
fn aws_kill_at(
    moto: &Moto,
    phase: &Phase,
    at: usize,
    write: &str,
    converge: bool,
) -> Result<(), String> {
    reset(moto);
    let p = Project::new(&[("main.tik.hcl", AWS_CONFIG)]);
    let then = if converge { "applied" } else { "destroyed" };
    let context = format!(
        "{} killed after write #{at} ({write}), then {then}",
        phase.name
    );
    let direct = moto.endpoint.as_str();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for setup in phase.setup {
            aws_run(&p, direct, setup, &context);
        }
        let (status, proxy) = killed_through(&p, moto, at, false, |endpoint| {
            aws_command(&p, endpoint, phase.command)
        });
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "{context}: tik was not killed there ({status}); the proxy saw {:?}",
            proxy.writes()
        );
        // Everything alive is in state, or reported as an orphan.
        let (lineage, known) = known_to_tik(&p, direct, &context);
        let unknown: Vec<_> = block_on(live_objects(direct, &lineage))
            .into_iter()
            .filter(|(_, id, address)| !known.contains(id) && !known.contains(address))
            .collect();
        assert!(
            unknown.is_empty(),
            "{context}: tik knows nothing of {unknown:?}"
        );
        if let Some(vars) = phase.wants.filter(|_| converge) {
            let apply: Vec<&str> = ["apply", "--auto-approve"]
                .iter()
                .chain(vars)
                .copied()
                .collect();
            aws_run(&p, direct, &apply, &context);
            let plan: Vec<&str> = ["plan", "--json"].iter().chain(vars).copied().collect();
            let plan: serde_json::Value =
                serde_json::from_str(&aws_run(&p, direct, &plan, &context).stdout).unwrap();
            assert!(
                plan["changes"].as_array().unwrap().is_empty()
                    && plan["orphans"].as_array().unwrap().is_empty()
                    && plan["drift"].as_array().unwrap().is_empty(),
                "{context}: the plan after the next apply is not empty: {plan:#}"
            );
        }
        aws_run(
            &p,
            direct,
            &["destroy", "--auto-approve", "--destroy-orphans"],
            &context,
        );
        let left = block_on(live_objects(direct, &lineage));
        assert!(left.is_empty(), "{context}: destroy left {left:?}");
    }));
    outcome.map_err(|e| failure(e, context))
}

/// tik killed right after each AWS write call of an apply, a change and a destroy
/// (through a proxy in front of moto that kills it once moto has answered): nothing
/// it made is lost, the next run converges, and destroy leaves nothing tagged.
#[test]
fn a_kill_after_any_aws_write_loses_nothing() {
    let moto = Moto::start();
    let mut covered = 0;
    let mut failures = Vec::new();
    for phase in &AWS_PHASES {
        // The phase's write calls, counted by a proxy that kills nothing.
        reset(&moto);
        let p = Project::new(&[("main.tik.hcl", AWS_CONFIG)]);
        for setup in phase.setup {
            aws_run(&p, &moto.endpoint, setup, phase.name);
        }
        let counter = Faults::start(&moto, "[]");
        aws_run(&p, &counter.endpoint, phase.command, phase.name);
        let writes = counter.writes();
        assert!(!writes.is_empty(), "{}: no write went through", phase.name);
        if phase.wants.is_some() {
            // What the checks look for is seen: each kind the configuration makes.
            let lineage = known_to_tik(&p, &moto.endpoint, phase.name).0;
            let kinds: BTreeSet<String> = block_on(live_objects(&moto.endpoint, &lineage))
                .into_iter()
                .map(|(what, _, _)| what)
                .collect();
            assert_eq!(
                kinds.into_iter().collect::<Vec<_>>(),
                [
                    "IAM role",
                    "NAT gateway",
                    "VPC endpoint",
                    "bucket",
                    "elastic IP",
                    "instance",
                    "instance profile",
                    "internet gateway",
                    "key pair",
                    "route table",
                    "security group",
                    "subnet",
                    "vpc"
                ],
                "{}",
                phase.name
            );
        }
        eprintln!("{}: {} AWS writes: {writes:?}", phase.name, writes.len());
        drop(counter);
        // After a killed apply, a user may apply again or destroy at once.
        let recoveries: &[bool] = if phase.wants.is_some() {
            &[true, false]
        } else {
            &[false]
        };
        for (i, write) in writes.iter().enumerate() {
            for &converge in recoveries {
                covered += 1;
                if let Err(e) = aws_kill_at(&moto, phase, i + 1, write, converge) {
                    failures.push(e);
                }
            }
        }
    }
    report("AWS kill points", covered, &failures);
}

/// The local harness's configuration with its state in S3 (moto).
fn s3_config(key: &str) -> String {
    format!(
        "tik {{\n  backend \"s3\" {{\n    bucket = \"kill-state\"\n    key    = \"{key}\"\n    region = \"us-east-1\"\n  }}\n}}\n{CONFIG}"
    )
}

/// tik with its S3 state reached at `endpoint`, a 2 s lease, and time to take over
/// the lease a killed run left.
fn s3_command(p: &Project, endpoint: &str, args: &[&str]) -> Command {
    let mut c = p.command(args);
    c.args(["--lock-timeout", "20s"])
        .env("TIK_BACKEND_ENDPOINT", endpoint)
        .env("TIK_BACKEND_LOCK_LEASE", "2s");
    c
}

fn s3_run(p: &Project, endpoint: &str, args: &[&str], code: i32, context: &str) -> String {
    let out = s3_command(p, endpoint, args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{context}: tik {}\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One S3 kill point: tik dies right after S3 did its `at`-th write of the state (a
/// journal object, the lock, the backup, the snapshot, a delete), or (`before`) as it
/// sends it, so that S3 never gets it. Returns whether it was killed there (runs
/// differ in how many writes their rounds take).
fn s3_kill_at(
    moto: &Moto,
    phase: &Phase,
    at: usize,
    before: bool,
    key: &str,
) -> Result<bool, String> {
    let p = Project::new(&[("main.tik.hcl", &s3_config(key))]);
    let when = if before { "as it sent" } else { "after" };
    let context = format!("{} with S3 state killed {when} S3 write #{at}", phase.name);
    let direct = moto.endpoint.as_str();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for setup in phase.setup {
            s3_run(&p, direct, setup, 0, &context);
        }
        let (status, _proxy) = killed_through(&p, moto, at, before, |endpoint| {
            s3_command(&p, endpoint, phase.command)
        });
        use std::os::unix::process::ExitStatusExt;
        let killed = status.signal() == Some(9);
        assert!(
            killed || status.success(),
            "{context}: tik failed ({status})"
        );
        // The next command takes over the dead run's lease and knows all that exists.
        let state: BTreeSet<String> = s3_run(&p, direct, &["state", "list"], 0, &context)
            .lines()
            .map(str::to_string)
            .collect();
        let unknown: Vec<_> = what_exists(&p).difference(&state).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{context}: {unknown:?} exist but the state does not know them\nstate: {state:?}"
        );
        match phase.wants {
            Some(vars) => {
                for step in [
                    &["apply", "--auto-approve"][..],
                    &["plan", "--detailed-exitcode"],
                    &["destroy", "--auto-approve"],
                ] {
                    let args = with(step, vars);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    s3_run(&p, direct, &args, 0, &context);
                }
            }
            None => {
                s3_run(&p, direct, &["destroy", "--auto-approve"], 0, &context);
            }
        }
        let left = what_exists(&p);
        assert!(left.is_empty(), "{context}: destroy left {left:?}");
        assert!(
            s3_run(&p, direct, &["state", "list"], 0, &context)
                .trim()
                .is_empty(),
            "{context}: destroy left records"
        );
        killed
    }));
    if outcome.is_err() {
        let _ = s3_command(&p, direct, &["destroy", "--auto-approve"]).output();
    }
    outcome.map_err(|e| failure(e, context))
}

/// tik killed right after each write of its state to S3, and as it sends each
/// (through the proxy in front of moto), in a first apply, a change and a destroy: nothing it made is lost, the next
/// run takes over the dead run's lease and converges, and destroy leaves nothing.
#[test]
fn a_kill_after_any_write_of_s3_state_loses_nothing() {
    let moto = Moto::start();
    block_on(async {
        moto.s3()
            .await
            .create_bucket()
            .bucket("kill-state")
            .send()
            .await
            .unwrap();
    });
    let mut covered = 0;
    let mut unreached = 0;
    let mut failures = Vec::new();
    let mut keys = 0;
    let mut key = || {
        keys += 1;
        format!("k/{keys}.tikstate")
    };
    for phase in &PHASES {
        let p = Project::new(&[("main.tik.hcl", &s3_config(&key()))]);
        for setup in phase.setup {
            s3_run(&p, &moto.endpoint, setup, 0, phase.name);
        }
        let counter = Faults::start(&moto, "[]");
        s3_run(&p, &counter.endpoint, phase.command, 0, phase.name);
        let writes = counter.writes();
        drop(counter);
        let _ = s3_command(&p, &moto.endpoint, &["destroy", "--auto-approve"]).output();
        assert!(
            writes.len() >= 4,
            "{}: only {writes:?} went to S3",
            phase.name
        );
        let mut killed = 0;
        for at in 1..=writes.len() {
            for before in [false, true] {
                covered += 1;
                match s3_kill_at(&moto, phase, at, before, &key()) {
                    Ok(true) => killed += 1,
                    Ok(false) => unreached += 1,
                    Err(e) => failures.push(e),
                }
            }
        }
        assert!(
            killed * 5 >= writes.len() * 2 * 4,
            "{}: tik was killed after only {killed} of {} S3 writes ({writes:?})",
            phase.name,
            writes.len()
        );
    }
    eprintln!("S3 kill points not reached (that run made fewer writes): {unreached}");
    report("S3 kill points", covered, &failures);
}
