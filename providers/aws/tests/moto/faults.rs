//! A fault-injecting proxy (`faults.py`) in front of a moto server: the errors AWS
//! sends and moto never does, for the tests of retries and fallbacks.

use super::server::{free_port, moto_server, wait_for, Moto};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A proxy in front of a moto server that answers matching requests with the errors
/// AWS would send (`faults.py`), so that retries and fallbacks meet a real server.
pub struct Faults {
    child: Child,
    pub endpoint: String,
}

impl Faults {
    /// Starts the proxy with `rules` (see faults.py) and waits until it answers.
    pub fn start(moto: &Moto, rules: &str) -> Faults {
        Faults::start_with(moto, rules, None)
    }

    /// A proxy that kills the process whose id `pid_file` holds once moto has answered
    /// the `at`-th write call (counted from 1), before the answer reaches it; or, when
    /// `before`, as that write arrives, which moto then never sees.
    pub fn killing(moto: &Moto, at: usize, pid_file: &std::path::Path, before: bool) -> Faults {
        let kill = format!(
            "{{\"at\": {at}, \"before\": {before}, \"pid_file\": {}}}",
            serde_json::to_string(&pid_file.display().to_string()).unwrap()
        );
        Faults::start_with(moto, "[]", Some(&kill))
    }

    fn start_with(moto: &Moto, rules: &str, kill: Option<&str>) -> Faults {
        let python = moto_server().with_file_name("python3");
        let python = if python.exists() {
            python
        } else {
            PathBuf::from("python3")
        };
        let script = PathBuf::from(file!())
            .with_file_name("faults.py")
            .components()
            .collect::<PathBuf>();
        let script = if script.exists() {
            script
        } else {
            // `file!()` is relative to the workspace root; tests run in their crate.
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join(&script))
                .find(|p| p.exists())
                .expect("faults.py next to server.rs")
        };
        let port = free_port();
        let child = Command::new(python)
            .arg(script)
            .args([&port.to_string(), &moto.endpoint, rules])
            .args(kill)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the fault proxy");
        wait_for(port, "the fault proxy");
        Faults {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The proxy's answer at `path`, as its body.
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("the fault proxy answers");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// The write calls that went through, in order.
    pub fn writes(&self) -> Vec<String> {
        serde_json::from_str(&self.get("/__writes")).expect("a list of writes")
    }

    /// How many times each rule has fired.
    pub fn fired(&self) -> Vec<u64> {
        let body = self.get("/__faults");
        body.trim_matches(|c| c == '[' || c == ']' || char::is_whitespace(c))
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().parse().expect("a count"))
            .collect()
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
