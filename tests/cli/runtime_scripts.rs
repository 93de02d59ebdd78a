//! The shipped runtimes' shell, run for real: the shared download helper against an
//! HTTP mirror on loopback (checksums published or given, a mismatch refused, a good
//! download kept), the apt helper against a local apt repository, the postgres
//! replica's copy against a real primary, and every shipped script through `sh -n`.

use crate::common::{digest, need_postgres, need_python_venv, psql, Mirror};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How a script ended: its exit code, and what it printed (stdout, then stderr).
fn outcome(out: std::process::Output) -> (i32, String) {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `script` after sourcing the shared helpers, in `dir`: exit code and output.
fn with_helpers(dir: &Path, script: &str) -> (i32, String) {
    let lib = repo().join("modules/runtimes/_lib/tik.sh");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(". '{}'\n{script}", lib.display()))
        .current_dir(dir)
        .output()
        .expect("sh runs");
    outcome(out)
}

/// Runs a shipped runtime's step as tik runs it, `sh -c` with `env`: `prelude`, then
/// the files (under modules/runtimes/) it is made of.
fn run_step(prelude: &str, files: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = repo().join("modules/runtimes");
    let mut script = prelude.to_string();
    for f in files {
        script.push_str(&std::fs::read_to_string(dir.join(f)).unwrap());
        script.push('\n');
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .output()
        .expect("sh runs");
    outcome(out)
}

/// `dir/NAME.tgz`, made of `dir/NAME` as upstreams pack their releases.
fn pack(dir: &Path, name: &str) -> PathBuf {
    let archive = format!("{name}.tgz");
    let tar = Command::new("tar")
        .args(["-czf", &archive, name])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(tar.success());
    dir.join(archive)
}

#[test]
fn fetch_verifies_downloads_and_keeps_only_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let dist = served.join("dist/thing-1.0");
    std::fs::create_dir_all(dist.join("thing-1.0/bin")).unwrap();
    std::fs::write(dist.join("thing-1.0/bin/thing"), "#!/bin/sh\necho thing\n").unwrap();
    let archive = pack(&dist, "thing-1.0");
    let sha512 = digest("sha512", &archive);
    let sha256 = digest("sha256", &archive);
    // Apache publishes gpg's layout: "name: HEX HEX ...", upper case, over lines.
    let upper: Vec<String> = sha512
        .to_uppercase()
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    std::fs::write(
        dist.join("thing-1.0.tgz.sha512"),
        format!(
            "thing-1.0.tgz: {}\n                {}\n",
            upper[..8].join(" "),
            upper[8..].join(" ")
        ),
    )
    .unwrap();
    let mirror = Mirror::start(&served);
    let url = format!("{}/dist/thing-1.0/thing-1.0.tgz", mirror.url);
    let work = tmp.path().join("node");
    std::fs::create_dir_all(&work).unwrap();

    // No checksum given: the published one is used, and the archive unpacked.
    let (code, out) = with_helpers(
        &work,
        &format!("tik_fetch '{url}' '' dl/thing.tgz && tik_unpack dl/thing.tgz thing && sh ./thing/bin/thing"),
    );
    assert_eq!(
        (code, out.trim_end().lines().last()),
        (0, Some("thing")),
        "{out}"
    );
    // The other layouts upstreams publish beside an archive: BSD's, as Hadoop
    // publishes it (naming the release candidate's file), and sha512sum's, whose
    // file name may begin with what looks like hex.
    for (layout, published) in [
        (
            "BSD",
            format!("SHA512 (thing-1.0-RC1.tgz) = {}\n", sha512.to_uppercase()),
        ),
        ("sha512sum", format!("{sha512}  decaf-thing-1.0.tgz\n")),
    ] {
        std::fs::write(dist.join("thing-1.0.tgz.sha512"), published).unwrap();
        let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '' dl/{layout}.tgz"));
        assert_eq!(code, 0, "{layout}: {out}");
        assert!(work.join(format!("dl/{layout}.tgz")).exists(), "{layout}");
    }
    // A published file that holds no digest is named, with what to set instead.
    std::fs::write(dist.join("thing-1.0.tgz.sha512"), "<html>Not here</html>\n").unwrap();
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '' dl/none.tgz"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "cannot read a sha512 digest from {url}.sha512: set the runtime's checksum param"
        )),
        "{out}"
    );

    // A published list of checksums: the archive's own line is the one used.
    std::fs::write(
        dist.join("sums.txt"),
        format!("{}  other.tgz\n{sha256}  thing-1.0.tgz\n", "1".repeat(64)),
    )
    .unwrap();
    let sums = format!("sums:{}/dist/thing-1.0/sums.txt", mirror.url);
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{sums}' dl/listed.tgz"));
    assert_eq!(code, 0, "{out}");
    assert!(work.join("dl/listed.tgz").exists());
    let (code, out) = with_helpers(
        &work,
        &format!("tik_fetch '{url}.missing' '{sums}' dl/unlisted.tgz"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lists no checksum for thing-1.0.tgz.missing"),
        "{out}"
    );

    // A published file of the bare digest alone (grafana's URL.sha256).
    std::fs::write(dist.join("thing-1.0.tgz.sha256"), format!("{sha256}\n")).unwrap();
    let bare = format!("sums:{url}.sha256");
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{bare}' dl/bare.tgz"));
    assert_eq!(code, 0, "{out}");
    assert!(work.join("dl/bare.tgz").exists());

    // A given checksum that does not match is refused, and nothing is kept.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{wrong}' dl/other.tgz"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checksum mismatch"), "{out}");
    assert!(!work.join("dl/other.tgz").exists() && !work.join("dl/other.tgz.part").exists());

    // A checksum that is no digest at all is named as such.
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' 'abc' dl/other.tgz"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a sha256 or sha512"), "{out}");

    // A file already there with the right checksum is not fetched again: the
    // mirror is gone and it still succeeds; bare hex of either length is accepted.
    drop(mirror);
    for sum in [sha256.as_str(), sha512.as_str()] {
        let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{sum}' dl/thing.tgz"));
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains("downloading"), "{out}");
    }
    // And with the mirror gone, a missing file fails with what to set: the server
    // is named as unreachable, with the mirror param, with a checksum or without.
    let host = url.split('/').nth(2).unwrap().to_string();
    for sum in [sha256.as_str(), ""] {
        let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{sum}' dl/new.tgz"));
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("cannot reach {host} to download {url}: set the runtime's mirror param (or its url) to a copy this node can reach")),
            "{out}"
        );
        assert!(!out.contains("checksum param"), "{out}");
    }
}

/// Download once per cluster: the head fetches an archive and builds a pip call's
/// wheels into its cache and serves them; a worker takes them from it (upstream
/// gone) and checks each; a copy that went bad on the head is refused.
#[test]
fn the_head_downloads_once_and_the_other_nodes_take_it_from_it() {
    need_python_venv();
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let dist = served.join("dist");
    std::fs::create_dir_all(dist.join("thing-1.0")).unwrap();
    std::fs::write(dist.join("thing-1.0/README"), "thing\n").unwrap();
    let sha512 = digest("sha512", &pack(&dist, "thing-1.0"));
    std::fs::write(
        dist.join("thing-1.0.tgz.sha512"),
        format!("{sha512}  thing-1.0.tgz\n"),
    )
    .unwrap();
    // A package index (PEP 503's layout, as a directory listing) with one wheel.
    let index = served.join("simple/thing");
    std::fs::create_dir_all(&index).unwrap();
    let wheel = Command::new("python3")
        .args(["-c", r#"import sys, zipfile
z = zipfile.ZipFile(sys.argv[1], "w")
z.writestr("thing/__init__.py", "WHAT = 'thing 1.0'\n")
z.writestr("thing-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: thing\nVersion: 1.0\n")
z.writestr("thing-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
z.writestr("thing-1.0.dist-info/RECORD", "")
z.close()"#])
        .arg(index.join("thing-1.0-py3-none-any.whl"))
        .status()
        .unwrap();
    assert!(wheel.success());
    let mirror = Mirror::start(&served);
    let url = format!("{}/dist/thing-1.0.tgz", mirror.url);
    let simple = format!("{}/simple/", mirror.url);
    // The head's own loopback address: the cache's port is fixed.
    let ip = format!("127.79.{}.{}", std::process::id() % 250 + 1, 1);
    let node = |role: &str, name: &str| {
        let home = tmp.path().join(name);
        format!(
            "TIK_DOWNLOAD_ONCE=1 TIK_ROLE={role} TIK_HOME='{}' TIK_NODE_IP={ip} TIK_HEAD_IP={ip} TIK_RUNTIME=thing\n",
            home.display()
        )
    };
    let get = |role: &str, name: &str, checksum: &str| {
        format!(
            "{}tik_fetch '{url}' '{checksum}' \"$TIK_HOME/dl/thing.tgz\" && tik_pip_install \"$TIK_HOME/thing\" python3 '{simple}' thing==1.0 && \"$TIK_HOME/thing/venv/bin/python\" -c 'import thing; print(thing.WHAT)'",
            node(role, name)
        )
    };
    let server = tmp.path().join("head/cache-server/pid");
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(&self.0) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _stop = Stop(server.clone());

    // A runtime that does not download once keeps no cache and serves nothing.
    let (code, out) = with_helpers(
        tmp.path(),
        &get("head", "alone", "").replace("TIK_DOWNLOAD_ONCE=1 ", ""),
    );
    assert_eq!(code, 0, "{out}");
    assert!(!tmp.path().join("alone/cache").exists(), "{out}");
    assert!(!tmp.path().join("alone/cache-server").exists(), "{out}");

    let (code, out) = with_helpers(tmp.path(), &get("head", "head", ""));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("downloading"), "{out}");
    assert!(server.exists(), "the head serves its cache: {out}");
    // Upstream goes: what the worker gets comes from the head.
    drop(mirror);
    let (code, out) = with_helpers(
        tmp.path(),
        &get("worker", "w1", &format!("sha512:{sha512}")),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("took thing-1.0.tgz from the head's download cache"),
        "{out}"
    );
    assert!(
        out.contains("installed thing==1.0 from the head's download cache"),
        "{out}"
    );
    assert_eq!(out.trim_end().lines().last(), Some("thing 1.0"), "{out}");
    assert_eq!(
        digest("sha512", &tmp.path().join("w1/dl/thing.tgz")),
        sha512
    );
    // Copies that went bad on the head are refused, and with upstream gone nothing
    // is installed.
    let cache = tmp.path().join("head/cache");
    std::fs::write(
        cache.join(format!("sha512-{sha512}/thing-1.0.tgz")),
        "not the archive",
    )
    .unwrap();
    let on_w2 =
        |script: &str| with_helpers(tmp.path(), &format!("{}{script}", node("worker", "w2")));
    let (code, out) = on_w2(&format!(
        "tik_fetch '{url}' 'sha512:{sha512}' \"$TIK_HOME/dl/thing.tgz\""
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot reach"), "{out}");
    assert!(!tmp.path().join("w2/dl/thing.tgz").exists());
    assert!(!tmp.path().join("w2/dl/thing.tgz.part").exists());
    std::fs::write(cache.join("pip/thing-1.0-py3-none-any.whl"), "not a wheel").unwrap();
    let (code, out) = on_w2(&format!(
        "tik_pip_install \"$TIK_HOME/thing\" python3 '{simple}' thing==1.0"
    ));
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("from the head's download cache"), "{out}");
}

#[test]
fn every_shipped_script_is_valid_sh() {
    let root = repo().join("modules/runtimes");
    let mut checked = 0;
    for runtime in std::fs::read_dir(&root).unwrap() {
        let dir = runtime.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "sh") {
                let out = Command::new("sh").arg("-n").arg(&f).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} scripts found under {}",
        root.display()
    );
}

/// A local apt repository with one package, `tik-apt-probe`, in the machine's apt
/// sources while it lives; the package, the source and its lists are removed after.
struct AptProbe {
    list: PathBuf,
    repo: tempfile::TempDir,
}

const PROBE: &str = "tik-apt-probe";

impl AptProbe {
    fn new() -> AptProbe {
        let id = Command::new("id").arg("-u").output().expect("id runs");
        assert_eq!(
            String::from_utf8_lossy(&id.stdout).trim(),
            "0",
            "this test installs a package with apt-get into the machine: run the tests as root (tests/run does)"
        );
        assert!(
            Path::new("/usr/bin/apt-get").exists() && Path::new("/usr/bin/dpkg-deb").exists(),
            "this test needs a Debian-like machine with apt-get and dpkg-deb"
        );
        remove_probe();
        let repo = tempfile::tempdir().unwrap();
        // apt reads file: sources as its sandbox user where it can.
        std::fs::set_permissions(
            repo.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let root = repo.path().join("build");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/share").join(PROBE)).unwrap();
        let control = format!(
            "Package: {PROBE}\nVersion: 1.0\nArchitecture: all\nMaintainer: tik tests <tests@tik.invalid>\nDescription: a package tik's tests install\n"
        );
        std::fs::write(root.join("DEBIAN/control"), &control).unwrap();
        std::fs::write(root.join("usr/share").join(PROBE).join("probe"), "probed\n").unwrap();
        let deb = format!("{PROBE}_1.0_all.deb");
        let built = Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group", "build", &deb])
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(built.status.success(), "{built:?}");
        std::fs::remove_dir_all(&root).unwrap();
        let file = repo.path().join(&deb);
        let size = std::fs::metadata(&file).unwrap().len();
        let packages = format!(
            "{control}Filename: ./{deb}\nSize: {size}\nSHA256: {}\n\n",
            digest("sha256", &file)
        );
        std::fs::write(repo.path().join("Packages"), &packages).unwrap();
        std::fs::write(
            repo.path().join("Release"),
            format!(
                "Origin: tik tests\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n {} {} Packages\n",
                digest("sha256", &repo.path().join("Packages")),
                packages.len()
            ),
        )
        .unwrap();
        let list = PathBuf::from(format!(
            "/etc/apt/sources.list.d/tik-test-{}.list",
            std::process::id()
        ));
        std::fs::write(
            &list,
            format!("deb [trusted=yes] file:{} ./\n", repo.path().display()),
        )
        .unwrap();
        AptProbe { list, repo }
    }
}

fn remove_probe() {
    let out = Command::new("dpkg")
        .args(["--purge", PROBE])
        .output()
        .expect("dpkg runs");
    assert!(out.status.success(), "{out:?}");
}

impl Drop for AptProbe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.list);
        let _ = Command::new("dpkg").args(["--purge", PROBE]).output();
        // apt names a source's lists after its path.
        let tag = self.repo.path().display().to_string().replace('/', "_");
        if let Ok(lists) = std::fs::read_dir("/var/lib/apt/lists") {
            for f in lists.flatten() {
                if f.file_name().to_string_lossy().contains(&tag) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }
}

/// `tik_apt_install` for real: three nodes of one machine install a package only a
/// new apt source has, at once. The first try fails (the lists do not know it yet),
/// the lists are read again, and each ends with the package; a package no source
/// has fails with a message.
#[test]
fn apt_install_reads_the_lists_again_and_nodes_on_one_machine_take_turns() {
    let probe = AptProbe::new();
    let dir = probe.repo.path().to_path_buf();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                with_helpers(
                    &dir,
                    &format!("TIK_RUNTIME=probe\ntik_apt_install {PROBE} && cat /usr/share/{PROBE}/probe"),
                )
            })
        })
        .collect();
    let outs: Vec<(i32, String)> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    for (code, out) in &outs {
        assert_eq!(*code, 0, "{out}");
        assert!(out.contains("probed\n"), "{out}");
    }
    assert!(
        outs.iter().any(|(_, out)| out.contains(&format!(
            "installing {PROBE} failed; reading the package lists again (apt-get update)"
        ))),
        "{outs:?}"
    );
    // Installed: nothing to do, and no apt-get.
    let (code, out) = with_helpers(&dir, &format!("tik_apt_install {PROBE}"));
    assert_eq!((code, out.as_str()), (0, ""));

    let (code, out) = with_helpers(
        &dir,
        "TIK_RUNTIME=probe\ntik_apt_install tik-no-such-package",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot install tik-no-such-package with apt-get (as root, or a user with passwordless sudo; are they in the node's apt sources?)"),
        "{out}"
    );
}

/// One node of the postgres runtime, its scripts run as tik's steps run them: `sh -c`
/// with the shared helpers, pg.sh and the step's file, in the node's environment.
struct PgNode {
    home: PathBuf,
    ip: String,
    name: &'static str,
    head: String,
    major: String,
}

const PG_PORT: &str = "5432";
const PG_PASSWORD: &str = "it's \"copied\" $(no)";

impl PgNode {
    fn step(&self, role: &str, file: &str) -> (i32, String) {
        run_step(
            &format!("TIK_PG_ROLE={role}\nTIK_PG_REPLICAS=\"\"\n"),
            &["_lib/tik.sh", "postgres/pg.sh", file],
            &[
                ("TIK_HOME", self.home.to_str().unwrap()),
                ("TIK_NODE_IP", &self.ip),
                ("TIK_NODE_NAME", self.name),
                ("TIK_HEAD_IP", &self.head),
                ("TIK_RUNTIME", "postgres"),
                ("TIK_PARAM_INSTALL_METHOD", "package"),
                ("TIK_PARAM_VERSION", &self.major),
                ("TIK_PARAM_PORT", PG_PORT),
                ("TIK_PARAM_DATABASE", "tik"),
                ("TIK_PARAM_USER", "tik"),
                ("TIK_PARAM_PASSWORD", PG_PASSWORD),
                ("TIK_PARAM_REPLICATION_USER", "replicator"),
                ("TIK_PARAM_ALLOWED", "samenet"),
                ("TIK_PARAM_SETTINGS", "{}"),
            ],
        )
    }

    fn psql(&self, bin: &str, sql: &str) -> Result<String, String> {
        let url = format!("postgresql://tik@{}:{PG_PORT}/tik", self.ip);
        psql(bin, &url, PG_PASSWORD, sql)
    }
}

/// Stops the servers however the test ends.
struct PgNodes(Vec<PgNode>);

impl Drop for PgNodes {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = n.step("primary", "postgres/stop.sh");
        }
    }
}

/// A replica's copy of the primary that fails is thrown away and tried again from
/// scratch: three failures end the step with a message and an empty data directory;
/// one failure is followed by a copy that streams the primary's rows. The server
/// and copy are PostgreSQL's own; only the first calls of pg_basebackup are made to
/// fail, as a copy ended by another replica's checkpoint fails.
#[test]
fn a_failed_replica_copy_starts_again_from_scratch() {
    let (major, bin) = need_postgres();
    let tmp = tempfile::tempdir().unwrap();
    // Where the test runs as root, the servers run as user postgres, who must reach
    // the homes below this directory (a temp dir is 0700).
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Addresses of this test's own: nothing else on the machine listens there.
    let net = format!(
        "127.{}.{}",
        80 + std::process::id() % 40,
        std::process::id() % 250
    );
    let node = |name, last: u8| PgNode {
        home: tmp.path().join(name),
        ip: format!("{net}.{last}"),
        name,
        head: format!("{net}.1"),
        major: major.clone(),
    };
    let nodes = PgNodes(vec![node("head", 1), node("replica", 2)]);
    let (head, replica) = (&nodes.0[0], &nodes.0[1]);
    for n in &nodes.0 {
        std::fs::create_dir_all(&n.home).unwrap();
        let (code, out) = n.step("primary", "postgres/install.sh");
        assert_eq!(code, 0, "{out}");
    }
    for file in ["postgres/configure.sh", "postgres/start.sh"] {
        let (code, out) = head.step("primary", file);
        assert_eq!(code, 0, "{out}");
    }
    head.psql(
        &bin,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('before the copy')",
    )
    .unwrap();
    let (code, out) = replica.step("replica", "postgres/configure.sh");
    assert_eq!(code, 0, "{out}");

    // The replica's binaries are PostgreSQL's, but for a pg_basebackup that fails
    // its first $FAILS calls, leaving part of a copy behind, and counts its calls.
    let d = replica.home.join("postgres");
    let wrapped = d.join("wrapped-bin");
    std::fs::create_dir_all(&wrapped).unwrap();
    for e in std::fs::read_dir(&bin).unwrap().flatten() {
        std::os::unix::fs::symlink(e.path(), wrapped.join(e.file_name())).unwrap();
    }
    let calls = tmp.path().join("calls");
    let fails = tmp.path().join("fails");
    std::fs::remove_file(wrapped.join("pg_basebackup")).unwrap();
    std::fs::write(
        wrapped.join("pg_basebackup"),
        format!(
            r#"#!/bin/sh
n=$(($(cat '{calls}') + 1))
echo $n >'{calls}'
if [ $n -le "$(cat '{fails}')" ]; then
  while [ $# -gt 0 ]; do
    [ "$1" != -D ] || {{ mkdir -p "$2" && echo partial >"$2/base.tar.part"; }}
    shift
  done
  echo "pg_basebackup: error: could not receive data from WAL stream: server closed the connection unexpectedly" >&2
  exit 1
fi
exec '{bin}/pg_basebackup' "$@"
"#,
            calls = calls.display(),
            fails = fails.display(),
        ),
    )
    .unwrap();
    for (f, mode) in [
        (&calls, 0o666),
        (&fails, 0o644),
        (&wrapped.join("pg_basebackup"), 0o755),
    ] {
        if !f.exists() {
            std::fs::write(f, "0\n").unwrap();
        }
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    std::fs::remove_file(d.join("bin")).unwrap();
    std::os::unix::fs::symlink(&wrapped, d.join("bin")).unwrap();
    let copy_with = |failing: u32| {
        std::fs::write(&calls, "0\n").unwrap();
        std::fs::write(&fails, format!("{failing}\n")).unwrap();
        let (code, out) = replica.step("replica", "postgres/replica.sh");
        let n: u32 = std::fs::read_to_string(&calls)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (code, out, n)
    };

    let (code, out, n) = copy_with(3);
    assert_ne!(code, 0, "{out}");
    assert_eq!(n, 3, "{out}");
    for want in [
        "copying the primary's data failed (try 1 of 3); trying again",
        "copying the primary's data failed (try 2 of 3); trying again",
        &format!("cannot copy the primary's data from {}:{PG_PORT}", head.ip),
        "could not receive data from WAL stream",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let left: Vec<_> = std::fs::read_dir(d.join("data")).unwrap().collect();
    assert!(left.is_empty(), "the failed copy is left behind: {left:?}");

    let (code, out, n) = copy_with(1);
    assert_eq!(code, 0, "{out}");
    assert_eq!(n, 2, "{out}");
    assert!(
        out.contains("copying the primary's data failed (try 1 of 3); trying again"),
        "{out}"
    );
    assert!(!d.join("data/base.tar.part").exists());
    assert_eq!(
        replica.psql(&bin, "SELECT pg_is_in_recovery()"),
        Ok("t".into())
    );
    assert_eq!(
        replica.psql(&bin, "SELECT v FROM t"),
        Ok("before the copy".into())
    );
    // And it streams: a row written now reaches it.
    head.psql(&bin, "INSERT INTO t VALUES ('after the copy')")
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = replica.psql(&bin, "SELECT count(*) FROM t");
        if got == Ok("2".into()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica does not stream: {got:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Reads configuration files as the servers do, with Java's own parsers: a Hadoop
/// XML file's directory properties as Hadoop turns them into paths (a URI, then a
/// file), and a properties file as Kafka loads it (ISO-8859-1).
const JAVA_READER: &str = r#"
import java.io.*;
import java.net.URI;
import java.util.Properties;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.*;

public class Reader {
    public static void main(String[] a) throws Exception {
        if (a[0].equals("hadoop-dir")) {
            Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(new File(a[1]));
            NodeList ps = doc.getElementsByTagName("property");
            for (int i = 0; i < ps.getLength(); i++) {
                Element p = (Element) ps.item(i);
                if (p.getElementsByTagName("name").item(0).getTextContent().equals(a[2])) {
                    String v = p.getElementsByTagName("value").item(0).getTextContent();
                    System.out.println(new File(new URI(v)).getPath());
                }
            }
        } else {
            Properties props = new Properties();
            try (InputStream in = new FileInputStream(a[1])) { props.load(in); }
            System.out.println(props.getProperty(a[2]));
        }
    }
}
"#;

fn java_read(dir: &Path, args: &[&Path], key: &str) -> String {
    let java = Command::new("java").arg("-version").output();
    assert!(
        java.is_ok_and(|o| o.status.success()),
        "this test reads configuration files with Java's parsers, and java is missing: install a JDK 17 (apt-get install openjdk-17-jdk-headless; tests/run does this)"
    );
    let src = dir.join("Reader.java");
    std::fs::write(&src, JAVA_READER).unwrap();
    let out = Command::new("java")
        .arg(&src)
        .args(args)
        .arg(key)
        .output()
        .expect("java runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// Runs a shipped runtime's configure step (with the shared helpers) in `home`.
fn configure(runtime: &str, home: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let configure = format!("{runtime}/configure.sh");
    let mut all = vec![
        ("TIK_HOME", home.to_str().unwrap()),
        ("TIK_RUNTIME", runtime),
        ("TIK_NODE_IP", "10.0.0.7"),
        ("TIK_HEAD_IP", "10.0.0.5"),
    ];
    all.extend_from_slice(env);
    run_step("", &["_lib/tik.sh", &configure], &all)
}

/// HDFS, Kafka and Grafana write the node's home into their configuration files. A
/// home with characters that those formats give a meaning (&, <, %, #, spaces, a
/// backslash, quotes) reaches each server as the same path, read by the parser the
/// server uses where it is Java's; a home that a format cannot hold is refused by
/// name before anything is written. Grafana's admin password reaches it through a
/// file that only the node's user reads, exactly as given.
#[test]
fn configuration_files_hold_any_home_and_password_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join(r#"node a&b<c>#d%e[f]\g'h"i;j"#);
    std::fs::create_dir_all(&home).unwrap();
    let path = |rel: &str| format!("{}/{rel}", home.display());

    let (code, out) = configure(
        "hdfs",
        &home,
        &[
            ("TIK_PARAM_NAMENODE_PORT", "9000"),
            ("TIK_PARAM_NAMENODE_UI_PORT", "9870"),
            ("TIK_PARAM_DATANODE_UI_PORT", "9864"),
            ("TIK_PARAM_REPLICATION", "2"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let site = home.join("hdfs/conf/hdfs-site.xml");
    let hadoop_dir = |key| java_read(tmp.path(), &[Path::new("hadoop-dir"), &site], key);
    assert_eq!(hadoop_dir("dfs.namenode.name.dir"), path("hdfs/data/name"));
    assert_eq!(hadoop_dir("dfs.datanode.data.dir"), path("hdfs/data/data"));
    assert!(home.join("hdfs/data/name").is_dir());

    let kafka_env = [
        ("TIK_PARAM_PORT", "9092"),
        ("TIK_PARAM_PARTITIONS", "3"),
        ("TIK_ZK_CONNECT", "10.0.0.5:2181"),
    ];
    let (code, out) = configure("kafka", &home, &kafka_env);
    assert_eq!(code, 0, "{out}");
    let props = home.join("kafka/conf/server.properties");
    assert_eq!(
        java_read(tmp.path(), &[Path::new("props"), &props], "log.dirs"),
        path("kafka/data")
    );
    for (bad, why) in [
        ("with,comma", "has a comma in its path, which would split Kafka's log.dirs"),
        ("café", "has characters other than printable ASCII in its path, which Kafka's server.properties (read as ISO-8859-1) cannot hold"),
    ] {
        let other = tmp.path().join(bad);
        let (code, out) = configure("kafka", &other, &kafka_env);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(why), "{out}");
        assert!(!other.exists(), "nothing is written for a refused home");
    }

    let password = r#"  pa ss"'${HOME}$__env{HOME}$(id)`x` "#.trim();
    let prometheus = r#"http://10.0.0.9:9090/?q="a\b"&c=$d"#;
    let grafana_env = [
        ("TIK_PARAM_PORT", "3000"),
        ("TIK_PARAM_ADMIN_PASSWORD", password),
        ("TIK_PARAM_PROMETHEUS_URL", prometheus),
    ];
    let (code, out) = configure("grafana", &home, &grafana_env);
    assert_eq!(code, 0, "{out}");
    let secret = home.join("grafana/conf/admin_password");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), password);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let ini = std::fs::read_to_string(home.join("grafana/conf/grafana.ini")).unwrap();
    assert!(!ini.contains("pa ss"), "{ini}");
    // Between backquotes go-ini takes a value as written, # and ; included.
    for line in [
        format!("data = `{}`", path("grafana/data")),
        format!("admin_password = `$__file{{{}}}`", secret.display()),
    ] {
        assert!(ini.lines().any(|l| l == line), "{line:?} in:\n{ini}");
    }
    // The data source's URL: a YAML double-quoted string (JSON's escapes), with $
    // doubled against Grafana's expansion of $NAME in provisioning files.
    let yaml =
        std::fs::read_to_string(home.join("grafana/conf/provisioning/datasources/prometheus.yaml"))
            .unwrap();
    let quoted = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("url: "))
        .unwrap_or_else(|| panic!("no url in:\n{yaml}"));
    let url: String = serde_json::from_str(quoted).unwrap();
    assert_eq!(url, prometheus.replace('$', "$$"));
    let other = tmp.path().join("price$");
    let (code, out) = configure("grafana", &other, &grafana_env);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "has a backquote, $, } or a line break in its path, which grafana.ini cannot hold"
        ),
        "{out}"
    );
    assert!(!other.join("grafana").exists());
}

/// The controller's install on a head: the binary apply copied is kept only where
/// it can run, and a head of another kind is told what to do.
#[test]
fn the_controllers_install_keeps_only_a_binary_the_head_can_run() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().display().to_string();
    let uname = |flag: &str| {
        let out = Command::new("uname")
            .arg(flag)
            .output()
            .expect("uname runs");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let here = format!("{} {}", uname("-s"), uname("-m"));
    let bin = d.path().join("controller/bin");
    let copied = || {
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("tik.new"), "#!/bin/sh\necho tik\n").unwrap();
    };
    copied();
    let (code, out) = run_step(
        "",
        &["_controller/install.sh"],
        &[("TIK_HOME", &home), ("TIK_PARAM_PLATFORM", "Linux riscv64")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "the tik that ran apply is built for Linux riscv64, and this head is {here}: run tik apply with a tik built for {here}"
        )),
        "{out}"
    );
    assert!(!bin.join("tik").exists() && !bin.join("tik.new").exists());
    copied();
    let (code, out) = run_step(
        "",
        &["_controller/install.sh"],
        &[("TIK_HOME", &home), ("TIK_PARAM_PLATFORM", &here)],
    );
    assert_eq!(code, 0, "{out}");
    let run = Command::new(bin.join("tik")).output().expect("it runs");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "tik\n");
}
