//! The examples users copy stay valid.

use crate::common;
use std::process::Command;

#[test]
fn every_example_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        seen += 1;
        let out = Command::new(common::tik_bin())
            .arg("-C")
            .arg(&dir)
            .arg("validate")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let fmt = Command::new(common::tik_bin())
            .arg("-C")
            .arg(&dir)
            .args(["fmt", "--check"])
            .output()
            .unwrap();
        assert!(
            fmt.status.success(),
            "{} is not formatted: {}",
            dir.display(),
            String::from_utf8_lossy(&fmt.stdout)
        );
    }
    assert!(
        seen >= 2,
        "examples/ holds the quickstart and the aws example"
    );
}
