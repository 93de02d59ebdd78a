//! The shipped runtimes' shell, run for real: the shared download helper against an
//! HTTP mirror on loopback (checksums published or given, a mismatch refused, a good
//! download kept), and every shipped script through `sh -n`.

mod common;

use common::{digest, Mirror};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn fetch_verifies_downloads_and_keeps_only_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let dist = served.join("dist/thing-1.0");
    std::fs::create_dir_all(dist.join("thing-1.0/bin")).unwrap();
    std::fs::write(dist.join("thing-1.0/bin/thing"), "#!/bin/sh\necho thing\n").unwrap();
    let archive = dist.join("thing-1.0.tgz");
    let tar = Command::new("tar")
        .args(["-czf", "thing-1.0.tgz", "thing-1.0"])
        .current_dir(&dist)
        .status()
        .unwrap();
    assert!(tar.success());
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
    // And with the mirror gone, a missing file fails with what to set.
    let (code, out) = with_helpers(&work, &format!("tik_fetch '{url}' '{sha256}' dl/new.tgz"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("set the runtime's mirror or url param"),
        "{out}"
    );
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
