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

mod common;
use common::Project;
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
        "the kill-point tests inject kills with strace, and {STRACE} is missing: install it with\n  apt-get install strace\n(.ci/run does this)"
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
fn kill_at(phase: &Phase, syscall: &str, when: usize, scratch: &Path) -> Result<(), String> {
    let p = Project::new(&[("main.tik.hcl", CONFIG)]);
    let context = format!("{} killed at {syscall} #{when}", phase.name);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for setup in phase.setup {
            p.ok(setup, 0);
        }
        let log = scratch.join("kill.log");
        assert!(
            traced(&p, phase.command, &log, Some((syscall, when))),
            "{context}: tik was never killed there: the run has fewer write points than its trace listed"
        );
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
    }));
    if outcome.is_err() {
        // Whatever the failed check left: the project's claims and processes.
        let _ = p.tik(&["destroy", "--auto-approve"]);
    }
    outcome.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or(context)
    })
}

#[test]
fn a_kill_at_any_write_of_the_state_loses_nothing() {
    need_strace();
    let scratch = tempfile::tempdir().unwrap();
    let mut covered = 0;
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
        for (syscall, when) in points {
            covered += 1;
            if let Err(e) = kill_at(phase, syscall, when, scratch.path()) {
                failures.push(e);
            }
        }
    }
    eprintln!(
        "kill points: {covered} covered, {} passed",
        covered - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {covered} kill points failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
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
