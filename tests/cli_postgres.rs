//! The shipped postgres runtime, run for real over a node's sshd with the
//! distribution's PostgreSQL (install_method = "package"): a database and role that a
//! client reaches with the password, settings that rerun configure and restart
//! without losing data, and destroy stopping the server.

mod common;

use common::{need_sshd, Cleanup, Project};
use std::path::Path;
use std::process::Command;

/// The machine's PostgreSQL major version and its binaries (Debian's layout).
fn need_postgres() -> (String, String) {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("bin/postgres").exists() && p.join("bin/psql").exists())
                .max()
        });
    let dir = found.expect(
        "this test runs the postgres runtime with the distribution's PostgreSQL, which is missing: install it with\n  apt-get install postgresql\n(.ci/run does this)",
    );
    let major = dir.file_name().unwrap().to_string_lossy().into_owned();
    (major, dir.join("bin").display().to_string())
}

const PASSWORD: &str = "it's a \"secret\" $(touch /tmp/tik-injected)";

fn config(major: &str, max_connections: u32) -> String {
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
  runtime "postgres" {{
    install_method = "package"
    version        = "{major}"
    password       = var.password
    settings       = {{ max_connections = {max_connections} }}
  }}
}}

output "url" {{
  value = cluster.db.runtime.postgres.endpoint.url
}}
"#
    )
}

/// What psql prints for `sql` as user tik with `password`, or its error.
fn psql(bin: &str, url: &str, password: &str, sql: &str) -> Result<String, String> {
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

#[test]
fn postgres_serves_its_database_and_keeps_data_across_a_reconfigure() {
    need_sshd();
    let (major, bin) = need_postgres();
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config(&major, 20))]));
    // Where nodes log in as root, the server runs as user postgres, who must be able
    // to reach the node's home below this directory (a temp dir is 0700).
    std::fs::set_permissions(
        p.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let env = [("TIK_VAR_password", PASSWORD)];
    let _ = std::fs::remove_file("/tmp/tik-injected");

    let r = p.tik_env(&["plan"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(
        !r.stdout.contains("secret"),
        "the password stays out of plans: {}",
        r.out()
    );
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    let url: String = serde_json::from_str(&p.ok(&["output", "--json", "url"], 0).stdout).unwrap();
    assert!(url.starts_with("postgresql://tik@127."), "{url}");
    assert!(url.ends_with(":5432/tik"), "{url}");

    assert_eq!(
        psql(
            &bin,
            &url,
            PASSWORD,
            "select current_user || ' ' || current_database()"
        )
        .as_deref(),
        Ok("tik tik")
    );
    assert_eq!(
        psql(&bin, &url, PASSWORD, "show max_connections").as_deref(),
        Ok("20")
    );
    let refused = psql(&bin, &url, "not the password", "select 1").unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    assert!(
        !Path::new("/tmp/tik-injected").exists(),
        "the password ran as a command"
    );
    psql(
        &bin,
        &url,
        PASSWORD,
        "create table kept (x int); insert into kept values (42)",
    )
    .unwrap();
    p.ok(&["status", "db"], 0);

    // A setting: configure again and a restart, on the same data.
    p.write("main.tik.hcl", &config(&major, 30));
    let r = p.tik_env(&["plan"], &env);
    assert!(
        r.stdout
            .contains("Plan: 0 to add, 2 to change, 0 to replace"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout.contains(
            "cluster.db.node.head.runtime.postgres.service.server.configure will run again"
        ),
        "{}",
        r.out()
    );
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert_eq!(
        psql(&bin, &url, PASSWORD, "show max_connections").as_deref(),
        Ok("30")
    );
    assert_eq!(
        psql(&bin, &url, PASSWORD, "select x from kept").as_deref(),
        Ok("42")
    );

    let r = p.tik_env(&["destroy", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(
        psql(&bin, &url, PASSWORD, "select 1").is_err(),
        "the server stopped"
    );
    let left = Command::new("pgrep")
        .args(["-f", &format!("postgres -D {}", p.path().display())])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "no server left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
