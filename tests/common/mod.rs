//! Helpers for end-to-end tests: a project directory on disk and the `tik` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Project {
    pub dir: tempfile::TempDir,
}

/// A project takes along what its test left running (a service of a cluster the test
/// never destroyed): every process whose command line names the project's directory
/// or whose working directory is inside it.
impl Drop for Project {
    fn drop(&mut self) {
        let dir = self.dir.path();
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let needle = dir.display().to_string();
        let me = std::process::id().to_string();
        let pids: Vec<String> = processes(|p| {
            cmdline_holds(p, &needle)
                || std::fs::read_link(p.join("cwd")).is_ok_and(|c| c.starts_with(&dir))
        })
        .into_iter()
        .filter(|pid| *pid != me)
        .collect();
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        format!(
            "--- exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a future to its end, for what a test does by hand through an SDK.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn tik_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tik")
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Project {
        let p = Project {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for (name, text) in files {
            p.write(name, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.file(name);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tik_bin());
        c.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("TIK_VAR_") {
                c.env_remove(k);
            }
        }
        c
    }

    pub fn tik(&self, args: &[&str]) -> Run {
        self.tik_env(args, &[])
    }

    pub fn tik_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("tik runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs tik and insists on an exit code.
    pub fn ok(&self, args: &[&str], code: i32) -> Run {
        let r = self.tik(args);
        assert_eq!(r.code, code, "tik {}\n{}", args.join(" "), r.out());
        r
    }
}

/// A workspace and a cluster of a head and `workers` workers on the local provider.
pub fn cluster_config(workers: u32, head_type: &str) -> String {
    cluster_config_with(workers, head_type, "")
}

/// `cluster_config` with `extra` (whole lines: runtime blocks) at the end of the
/// cluster block.
pub fn cluster_config_with(workers: u32, head_type: &str, extra: &str) -> String {
    format!(
        r#"workspace "dev" {{
  provider = "local"
}}

cluster "etl" {{
  workspace = workspace.dev
  head {{
    instance_type = "{head_type}"
  }}
  workers "default" {{
    instance_type = "small"
    min           = {workers}
    max           = 10
  }}
{extra}}}

output "head_ip" {{
  value = cluster.etl.node.head.private_ip
}}
"#
    )
}

const SSHD: &str = "/usr/sbin/sshd";

/// Tests that run an sshd per node fail, with how to install it, where it is missing.
pub fn need_sshd() {
    assert!(
        Path::new(SSHD).exists(),
        "these tests run an sshd per node and {SSHD} is missing: install it with\n  apt-get install openssh-server\n(tests/run does this)"
    );
}

/// A project whose nodes' processes (sshds, services) end with the test, also when
/// it fails before its destroy.
pub struct Cleanup(pub Project);

impl std::ops::Deref for Cleanup {
    type Target = Project;
    fn deref(&self) -> &Project {
        &self.0
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.tik(&["destroy", "--auto-approve"]);
        // Whatever a failed destroy left: every process started from this project.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.0.path().display().to_string())
            .status();
    }
}

/// The body of GET / at `addr` (`ip:port`), or None when nothing answers there.
pub fn http_get(addr: &str) -> Option<String> {
    http_request(addr, "/", &[]).map(|(_, body)| body)
}

/// GET `path` at `addr` (`ip:port`) with extra header lines: the status code and the
/// body, or None when nothing answers there.
pub fn http_request(addr: &str, path: &str, headers: &[&str]) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &addr.parse().ok()?,
        std::time::Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    // Some servers (Ray's dashboard) fail a request that names no user agent.
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: tik-tests\r\n{extra}\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((code, body.trim().to_string()))
}

/// Tests that install a runtime from PyPI into a venv fail, with how to install what
/// they need, where python3 cannot make one.
pub fn need_python_venv() {
    let pip = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output();
    assert!(
        pip.is_ok_and(|o| o.status.success()),
        "this test installs from PyPI with pip into a venv, and python3 cannot make one: install it with\n  apt-get install python3 python3-venv\n(tests/run does this)"
    );
}

/// The pids of the processes whose command line holds `needle`.
pub fn processes_with(needle: &str) -> Vec<String> {
    processes(|p| cmdline_holds(p, needle))
}

/// Whether the command line of the process at `/proc/PID` holds `needle`.
fn cmdline_holds(proc_dir: &Path, needle: &str) -> bool {
    std::fs::read(proc_dir.join("cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
}

/// The pids of the processes whose /proc directory `keep` takes.
fn processes(keep: impl Fn(&Path) -> bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| keep(&e.path()))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

/// Tests that run node containers fail, with how to install what is missing.
pub fn need_podman() {
    for (tool, package) in [
        ("/usr/bin/podman", "podman"),
        ("/usr/sbin/runc", "runc"),
        ("/bin/busybox", "busybox-static"),
    ] {
        assert!(
            Path::new(tool).exists(),
            "this test runs node containers with podman and {tool} is missing: install it with\n  apt-get install {package}\n(tests/run installs podman runc busybox-static)"
        );
    }
}

/// Runs podman; its output, which it must give without an error.
pub fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs");
    assert!(
        out.status.success(),
        "podman {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Images that are busybox and a file that says which one they are, imported under
/// this test's own tags; removed with the test.
pub struct Images(pub Vec<String>);

impl Images {
    pub fn make(dir: &Path) -> Images {
        // Tags of this test's own: dropping them removes the containers that use them,
        // which must not be another test's.
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tags = Vec::new();
        for (version, tar) in busybox_images(dir) {
            let tag = format!("localhost/tik-test-{}-{n}:{version}", std::process::id());
            podman(&["import", "-q", &tar.display().to_string(), &tag]);
            tags.push(tag);
        }
        Images(tags)
    }
}

/// Two busybox root file systems as tar files to import as images, each with a
/// file `/image-version` that says which one it is ("1", "2").
pub fn busybox_images(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    let mut out = Vec::new();
    for version in ["1", "2"] {
        std::fs::write(root.join("image-version"), version).unwrap();
        let tar = dir.join(format!("image-{version}.tar"));
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        out.push((version, tar));
    }
    out
}

impl Drop for Images {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = Command::new("podman").args(["rmi", "-f", t]).output();
        }
    }
}

/// Containers of this test's project, removed with it whatever happens.
pub struct Containers(pub String);

impl Containers {
    /// The name of the container labelled with `address` (`...node.head.container`).
    pub fn of(&self, address: &str) -> String {
        self.names()
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .find(|n| {
                podman(&["inspect", "-f", "{{index .Config.Labels \"tik.node\"}}", n]).trim()
                    == address
            })
            .unwrap_or_else(|| panic!("no container of {address}"))
    }

    pub fn names(&self) -> Vec<String> {
        // An empty lineage would name every tik container, other tests' too.
        if self.0.is_empty() {
            return Vec::new();
        }
        podman(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=tik.lineage={}", self.0),
            "--format",
            "{{.Names}} {{.Image}}",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for line in self.names() {
            let name = line.split(' ').next().unwrap_or_default().to_string();
            let _ = Command::new("podman").args(["rm", "-f", &name]).output();
        }
    }
}

/// The lineage of the project's state, which labels the containers tik makes.
pub fn lineage(p: &Project) -> String {
    let state: serde_json::Value =
        serde_json::from_str(&p.read("tik.tikstate")).unwrap_or_default();
    state["lineage"].as_str().unwrap_or_default().to_string()
}

/// A static HTTP server on loopback serving `dir`, stopped when dropped.
pub struct Mirror {
    child: std::process::Child,
    pub url: String,
}

impl Mirror {
    pub fn start(dir: &Path) -> Mirror {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the test mirror: apt-get install python3");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the test mirror did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Mirror {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Packs `dir/top` as `dir/top.tar.gz`, as upstream packs a release, and removes
/// `dir/top`: the archive's name.
pub fn pack_release(dir: &Path, top: &str) -> String {
    let archive = format!("{top}.tar.gz");
    let tar = Command::new("tar")
        .args(["-czf", &archive, top])
        .current_dir(dir)
        .status()
        .expect("tar runs");
    assert!(tar.success());
    std::fs::remove_dir_all(dir.join(top)).unwrap();
    archive
}

/// The line `sha256sum` or `sha512sum` (`algo`) prints for `file` in `dir`:
/// "HEX  file", as upstream publishes checksums.
pub fn checksum_line(algo: &str, dir: &Path, file: &str) -> String {
    format!("{}  {file}\n", digest(algo, &dir.join(file)))
}

/// Runs `tik ARGS` in the project on a pseudo-terminal (`script`, from util-linux),
/// with `typed` typed into it and `env` set (`None` unsets a variable): what the
/// terminal showed, and how it ended. Bounded by a minute, should it never end.
pub fn on_a_terminal(
    p: &Project,
    args: &str,
    typed: &str,
    env: &[(&str, Option<&str>)],
) -> std::process::Output {
    use std::io::Write;
    let mut c = Command::new("timeout");
    c.args([
        "60",
        "script",
        "-qec",
        &format!("{} {args}", tik_bin()),
        "/dev/null",
    ])
    .current_dir(p.path())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let mut child = c.spawn().expect(
        "this test runs tik on a terminal with `script`: install it with apt-get install bsdutils",
    );
    // Open until the command ends: a shell reads what was typed, then exits.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(typed.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    out
}

/// The hex digest (`algo`: sha256 or sha512) of a file, as coreutils computes it.
pub fn digest(algo: &str, file: &Path) -> String {
    let out = Command::new(format!("{algo}sum"))
        .arg(file)
        .output()
        .expect("coreutils' checksum tools run");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The machine's PostgreSQL major version and its binaries (Debian's layout).
pub fn need_postgres() -> (String, String) {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("bin/postgres").exists() && p.join("bin/psql").exists())
                .max()
        });
    let dir = found.expect(
        "this test runs the postgres runtime with the distribution's PostgreSQL, which is missing: install it with\n  apt-get install postgresql\n(tests/run does this)",
    );
    let major = dir.file_name().unwrap().to_string_lossy().into_owned();
    (major, dir.join("bin").display().to_string())
}

/// A project of `config` for the postgres runtime. Where nodes log in as root, the
/// server runs as user postgres, who must be able to reach the node's home below
/// the project (a temp dir is 0700): it is made 0755.
pub fn postgres_project(config: &str) -> Cleanup {
    let p = Cleanup(Project::new(&[("main.tik.hcl", config)]));
    std::fs::set_permissions(
        p.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    p
}

/// A local cluster `db` over SSH of a head and `workers` workers running the
/// postgres runtime with the password from `var.password` and `params` (lines of
/// its block), with its endpoints (and the workers' addresses) as outputs.
pub fn postgres_config(workers: u32, params: &str) -> String {
    let (pool, ips) = if workers == 0 {
        (String::new(), String::new())
    } else {
        (
            format!("  workers \"w\" {{\n    min = {workers}\n    max = {workers}\n  }}\n"),
            "output \"ips\" {\n  value = [for w in cluster.db.node.worker[\"w\"] : w.private_ip]\n}\n"
                .to_string(),
        )
    };
    format!(
        r#"workspace "lab" {{
  provider  = "local"
  transport = "ssh"
}}

variable "password" {{
  sensitive = true
}}

cluster "db" {{
  workspace = workspace.lab
  head {{}}
{pool}  runtime "postgres" {{
    password       = var.password
    {params}
  }}
}}

output "url" {{
  value = cluster.db.runtime.postgres.endpoint.url
}}

output "read_url" {{
  value = cluster.db.runtime.postgres.endpoint.read_url
}}
{ips}"#
    )
}

/// What psql prints for `sql` as user tik with `password`, or its error.
pub fn psql(bin: &str, url: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(format!("{bin}/psql"))
        .args(["-X", "-A", "-t", "-c", sql, url])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Sends tik SIGINT, as Ctrl-C does, and gives it 300 ms to take it in.
pub fn interrupt(tik: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &tik.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
}
