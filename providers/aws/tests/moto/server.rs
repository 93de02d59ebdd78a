//! A real moto server (PyPI `moto[server]`) on a free loopback port, started and stopped
//! by the test that needs it. Shared by the AWS provider's tests and the CLI's.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

pub fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("TIK_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    // The repository's own venv, found from whichever crate's tests run.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(venv) = here
        .ancestors()
        .map(|d| d.join(".venv-test/bin/moto_server"))
        .find(|p| p.exists())
    {
        return venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server was not found. Install it with:\n  python3 -m venv .venv-test && .venv-test/bin/pip install 'moto[server]'\n(run from the repository root; tests/run does this), or set TIK_MOTO_SERVER to its path"
        )
    })
}

impl Moto {
    /// Starts a moto server on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        // Credentials and settings for the SDK's standard chain: never the user's own.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ] {
            std::env::set_var(k, v);
        }
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Validate AMIs and instance types as AWS does.
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for(port, "moto_server");
        moto
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not answer on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
