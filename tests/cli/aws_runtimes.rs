//! A runtime on an AWS cluster, as a user runs it: moto's server makes the nodes, and
//! a real sshd per node, started by the test at the private address moto gave the
//! node (the VPC is a loopback range, `use_internal_ips` as from inside the VPC),
//! lets tik in with the key pair tik had AWS make. Nothing is faked between them:
//! tik logs in with the private key it kept in state, runs the steps over SSH, and
//! the service answers.

use crate::common::{
    block_on, http_get, lineage, need_podman, need_sshd, on_a_terminal, podman, Cleanup,
    Containers, Images, Project, Run,
};
use crate::moto::Moto;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PORT: u16 = 2222;

/// A runtime of the test's own: a web server on every node, answering with its
/// node's name and home.
const RUNTIME: &str = r#"
runtime "hello" {
  param "port" { default = 7781 }
  service "web" {
    on        = "all"
    configure = "mkdir -p www && printf '%s in %s\n' \"$TIK_NODE_NAME\" \"$TIK_HOME\" >www/index.html"
    start     = "nohup python3 -m http.server \"$TIK_PARAM_PORT\" --bind \"$TIK_NODE_IP\" --directory \"$TIK_HOME/www\" >web.log 2>&1 & echo $! >web.pid"
    stop      = "[ -f web.pid ] && kill \"$(cat web.pid)\"; rm -f web.pid"
    health    = "python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/\""
    health_timeout = 10
  }
}
"#;

/// The cluster; each test has a VPC range of its own (`127.N.0.0/16`), so that the
/// tests' nodes, which moto numbers alike, have addresses of their own.
fn config(endpoint: &str, user: &str, internal_ips: bool, net: u8) -> String {
    format!(
        r#"workspace "lab" {{
  provider = "aws"
  region   = "us-east-1"
  endpoint = "{endpoint}"
  network {{
    cidr = "127.{net}.0.0/16"
  }}
}}

cluster "etl" {{
  workspace = workspace.lab
  ssh {{
    user             = "{user}"
    port             = {PORT}
    use_internal_ips = {internal_ips}
    wait             = 2
  }}
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
  workers "default" {{
    min = 2
    max = 4
  }}
  runtime "hello" {{}}
}}

output "head_ip" {{ value = cluster.etl.node.head.private_ip }}
output "key" {{ value = cluster.etl.key_pair.private_key }}
"#
    )
}

/// An sshd on `ip:PORT` that lets in the holder of `public_key`, with `$HOME` a
/// directory of its own: one "node" of the cluster on this machine. Its log
/// (`sshd.log`) names the nodes it forwards connections to.
fn sshd(dir: &Path, ip: &str, public_key: &str) {
    sshd_with(dir, ip, public_key, "");
}

/// `sshd`, its sessions given the environment `env` too (`NAME=value ...`), as a
/// machine's own settings would give it.
fn sshd_with(dir: &Path, ip: &str, public_key: &str, env: &str) {
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let host_key = dir.join("host_key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    std::fs::write(dir.join("authorized_keys"), public_key).unwrap();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress {ip}:{PORT}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPermitRootLogin prohibit-password\nSetEnv HOME={} {env}\n\
             LogLevel DEBUG1\n",
            host_key.display(),
            dir.join("sshd.pid").display(),
            dir.join("authorized_keys").display(),
            dir.join("home").display(),
        ),
    )
    .unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let out = Command::new("/usr/sbin/sshd")
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .output()
        .expect("sshd runs");
    assert!(out.status.success(), "{out:?}");
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The first apply: the nodes are made, but nothing answers SSH on them yet, so the
/// sessions give up after the cluster's wait, saying where they knocked, and the
/// nodes are kept. The key AWS made, and each node's name and attributes in state.
fn first_apply(p: &Project) -> (String, Vec<(String, serde_json::Value)>) {
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.out().contains("did not answer SSH within 2 s"),
        "{}",
        r.out()
    );
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let resource = |address: &str| -> serde_json::Value {
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("{address} is in state"))["attributes"]
            .clone()
    };
    let key = resource("cluster.etl.key_pair")["private_key"]
        .as_str()
        .expect("the key AWS made is kept in state")
        .to_string();
    assert!(key.contains("PRIVATE KEY"), "{key}");
    let nodes: Vec<(String, serde_json::Value)> = [
        ("head", "cluster.etl.node.head"),
        ("w0", "cluster.etl.node.worker[\"default\"][0]"),
        ("w1", "cluster.etl.node.worker[\"default\"][1]"),
    ]
    .iter()
    .map(|(name, address)| {
        let node = resource(address);
        let ip = node["private_ip"].as_str().unwrap();
        assert!(ip.starts_with("127."), "a loopback address: {ip}");
        assert_eq!(node["connection"]["port"], f64::from(PORT), "{node}");
        (name.to_string(), node)
    })
    .collect();
    let head = &nodes[0].1["connection"]["host"];
    assert!(
        r.out()
            .contains(&format!("@{}:{PORT}", head.as_str().unwrap())),
        "the error names the address: {}",
        r.out()
    );
    (key, nodes)
}

/// The public half of a private key, as a node's authorized_keys line.
fn public_half(p: &Project, key: &str) -> String {
    let key_file = p.file("aws-key");
    std::fs::write(&key_file, key).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let public = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key_file)
        .output()
        .expect("ssh-keygen runs");
    assert!(public.status.success(), "{public:?}");
    std::fs::remove_file(&key_file).unwrap();
    String::from_utf8(public.stdout).unwrap()
}

/// Applies, and checks that each node's (name, address) service answers from the
/// node's own home under its login's `$HOME`.
fn apply_and_answer(p: &Project, nodes: &[(String, String)]) -> Run {
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("Apply complete!"), "{}", r.out());
    for (name, ip) in nodes {
        let home = p.file(&format!("nodes/{name}/home/tik"));
        let body = http_get(&format!("{ip}:7781")).unwrap_or_default();
        assert!(
            body.ends_with(&format!(" in {}", home.display())),
            "{name} at {ip} answers from its own home under its login's $HOME: {body:?}\n{}",
            r.out()
        );
    }
    r
}

fn private_ip(node: &serde_json::Value) -> String {
    node["private_ip"].as_str().unwrap().to_string()
}

#[test]
fn a_runtime_runs_on_aws_nodes_over_ssh_with_the_key_tik_had_made() {
    need_sshd();
    let moto = Moto::start();
    let p = Cleanup(Project::new(&[
        ("main.tik.hcl", &config(&moto.endpoint, &whoami(), true, 78)),
        ("runtimes/hello/runtime.tik.hcl", RUNTIME),
    ]));
    let (key, nodes) = first_apply(&p);
    // From inside the VPC, every node is reached at its private address.
    for (_, node) in &nodes {
        assert_eq!(node["connection"]["host"], node["private_ip"], "{node}");
    }
    let nodes: Vec<(String, String)> = nodes
        .iter()
        .map(|(name, node)| (name.clone(), private_ip(node)))
        .collect();

    // Each node's sshd trusts the public half of the key AWS made.
    let public = public_half(&p, &key);
    for (name, ip) in &nodes {
        sshd(&p.file(&format!("nodes/{name}")), ip, &public);
    }

    // Apply again: the sessions find the nodes, and the service runs on each.
    let applied = apply_and_answer(&p, &nodes);
    let r = p.ok(&["status", "etl"], 0);
    assert!(r.stdout.contains(&nodes[1].1), "{}", r.out());
    let r = p.ok(
        &[
            "exec",
            "etl",
            "--node",
            "head",
            "--",
            "cat",
            "www/index.html",
        ],
        0,
    );
    assert!(r.stdout.contains("etl-head in "), "{}", r.out());

    // The key never reaches the terminal: not in plans, status or the state listing.
    let secret = key
        .lines()
        .find(|l| l.len() > 40 && !l.contains("PRIVATE KEY"))
        .unwrap();
    let plan = p.ok(&["plan", "--detailed-exitcode"], 0);
    let show = p.ok(&["state", "show", "cluster.etl.node.head"], 0);
    let outputs = p.ok(&["output"], 0);
    for out in [
        plan.out(),
        show.out(),
        r.out(),
        applied.out(),
        outputs.out(),
    ] {
        assert!(!out.contains(secret), "{out}");
    }
    assert!(show.stdout.contains("(sensitive value)"), "{}", show.out());
    // An output of the key is hidden; one of an address beside it is not.
    let o = &outputs.stdout;
    assert!(o.contains("key = (sensitive value)"), "{o}");
    assert!(o.contains(&format!("head_ip = \"{}\"", nodes[0].1)), "{o}");

    // Destroy stops each service before its node goes.
    let r = p.ok(&["destroy", "--auto-approve"], 0);
    assert!(r.stdout.contains("Destroy complete!"), "{}", r.out());
    for (name, ip) in &nodes {
        assert_eq!(http_get(&format!("{ip}:7781")), None, "{name} stopped");
    }
}

/// An address on this machine's loopback interface for as long as it lives: a node's
/// public address, made to lead here.
struct LoopbackAddress(String);

impl LoopbackAddress {
    fn add(ip: &str) -> Self {
        let out = Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .output();
        match out {
            Ok(o) if o.status.success() => LoopbackAddress(ip.to_string()),
            Ok(o) => panic!(
                "this test puts the head's public address {ip} on the loopback interface, and `ip addr add` refused: {}\nrun the tests as root (or with CAP_NET_ADMIN), as tests/run does",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("this test needs `ip`: apt-get install iproute2 ({e})"),
        }
    }
}

impl Drop for LoopbackAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
            .status();
    }
}

/// Workers in private subnets, as from outside the VPC: tik logs in to the head at
/// its public address, and to each worker through the head's sshd (`ssh -W`), with
/// the head's recorded host key checked on the way. The head's public address,
/// which moto chose, is put on this machine's loopback interface so that the head's
/// sshd can listen there; the workers' sshds listen at their private addresses.
#[test]
fn workers_without_a_public_address_are_reached_through_the_head() {
    need_sshd();
    let moto = Moto::start();
    // Declared first, so it goes last: the project's cleanup still reaches the head.
    let mut public_address: Option<LoopbackAddress> = None;
    let p = Cleanup(Project::new(&[
        (
            "main.tik.hcl",
            &config(&moto.endpoint, &whoami(), false, 79),
        ),
        ("runtimes/hello/runtime.tik.hcl", RUNTIME),
    ]));
    let (key, nodes) = first_apply(&p);
    let head = &nodes[0].1;
    let public_ip = head["public_ip"]
        .as_str()
        .unwrap_or_else(|| panic!("moto gave the head a public address: {head}"))
        .to_string();
    assert_eq!(head["connection"]["host"], public_ip.as_str(), "{head}");
    for (name, worker) in &nodes[1..] {
        assert_eq!(worker["public_address"], false, "{name}: {worker}");
        assert_eq!(
            worker["connection"]["host"], worker["private_ip"],
            "{name}: {worker}"
        );
    }
    public_address.replace(LoopbackAddress::add(&public_ip));
    let public = public_half(&p, &key);
    sshd(&p.file("nodes/head"), &public_ip, &public);
    for (name, worker) in &nodes[1..] {
        sshd(
            &p.file(&format!("nodes/{name}")),
            &private_ip(worker),
            &public,
        );
    }

    let at: Vec<(String, String)> = nodes
        .iter()
        .map(|(name, node)| (name.clone(), private_ip(node)))
        .collect();
    apply_and_answer(&p, &at);
    // The head's sshd carried every connection to the workers.
    let log = p.read("nodes/head/sshd.log");
    for (name, worker) in &nodes[1..] {
        let target = format!("target {} port {PORT}", private_ip(worker));
        assert!(log.contains(&target), "{name}: no {target:?} in\n{log}");
    }
    // So do exec's.
    let r = p.ok(
        &[
            "exec",
            "etl",
            "--node",
            "etl-default-1",
            "--",
            "cat",
            "www/index.html",
        ],
        0,
    );
    assert!(r.stdout.starts_with("etl-default-1 in "), "{}", r.out());

    let r = p.ok(&["destroy", "--auto-approve"], 0);
    assert!(r.stdout.contains("Destroy complete!"), "{}", r.out());
    for (name, node) in &nodes {
        let ip = private_ip(node);
        assert_eq!(http_get(&format!("{ip}:7781")), None, "{name} stopped");
    }
}

/// A runtime for a busybox image: httpd on every node, answering with the image's
/// version, the node's name and its home.
const BUSYBOX_RUNTIME: &str = r#"
runtime "hello" {
  param "port" { default = 7782 }
  service "web" {
    on        = "all"
    install   = "echo installed >/installed-here"
    configure = "mkdir -p www && echo \"image $(cat /image-version) on $TIK_NODE_NAME in $TIK_HOME\" >www/index.html"
    start     = "httpd -f -p \"$TIK_NODE_IP:$TIK_PARAM_PORT\" -h \"$TIK_HOME/www\" </dev/null >/dev/null 2>&1 & echo $! >www.pid"
    stop      = "kill \"$(cat www.pid)\" 2>/dev/null; rm -f www.pid"
    health    = "wget -q -O- \"http://$TIK_NODE_IP:$TIK_PARAM_PORT/\""
    health_timeout = 10
  }
}
"#;

/// Services in a container per AWS node: over SSH, tik makes each node's container
/// with podman, with the login's `~/tik` mounted at the same path, and runs the
/// steps in it; `tik exec` and `tik ssh` with a command run there too.
#[test]
fn services_run_in_a_container_on_each_aws_node() {
    need_sshd();
    need_podman();
    let moto = Moto::start();
    let p = Cleanup(Project::new(&[(
        "runtimes/hello/runtime.tik.hcl",
        BUSYBOX_RUNTIME,
    )]));
    let images = Images::make(p.path());
    let container = format!(
        r#"  container {{
    image   = "{}"
    engine  = "podman"
    options = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
  }}
  runtime "hello" {{}}"#,
        images.0[0]
    );
    let config =
        config(&moto.endpoint, &whoami(), true, 80).replace("  runtime \"hello\" {}", &container);
    p.write("main.tik.hcl", &config);
    let (key, nodes) = first_apply(&p);
    let public = public_half(&p, &key);
    for (name, node) in &nodes {
        sshd(
            &p.file(&format!("nodes/{name}")),
            &private_ip(node),
            &public,
        );
    }

    let r = p.ok(&["apply", "--auto-approve"], 0);
    let containers = Containers(lineage(&p));
    assert_eq!(containers.names().len(), 3, "{}", r.out());
    for (name, node) in &nodes {
        let ip = private_ip(node);
        let home = p.file(&format!("nodes/{name}/home/tik"));
        let body = http_get(&format!("{ip}:7782")).unwrap_or_default();
        let node_name = node["name"].as_str().unwrap_or_default();
        assert_eq!(
            body.trim(),
            format!("image 1 on {node_name} in {}", home.display()),
            "{name} at {ip}\n{}",
            r.out()
        );
        // The install step wrote into the container, not onto the node.
        let address = match name.as_str() {
            "head" => "cluster.etl.node.head.container".to_string(),
            w => format!(
                "cluster.etl.node.worker[\"default\"][{}].container",
                &w[1..]
            ),
        };
        let c = containers.of(&address);
        assert_eq!(
            podman(&["exec", &c, "cat", "/installed-here"]),
            "installed\n"
        );
    }
    assert!(!Path::new("/installed-here").exists());

    // exec and ssh run in the node's container, in its home.
    let r = p.ok(
        &[
            "exec",
            "etl",
            "--node",
            "etl-default-0",
            "--",
            "cat",
            "/image-version",
        ],
        0,
    );
    assert_eq!(r.stdout.trim(), "1", "{}", r.out());
    let r = p.ok(
        &[
            "ssh",
            "etl",
            "etl-default-1",
            "--",
            "cat /image-version; echo; pwd",
        ],
        0,
    );
    let home = p.file("nodes/w1/home/tik");
    assert_eq!(r.stdout, format!("1\n{}\n", home.display()), "{}", r.out());

    // On a terminal, ssh opens a shell in the head's container, in its home.
    let typed = "cat /image-version; echo; pwd; exit\n";
    let out = on_a_terminal(&p, "ssh etl etl-head", typed, &[]);
    assert!(out.status.success(), "{out:?}");
    let shell = String::from_utf8_lossy(&out.stdout);
    let home = p.file("nodes/head/home/tik");
    assert!(
        shell.contains(&format!("1\r\n{}\r\n", home.display())),
        "{shell:?}"
    );

    let r = p.ok(&["destroy", "--auto-approve"], 0);
    assert!(r.stdout.contains("Destroy complete!"), "{}", r.out());
    assert!(containers.names().is_empty(), "{:?}", containers.names());
    for (name, node) in &nodes {
        let ip = private_ip(node);
        assert_eq!(http_get(&format!("{ip}:7782")), None, "{name} stopped");
    }
}

/// A process of the test's, ended with it.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The head's own controller on AWS (`controller { on = "head" }`): apply copies tik
/// and the project to the head over SSH, gives the workspace's head role what the
/// controller needs (the nodes, the state in S3), and the controller there keeps the
/// cluster with the role's credentials, which it gets from the instance metadata
/// service as on EC2 (an emulator on loopback that assumes the role on moto), never
/// from this machine: a worker terminated by hand is replaced by the head alone.
#[test]
fn a_controller_on_an_aws_head_keeps_the_cluster_with_the_heads_role() {
    need_sshd();
    let moto = Moto::start();
    block_on(async {
        let s3 = moto.s3().await;
        s3.create_bucket().bucket("lab-state").send().await.unwrap();
    });
    let config = format!(
        r#"tik {{
  backend "s3" {{
    bucket = "lab-state"
    key    = "etl/tik.tikstate"
    region = "us-east-1"
  }}
}}

workspace "lab" {{
  provider = "aws"
  region   = "us-east-1"
  endpoint = "{}"
  network {{
    cidr = "127.82.0.0/16"
  }}
}}

cluster "etl" {{
  workspace = workspace.lab
  ssh {{
    user             = "{}"
    port             = {PORT}
    use_internal_ips = true
    wait             = 2
  }}
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
  workers "default" {{
    min = 1
    max = 2
  }}
  controller {{
    on       = "head"
    interval = 1
    backoff  = 1
  }}
}}

"#,
        moto.endpoint,
        whoami()
    );
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config)]));
    p.ok(
        &[
            "init",
            "--backend-config",
            &format!("endpoint={}", moto.endpoint),
        ],
        0,
    );
    // The nodes are made; nothing answers SSH on them yet.
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.out().contains("did not answer SSH within 2 s"),
        "{}",
        r.out()
    );
    // What the failed apply recorded, from the state in S3.
    let attribute = |address: &str, name: &str| -> String {
        let pulled = p.ok(&["state", "pull"], 0).stdout;
        let state: serde_json::Value = serde_json::from_str(&pulled).unwrap();
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("{address} is in state"))["attributes"][name]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let worker = "cluster.etl.node.worker[\"default\"][0]";
    let head_ip = attribute("cluster.etl.node.head", "private_ip");
    let worker_ip = attribute(worker, "private_ip");
    let public = public_half(&p, &attribute("cluster.etl.key_pair", "private_key"));

    // The nodes' sshds keep their homes and logs where tik keeps its own files
    // (the local provider's nodes too), not among the project's files, which apply
    // copies to the head.
    // The head's metadata service hands out its role's credentials; its sshd gives
    // its sessions nothing of this machine's (no keys, no endpoints) but where that
    // service is, as EC2 does.
    let imds_port = crate::moto::free_port();
    std::fs::create_dir_all(p.file(".tik/test-nodes")).unwrap();
    let imds_log = p.file(".tik/test-nodes/imds.log");
    let python = crate::moto::moto_server().with_file_name("python");
    let _imds = Stopped(
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/imds.py"))
            .args([&imds_port.to_string(), &moto.endpoint, "lab-head-role"])
            .arg(&imds_log)
            .spawn()
            .expect("the metadata service emulator starts"),
    );
    crate::moto::wait_for(imds_port, "the metadata service emulator");
    sshd_with(
        &p.file(".tik/test-nodes/head"),
        &head_ip,
        &public,
        &format!("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:{imds_port}"),
    );
    sshd(&p.file(".tik/test-nodes/w0"), &worker_ip, &public);

    // Apply installs the controller on the head: tik's binary and the project
    // copied over SSH, the role given what the controller needs.
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("_controller.service.controller.start: Creation complete"),
        "{}",
        r.out()
    );
    let home = p.file(".tik/test-nodes/head/home/tik/controller");
    assert!(home.join("bin/tik").exists(), "tik's binary is on the head");
    assert!(home.join("project/main.tik.hcl").exists(), "{}", r.out());
    let policy = p.ok(&["state", "show", "cluster.etl.controller_policy"], 0);
    for needed in [
        "arn:aws:s3:::lab-state/etl/tik.tikstate*",
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "iam:PassRole",
        "lab-head-role",
    ] {
        assert!(policy.stdout.contains(needed), "{needed}: {}", policy.out());
    }
    // The controller's log on the head, its last lines.
    let log = || {
        let text = std::fs::read_to_string(home.join("controller.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    let running = Instant::now();
    while !p.tik(&["status"]).stdout.contains(": idle") {
        assert!(
            running.elapsed() < Duration::from_secs(120),
            "the head's controller never became idle:\n{}\n{}",
            p.tik(&["status"]).out(),
            log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = p.ok(&["status"], 0).out();
    assert!(
        status.contains("controller  running on the head (etl-head) of cluster etl as "),
        "{status}\n{}",
        log()
    );
    // It read and wrote the state with the role's credentials.
    let asked = std::fs::read_to_string(&imds_log).unwrap_or_default();
    assert!(
        asked.contains("GET /latest/meta-data/iam/security-credentials/lab-head-role 200"),
        "{asked}"
    );

    // A worker terminated by hand: the head's controller makes another, which gets
    // an sshd as soon as it has an address, and sets it up.
    let ec2 = block_on(moto.ec2());
    let instances = || -> Vec<(String, String, String)> {
        block_on(async {
            let out = ec2.describe_instances().send().await.unwrap();
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| {
                    (
                        i.instance_id().unwrap_or_default().to_string(),
                        i.private_ip_address().unwrap_or_default().to_string(),
                        i.state()
                            .and_then(|s| s.name())
                            .map(|n| n.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
    };
    let before = instances();
    let (old, _, _) = before
        .iter()
        .find(|(_, ip, _)| *ip == worker_ip)
        .expect("the worker's instance")
        .clone();
    block_on(moto.terminate(&old));
    let lost = Instant::now();
    let new_ip = loop {
        let new = instances()
            .into_iter()
            .find(|(id, _, state)| state == "running" && !before.iter().any(|b| b.0 == *id));
        if let Some((_, ip, _)) = new {
            break ip;
        }
        assert!(
            lost.elapsed() < Duration::from_secs(120),
            "the head's controller made no new worker:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    sshd(&p.file(".tik/test-nodes/w0b"), &new_ip, &public);
    let r = p.ok(
        &["plan", "--detailed-exitcode", "--lock-timeout", "120s"],
        0,
    );
    assert!(r.stdout.contains("No changes"), "{}", r.out());
    assert_eq!(attribute(worker, "private_ip"), new_ip, "{}", log());
    let status = p.ok(&["status"], 0).stdout;
    assert!(status.contains("Creation complete"), "{status}\n{}", log());

    // Destroy stops it (the role loses its policy before the role goes), and
    // nothing of it is left running.
    let r = p.ok(&["destroy", "--auto-approve", "--lock-timeout", "120s"], 0);
    assert!(r.stdout.contains("Destroy complete!"), "{}", r.out());
    let gone = Instant::now();
    while !crate::common::processes_with(&home.display().to_string()).is_empty() {
        assert!(
            gone.elapsed() < Duration::from_secs(30),
            "the controller still runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A controller on an AWS head reads the state with the head's role: a state in a
/// file on this machine is out of its reach, and the plan says so where the cluster
/// is written, changing nothing.
#[test]
fn a_controller_on_an_aws_head_needs_the_state_where_the_head_can_read_it() {
    let moto = Moto::start();
    let config = config(&moto.endpoint, "ubuntu", true, 83).replace(
        "  runtime \"hello\" {}",
        "  controller {\n    on = \"head\"\n  }",
    );
    let p = Project::new(&[("main.tik.hcl", &config)]);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("main.tik.hcl:")
            && r.stderr
                .contains("the state is in a local backend; keep it in s3"),
        "{}",
        r.out()
    );
    assert!(!p.file("tik.tikstate").exists());
}
