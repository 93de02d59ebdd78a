//! `transport = "ssh"`: each node runs its own sshd (OpenSSH's server) on its own
//! loopback address, with its own host key and a client key that only it accepts, so
//! node steps take the whole SSH path on one machine.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tik_engine::connection::{Identity, Ssh};
use tik_engine::provider::ProviderError;

/// The port every node's sshd listens on, at its own address (22 would need root).
pub const PORT: u16 = 2222;

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) -> Result<(), ProviderError> {
    if path.exists() {
        return Ok(());
    }
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tik", "-f"])
        .arg(path)
        .output()
        .map_err(|e| {
            ProviderError::new(format!(
                "cannot run ssh-keygen ({e}): install OpenSSH's client (apt-get install openssh-client)"
            ))
        })?;
    if !out.status.success() {
        return Err(ProviderError::new(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".into())
}

/// Starts the node's sshd and waits until it listens; returns the node's connection.
pub fn start(dir: &Path, ip: Ipv4Addr) -> Result<Ssh, ProviderError> {
    if !Path::new(SSHD).exists() {
        return Err(ProviderError {
            code: Some("SshdMissing".into()),
            message: format!(
                "transport = \"ssh\" runs an sshd per node, and {SSHD} is not installed: \
                 apt-get install openssh-server (or remove transport = \"ssh\")"
            ),
        });
    }
    let host_key = dir.join("host_ed25519");
    let client_key = dir.join("id_ed25519");
    keygen(&host_key)?;
    keygen(&client_key)?;
    let authorized = dir.join("authorized_keys");
    fs::copy(client_key.with_extension("pub"), &authorized)
        .map_err(|e| ProviderError::new(format!("cannot write {}: {e}", authorized.display())))?;
    let config = dir.join("sshd_config");
    let text = format!(
        "ListenAddress {ip}:{PORT}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n\
         MaxSessions 64\nMaxStartups 64:30:128\nLogLevel VERBOSE\n",
        host_key.display(),
        dir.join("sshd.pid").display(),
        authorized.display()
    );
    fs::write(&config, text)
        .map_err(|e| ProviderError::new(format!("cannot write {}: {e}", config.display())))?;
    // As root, sshd wants its privilege separation directory.
    let _ = fs::create_dir_all("/run/sshd");
    let out = Command::new(SSHD)
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .output()
        .map_err(|e| ProviderError::new(format!("cannot run {SSHD}: {e}")))?;
    if !out.status.success() {
        let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        return Err(ProviderError::new(format!(
            "sshd did not start on {ip}:{PORT}: {}{log}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((ip, PORT)).is_err() {
        if Instant::now() > deadline {
            stop(dir);
            return Err(ProviderError::new(format!(
                "sshd started but does not listen on {ip}:{PORT} (see {})",
                dir.join("sshd.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Ssh {
        host: ip.to_string(),
        port: PORT,
        user: user(),
        identity: Some(Identity::File(client_key.display().to_string())),
    })
}

/// Stops the node's sshd, if it runs: by the pid its pid file names.
pub fn stop(dir: &Path) {
    let Ok(pid) = fs::read_to_string(dir.join("sshd.pid")) else {
        return;
    };
    let pid = pid.trim();
    if pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
        let _ = Command::new("kill").arg(pid).output();
    }
    let _ = fs::remove_file(dir.join("sshd.pid"));
}

/// Ends what still runs on a node that goes away, as a machine's end would: every
/// process whose working directory is inside the node's directory (the services its
/// steps started there), also when the directory is gone already (deleted by hand:
/// its processes outlive it, and would hold the address a new node gets), and waits
/// until they have. Linux's /proc tells; elsewhere nothing is found.
pub fn end_processes(dir: &Path) {
    // A directory that is gone cannot be resolved: its parent can.
    let dir = match (dir.canonicalize(), dir.parent(), dir.file_name()) {
        (Ok(dir), _, _) => dir,
        (Err(_), Some(parent), Some(name)) => match parent.canonicalize() {
            Ok(parent) => parent.join(name),
            Err(_) => return,
        },
        _ => return,
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let cwd = fs::read_link(e.path().join("cwd")).ok()?;
            // A deleted working directory reads as "PATH (deleted)".
            let text = cwd.to_string_lossy();
            let cwd = Path::new(text.strip_suffix(" (deleted)").unwrap_or(&text));
            (name.chars().all(|c| c.is_ascii_digit()) && cwd.starts_with(&dir)).then_some(name)
        })
        .collect();
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill").args(&pids).output();
    // As a machine's end: they are gone when the node is. Ten seconds to end, as a
    // stop step gives a service, then KILL.
    let running = |pids: &[String]| -> Vec<String> {
        pids.iter()
            .filter(|p| {
                // A zombie has ended; its parent has yet to read its exit.
                fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                    stat.rsplit(')')
                        .next()
                        .map(str::trim_start)
                        .is_some_and(|r| !r.starts_with('Z'))
                })
            })
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut left = running(&pids);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = running(&left);
    }
    if !left.is_empty() {
        let _ = Command::new("kill").arg("-KILL").args(&left).output();
    }
}
