//! State shared through S3 (moto's server) and GCS (fake-gcs-server), as a team and
//! its CI use it: two checkouts, leased locks, kill -9, migration, faults.

#[path = "../support/gcs_server.rs"]
mod gcs_server;

use crate::common;
use crate::common::{block_on, Cleanup, Project, Run};
use crate::moto::{s3_at as s3, Faults, Moto};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BUCKET: &str = "team-state";
const KEY: &str = "prod/etl.tikstate";

fn s3_config(resources: &[&str]) -> String {
    let mut text = format!(
        "tik {{\n  backend \"s3\" {{\n    bucket = \"{BUCKET}\"\n    key    = \"{KEY}\"\n    region = \"us-east-1\"\n  }}\n}}\n"
    );
    for r in resources {
        text.push_str(&format!(
            "\nresource \"tik_data\" \"{r}\" {{\n  input = \"{r}\"\n}}\n"
        ));
    }
    text
}

fn make_bucket(endpoint: &str, versioning: bool) {
    block_on(async {
        let c = s3(endpoint).await;
        c.create_bucket().bucket(BUCKET).send().await.unwrap();
        if versioning {
            c.put_bucket_versioning()
                .bucket(BUCKET)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    });
}

fn get_object(endpoint: &str, key: &str) -> Option<String> {
    block_on(async {
        let out = s3(endpoint)
            .await
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn put_object(endpoint: &str, key: &str, body: &str) {
    block_on(async {
        s3(endpoint)
            .await
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    });
}

fn keys(endpoint: &str) -> Vec<String> {
    block_on(async {
        let out = s3(endpoint)
            .await
            .list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

/// A checkout of the team's configuration, set up against the store at `endpoint`.
fn checkout(config: &str, endpoint: &str) -> Project {
    let p = Project::new(&[("main.tik.hcl", config)]);
    let r = init_with(&p, endpoint, &[]);
    assert_eq!(r.code, 0, "{}", r.out());
    p
}

/// `tik init` with the store's endpoint as a backend setting, and `env`.
fn init_with(p: &Project, endpoint: &str, env: &[(&str, &str)]) -> Run {
    p.tik_env(
        &["init", "--backend-config", &format!("endpoint={endpoint}")],
        env,
    )
}

fn lines(r: &Run) -> String {
    r.out()
}

#[test]
fn two_checkouts_share_one_state_in_s3_and_a_held_lock_names_its_holder() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, false);
    let alice = checkout(&s3_config(&["a", "b", "c"]), &moto.endpoint);
    // tik init told about the bucket keeping no versions, and recorded the endpoint.
    let again = alice.ok(&["init"], 0);
    assert!(again.stderr.contains("versioning off"), "{}", lines(&again));
    assert!(alice.read(".tik/backend.json").contains(&moto.endpoint));
    alice.ok(&["apply", "--auto-approve"], 0);
    assert!(
        !alice.file("tik.tikstate").exists(),
        "nothing is kept locally"
    );
    let stored = get_object(&moto.endpoint, KEY).expect("the state is in S3");
    assert!(stored.contains("tik_data.c"), "{stored}");
    // Folded at the end of the apply: no journal objects remain.
    let left: Vec<String> = keys(&moto.endpoint)
        .into_iter()
        .filter(|k| k.contains(".journal/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Bob's checkout sees the same state: nothing to do.
    let bob = checkout(&s3_config(&["a", "b", "c"]), &moto.endpoint);
    bob.ok(&["plan", "--detailed-exitcode"], 0);
    let list = bob.ok(&["state", "list"], 0);
    assert_eq!(list.stdout.lines().count(), 3, "{}", lines(&list));

    // Someone holds the lock (a live lease): a plan fails at once naming them.
    let holder = serde_json::json!({
        "holder": {"id": "f00d", "who": "carol@ci-7", "operation": "apply",
                   "created": "2026-12-07T10:00:00Z", "version": "0.1.0"},
        "lease_seconds": 3600,
        "renewed": "2099-01-01T00:00:00Z"
    });
    put_object(&moto.endpoint, &format!("{KEY}.lock"), &holder.to_string());
    let r = bob.ok(&["plan"], 1);
    for want in ["carol@ci-7", "f00d", "apply", "2026-12-07T10:00:00Z"] {
        assert!(r.stderr.contains(want), "{want}: {}", lines(&r));
    }
    // --lock-timeout waits, saying for whom, then fails with the holder.
    let started = Instant::now();
    let r = bob.ok(&["apply", "--auto-approve", "--lock-timeout", "2s"], 1);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        r.stderr.contains("Waiting up to 2s") && r.stderr.contains("carol@ci-7"),
        "{}",
        lines(&r)
    );
    // The read-only drift check needs no lock.
    bob.ok(&["drift"], 0);
    // force-unlock works remotely; a live lease needs --force.
    let r = bob.ok(&["force-unlock", "f00d"], 1);
    assert!(r.stderr.contains("live lease"), "{}", lines(&r));
    bob.ok(&["force-unlock", "--force", "f00d"], 0);
    bob.ok(&["plan"], 0);
}

#[test]
fn a_holder_killed_mid_apply_loses_no_record_and_its_lease_is_taken_over() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    let config = format!(
        "{}\nworkspace \"lab\" {{\n  provider  = \"local\"\n}}\n\ncluster \"c\" {{\n  workspace = workspace.lab\n  head {{}}\n  workers \"w\" {{\n    min = 2\n    max = 2\n  }}\n  runtime \"slow\" {{}}\n}}\n",
        s3_config(&["a"])
    );
    let p = Cleanup(checkout(&config, &moto.endpoint));
    p.0.write(
        "runtimes/slow/runtime.tik.hcl",
        "runtime \"slow\" {\n  service \"s\" {\n    on      = \"all\"\n    install = \"touch \\\"$TIK_HOME/../installing\\\"; sleep 300\"\n    start   = \"true\"\n  }\n}\n",
    );
    let lease = [("TIK_BACKEND_LOCK_LEASE", "2s")];
    let mut apply = p.0.command(&["apply", "--auto-approve"]);
    apply
        .envs(lease)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = apply.spawn().unwrap();
    // Killed once its nodes exist and their slow steps run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let made = walk(p.0.path()).iter().any(|f| f.ends_with("installing"));
        if made {
            break;
        }
        assert!(Instant::now() < deadline, "the slow steps never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let lock = get_object(&moto.endpoint, &format!("{KEY}.lock")).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&lock).unwrap()["holder"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // While it lives, a second checkout cannot take its lock, not even by waiting
    // more than two of its leases: the holder renews it.
    let bob = checkout(&config, &moto.endpoint);
    let r = bob.tik_env(&["state", "list"], &lease);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(r.stderr.contains(&id), "{}", lines(&r));
    let r = bob.tik_env(&["state", "list", "--lock-timeout", "5s"], &lease);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("Waiting up to 5s") && r.stderr.contains(&id),
        "{}",
        lines(&r)
    );
    assert!(child.try_wait().unwrap().is_none(), "the apply still runs");
    child.kill().unwrap();
    child.wait().unwrap();
    // The journal objects in S3 hold what it made; the next run waits out the lease,
    // says whose it broke, and knows every node.
    let r =
        p.0.tik_env(&["state", "list", "--lock-timeout", "30s"], &lease);
    assert_eq!(r.code, 0, "{}", lines(&r));
    assert!(
        r.stderr.contains("took over") && r.stderr.contains(&id),
        "{}",
        lines(&r)
    );
    for node in [
        "cluster.c.node.head",
        "cluster.c.node.worker[\"w\"][1]",
        "tik_data.a",
    ] {
        assert!(r.stdout.contains(node), "{node}: {}", lines(&r));
    }
    // The runs after it finish the work.
    p.0.write(
        "runtimes/slow/runtime.tik.hcl",
        "runtime \"slow\" {\n  service \"s\" {\n    on      = \"all\"\n    install = \"true\"\n    start   = \"true\"\n  }\n}\n",
    );
    let r = p.0.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", lines(&r));
    p.0.ok(&["plan", "--detailed-exitcode"], 0);
    // The state a fold replaces is kept as the backup.
    let before = get_object(&moto.endpoint, KEY).unwrap();
    p.0.write("more.tik.hcl", "resource \"tik_data\" \"z\" {}\n");
    p.0.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        get_object(&moto.endpoint, &format!("{KEY}.backup")),
        Some(before)
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn bad_stores_get_clear_errors_and_nothing_is_overwritten() {
    let moto = Moto::start();
    let p = Project::new(&[("main.tik.hcl", &s3_config(&["a"]))]);
    // No bucket.
    let r = p.tik(&[
        "init",
        "--backend-config",
        &format!("endpoint={}", moto.endpoint),
    ]);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("the bucket team-state does not exist")
            && r.stderr.contains("s3://team-state/prod/etl.tikstate"),
        "{}",
        lines(&r)
    );
    make_bucket(&moto.endpoint, true);
    // An object that is not tik state is refused and left as it is.
    put_object(&moto.endpoint, KEY, "hello");
    let r = p.tik(&[
        "init",
        "--backend-config",
        &format!("endpoint={}", moto.endpoint),
    ]);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("s3://team-state/prod/etl.tikstate"),
        "{}",
        lines(&r)
    );
    let endpoint = [("TIK_BACKEND_ENDPOINT", moto.endpoint.as_str())];
    let r = p.tik_env(&["apply", "--auto-approve"], &endpoint);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(r.stderr.contains("not a tik state"), "{}", lines(&r));
    assert_eq!(get_object(&moto.endpoint, KEY).unwrap(), "hello");
    // A newer format.
    put_object(&moto.endpoint, KEY, "{\"format_version\": 99}");
    let r = p.tik_env(&["plan"], &endpoint);
    assert!(r.stderr.contains("format version 99"), "{}", lines(&r));
    // Missing settings and unknown ones name the fix.
    let q = Project::new(&[(
        "main.tik.hcl",
        "tik {\n  backend \"s3\" {\n    bucket = \"b\"\n    regoin = \"x\"\n  }\n}\n",
    )]);
    let r = q.ok(&["init"], 1);
    assert!(
        r.stderr.contains("no setting \"regoin\"") && r.stderr.contains("region"),
        "{}",
        lines(&r)
    );
    assert!(r.stderr.contains("main.tik.hcl:2:"), "{}", lines(&r));
    q.write(
        "main.tik.hcl",
        "tik {\n  backend \"s3\" {\n    bucket = \"b\"\n  }\n}\n",
    );
    let r = q.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("needs key") && r.stderr.contains("TIK_BACKEND_KEY"),
        "{}",
        lines(&r)
    );
    // Missing credentials.
    let r = p.tik_env(
        &["plan"],
        &[
            ("TIK_BACKEND_ENDPOINT", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_PROFILE", "nobody"),
        ],
    );
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(r.stderr.contains("s3://team-state"), "{}", lines(&r));
}

#[test]
fn store_faults_are_retried_and_an_unreachable_store_leaves_an_errored_state() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    // 503s and connections reset before and after S3 did the write.
    let rules = serde_json::json!([
        {"when": [".journal/"], "method": "PUT", "status": 503, "code": "SlowDown", "protocol": "s3", "times": 3},
        {"when": [".journal/"], "method": "PUT", "reset": true, "times": 2},
        {"when": [".journal/"], "method": "PUT", "reset": true, "forward": true, "times": 2},
        {"when": ["etl.tikstate"], "method": "PUT", "reset": true, "forward": true, "times": 1},
    ]);
    let proxy = Faults::start(&moto, &rules.to_string());
    let names: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let p = checkout(&s3_config(&refs), &proxy.endpoint);
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", lines(&r));
    p.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(proxy.fired(), vec![3, 2, 2, 1], "every fault was met");

    // The store stops taking writes in the middle of an apply: the state is written
    // locally.
    let more: Vec<String> = (0..24).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = more.iter().map(String::as_str).collect();
    let down = serde_json::json!([
        {"when": [".journal/"], "method": "PUT", "status": 503, "code": "SlowDown", "protocol": "s3", "times": 1000},
    ]);
    let dead = Faults::start(&moto, &down.to_string());
    let q = Project::new(&[("main.tik.hcl", &s3_config(&refs))]);
    let r = q.tik(&[
        "init",
        "--backend-config",
        &format!("endpoint={}", dead.endpoint),
    ]);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let r = q.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("errored.tikstate") && r.stderr.contains("tik state push"),
        "{}",
        lines(&r)
    );
    let errored = q.read("errored.tikstate");
    assert!(errored.contains("tik_data.r0"), "{errored}");
    // Back: push recovers it, and nothing is made twice.
    let r = q.tik(&[
        "init",
        "--reconfigure",
        "--backend-config",
        &format!("endpoint={}", moto.endpoint),
    ]);
    assert_eq!(r.code, 0, "{}", lines(&r));
    q.ok(&["state", "push", "errored.tikstate"], 0);
    let r = q.ok(&["apply", "--auto-approve"], 0);
    assert!(!r.stdout.contains("r0: Creating"), "{}", lines(&r));
    q.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn state_moves_local_to_s3_to_gcs_to_local_keeping_lineage_and_serial() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    let gcs = gcs_server::Gcs::start();
    gcs.bucket("team-gcs");
    let local = "resource \"tik_data\" \"a\" {\n  input = \"a\"\n}\n";
    let p = Project::new(&[("main.tik.hcl", local)]);
    p.ok(&["apply", "--auto-approve"], 0);
    let before: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let identity = |v: &serde_json::Value| (v["lineage"].clone(), v["serial"].clone());

    // local → s3: without --migrate-state tik refuses to leave the state behind.
    p.write("main.tik.hcl", &s3_config(&["a"]));
    let endpoint = format!("endpoint={}", moto.endpoint);
    let r = p.ok(&["init", "--backend-config", &endpoint], 1);
    assert!(r.stderr.contains("--migrate-state"), "{}", lines(&r));
    let r = p.ok(&["plan"], 1);
    assert!(r.stderr.contains("backend changed"), "{}", lines(&r));
    let r = p.ok(
        &["init", "--migrate-state", "--backend-config", &endpoint],
        0,
    );
    assert!(r.stdout.contains("The old copy stays at"), "{}", lines(&r));
    let in_s3: serde_json::Value =
        serde_json::from_str(&get_object(&moto.endpoint, KEY).unwrap()).unwrap();
    assert_eq!(identity(&in_s3), identity(&before));
    assert!(
        p.file("tik.tikstate").exists(),
        "the old copy is left in place"
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // s3 → gcs.
    let on_gcs = |more: &str| {
        format!(
            "tik {{\n  backend \"gcs\" {{\n    bucket = \"team-gcs\"\n    prefix = \"prod/etl\"\n  }}\n}}\n\n{local}{more}"
        )
    };
    p.write("main.tik.hcl", &on_gcs(""));
    let env = [("STORAGE_EMULATOR_HOST", gcs.endpoint.as_str())];
    let r = p.tik_env(&["init", "--migrate-state"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let in_gcs: serde_json::Value =
        serde_json::from_str(&gcs.get("team-gcs", "prod/etl/default.tikstate").unwrap()).unwrap();
    assert_eq!(identity(&in_gcs), identity(&before));
    let r = p.tik_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // A change through GCS: journal objects, then a conditional fold.
    let b = "\nresource \"tik_data\" \"b\" {\n  input = \"b\"\n}\n";
    p.write("main.tik.hcl", &on_gcs(b));
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));

    // gcs → local, at a path of its own.
    p.write(
        "main.tik.hcl",
        &format!(
            "tik {{\n  backend \"local\" {{\n    path = \"moved.tikstate\"\n  }}\n}}\n\n{local}{b}"
        ),
    );
    let r = p.tik_env(&["init", "--migrate-state"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let back: serde_json::Value = serde_json::from_str(&p.read("moved.tikstate")).unwrap();
    assert_eq!(back["lineage"], before["lineage"]);
    assert!(p.read("moved.tikstate").contains("tik_data.b"));
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn gcs_state_is_locked_conditionally_and_pull_push_guard_lineage() {
    let gcs = gcs_server::Gcs::start();
    gcs.bucket("team-gcs");
    let config = "tik {\n  backend \"gcs\" {\n    bucket = \"team-gcs\"\n    prefix = \"ci\"\n  }\n}\n\nresource \"tik_data\" \"a\" {\n  input = \"a\"\n}\n";
    let env = [("STORAGE_EMULATOR_HOST", gcs.endpoint.as_str())];
    let alice = Project::new(&[("main.tik.hcl", config)]);
    let r = alice.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let bob = Project::new(&[("main.tik.hcl", config)]);
    let r = bob.tik_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // A live lease in GCS stops a second run, naming its holder.
    let holder = serde_json::json!({
        "holder": {"id": "beef", "who": "dave@laptop", "operation": "destroy",
                   "created": "2026-12-07T11:00:00Z", "version": "0.1.0"},
        "lease_seconds": 3600,
        "renewed": "2099-01-01T00:00:00Z"
    });
    gcs.put("team-gcs", "ci/default.tikstate.lock", &holder.to_string());
    let r = bob.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("dave@laptop") && r.stderr.contains("beef"),
        "{}",
        lines(&r)
    );
    let r = bob.tik_env(&["force-unlock", "--force", "beef"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // pull / push: another lineage or an older serial is refused without --force.
    let pulled = bob.tik_env(&["state", "pull"], &env);
    assert_eq!(pulled.code, 0, "{}", lines(&pulled));
    bob.write("pulled.tikstate", &pulled.stdout);
    let mut other: serde_json::Value = serde_json::from_str(&pulled.stdout).unwrap();
    other["lineage"] = "someone-else".into();
    bob.write("other.tikstate", &other.to_string());
    let r = bob.tik_env(&["state", "push", "other.tikstate"], &env);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(r.stderr.contains("lineage"), "{}", lines(&r));
    let r = bob.tik_env(&["state", "push", "pulled.tikstate"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let r = bob.tik_env(&["state", "push", "pulled.tikstate"], &env);
    assert_eq!(r.code, 1, "an older serial: {}", lines(&r));
    let r = bob.tik_env(&["state", "push", "--force", "other.tikstate"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
}

#[test]
fn drift_in_ci_fails_without_state_and_usage_errors_are_not_drift() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    let p = checkout(&s3_config(&["a"]), &moto.endpoint);
    let r = p.ok(&["drift", "--markdown"], 1);
    assert!(
        r.stderr
            .contains("no state found at s3://team-state/prod/etl.tikstate"),
        "{}",
        lines(&r)
    );
    let r = p.ok(&["drift", "--markdwn"], 1);
    assert!(r.stderr.contains("--markdown"), "{}", lines(&r));
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["drift", "--markdown"], 0);
}

/// The CI example's commands (examples/ci/drift.yml runs examples/ci/drift.sh), from a
/// fresh clone, against remote state in moto and a cluster in moto's EC2.
#[test]
fn the_ci_drift_workflow_runs_from_a_fresh_clone() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = std::fs::read_to_string(repo.join("examples/ci/drift.yml")).unwrap();
    assert!(
        workflow.contains("run: sh examples/ci/drift.sh"),
        "the workflow runs the script this test runs"
    );
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    // The example as it is; the bucket and endpoint stay out of git, as CI gives them.
    let config = std::fs::read_to_string(repo.join("examples/ci/main.tik.hcl")).unwrap();
    let env = [
        ("TIK_BACKEND_BUCKET", BUCKET),
        ("TIK_BACKEND_ENDPOINT", moto.endpoint.as_str()),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
    ];
    let drift = |clone: &Project| {
        let bin = std::path::Path::new(common::tik_bin()).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new("sh")
            .arg(repo.join("examples/ci/drift.sh"))
            .current_dir(clone.path())
            .env("PATH", path)
            .env("TIK_DIR", ".")
            .env("NO_COLOR", "1")
            .envs(env)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // No state yet where objects are declared: an error, never a green "No drift".
    let fresh = Project::new(&[("main.tik.hcl", &config)]);
    let r = drift(&fresh);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr
            .contains("no state found at s3://team-state/prod/etl.tikstate"),
        "{}",
        lines(&r)
    );
    // A team member applies from a checkout of their own.
    let alice = Project::new(&[("main.tik.hcl", &config)]);
    let r = alice.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let fresh = Project::new(&[("main.tik.hcl", &config)]);
    let r = drift(&fresh);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // The worker is terminated outside tik: the scheduled job fails and says which.
    let shown = alice.tik_env(
        &["state", "show", "cluster.etl.node.worker[\"default\"][0]"],
        &env,
    );
    let id = shown
        .stdout
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("id").map(|v| {
                v.trim_matches(|c: char| c == ' ' || c == '=' || c == '"')
                    .to_string()
            })
        })
        .unwrap_or_else(|| panic!("the worker's id: {}", lines(&shown)));
    block_on(moto.terminate(&id));
    let fresh = Project::new(&[("main.tik.hcl", &config)]);
    let r = drift(&fresh);
    assert_eq!(r.code, 2, "{}", lines(&r));
    assert!(r.stdout.contains("worker"), "{}", lines(&r));
    let r = alice.tik_env(&["destroy", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", lines(&r));
}

const KEY_A: &str = "8f1c2a7e5b3d4f6a9c0e1b2d3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6";
const KEY_B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// Encrypted at rest on every backend; a missing or wrong key is named, never a
/// garbled state; tik init --migrate-state encrypts and decrypts a state in place.
#[test]
fn state_is_encrypted_at_rest_and_init_migrates_in_and_out_of_it() {
    let marker = "postgres-password-Zq8";
    let resources = format!("resource \"tik_data\" \"a\" {{\n  input = \"{marker}\"\n}}\n");
    let encrypted = |backend: &str| {
        format!("tik {{\n{backend}  encryption {{\n    key_env = \"TIK_STATE_KEY\"\n  }}\n}}\n\n{resources}")
    };
    // Local: a plain state first, then encrypted in place.
    let p = Project::new(&[("main.tik.hcl", &resources)]);
    p.ok(&["apply", "--auto-approve"], 0);
    assert!(p.read("tik.tikstate").contains(marker));
    p.write("main.tik.hcl", &encrypted(""));
    let key = [("TIK_STATE_KEY", KEY_A)];
    let r = p.tik_env(&["plan"], &key);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(
        r.stderr.contains("not encrypted") && r.stderr.contains("--migrate-state"),
        "{}",
        lines(&r)
    );
    let r = p.tik_env(&["init", "--migrate-state"], &key);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let raw = std::fs::read(p.file("tik.tikstate")).unwrap();
    assert!(raw.starts_with(b"tik-sealed-v1\n"));
    assert!(!String::from_utf8_lossy(&raw).contains(marker));
    let r = p.tik_env(&["plan", "--detailed-exitcode"], &key);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // A change: journal and backup are sealed too.
    p.write(
        "main.tik.hcl",
        &format!(
            "{}\nresource \"tik_data\" \"b\" {{\n  input = \"{marker}\"\n}}\n",
            encrypted("")
        ),
    );
    let r = p.tik_env(&["apply", "--auto-approve"], &key);
    assert_eq!(r.code, 0, "{}", lines(&r));
    for f in ["tik.tikstate", "tik.tikstate.backup"] {
        let bytes = std::fs::read(p.file(f)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(marker),
            "{f} holds the secret"
        );
    }
    let sealed = std::fs::read(p.file("tik.tikstate")).unwrap();
    // Missing, malformed and wrong keys.
    let r = p.tik_env(&["plan"], &[("TIK_STATE_KEY", "")]);
    assert!(
        r.code == 1 && r.stderr.contains("$TIK_STATE_KEY, which is not set"),
        "{}",
        lines(&r)
    );
    let r = p.tik_env(&["plan"], &[("TIK_STATE_KEY", "hunter2")]);
    assert!(
        r.code == 1 && r.stderr.contains("64 hex digits"),
        "{}",
        lines(&r)
    );
    let r = p.tik_env(&["plan"], &[("TIK_STATE_KEY", KEY_B)]);
    assert!(
        r.code == 1 && r.stderr.contains("cannot decrypt"),
        "{}",
        lines(&r)
    );
    assert_eq!(
        std::fs::read(p.file("tik.tikstate")).unwrap(),
        sealed,
        "left as it was"
    );
    // Decrypted again.
    p.write(
        "main.tik.hcl",
        &format!("{resources}\nresource \"tik_data\" \"b\" {{\n  input = \"{marker}\"\n}}\n"),
    );
    let r = p.tik(&["plan"]);
    assert!(
        r.code == 1 && r.stderr.contains("encryption changed"),
        "{}",
        lines(&r)
    );
    let r = p.tik_env(&["init", "--migrate-state"], &key);
    assert_eq!(r.code, 0, "{}", lines(&r));
    assert!(p.read("tik.tikstate").contains(marker));
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // S3: snapshot, journal objects and backup, encrypted client-side.
    let moto = Moto::start();
    make_bucket(&moto.endpoint, true);
    let s3_block = format!(
        "  backend \"s3\" {{\n    bucket = \"{BUCKET}\"\n    key    = \"{KEY}\"\n    region = \"us-east-1\"\n  }}\n"
    );
    let q = Project::new(&[("main.tik.hcl", &encrypted(&s3_block))]);
    let init = init_with(&q, &moto.endpoint, &key);
    assert_eq!(init.code, 0, "{}", lines(&init));
    let r = q.tik_env(&["apply", "--auto-approve"], &key);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let stored = get_object(&moto.endpoint, KEY).unwrap();
    assert!(stored.starts_with("tik-sealed-v1\n") && !stored.contains(marker));
    let r = q.tik_env(&["state", "list"], &key);
    assert!(
        r.code == 0 && r.stdout.contains("tik_data.a"),
        "{}",
        lines(&r)
    );

    // A KMS key instead: data keys from KMS, wrapped beside the sealed bytes.
    let kms_key = |endpoint: &str| {
        block_on(async {
            let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .load()
                .await;
            let out = aws_sdk_kms::Client::new(&conf)
                .create_key()
                .send()
                .await
                .unwrap();
            out.key_metadata().unwrap().key_id().to_string()
        })
    };
    let (kms_a, kms_b) = (kms_key(&moto.endpoint), kms_key(&moto.endpoint));
    let with_kms = |id: &str| {
        format!(
            "tik {{\n  backend \"s3\" {{\n    bucket = \"{BUCKET}\"\n    key    = \"kms/etl.tikstate\"\n    region = \"us-east-1\"\n  }}\n  encryption {{\n    kms_key_id = \"{id}\"\n    region     = \"us-east-1\"\n  }}\n}}\n\n{resources}"
        )
    };
    let k = Project::new(&[("main.tik.hcl", &with_kms(&kms_a))]);
    let aws = [("AWS_ENDPOINT_URL", moto.endpoint.as_str())];
    let r = init_with(&k, &moto.endpoint, &aws);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let r = k.tik_env(&["apply", "--auto-approve"], &aws);
    assert_eq!(r.code, 0, "{}", lines(&r));
    let stored = get_object(&moto.endpoint, "kms/etl.tikstate").unwrap();
    assert!(stored.starts_with("tik-sealed-v1\n") && !stored.contains(marker));
    let r = k.tik_env(&["plan", "--detailed-exitcode"], &aws);
    assert_eq!(r.code, 0, "{}", lines(&r));
    // Another KMS key cannot open it; the state is left as it is.
    k.write("main.tik.hcl", &with_kms(&kms_b));
    let r = k.tik_env(&["init", "--reconfigure"], &aws);
    assert_eq!(r.code, 1, "{}", lines(&r));
    assert!(r.stderr.contains("KMS key"), "{}", lines(&r));
    assert_eq!(
        get_object(&moto.endpoint, "kms/etl.tikstate").unwrap(),
        stored
    );
}

/// `tik scale` and the controller with their state in S3, encrypted: the recorded
/// size and the controller's status record are in the store, sealed; status reads
/// it back, and a second controller is refused through it.
#[test]
fn the_controller_keeps_its_state_and_its_record_in_s3_sealed() {
    let moto = Moto::start();
    make_bucket(&moto.endpoint, false);
    let config = format!(
        "tik {{\n  backend \"s3\" {{\n    bucket = \"{BUCKET}\"\n    key    = \"{KEY}\"\n    region = \"us-east-1\"\n  }}\n  encryption {{\n    key_env = \"TIK_STATE_KEY\"\n  }}\n}}\n\n{}",
        common::cluster_config(1, "small")
    );
    let key = [("TIK_STATE_KEY", KEY_A)];
    let p = Project::new(&[("main.tik.hcl", &config)]);
    let r = p.tik_env(
        &[
            "init",
            "--backend-config",
            &format!("endpoint={}", moto.endpoint),
        ],
        &key,
    );
    assert_eq!(r.code, 0, "{}", lines(&r));
    let run = |args: &[&str], code: i32| {
        let r = p.tik_env(args, &key);
        assert_eq!(r.code, code, "tik {}: {}", args.join(" "), lines(&r));
        r
    };
    run(&["apply", "--auto-approve"], 0);
    run(&["scale", "etl", "2"], 0);
    let r = run(&["controller", "--once"], 0);
    assert!(r.stdout.contains("round done: 1 added"), "{}", lines(&r));
    run(&["plan", "--detailed-exitcode"], 0);
    let record = format!("{KEY}.records/controller-cluster_2eetl");
    let stored = get_object(&moto.endpoint, &record).expect("the record is in the bucket");
    assert!(
        stored.starts_with("tik-sealed") || !stored.contains("who"),
        "sealed: {stored}"
    );
    let state = get_object(&moto.endpoint, KEY).unwrap();
    assert!(!state.contains("\"sizes\""), "the state is sealed");
    let status = run(&["status"], 0).stdout;
    assert!(status.contains("  controller  stopped at "), "{status}");
    // A running one is named to a second, through the store.
    let mut first = p
        .command(&["controller", "--interval", "1s"])
        .env("TIK_STATE_KEY", KEY_A)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = p.tik_env(&["status"], &key).stdout;
        if s.contains("  controller  running in the foreground") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller never said it runs: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = run(&["controller", "--once"], 1);
    assert!(
        r.stderr
            .contains("cluster etl is kept by another controller"),
        "{}",
        lines(&r)
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    assert!(first.wait().unwrap().success());
    run(&["destroy", "--auto-approve"], 0);
}
