//! Runtimes on a local cluster, as a user runs them: node steps over a real sshd per
//! node (Debian's openssh-server), services that really answer, reruns of only what
//! changed, and destroy stopping them.

use crate::common::{http_get, interrupt, need_sshd, Cleanup, Project};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The test's own runtime: a server on the head and one on each worker, each
/// answering with a greeting its configure step wrote, and its pid.
const RUNTIME: &str = r#"
runtime "echo" {
  param "port" { default = 7700 }
  param "head_greeting" { default = "hello from the head" }
  param "worker_greeting" { default = "hello from a worker" }

  service "primary" {
    on        = "head"
    install   = "mkdir -p \"$TIK_HOME/echo\""
    configure = "printf '%s\\n' \"$TIK_PARAM_HEAD_GREETING\" >\"$TIK_HOME/echo/index.html\""
    start     = file("start.sh")
    stop      = file("stop.sh")
    health    = file("health.sh")
    health_timeout = 5
  }

  service "replica" {
    on        = "workers"
    install   = "mkdir -p \"$TIK_HOME/echo\""
    configure = "printf '%s\\n' \"$TIK_PARAM_WORKER_GREETING\" >\"$TIK_HOME/echo/index.html\""
    start     = file("start.sh")
    stop      = file("stop.sh")
    health    = file("health.sh")
    health_timeout = 5
  }

  endpoint "primary" { value = "http://${cluster.head.private_ip}:${param.port}/" }
  endpoint "replicas" {
    value = join(" ", [for n in cluster.nodes : "http://${n.private_ip}:${param.port}/" if n.role == "worker"])
  }
}
"#;

const START: &str = r#"nohup python3 -m http.server "$TIK_PARAM_PORT" --bind "$TIK_NODE_IP" --directory "$TIK_HOME/echo" >"$TIK_HOME/echo.log" 2>&1 &
echo $! >"$TIK_HOME/echo.pid"
"#;
const STOP: &str = r#"if [ -f "$TIK_HOME/echo.pid" ]; then kill "$(cat "$TIK_HOME/echo.pid")" 2>/dev/null; rm -f "$TIK_HOME/echo.pid"; fi
"#;
const HEALTH: &str = r#"python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://$TIK_NODE_IP:$TIK_PARAM_PORT/"
"#;

fn config(transport: &str, worker_greeting: &str) -> String {
    format!(
        r#"workspace "lab" {{
  provider  = "local"
  transport = "{transport}"
}}

cluster "c" {{
  workspace = workspace.lab
  head {{}}
  workers "w" {{
    min = 3
    max = 3
  }}
  runtime "echo" {{
    worker_greeting = "{worker_greeting}"
  }}
}}

output "primary" {{
  value = cluster.c.runtime.echo.endpoint.primary
}}

output "ips" {{
  value = concat([cluster.c.node.head.private_ip], [for w in cluster.c.node.worker["w"] : w.private_ip])
}}
"#
    )
}

/// The nodes of `config`'s cluster, by name.
const NODES: [&str; 4] = ["head", "worker-w-0", "worker-w-1", "worker-w-2"];

fn project(transport: &str) -> Cleanup {
    Cleanup(Project::new(&[
        ("main.tik.hcl", &config(transport, "hello from a worker")),
        ("runtimes/echo/runtime.tik.hcl", RUNTIME),
        ("runtimes/echo/start.sh", START),
        ("runtimes/echo/stop.sh", STOP),
        ("runtimes/echo/health.sh", HEALTH),
    ]))
}

/// The body of GET / on a node's service, or None when nothing answers.
fn get(ip: &str) -> Option<String> {
    http_get(&format!("{ip}:7700"))
}

fn ips(p: &Project) -> Vec<String> {
    let out = p.ok(&["output", "--json", "ips"], 0).stdout;
    serde_json::from_str(&out).expect("ips are a JSON list")
}

/// Applies the project, checks that the head and the 3 workers greet as they should,
/// and returns the nodes' addresses (the head's first).
fn apply_and_greet(p: &Project) -> Vec<String> {
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("Apply complete!"), "{}", r.out());
    let ips = ips(p);
    assert_eq!(ips.len(), 4);
    assert_eq!(
        get(&ips[0]).as_deref(),
        Some("hello from the head"),
        "{}",
        r.out()
    );
    for ip in &ips[1..] {
        assert_eq!(get(ip).as_deref(), Some("hello from a worker"));
    }
    ips
}

fn pid(p: &Project, node: &str) -> String {
    p.read(&format!(
        ".tik/local/workspaces/lab/clusters/c/{node}/home/echo.pid"
    ))
}

#[test]
fn a_runtime_runs_over_ssh_on_every_node_and_reruns_only_what_changed() {
    need_sshd();
    let p = project("ssh");
    let ips = apply_and_greet(&p);
    let primary = p.ok(&["output", "primary"], 0).stdout;
    assert_eq!(primary.trim(), format!("\"http://{}:7700/\"", ips[0]));
    // Host keys are recorded at first contact.
    let state = p.read("tik.tikstate");
    assert!(
        state.contains("\"host_key\": \"ssh-ed25519 "),
        "no host key recorded"
    );
    // Each node's log has its steps.
    let log = p.read(".tik/logs/c/worker-w-0.log");
    assert!(
        log.contains("runtime.echo.service.replica.configure"),
        "{log}"
    );

    // `tik status` checks each service's health now, over the recorded connections.
    let status = p.ok(&["status", "c"], 0).stdout;
    assert_eq!(status.matches("healthy").count(), 4, "{status}");
    assert!(
        status.contains(&format!("worker-w-2  {}", ips[3])),
        "{status}"
    );
    assert!(status.contains("4 of 4 services well."), "{status}");
    // `tik exec` runs on every node, in its home, with its name; one node's exit
    // code is the command's.
    let all = p.ok(
        &[
            "exec",
            "c",
            "--",
            "echo",
            "$TIK_NODE_NAME",
            "in",
            "$(basename $(dirname $PWD))",
        ],
        0,
    );
    for name in NODES {
        assert!(
            all.stdout.contains(&format!("| {name} in {name}\n")),
            "{}",
            all.out()
        );
    }
    let one = p.ok(
        &[
            "exec",
            "c",
            "--node",
            "worker[\"w\"][1]",
            "--",
            "echo on $TIK_NODE_NAME; exit 7",
        ],
        7,
    );
    assert_eq!(one.stdout, "on worker-w-1\n", "{}", one.out());
    let wrong = p.ok(&["exec", "c", "--node", "worker-w-9", "--", "true"], 1);
    assert!(
        wrong.stderr.contains("no node \"worker-w-9\""),
        "{}",
        wrong.out()
    );
    // `tik ssh` logs in with the recorded host key, nothing from ~/.ssh.
    let ssh = p.ok(
        &["ssh", "c", "worker-w-0", "--", "cat", "/proc/$PPID/cmdline"],
        0,
    );
    assert!(ssh.stdout.contains("sshd"), "{}", ssh.out());
    // A service that died shows, with the command that restarts it; apply finds it
    // and restarts it alone.
    let _ = std::process::Command::new("kill")
        .arg(pid(&p, "worker-w-0").trim())
        .status();
    let sick = p.ok(&["status"], 2).stdout;
    assert!(sick.contains("unhealthy"), "{sick}");
    assert!(
        sick.contains("To restart what is not healthy: tik apply"),
        "{sick}"
    );
    let restarted = p.ok(&["apply", "--auto-approve", "--verbose"], 0);
    assert!(
        restarted.stdout.contains(
            "cluster.c.node.worker[\"w\"][0].runtime.echo.service.replica.start will run again"
        ) && restarted.stdout.contains("Resources: 0 added, 1 changed"),
        "{}",
        restarted.out()
    );
    // --replace restarts a healthy one too, and an install runs again with nothing to
    // undo first.
    let start = "cluster.c.node.worker[\"w\"][0].runtime.echo.service.replica.start";
    let install = "cluster.c.node.head.runtime.echo.service.primary.install";
    let plan = p
        .ok(
            &[
                "plan",
                "--verbose",
                "--replace",
                start,
                "--replace",
                install,
            ],
            0,
        )
        .stdout;
    assert!(
        plan.contains(&format!(
            "# {start} will run again (its service stopped first)\n"
        )) && plan.contains(&format!("# {install} will run again\n")),
        "{plan}"
    );
    p.ok(&["apply", "--auto-approve", "--replace", start], 0);
    p.ok(&["status"], 0);

    // Nothing changed: nothing runs.
    let again = p.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(again.stdout.contains("No changes"), "{}", again.out());

    // A param only the workers' service uses: one configure rerun and one restart per
    // worker, nothing on the head.
    let head_pid = pid(&p, "head");
    let worker_pid = pid(&p, "worker-w-1");
    p.write("main.tik.hcl", &config("ssh", "hi from a worker"));
    let plan = p.ok(&["plan", "--verbose"], 0).stdout;
    let reruns: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("will run again"))
        .collect();
    assert_eq!(reruns.len(), 6, "{plan}");
    assert_eq!(
        reruns.iter().filter(|l| l.contains(".configure ")).count(),
        3,
        "{plan}"
    );
    assert!(reruns.iter().all(|l| l.contains("node.worker")), "{plan}");
    assert!(plan.contains("(a param it uses changed)"), "{plan}");
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(get(&ips[2]).as_deref(), Some("hi from a worker"));
    assert_eq!(get(&ips[0]).as_deref(), Some("hello from the head"));
    assert_eq!(
        pid(&p, "head"),
        head_pid,
        "the head's service was not restarted"
    );
    assert_ne!(
        pid(&p, "worker-w-1"),
        worker_pid,
        "the worker's service restarted"
    );

    // A node whose host key changes is refused, with what to do.
    in_node_dir(
        &p,
        "worker-w-2",
        &format!("{STOP_SSHD} && {NEW_HOST_KEY} && {RESTART_SSHD}"),
    );
    p.write("main.tik.hcl", &config("ssh", "hey from a worker"));
    let refused = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        refused.out().contains("HostKeyMismatch")
            && refused
                .out()
                .contains("tik apply --replace 'cluster.c.node.worker[\"w\"][2].session'"),
        "{}",
        refused.out()
    );
    // The other workers went ahead.
    assert_eq!(get(&ips[1]).as_deref(), Some("hey from a worker"));
    // Replacing the session, as the message says, trusts the new key.
    p.ok(
        &[
            "apply",
            "--auto-approve",
            "--replace",
            "cluster.c.node.worker[\"w\"][2].session",
        ],
        0,
    );
    assert_eq!(get(&ips[3]).as_deref(), Some("hey from a worker"));

    // A node tik replaces is a new machine: contacted anew, its steps run again.
    let replaced = p.ok(
        &[
            "apply",
            "--auto-approve",
            "--replace",
            "cluster.c.node.worker[\"w\"][0]",
        ],
        0,
    );
    assert!(
        replaced.stdout.contains("Apply complete!"),
        "{}",
        replaced.out()
    );
    let ips = self::ips(&p);
    assert_eq!(
        get(&ips[1]).as_deref(),
        Some("hey from a worker"),
        "{}",
        replaced.out()
    );

    // Destroy stops every service and every sshd.
    p.ok(&["destroy", "--auto-approve"], 0);
    for ip in &ips {
        assert_eq!(get(ip), None, "{ip} still answers");
        assert!(
            TcpStream::connect((ip.as_str(), 2222)).is_err(),
            "sshd on {ip} still runs"
        );
    }
}

/// How many times a node's sshd has logged `line` so far.
fn sshd_logged(p: &Project, node: &str, line: &str) -> usize {
    p.read(&format!(
        ".tik/local/workspaces/lab/clusters/c/{node}/sshd.log"
    ))
    .matches(line)
    .count()
}

/// How many logins a node's sshd has let in so far.
fn logins(p: &Project, node: &str) -> usize {
    sshd_logged(p, node, "Accepted publickey")
}

/// How many commands a node's sshd has started so far (it logs at VERBOSE).
fn sessions(p: &Project, node: &str) -> usize {
    sshd_logged(p, node, "Starting session: command")
}

#[test]
fn each_tik_run_starts_one_command_per_node_whatever_it_runs_there() {
    need_sshd();
    let p = project("ssh");
    // Install, configure, start and health checks: one command per node, whose
    // shell's start-up files (a .bashrc with conda or pyenv) run once.
    apply_and_greet(&p);
    for node in NODES {
        assert_eq!(sessions(&p, node), 1, "{node}");
    }
    // A health check on each, then a command with output, stderr and exit code.
    let status = p.ok(&["status", "c"], 0).stdout;
    assert!(status.contains("4 of 4 services well."), "{status}");
    let exec = p.ok(&["exec", "c", "--", "echo out; echo err >&2; exit 3"], 1);
    assert!(
        exec.stderr
            .contains("The command failed on head (exit 3), worker-w-0 (exit 3)"),
        "{}",
        exec.out()
    );
    for node in NODES {
        assert!(
            exec.stdout.contains(&format!("{node:<10} | out\n")),
            "{}",
            exec.out()
        );
        assert!(
            exec.stderr.contains(&format!("{node:<10} | err\n")),
            "{}",
            exec.out()
        );
        assert_eq!(sessions(&p, node), 3, "{node}");
    }
    // A change that reruns steps on the workers: one more command on each.
    p.write("main.tik.hcl", &config("ssh", "hi from a worker"));
    p.ok(&["apply", "--auto-approve"], 0);
    for node in NODES {
        assert_eq!(sessions(&p, node), 4, "{node}");
    }
    p.ok(&["destroy", "--auto-approve"], 0);
}

/// Runs `script` in a node's directory (where its sshd's files are).
fn in_node_dir(p: &Project, node: &str, script: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(p.file(&format!(".tik/local/workspaces/lab/clusters/c/{node}")))
        .status()
        .expect("sh runs");
    assert!(status.success(), "{script}");
}

/// Stops a node's sshd and waits until it is gone (its port free), for at most 5 s.
const STOP_SSHD: &str = "pid=$(cat sshd.pid) && kill \"$pid\" && i=0 && while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done";
/// Starts a node's sshd again and waits until it has written its pid file (it does
/// so once it listens), for at most 5 s: the next stop must find the new one.
const RESTART_SSHD: &str = "rm -f sshd.pid && /usr/sbin/sshd -f \"$PWD/sshd_config\" -E \"$PWD/sshd.log\" && i=0 && while [ ! -s sshd.pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done && [ -s sshd.pid ]";
/// A new host key for a node, as a rebuilt machine at the same address has.
const NEW_HOST_KEY: &str =
    "rm -f host_ed25519 host_ed25519.pub && ssh-keygen -q -t ed25519 -N '' -f host_ed25519";

#[test]
fn workers_without_a_public_address_are_reached_through_the_head() {
    need_sshd();
    let p = project("ssh");
    p.write(
        "main.tik.hcl",
        &config("ssh", "hello from a worker").replace(
            "transport = \"ssh\"\n",
            "transport = \"ssh\"\n  network { mode = \"public-head\" }\n",
        ),
    );
    let ips = apply_and_greet(&p);
    // The head logged in tik once for itself and once for each worker's connection.
    assert_eq!(logins(&p, "head"), 4);
    let state: serde_json::Value =
        serde_json::from_str(&p.read("tik.tikstate")).expect("state is JSON");
    let resources = state["resources"].as_array().unwrap();
    let attrs = |address: &str| {
        resources
            .iter()
            .find(|r| r["address"] == address)
            .map(|r| r["attributes"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        attrs("cluster.c.node.worker[\"w\"][0]")["public_ip"],
        serde_json::Value::Null
    );
    assert_eq!(attrs("cluster.c.node.head")["public_ip"], ips[0].as_str());
    // The worker's session records the head's host key, as the head's session did.
    assert_eq!(
        attrs("cluster.c.node.worker[\"w\"][0].session")["jump_host_key"],
        attrs("cluster.c.node.head.session")["host_key"]
    );
    let status = p.ok(&["status", "c"], 0).stdout;
    assert!(
        status.contains(&format!(
            "worker-w-1  {} (through the head, {})",
            ips[2], ips[0]
        )),
        "{status}"
    );
    assert!(status.contains("4 of 4 services well."), "{status}");

    // A command on a worker is one more login on the head.
    let before = logins(&p, "head");
    let one = p.ok(
        &[
            "exec",
            "c",
            "--node",
            "worker-w-1",
            "--",
            "echo $TIK_NODE_NAME",
        ],
        0,
    );
    assert_eq!(one.stdout, "worker-w-1\n", "{}", one.out());
    assert_eq!(logins(&p, "head"), before + 1);
    // So is `tik ssh` into a worker.
    let ssh = p.ok(
        &["ssh", "c", "worker-w-0", "--", "echo", "$SSH_CONNECTION"],
        0,
    );
    assert!(
        ssh.stdout.contains(&format!(" {} 2222", ips[1])),
        "{}",
        ssh.out()
    );
    assert_eq!(logins(&p, "head"), before + 2);

    // Without the head, no worker is reached, and the error says through what.
    in_node_dir(&p, "head", STOP_SSHD);
    let cut = p.ok(&["exec", "c", "--node", "worker-w-2", "--", "true"], 1);
    assert!(
        cut.stderr.contains(&format!(
            "@{}:2222 through {}:2222: ssh: connect to host {} port 2222: Connection refused",
            ips[3], ips[0], ips[0]
        )),
        "{}",
        cut.out()
    );
    in_node_dir(&p, "head", RESTART_SSHD);
    // The way to a worker is checked like the worker itself: a head showing another
    // host key is refused, with what to do.
    in_node_dir(
        &p,
        "head",
        &format!("{STOP_SSHD} && {NEW_HOST_KEY} && {RESTART_SSHD}"),
    );
    let refused = p.ok(&["exec", "c", "--node", "worker-w-0", "--", "true"], 1);
    assert!(
        refused.stderr.contains(&format!(
            "{}:2222, the head that {} is reached through, shows a host key other than the one its session recorded",
            ips[0], ips[1]
        )) && refused
            .stderr
            .contains("tik apply --replace 'cluster.c.node.head.session'"),
        "{}",
        refused.out()
    );
    // Replacing the head's session reruns the head's steps (another host key may be
    // another machine) and only records the workers' new way in: nothing on them
    // runs, and their services keep running.
    let replace = ["--replace", "cluster.c.node.head.session"];
    let plan = p.ok(&[&["plan", "--verbose"][..], &replace[..]].concat(), 0);
    assert!(
        plan.stdout.contains(
            "# cluster.c.node.head.runtime.echo.service.primary.start will run again\n  \
             # (its node's session is new: it runs again only if the node shows another host key)"
        ),
        "{}",
        plan.out()
    );
    assert!(
        plan.stdout.contains(
            "# cluster.c.node.worker[\"w\"][2].runtime.echo.service.replica.start will have its record updated; nothing runs\n  \
             # (the way to reach its node changed)"
        ),
        "{}",
        plan.out()
    );
    let worker_pids: Vec<String> = (0..3).map(|i| pid(&p, &format!("worker-w-{i}"))).collect();
    let head_pid = pid(&p, "head");
    let replaced = p.ok(
        &[&["apply", "--auto-approve"][..], &replace[..]].concat(),
        0,
    );
    assert!(
        replaced.stdout.contains("Apply complete!"),
        "{}",
        replaced.out()
    );
    let after: Vec<String> = (0..3).map(|i| pid(&p, &format!("worker-w-{i}"))).collect();
    assert_eq!(after, worker_pids, "the workers' services were left alone");
    assert_ne!(
        pid(&p, "head"),
        head_pid,
        "the head's service started again"
    );
    p.ok(&["status"], 0);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // Destroy stops the workers' services through the head before the head goes.
    p.ok(&["destroy", "--auto-approve"], 0);
    for ip in &ips {
        assert_eq!(get(ip), None, "{ip} still answers");
    }
}

/// A cluster without runtimes has no sessions to record the way to its workers:
/// `tik ssh` still goes through the head (trusting its key on first use, into a file
/// of its own).
#[test]
fn ssh_into_a_worker_behind_the_head_without_runtimes_goes_through_the_head() {
    need_sshd();
    let p = Cleanup(Project::new(&[(
        "main.tik.hcl",
        r#"workspace "lab" {
  provider  = "local"
  transport = "ssh"
  network { mode = "public-head" }
}

cluster "c" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 1
    max = 1
  }
}
"#,
    )]));
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(logins(&p, "head"), 0);
    let ssh = p.ok(
        &["ssh", "c", "worker-w-0", "--", "echo", "$SSH_CONNECTION"],
        0,
    );
    assert!(ssh.stdout.contains(" 2222"), "{}", ssh.out());
    assert_eq!(
        logins(&p, "head"),
        1,
        "the way to the worker is through the head"
    );
    p.ok(&["destroy", "--auto-approve"], 0);
}

#[test]
fn the_default_transport_runs_steps_without_sshd() {
    let p = project("local");
    // An endpoint that reads a sensitive param.
    p.write(
        "runtimes/echo/runtime.tik.hcl",
        &RUNTIME.replace(
            "  endpoint \"primary\"",
            "  param \"token\" {\n    default   = \"tok-s3cret\"\n    sensitive = true\n  }\n  endpoint \"admin\" { value = \"http://${cluster.head.private_ip}:7700/?token=${param.token}\" }\n  endpoint \"primary\"",
        ),
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    let ips = ips(&p);
    for ip in &ips[1..] {
        assert_eq!(
            get(ip).as_deref(),
            Some("hello from a worker"),
            "{}",
            r.out()
        );
    }
    // tik status lists the runtime's endpoints as the apply made them, with the
    // nodes' addresses; a sensitive one by name only.
    let status = p.ok(&["status"], 0).stdout;
    let line = |name: &str| {
        status
            .lines()
            .skip_while(|l| *l != "  endpoints")
            .find(|l| l.trim_start().starts_with(&format!("echo.{name} ")))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("primary"),
        Some(format!("http://{}:7700/", ips[0])),
        "{status}"
    );
    let replicas: Vec<String> = ips[1..]
        .iter()
        .map(|ip| format!("http://{ip}:7700/"))
        .collect();
    assert_eq!(line("replicas"), Some(replicas.join(" ")), "{status}");
    assert!(
        line("admin").is_some_and(|l| l.starts_with("(sensitive")),
        "{status}"
    );
    assert!(!status.contains("tok-s3cret"), "{status}");
    let json = p.ok(&["status", "--json"], 0).stdout;
    let json: serde_json::Value = serde_json::from_str(&json).expect("status --json");
    let endpoints = json["endpoints"].as_array().expect("endpoints");
    let primary = endpoints.iter().find(|e| e["name"] == "primary").unwrap();
    assert_eq!(primary["cluster"], "c");
    assert_eq!(primary["runtime"], "echo");
    assert_eq!(
        primary["value"],
        format!("http://{}:7700/", ips[0]).as_str()
    );
    let admin = endpoints.iter().find(|e| e["name"] == "admin").unwrap();
    assert_eq!(admin["sensitive"], true);
    assert_eq!(admin["value"], serde_json::Value::Null);
    assert!(
        !p.read("tik.tikstate").contains("token=tok-s3cret"),
        "the endpoint is not recorded"
    );
    // A failing step stops that node's later steps only; the next apply resumes there.
    p.write("runtimes/echo/health.sh", "exit 1\n");
    p.write("main.tik.hcl", &config("local", "changed"));
    let failed = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        failed.out().contains("health check did not pass"),
        "{}",
        failed.out()
    );
    // Status shows which step failed, on which node.
    let status = p.ok(&["status", "--json"], 2).stdout;
    let status: serde_json::Value = serde_json::from_str(&status).expect("status --json");
    let failed_steps: Vec<&str> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["steps"].as_array().unwrap())
        .filter(|s| s["outcome"] == "failed")
        .map(|s| s["address"].as_str().unwrap())
        .collect();
    assert!(!failed_steps.is_empty(), "{status}");
    assert!(
        failed_steps.iter().all(|a| a.ends_with(".start")),
        "{status}"
    );
    p.write("runtimes/echo/health.sh", HEALTH);
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(plan.contains("it failed at the last apply"), "{plan}");
    let resumed = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        resumed.stdout.contains("Apply complete!"),
        "{}",
        resumed.out()
    );
    assert_eq!(get(&ips[1]).as_deref(), Some("changed"));
    p.ok(&["destroy", "--auto-approve"], 0);
    assert_eq!(get(&ips[0]), None);
}

#[test]
fn runtime_mistakes_name_the_place_and_suggest_the_fix() {
    let p = project("local");
    p.write(
        "main.tik.hcl",
        &config("local", "x").replace("worker_greeting =", "worker_greting ="),
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr
            .contains("runtime \"echo\" has no param \"worker_greting\""),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:14:5"), "{}", r.out());
    assert!(
        r.stderr.contains("did you mean \"worker_greeting\""),
        "{}",
        r.out()
    );

    p.write(
        "main.tik.hcl",
        &config("local", "x").replace("runtime \"echo\"", "runtime \"ecko\""),
    );
    let r = p.ok(&["validate"], 1);
    assert!(r.stderr.contains("unknown runtime \"ecko\""), "{}", r.out());
    assert!(r.stderr.contains("did you mean \"echo\""), "{}", r.out());

    // A cycle between runtimes is refused with the runtimes in it.
    p.write(
        "runtimes/a/runtime.tik.hcl",
        "runtime \"a\" {\n  requires = [\"b\"]\n}\n",
    );
    p.write(
        "runtimes/b/runtime.tik.hcl",
        "runtime \"b\" {\n  after = [\"a\"]\n}\n",
    );
    p.write(
        "main.tik.hcl",
        &config("local", "x").replace("runtime \"echo\"", "runtime \"a\" {}\n  runtime \"echo\""),
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("the runtimes' order has a cycle"),
        "{}",
        r.out()
    );

    // `on` is a role or a condition on the node; a number is neither.
    p.write(
        "runtimes/a/runtime.tik.hcl",
        "runtime \"a\" {\n  service \"s\" {\n    on    = node.index + 1\n    start = \"true\"\n  }\n}\n",
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr
            .contains("service \"s\" of runtime \"a\": on = 1 is neither a role nor true or false"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("runtime.tik.hcl:3:13"), "{}", r.out());
    assert_eq!(r.stderr.matches("error:").count(), 1, "once: {}", r.out());
    assert!(r.stderr.contains("node.index < 3"), "{}", r.out());

    // A param's rule must say true or false.
    p.write(
        "runtimes/a/runtime.tik.hcl",
        "runtime \"a\" {\n  param \"n\" {\n    default = 1\n    validation {\n      condition     = \"yes\"\n      error_message = \"no\"\n    }\n  }\n}\n",
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr
            .contains("a validation condition must be true or false, got \"yes\""),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("runtime.tik.hcl:5:23"), "{}", r.out());
}

/// Every shipped runtime loads, orders and plans on a cluster: its services' steps on
/// the nodes of their roles, what it requires added, and its secrets kept out of the
/// plan. (Running them needs their upstream downloads; spark's test runs one.)
#[test]
fn every_shipped_runtime_plans_on_a_cluster() {
    let p = Project::new(&[(
        "main.tik.hcl",
        r#"variable "secret" {
  type      = string
  sensitive = true
  default   = "s3cr3t-value"
}

workspace "lab" {
  provider = "local"
}

cluster "all" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 2
    max = 2
  }
  runtime "spark" {}
  runtime "hdfs" {}
  runtime "kafka" {}
  runtime "prometheus" {}
  runtime "grafana" { admin_password = var.secret }
  # Not hdfs's 9000 on the head: two servers cannot share it.
  runtime "minio" {
    root_password = "literal-pw-123"
    port          = 9002
  }
  runtime "jupyter" { token = var.secret }
  runtime "ray" {}
  runtime "web" {}
  runtime "postgres" { password = var.secret }
}

output "bootstrap" { value = cluster.all.runtime.kafka.endpoint.bootstrap_servers }
"#,
    )]);
    p.ok(&["validate"], 0);
    let plan = p.ok(&["plan", "--verbose"], 0).stdout;
    let steps = |node: &str, runtime: &str, service: &str| {
        ["install", "configure", "start"].iter().all(|s| {
            plan.contains(&format!(
                "cluster.all.node.{node}.runtime.{runtime}.service.{service}.{s} "
            ))
        })
    };
    for (runtime, head, workers) in [
        ("spark", "master", "worker"),
        ("hdfs", "namenode", "datanode"),
        ("ray", "head", "worker"),
        ("web", "server", "server"),
    ] {
        assert!(steps("head", runtime, head), "{runtime} {head}:\n{plan}");
        assert!(
            steps("worker[\"w\"][1]", runtime, workers),
            "{runtime} {workers}:\n{plan}"
        );
    }
    for (runtime, service) in [
        ("zookeeper", "server"),
        ("grafana", "server"),
        ("minio", "server"),
        ("jupyter", "lab"),
        ("postgres", "server"),
    ] {
        assert!(steps("head", runtime, service), "{runtime}:\n{plan}");
        assert!(
            !plan.contains(&format!("worker[\"w\"][0].runtime.{runtime}.")),
            "{runtime} is on the head only:\n{plan}"
        );
    }
    // Prometheus's server is on the head, its node exporters everywhere.
    assert!(steps("head", "prometheus", "server"), "{plan}");
    assert!(
        !plan.contains("worker[\"w\"][0].runtime.prometheus.service.server."),
        "{plan}"
    );
    assert!(
        plan.contains("node.worker[\"w\"][1].runtime.prometheus.service.node_exporter.start "),
        "{plan}"
    );
    // Kafka's brokers are on the workers, and it brought ZooKeeper (not listed).
    assert!(steps("worker[\"w\"][0]", "kafka", "broker"), "{plan}");
    assert!(!plan.contains("node.head.runtime.kafka."), "{plan}");
    // A sensitive param's value is nowhere in the plan, from a sensitive variable or
    // written out.
    assert!(!plan.contains("s3cr3t-value"), "{plan}");
    assert!(!plan.contains("literal-pw-123"), "{plan}");
    assert!(plan.contains("(sensitive value)"), "{plan}");
}

/// The shipped runtimes refuse, when planning, values their servers would refuse
/// only when started; every wrong param of every runtime is named in one run, at the
/// user's value, and a sensitive one is not shown.
#[test]
fn shipped_runtimes_refuse_what_their_servers_would_every_one_at_once() {
    let p = Project::new(&[(
        "main.tik.hcl",
        r#"variable "secret" {
  sensitive = true
  default   = " padded-secret"
}

workspace "lab" {
  provider = "local"
}

cluster "all" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 1
    max = 1
  }
  runtime "hdfs" { replication = "two" }
  runtime "grafana" { admin_password = var.secret }
  runtime "minio" {
    root_user     = "ab"
    root_password = "short-pw"
    port          = 9002
  }
}
"#,
    )]);
    let r = p.ok(&["plan", "--no-color"], 1);
    let err = &r.stderr;
    for (want, at) in [
        (
            // The param's declared type refuses it before its rule is asked.
            "runtime \"hdfs\": param \"replication\" takes a number, not \"two\"",
            "main.tik.hcl:17:34",
        ),
        (
            "invalid value for param \"admin_password\" of runtime \"grafana\": admin_password must not be empty nor begin or end with a space or line break: Grafana trims them",
            "main.tik.hcl:18:40",
        ),
        (
            "invalid value for param \"root_user\" of runtime \"minio\": root_user must be at least 3 characters on one line, as MinIO requires (got \"ab\")",
            "main.tik.hcl:20:21",
        ),
    ] {
        assert!(err.contains(want), "{want}\n{}", r.out());
        assert!(err.contains(at), "{at}\n{}", r.out());
    }
    // 8 characters pass MinIO's rule; the secret is nowhere.
    assert!(!err.contains("root_password"), "{}", r.out());
    assert!(!r.out().contains("padded-secret"), "{}", r.out());

    // Right values plan.
    p.write(
        "main.tik.hcl",
        &p.read("main.tik.hcl")
            .replace("\"two\"", "3")
            .replace("\" padded-secret\"", "\"padded-secret\"")
            .replace("\"ab\"", "\"abc\""),
    );
    p.ok(&["plan", "--no-color"], 0);
}

/// A runtime finds another by its endpoints (service discovery by reference): the
/// addresses in them are the nodes' own when its steps run, and a change there
/// reruns the steps that use them.
#[test]
fn a_runtime_reaches_another_through_its_endpoints() {
    let p = project("local");
    p.write(
        "runtimes/reader/runtime.tik.hcl",
        r#"runtime "reader" {
  requires = ["echo"]
  service "reader" {
    on        = "head"
    configure = "for u in ${runtime.echo.endpoint.primary} ${runtime.echo.endpoint.replicas}; do python3 -c 'import sys, urllib.request; print(sys.argv[1], urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())' \"$u\"; done >\"$TIK_HOME/read.txt\""
  }
}
"#,
    );
    p.write(
        "main.tik.hcl",
        &config("local", "hello from a worker").replace(
            "  runtime \"echo\" {",
            "  runtime \"reader\" {}\n  runtime \"echo\" {",
        ),
    );
    let plan = p.ok(&["plan", "--verbose"], 0).stdout;
    assert!(
        plan.contains("for u in http://${TIK_HEAD_IP}:7700/ http://${TIK_IP_1}:7700/ http://${TIK_IP_2}:7700/ http://${TIK_IP_3}:7700/; do"),
        "the plan shows the endpoints as the shell sees them:\n{plan}"
    );
    apply_and_greet(&p);
    let ips = ips(&p);
    let read = p.read(".tik/local/workspaces/lab/clusters/c/head/home/read.txt");
    let mut want = vec![format!("http://{}:7700/ hello from the head", ips[0])];
    want.extend(
        ips[1..]
            .iter()
            .map(|ip| format!("http://{ip}:7700/ hello from a worker")),
    );
    assert_eq!(read.lines().collect::<Vec<_>>(), want);

    // A runtime sees only those before it: an error says how to see another.
    p.write(
        "runtimes/reader/runtime.tik.hcl",
        &p.read("runtimes/reader/runtime.tik.hcl")
            .replace("requires = [\"echo\"]", ""),
    );
    p.write(
        "main.tik.hcl",
        &config("local", "hello from a worker").replace(
            "runtime \"echo\" {",
            "runtime \"reader\" {}\n  runtime \"echo\" {",
        ),
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("add requires = [\"echo\"] to it"),
        "{}",
        r.out()
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "once: {}", r.out());
}

/// A step that runs until stopped, in two processes (the step's shell and a child it
/// waits for), whose pids it writes down.
const SLOW: &str = r#"
runtime "slow" {
  service "s" {
    on      = "all"
    install = "echo $$ >\"$TIK_HOME/step.pid\"; sleep 300 & echo $! >\"$TIK_HOME/child.pid\"; wait"
    start   = "true"
  }
}
"#;

fn slow_project(transport: &str) -> Cleanup {
    Cleanup(Project::new(&[
        (
            "main.tik.hcl",
            &format!(
                "workspace \"lab\" {{\n  provider  = \"local\"\n  transport = \"{transport}\"\n}}\n\ncluster \"c\" {{\n  workspace = workspace.lab\n  head {{}}\n  workers \"w\" {{\n    min = 1\n    max = 1\n  }}\n  runtime \"slow\" {{}}\n}}\n"
            ),
        ),
        ("runtimes/slow/runtime.tik.hcl", SLOW),
    ]))
}

/// Whether a process lives (and is not a zombie waiting for its parent).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The temporary directory of tik runs in `running_on_nodes`: its SSH control
/// sockets are there.
fn tmp_of(p: &Project) -> std::path::PathBuf {
    p.path().join("tmp")
}

/// The ssh masters whose control socket is in `tmp`.
fn ssh_masters(tmp: &std::path::Path) -> Vec<String> {
    let socket = format!("{}/.ssh-connection", tmp.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                line.split(|b| *b == 0)
                    .any(|arg| arg.starts_with(socket.as_bytes()))
            }) && alive(pid)
        })
        .collect()
}

/// Runs tik with `args` in the background until every one of `nodes` has written
/// `<first>.pid` and `child.pid` in its home; returns tik and those pids, all alive.
fn running_on_nodes(
    p: &Project,
    args: &[&str],
    nodes: &[&str],
    first: &str,
) -> (std::process::Child, Vec<String>) {
    std::fs::create_dir_all(tmp_of(p)).unwrap();
    let mut tik = p
        .command(args)
        .env("TMPDIR", tmp_of(p))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = |node: &str, name: &str| {
        p.read(&format!(
            ".tik/local/workspaces/lab/clusters/c/{node}/home/{name}.pid"
        ))
        .trim()
        .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|n| pid_file(n, "child").is_empty()) {
        assert!(Instant::now() < deadline, "tik {args:?} never got going");
        assert!(
            tik.try_wait().unwrap().is_none(),
            "tik {args:?} ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids: Vec<String> = nodes
        .iter()
        .flat_map(|n| [pid_file(n, first), pid_file(n, "child")])
        .collect();
    assert!(pids.iter().all(|pid| alive(pid)), "{pids:?}");
    (tik, pids)
}

/// Ends tik with `stop` and waits, 10 s at most, until every one of `pids` ended,
/// and then, 40 s at most, until its SSH connections (`masters`, one per node over
/// SSH) ended too; then checks that the next tik to connect sweeps what they left
/// (once it is old), and says how many they left.
fn stopping_tik_ends(
    p: &Project,
    mut tik: std::process::Child,
    stop: impl FnOnce(&mut std::process::Child),
    pids: &[String],
    masters: usize,
) -> usize {
    assert_eq!(ssh_masters(&tmp_of(p)).len(), masters, "one per node");
    stop(&mut tik);
    tik.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "what tik stopped waiting for still runs: {:?}",
            pids.iter().filter(|pid| alive(pid)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ssh_masters(&tmp_of(p)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "tik's SSH connections outlive it: {:?}",
            ssh_masters(&tmp_of(p))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    if masters == 0 {
        return 0;
    }
    // What the masters left behind (openssh's directory, with its log) goes with the
    // next tik that connects, once older than any connect: here, made an hour old.
    let left: Vec<std::path::PathBuf> = std::fs::read_dir(tmp_of(p))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".ssh-connection")
        })
        .collect();
    for d in &left {
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(d)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    let tmp = tmp_of(p);
    let exec = p.tik_env(
        &["exec", "c", "--", "true"],
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    assert_eq!(exec.code, 0, "{}", exec.out());
    let kept: Vec<_> = left.iter().filter(|d| d.exists()).collect();
    assert!(kept.is_empty(), "left behind: {kept:?}");
    left.len()
}

/// Starts an apply of `slow_project`, waits until the step runs on both nodes, ends
/// tik with `stop`, and checks that the steps' processes end with it, and that the
/// next plan runs them again.
fn a_step_ends_with_tik(transport: &str, stop: impl FnOnce(&mut std::process::Child)) {
    let p = slow_project(transport);
    let (apply, pids) = running_on_nodes(
        &p,
        &["apply", "--auto-approve"],
        &["head", "worker-w-0"],
        "step",
    );
    let masters = if transport == "ssh" { 2 } else { 0 };
    let left = stopping_tik_ends(&p, apply, stop, &pids, masters);
    // Over SSH, the stopped tik left its connections' directories: the sweep ran.
    assert_eq!(
        left > 0,
        masters > 0,
        "{left} directories left by {masters} masters"
    );
    // State knows the steps did not finish: they run again.
    let plan = p.ok(&["plan", "--verbose"], 0).stdout;
    assert!(
        plan.starts_with("Left by an interrupted apply:\n"),
        "{plan}"
    );
    for node in ["head", "worker[\"w\"][0]"] {
        let step = format!("cluster.c.node.{node}.runtime.slow.service.s.install");
        assert!(
            plan.contains(&format!(
                "# {step} did not run to its end: its run was interrupted\n"
            )) && plan.contains(&format!("# {step} will run\n")),
            "{plan}"
        );
    }
}

#[test]
fn steps_tik_is_interrupted_twice_in_stop_on_their_nodes_over_ssh() {
    need_sshd();
    a_step_ends_with_tik("ssh", |apply| {
        interrupt(apply);
        interrupt(apply);
    });
}

#[test]
fn steps_of_a_killed_tik_stop_on_their_nodes() {
    a_step_ends_with_tik("local", |apply| apply.kill().unwrap());
}

#[test]
fn an_interrupted_exec_stops_its_command_on_every_node() {
    need_sshd();
    let p = project("ssh");
    p.ok(&["apply", "--auto-approve"], 0);
    let (exec, pids) = running_on_nodes(
        &p,
        &[
            "exec",
            "c",
            "--",
            "echo $$ >exec.pid; sleep 300 & echo $! >child.pid; wait",
        ],
        &["head", "worker-w-0", "worker-w-1", "worker-w-2"],
        "exec",
    );
    let left = stopping_tik_ends(&p, exec, interrupt, &pids, 4);
    assert!(left > 0, "the stopped exec left no directory to sweep");
    // The services tik started are not the command's: they still answer.
    for ip in ips(&p) {
        assert!(get(&ip).is_some(), "{ip}");
    }
}
