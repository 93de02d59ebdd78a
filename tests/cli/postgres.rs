//! The shipped postgres runtime, run for real over a node's sshd with the
//! distribution's PostgreSQL (install_method = "package"): a database and role that a
//! client reaches with the password, settings that rerun configure and restart
//! without losing data, and destroy stopping the server.

use crate::common::{need_postgres, need_sshd, postgres_config, postgres_project, psql};
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "it's a \"secret\" $(touch /tmp/tik-injected)";

fn config(major: &str, max_connections: u32) -> String {
    postgres_config(
        0,
        &format!(
            "{}\n    settings = {{ max_connections = {max_connections} }}",
            package(major)
        ),
    )
}

fn replicated(major: &str, workers: u32, replicas: u32) -> String {
    postgres_config(
        workers,
        &format!("{}\n    replicas = {replicas}", package(major)),
    )
}

/// The params that run the distribution's PostgreSQL `major` (its own, with none).
fn package(major: &str) -> String {
    if major.is_empty() {
        return "install_method = \"package\"".into();
    }
    format!("install_method = \"package\"\n    version        = \"{major}\"")
}

#[test]
fn postgres_serves_its_database_and_keeps_data_across_a_reconfigure() {
    need_sshd();
    let (_, bin) = need_postgres();
    // No version: the distribution's own is the one installed.
    let p = postgres_project(&config("", 20));
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
    p.write("main.tik.hcl", &config("", 30));
    let r = p.tik_env(&["plan", "--verbose"], &env);
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

/// Stops the server on `data` as its user, with pg_ctl's shutdown `mode`.
fn stop_server(bin: &str, data: &Path, mode: &str) {
    let stop = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(format!("{bin}/pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", mode, "-w", "stop"])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{stop:?}");
}

/// Waits (up to 30 s) until `sql` gives `want` at `url`.
fn eventually(bin: &str, url: &str, sql: &str, want: &str) -> Result<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = psql(bin, url, PASSWORD, sql);
        if got.as_deref() == Ok(want) || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn postgres_replicas_stream_the_primarys_changes_and_serve_reads() {
    need_sshd();
    let (major, bin) = need_postgres();
    let p = postgres_project(&replicated(&major, 3, 2));
    let env = [("TIK_VAR_password", PASSWORD)];

    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    let log = |node: &str| {
        std::fs::read_to_string(p.file(&format!(
            ".tik/local/workspaces/lab/clusters/db/{node}/home/postgres/logs/server.log"
        )))
        .unwrap_or_default()
    };
    assert_eq!(
        r.code,
        0,
        "{}\nthe primary's log:\n{}",
        r.out(),
        log("head")
    );
    let out = |name: &str| -> serde_json::Value {
        serde_json::from_str(&p.ok(&["output", "--json", name], 0).stdout).unwrap()
    };
    let url = out("url").as_str().unwrap().to_string();
    let read_url = out("read_url").as_str().unwrap().to_string();
    let ips: Vec<String> = serde_json::from_value(out("ips")).unwrap();
    assert_eq!(
        read_url,
        format!(
            "postgresql://tik@{}:5432,{}:5432/tik?target_session_attrs=prefer-standby",
            ips[0], ips[1]
        )
    );
    let on = |ip: &str| format!("postgresql://tik@{ip}:5432/tik");

    // Writes on the primary reach both replicas, which refuse writes of their own.
    psql(
        &bin,
        &url,
        PASSWORD,
        "create table t (x int); insert into t values (1)",
    )
    .unwrap();
    for ip in &ips[..2] {
        assert_eq!(
            eventually(&bin, &on(ip), "select sum(x) from t", "1").as_deref(),
            Ok("1"),
            "replica {ip}"
        );
        assert_eq!(
            psql(&bin, &on(ip), PASSWORD, "select pg_is_in_recovery()").as_deref(),
            Ok("t")
        );
        let refused = psql(&bin, &on(ip), PASSWORD, "insert into t values (9)").unwrap_err();
        assert!(refused.contains("read-only transaction"), "{refused}");
    }
    assert!(
        psql(&bin, &on(&ips[2]), PASSWORD, "select 1").is_err(),
        "the third worker runs no replica"
    );
    assert_eq!(
        psql(&bin, &read_url, PASSWORD, "select pg_is_in_recovery()").as_deref(),
        Ok("t"),
        "read_url reaches a standby"
    );
    // Exit 0: every service answers its health check, the replicas' being in recovery.
    let r = p.ok(&["status", "db"], 0);
    assert!(r.stdout.matches("replica").count() >= 2, "{}", r.out());

    // A replica that dies is drift; apply starts only it, and it catches up on
    // what was written meanwhile.
    let data = p.file(".tik/local/workspaces/lab/clusters/db/worker-w-0/home/postgres/data");
    let conf = std::fs::read_to_string(data.join("tik.conf")).unwrap();
    assert!(
        conf.contains("primary_conninfo = 'host=''") && conf.contains("passfile=''"),
        "the standby names the head and its password file: {conf}"
    );
    assert!(!conf.contains("secret"), "never the password: {conf}");
    assert!(data.join("standby.signal").exists());
    stop_server(&bin, &data, "immediate");
    psql(&bin, &url, PASSWORD, "insert into t values (2)").unwrap();
    let r = p.tik_env(&["plan", "--verbose"], &env);
    assert!(
        r.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout.contains("service.replica.start will run again"),
        "{}",
        r.out()
    );
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert_eq!(
        eventually(&bin, &on(&ips[0]), "select sum(x) from t", "3").as_deref(),
        Ok("3")
    );

    let replace_head = || {
        p.tik_env(
            &[
                "apply",
                "--auto-approve",
                "--replace",
                "cluster.db.node.head",
            ],
            &env,
        )
    };
    // A replaced head has no data of its own: it takes the most advanced replica's,
    // becomes the primary with everything written so far, and the replicas follow it.
    let r = replace_head();
    assert_eq!(
        r.code,
        0,
        "{}\nthe primary's log:\n{}",
        r.out(),
        log("head")
    );
    let url = out("url").as_str().unwrap().to_string();
    assert_eq!(
        psql(&bin, &url, PASSWORD, "select sum(x) from t").as_deref(),
        Ok("3")
    );
    assert_eq!(
        psql(&bin, &url, PASSWORD, "select pg_is_in_recovery()").as_deref(),
        Ok("f")
    );
    psql(&bin, &url, PASSWORD, "insert into t values (4)").unwrap();
    for ip in &ips[..2] {
        assert_eq!(
            eventually(&bin, &on(ip), "select sum(x) from t", "7").as_deref(),
            Ok("7"),
            "replica {ip} follows the new primary"
        );
    }

    // Replaced while no replica answers, the head starts an empty database; a
    // replica then refuses to follow it and keeps its copy.
    for w in ["worker-w-0", "worker-w-1"] {
        let data = p.file(&format!(
            ".tik/local/workspaces/lab/clusters/db/{w}/home/postgres/data"
        ));
        stop_server(&bin, &data, "fast");
    }
    let r = replace_head();
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.out().contains("is another database (system identifier"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("This replica's data is kept in"),
        "{}",
        r.out()
    );
    assert!(
        data.join("PG_VERSION").exists(),
        "the replica's copy is kept"
    );

    // More replicas than workers is refused where the user wrote it.
    p.write("main.tik.hcl", &replicated(&major, 3, 4));
    let r = p.tik_env(&["plan"], &env);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr
            .contains("replicas = 4 but the cluster has 3 workers to run them"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("main.tik.hcl:"), "{}", r.out());

    p.write("main.tik.hcl", &replicated(&major, 3, 2));
    let r = p.tik_env(&["destroy", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    for ip in &ips {
        assert!(
            psql(&bin, &on(ip), PASSWORD, "select 1").is_err(),
            "{ip} stopped"
        );
    }
}
