//! The shipped zookeeper runtime, run for real over each node's sshd with the
//! distribution's ZooKeeper (install_method = "package"): an ensemble of three
//! servers elects a leader, replicates what a client writes, survives the loss of
//! its leader, which tik then finds dead and starts again, and is refused where it
//! could not keep a quorum.

use crate::common::{
    checksum_line, need_sshd, pack_release, processes_with, Cleanup, Mirror, Project,
};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const JAR: &str = "/usr/share/java/zookeeper.jar";

fn need_zookeeper() {
    assert!(
        Path::new(JAR).exists() && Path::new("/usr/bin/java").exists(),
        "this test runs the zookeeper runtime with the distribution's ZooKeeper, and {JAR} or java is missing: install them with\n  apt-get install zookeeper openjdk-17-jre-headless\n(tests/run does this)"
    );
}

/// The distribution's ZooKeeper on `servers` servers.
fn config(servers: u32) -> String {
    config_with(&format!(
        "    install_method = \"package\"\n    servers        = {servers}"
    ))
}

/// The cluster, its zookeeper runtime given `params` (lines of `name = value`).
fn config_with(params: &str) -> String {
    format!(
        r#"workspace "lab" {{
  provider  = "local"
  transport = "ssh"
}}

cluster "zk" {{
  workspace = workspace.lab
  head {{}}
  workers "w" {{
    min = 2
    max = 2
  }}
  runtime "zookeeper" {{
{params}
  }}
}}

output "connect" {{
  value = cluster.zk.runtime.zookeeper.endpoint.connect
}}
"#
    )
}

/// What a server says to a four-letter word, or None when it does not answer.
fn four(addr: &str, word: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The server's mode (standalone, leader, follower), or None when it does not serve.
fn mode(addr: &str) -> Option<String> {
    four(addr, "srvr")?
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}

/// Waits until the servers at `addrs` serve in the `want` modes (in any order).
fn wait_for_modes(addrs: &[&str], want: &[&str]) {
    let start = Instant::now();
    loop {
        let modes: Vec<Option<String>> = addrs.iter().map(|a| mode(a)).collect();
        let mut serving: Vec<&str> = modes.iter().flatten().map(String::as_str).collect();
        serving.sort();
        if serving == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "after 60 s the servers {addrs:?} are {modes:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// ZooKeeper's own command-line client against one server: its output.
fn client(server: &str, args: &[&str]) -> String {
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{JAR}:/usr/share/java/slf4j-nop.jar"))
        .arg("org.apache.zookeeper.ZooKeeperMain")
        .args(["-server", server])
        .args(args)
        .output()
        .expect("java runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `get PATH` from `server`, retried until it holds `want` (a follower may lag).
fn read_back(server: &str, path: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..20 {
        last = client(server, &["get", path]);
        if last.lines().any(|l| l == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{server} does not give back {want:?} at {path}:\n{last}");
}

/// The node directory of the server at `addr`, by its recorded config.
fn node_dir_of(p: &Project, addr: &str) -> String {
    let ip = addr.split(':').next().unwrap();
    let base = p.file(".tik/local/workspaces/lab/clusters/zk");
    for entry in std::fs::read_dir(&base).expect("the cluster's directory") {
        let dir = entry.unwrap().path();
        let cfg =
            std::fs::read_to_string(dir.join("home/zookeeper/conf/zoo.cfg")).unwrap_or_default();
        if cfg.contains(&format!("clientPortAddress={ip}\n")) {
            return dir.display().to_string();
        }
    }
    panic!("no node of {} runs the server on {ip}", base.display());
}

#[test]
fn a_zookeeper_ensemble_elects_a_leader_replicates_and_survives_losing_it() {
    need_sshd();
    need_zookeeper();
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config(3))]));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Resources: 17 added"),
        "3 nodes, their sessions, 3 steps on each and the endpoints' record: {}",
        r.out()
    );
    let connect: String =
        serde_json::from_str(&p.ok(&["output", "--json", "connect"], 0).stdout).unwrap();
    let servers: Vec<&str> = connect.split(',').collect();
    assert_eq!(servers.len(), 3, "{connect}");
    assert!(servers.iter().all(|s| s.ends_with(":2181")), "{connect}");

    // One leader, two followers: an ensemble, not three standalone servers.
    wait_for_modes(&servers, &["follower", "follower", "leader"]);

    // Written through one server, read through another.
    let written = client(servers[0], &["create", "/tik", "written through the head"]);
    assert!(written.contains("Created /tik"), "{written}");
    read_back(servers[2], "/tik", "written through the head");

    // The leader's process dies: the two left elect another and keep the data.
    let leader = *servers
        .iter()
        .find(|s| mode(s).as_deref() == Some("leader"))
        .expect("a leader");
    let dir = node_dir_of(&p, leader);
    let pid = std::fs::read_to_string(format!("{dir}/home/zookeeper/server.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    let rest: Vec<&str> = servers.iter().copied().filter(|s| *s != leader).collect();
    wait_for_modes(&rest, &["follower", "leader"]);
    read_back(rest[0], "/tik", "written through the head");
    let status = p.tik(&["status"]);
    assert!(
        status.stdout.contains("2 of 3 services well"),
        "status names the dead server: {}",
        status.out()
    );

    // Reading the nodes finds the dead server: drift, and a plan that starts it again
    // (stop, start) on its node only.
    let drift = p.ok(&["drift"], 2);
    assert!(
        drift
            .stdout
            .contains(".runtime.zookeeper.service.server.start was changed outside of tik")
            && drift.stdout.contains("running = true -> false")
            && drift.stdout.contains("1 object drifted"),
        "{}",
        drift.out()
    );
    let plan = p.ok(&["plan"], 0);
    assert!(
        plan.stdout
            .contains("its service is not running: its health check failed")
            && plan
                .stdout
                .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Resources: 0 added, 1 changed"),
        "{}",
        r.out()
    );
    wait_for_modes(&servers, &["follower", "follower", "leader"]);
    read_back(leader, "/tik", "written through the head");
    assert_eq!(
        p.ok(&["drift"], 0).stdout.trim(),
        "No drift: the world matches the state."
    );

    p.ok(&["destroy", "--auto-approve"], 0);
    assert!(servers.iter().all(|s| four(s, "ruok").is_none()));
    assert!(
        processes_with(&p.path().display().to_string()).is_empty(),
        "destroy ends every server"
    );
}

/// An ensemble that could not keep a quorum is refused when planning, at the value.
#[test]
fn an_ensemble_that_cannot_keep_a_quorum_is_refused_at_its_param() {
    let p = Project::new(&[("main.tik.hcl", &config(2))]);
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains(
            "invalid value for param \"servers\" of runtime \"zookeeper\": servers must be odd"
        ),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:15:22"), "{}", r.out());
    assert!(
        r.stderr.contains("zookeeper/runtime.tik.hcl"),
        "the rule's place: {}",
        r.out()
    );
    p.write("main.tik.hcl", &config(5));
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("servers = 5 but the cluster has 3 nodes"),
        "{}",
        r.out()
    );
    p.write("main.tik.hcl", &config(1).replace("\"package\"", "\"apt\""));
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains(
            "param \"install_method\" takes one of \"archive\", \"package\", not \"apt\""
        ),
        "{}",
        r.out()
    );
}

/// The archive install (the default) takes Apache's release layout from the mirror
/// param and verifies it against the `.sha512` published beside it: here the
/// distribution's jar, packed as Apache packs its releases and served on loopback.
#[test]
fn the_archive_install_comes_from_the_mirror_and_serves() {
    need_sshd();
    need_zookeeper();
    let p = Cleanup(Project::new(&[]));
    let dist = p.file("mirror/zookeeper/zookeeper-3.8.4");
    let top = "apache-zookeeper-3.8.4-bin";
    std::fs::create_dir_all(dist.join(top).join("lib")).unwrap();
    std::fs::create_dir_all(dist.join(top).join("conf")).unwrap();
    std::fs::copy(JAR, dist.join(top).join("lib/zookeeper-3.8.4.jar")).unwrap();
    let archive = pack_release(&dist, top);
    let sum = checksum_line("sha512", &dist, &archive);
    std::fs::write(dist.join(format!("{archive}.sha512")), sum).unwrap();
    let mirror = Mirror::start(&p.file("mirror"));
    p.write(
        "main.tik.hcl",
        &config_with(&format!("    mirror = \"{}\"", mirror.url)),
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    let connect: String =
        serde_json::from_str(&p.ok(&["output", "--json", "connect"], 0).stdout).unwrap();
    wait_for_modes(&[&connect], &["standalone"]);
    let out = client(&connect, &["create", "/from-archive", "yes"]);
    assert!(out.contains("Created /from-archive"), "{out}");
    read_back(&connect, "/from-archive", "yes");
    let home = p.file(".tik/local/workspaces/lab/clusters/zk/head/home/zookeeper");
    let classpath = std::fs::read_to_string(home.join("classpath")).unwrap();
    assert_eq!(
        classpath.trim(),
        format!("{0}/current/conf:{0}/current/lib/*", home.display()),
        "{}",
        r.out()
    );
    let link = std::fs::read_link(home.join("current")).unwrap();
    assert!(link.ends_with(top), "{link:?}");

    p.ok(&["destroy", "--auto-approve"], 0);
    assert_eq!(mode(&connect), None);
    assert!(processes_with(&p.path().display().to_string()).is_empty());
}
