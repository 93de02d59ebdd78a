//! Container execution, as a user runs it: a cluster with a `container` block runs
//! its services in one podman container per node (Debian's podman; the image is made
//! here from busybox, since no registry is reachable), over a real sshd per node. A
//! changed image makes the containers anew and reruns every step in them; a container
//! stopped is reported and made again by --replace; one removed by hand is drift,
//! made again by apply; destroy removes them.

use crate::common::{
    busybox_images, http_get, interrupt, lineage, need_podman, need_sshd, podman, Cleanup,
    Containers, Images, Project,
};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = r#"
runtime "www" {
  param "port" { default = 7800 }

  service "web" {
    on        = "all"
    # Written into the container's own file system, not the node's.
    install   = "echo installed >/installed-here && mkdir -p \"$TIK_HOME/www\""
    configure = "echo \"image $(cat /image-version) on $TIK_NODE_NAME\" >\"$TIK_HOME/www/index.html\""
    start     = "httpd -f -p \"$TIK_NODE_IP:$TIK_PARAM_PORT\" -h \"$TIK_HOME/www\" </dev/null >/dev/null 2>&1 & echo $! >\"$TIK_HOME/www.pid\""
    stop      = "kill \"$(cat \"$TIK_HOME/www.pid\")\" 2>/dev/null; rm -f \"$TIK_HOME/www.pid\""
    health    = "wget -q -O- \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/\""
    health_timeout = 10
  }
}
"#;

fn config(image: &str) -> String {
    format!(
        r#"workspace "lab" {{
  provider  = "local"
  transport = "ssh"
}}

cluster "c" {{
  workspace = workspace.lab
  head {{}}
  workers "w" {{
    min = 2
    max = 2
  }}
  container {{
    image  = "{image}"
    engine = "podman"
    # This machine's kernel runs podman with runc, and lets no container raise its
    # open-files or process limits above the session's.
    options = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
  }}
  runtime "www" {{}}
}}

output "ips" {{
  value = concat([cluster.c.node.head.private_ip], [for w in cluster.c.node.worker["w"] : w.private_ip])
}}
"#
    )
}

fn get(ip: &str) -> Option<String> {
    http_get(&format!("{ip}:7800"))
}

#[test]
fn services_run_in_a_container_per_node_and_a_new_image_reruns_them() {
    need_sshd();
    need_podman();
    let p = Cleanup(Project::new(&[("runtimes/www/runtime.tik.hcl", RUNTIME)]));
    let images = Images::make(p.path());
    p.write("main.tik.hcl", &config(&images.0[0]));

    let r = p.ok(&["apply", "--auto-approve"], 0);
    let containers = Containers(lineage(&p));
    assert!(!containers.0.is_empty(), "state has a lineage");
    let running = containers.names();
    assert_eq!(
        running.len(),
        3,
        "one container per node: {running:?}\n{}",
        r.out()
    );
    assert!(
        running.iter().all(|c| c.ends_with(&images.0[0])),
        "{running:?}"
    );
    let ips: Vec<String> =
        serde_json::from_str(&p.ok(&["output", "--json", "ips"], 0).stdout).unwrap();
    let names = ["head", "worker-w-0", "worker-w-1"];
    for (ip, name) in ips.iter().zip(names) {
        assert_eq!(
            get(ip).as_deref(),
            Some(format!("image 1 on {name}").as_str())
        );
    }
    // What install wrote is in each container, not on the machine.
    assert!(!Path::new("/installed-here").exists());
    let r = p.ok(
        &["exec", "c", "--", "cat /installed-here /image-version"],
        0,
    );
    for name in names {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.ends_with("| installed")),
            "{}",
            r.out()
        );
    }
    let r = p.ok(&["ssh", "c", "worker-w-1", "--", "cat /image-version"], 0);
    assert_eq!(r.stdout.trim(), "1", "{}", r.out());
    let r = p.ok(&["status", "c"], 0);
    assert_eq!(
        r.stdout.matches("in podman container tik-").count(),
        3,
        "{}",
        r.out()
    );

    // Another image: every container anew, every step again in it.
    p.write("main.tik.hcl", &config(&images.0[1]));
    let r = p.ok(&["plan", "--verbose"], 0);
    assert_eq!(
        r.stdout.matches("container must be replaced").count(),
        3,
        "{}",
        r.out()
    );
    assert_eq!(
        r.stdout.matches("(image forces replacement)").count(),
        3,
        "{}",
        r.out()
    );
    assert_eq!(
        r.stdout.matches("(its node's container is new)").count(),
        9,
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    for (ip, name) in ips.iter().zip(names) {
        assert_eq!(
            get(ip).as_deref(),
            Some(format!("image 2 on {name}").as_str())
        );
    }
    let running = containers.names();
    assert_eq!(running.len(), 3, "the old containers are gone: {running:?}");
    assert!(
        running.iter().all(|c| c.ends_with(&images.0[1])),
        "{running:?}"
    );
    assert_eq!(p.ok(&["plan", "--detailed-exitcode"], 0).code, 0);

    // A stopped container (a node that restarted): status says so and how to make it
    // again (an address with quotes in it, shown as the user types it).
    let worker = r#"cluster.c.node.worker["w"][0].container"#;
    podman(&["stop", "-t", "1", &containers.of(worker)]);
    let r = p.ok(&["status", "c"], 2);
    assert!(
        r.stdout.contains(&format!(
            "is stopped (the node restarted?): tik apply --replace '{worker}'"
        )),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve", "--replace", worker], 0);
    assert!(
        r.stdout
            .contains("Resources: 0 added, 3 changed, 1 replaced"),
        "worker-w-0's container and its three steps, nothing else: {}",
        r.out()
    );
    assert_eq!(get(&ips[1]).as_deref(), Some("image 2 on worker-w-0"));
    p.ok(&["status", "c"], 0);

    // A container removed by hand is drift: plan and drift see it, status says so,
    // and a plain apply makes it again and reruns only that node's steps.
    podman(&["rm", "-f", &containers.of(worker)]);
    let r = p.ok(&["status", "c"], 2);
    assert!(
        r.stdout.contains(&format!(
            "is not there (removed by hand?): tik plan shows '{worker}'"
        )),
        "{}",
        r.out()
    );
    let drift = p.ok(&["drift"], 2);
    assert!(drift.stdout.contains(worker), "{}", drift.out());
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains(&format!("{worker} was deleted outside of tik")),
        "{plan}"
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 1 added, 3 changed, 0 replaced"),
        "worker-w-0's container and its three steps, nothing else: {}",
        r.out()
    );
    assert_eq!(get(&ips[1]).as_deref(), Some("image 2 on worker-w-0"));
    assert_eq!(p.ok(&["plan", "--detailed-exitcode"], 0).code, 0);

    p.ok(&["destroy", "--auto-approve"], 0);
    assert_eq!(containers.names(), Vec::<String>::new());
    for ip in &ips {
        assert_eq!(get(ip), None, "{ip} still answers");
    }
}

#[test]
fn a_container_block_with_mistakes_is_refused_with_where_and_why() {
    let p = Project::new(&[
        ("runtimes/www/runtime.tik.hcl", RUNTIME),
        (
            "main.tik.hcl",
            &config("x").replace("engine = \"podman\"", "engine = \"dockr\""),
        ),
    ]);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("container.engine must be \"docker\" or \"podman\", got \"dockr\""),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:15:"), "{}", r.out());
    assert!(r.stderr.contains("did you mean \"docker\"?"), "{}", r.out());

    p.write(
        "main.tik.hcl",
        &config("x").replace("    image  = \"x\"\n", ""),
    );
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("the container block needs an image"),
        "{}",
        r.out()
    );

    p.write(
        "main.tik.hcl",
        &config("x").replace(
            "  workspace = workspace.lab\n",
            "  workspace = workspace.lab\n  ssh {\n    wait = \"soon\"\n  }\n",
        ),
    );
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("ssh.wait must be a number of seconds from 1 to 86400"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:9:"), "{}", r.out());
}

/// A Docker daemon of the test's own (Debian's docker.io), on a socket in `dir`,
/// with its data there too; stopped, with its containers, when dropped.
struct Dockerd {
    child: Child,
    host: String,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        for tool in ["/usr/sbin/dockerd", "/usr/bin/docker"] {
            assert!(
                Path::new(tool).exists(),
                "this test runs node containers with Docker and {tool} is missing: install it with\n  apt-get install docker.io\n(tests/run does this; the test starts its own daemon)"
            );
        }
        std::fs::create_dir_all(dir).unwrap();
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["-H", &host, "--iptables=false", "--bridge=none"])
            .args(["--storage-driver=vfs"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .expect("dockerd starts");
        let d = Dockerd { child, host };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s: {}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .expect("docker runs")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // TERM: the daemon stops its containers before it ends.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The same with Docker as the engine, on nodes run as local processes, which
/// reach the test's own daemon through DOCKER_HOST in tik's environment.
#[test]
fn services_run_in_docker_containers_too() {
    let p = Cleanup(Project::new(&[("runtimes/www/runtime.tik.hcl", RUNTIME)]));
    let dockerd = Dockerd::start(&p.file("docker"));
    let (_, tar) = &busybox_images(p.path())[0];
    let out = dockerd.docker(&["import", &tar.display().to_string(), "tik-test:1"]);
    assert!(out.status.success(), "{out:?}");
    let config = config("tik-test:1")
        .replace("  transport = \"ssh\"\n", "")
        .replace("engine = \"podman\"", "engine = \"docker\"")
        .replace("options = [\"--runtime\", \"runc\", ", "options = [");
    p.write("main.tik.hcl", &config);
    let env = [("DOCKER_HOST", dockerd.host.as_str())];
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    let ips: Vec<String> =
        serde_json::from_str(&p.tik_env(&["output", "--json", "ips"], &env).stdout).unwrap();
    for (ip, node) in ips.iter().zip(["head", "worker-w-0", "worker-w-1"]) {
        assert_eq!(
            get(ip).as_deref(),
            Some(format!("image 1 on {node}").as_str()),
            "{}",
            r.out()
        );
    }
    let listed = |all: &str| {
        let out = dockerd.docker(&[
            "ps",
            all,
            "--filter",
            &format!("label=tik.lineage={}", lineage(&p)),
            "-q",
        ]);
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(listed("-a"), 3);
    // The install step wrote into the containers, not onto this machine.
    assert!(!Path::new("/installed-here").exists());
    let r = p.tik_env(
        &[
            "exec",
            "c",
            "--node",
            "worker-w-1",
            "--",
            "cat",
            "/installed-here",
        ],
        &env,
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "installed\n"),
        "{}",
        r.out()
    );
    // A refresh reads them back from the daemon: nothing to do.
    let r = p.tik_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(r.code, 0, "{}", r.out());

    let r = p.tik_env(&["destroy", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert_eq!(listed("-a"), 0);
    for ip in &ips {
        assert_eq!(get(ip), None, "{ip} still answers");
    }
}

/// The host's processes (containers' included) whose command line is `cmdline`.
fn processes(cmdline: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).replace('\0', " ").trim() == cmdline)
        .count()
}

#[test]
fn a_step_interrupted_in_a_container_stops_there() {
    need_sshd();
    need_podman();
    let slow = "runtime \"slow\" {\n  service \"s\" {\n    on      = \"all\"\n    install = \"sleep 311 & echo started >\\\"$TIK_HOME/started\\\"; wait\"\n    start   = \"true\"\n  }\n}\n";
    let p = Cleanup(Project::new(&[("runtimes/slow/runtime.tik.hcl", slow)]));
    let images = Images::make(p.path());
    p.write(
        "main.tik.hcl",
        &config(&images.0[0]).replace("runtime \"www\" {}", "runtime \"slow\" {}"),
    );
    let mut apply = p
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = |node: &str| {
        p.file(&format!(
            ".tik/local/workspaces/lab/clusters/c/{node}/home/started"
        ))
        .exists()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !["head", "worker-w-0", "worker-w-1"]
        .iter()
        .all(|n| started(n))
    {
        assert!(Instant::now() < deadline, "the slow steps never started");
        assert!(apply.try_wait().unwrap().is_none(), "the apply ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The containers go with the test by its Cleanup's destroy: the state's lineage,
    // which labels them, is not in a snapshot yet for a `Containers` guard to use.
    assert_eq!(processes("sleep 311"), 3);
    interrupt(&mut apply);
    interrupt(&mut apply);
    apply.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while processes("sleep 311") > 0 {
        assert!(
            Instant::now() < deadline,
            "the steps tik stopped waiting for still run in their containers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
