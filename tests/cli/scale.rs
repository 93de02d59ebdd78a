//! `tik scale`: a pool's desired size recorded in state, which plan, drift and apply
//! take as desired, within the pool's bounds.

use crate::common::{cluster_config, Project};

fn workers(p: &Project) -> Vec<String> {
    let dir = p.file(".tik/local/workspaces/dev/clusters/etl");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("worker-"))
        .collect();
    names.sort();
    names
}

/// Two pools, so that `--pool` is needed and a misspelt one gets its close name.
fn two_pools(min: u32, max: u32) -> String {
    cluster_config(1, "small").replace(
        "    max           = 10\n  }\n",
        &format!(
            "    max           = 10\n  }}\n  workers \"big\" {{\n    instance_type = \"large\"\n    min           = {min}\n    max           = {max}\n  }}\n"
        ),
    )
}

#[test]
fn a_recorded_size_is_what_plan_and_apply_want_until_the_bounds_move() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    let state_before = p.read("tik.tikstate");

    let r = p.ok(&["scale", "etl", "3"], 0);
    assert!(
        r.stdout.contains(
            "Recorded cluster etl, workers \"default\": 3 workers (was 1; min 1, max 10)."
        ),
        "{}",
        r.out()
    );
    assert_ne!(
        p.read("tik.tikstate"),
        state_before,
        "scale records in state"
    );
    assert_eq!(workers(&p), ["worker-default-0"], "scale only records");

    // The recorded size is desired: the plan adds two workers and says why.
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        r.stdout.contains(
            "Pool sized by tik scale: cluster etl, workers \"default\": 3 (min 1, max 10)"
        ),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["plan", "--json"], 0).stdout).unwrap();
    assert_eq!(json["pools"][0]["size"], 3, "{json}");
    assert_eq!(json["pools"][0]["recorded"], 3, "{json}");
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        workers(&p),
        ["worker-default-0", "worker-default-1", "worker-default-2"]
    );
    // What was scaled is neither drift nor a change; asking again changes nothing.
    p.ok(&["plan", "--detailed-exitcode"], 0);
    p.ok(&["drift"], 0);
    let state_scaled = p.read("tik.tikstate");
    let r = p.ok(&["scale", "etl", "3"], 0);
    assert!(
        r.stdout.contains("already its recorded size"),
        "{}",
        r.out()
    );
    assert_eq!(p.read("tik.tikstate"), state_scaled);
    assert!(p
        .ok(&["show"], 0)
        .stdout
        .contains("cluster etl, workers \"default\" = 3"));
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"]["cluster.etl"]["default"], 3, "{shown}");

    // Down: the newest workers go first.
    p.ok(&["scale", "etl", "2"], 0);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 0 added, 0 changed, 0 replaced, 1 destroyed."),
        "{}",
        r.out()
    );
    assert_eq!(workers(&p), ["worker-default-0", "worker-default-1"]);

    // A max below the recorded size clamps it, and apply records the clamp: raising
    // max again does not bring the old size back.
    p.write(
        "main.tik.hcl",
        &cluster_config(1, "small").replace("max           = 10", "max           = 1"),
    );
    let r = p.ok(&["plan"], 0);
    assert!(
        r.stdout.contains(
            "workers \"default\": 1 (min 1, max 1, 2 recorded is outside the bounds now)"
        ),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(workers(&p), ["worker-default-0"]);
    p.write("main.tik.hcl", &cluster_config(1, "small"));
    p.ok(&["plan", "--detailed-exitcode"], 0);
    // A min above it does too.
    p.write("main.tik.hcl", &cluster_config(2, "small"));
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(workers(&p), ["worker-default-0", "worker-default-1"]);
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"]["cluster.etl"]["default"], 2, "{shown}");

    // Destroy forgets the sizes with the cluster.
    p.ok(&["destroy", "--auto-approve"], 0);
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"], serde_json::json!({}), "{shown}");
}

#[test]
fn a_bad_scale_request_says_why_and_changes_nothing() {
    let p = Project::new(&[("main.tik.hcl", &two_pools(0, 2))]);
    p.ok(&["apply", "--auto-approve"], 0);
    let state = p.read("tik.tikstate");
    let cases: &[(&[&str], &str)] = &[
        (
            &["scale", "elt", "2"],
            "no cluster \"elt\" with worker pools",
        ),
        (&["scale", "elt", "2"], "did you mean \"etl\"?"),
        (
            &["scale", "etl", "2"],
            "cluster etl has 2 worker pools: say which with --pool",
        ),
        (
            &["scale", "etl", "--pool", "bgi", "1"],
            "did you mean \"big\"?",
        ),
        (
            &["scale", "etl", "--pool", "big", "3"],
            "workers \"big\" of cluster etl takes from 0 to 2 workers: 3 is more than its max",
        ),
        (
            &["scale", "etl", "--pool", "default", "0"],
            "0 is less than its min",
        ),
        (
            &["scale", "etl", "--pool", "big", "two"],
            "the size must be a whole number of workers, got \"two\"",
        ),
        (&["scale", "etl", "--pool", "big", "--", "-1"], "got \"-1\""),
        (&["scale", "etl", "--pool", "big", "1.5"], "got \"1.5\""),
        (
            &["scale", "etl", "--pool", "big", "99999999999999999999999"],
            "must be a whole number",
        ),
    ];
    for (args, wanted) in cases {
        let r = p.ok(args, 1);
        assert!(r.stderr.contains(wanted), "{args:?}: {}", r.out());
        assert!(!r.stderr.contains("panicked"), "{}", r.out());
        assert_eq!(p.read("tik.tikstate"), state, "{args:?} changed state");
    }
    // The pool named right, within bounds: recorded, and apply adds the large worker.
    p.ok(&["scale", "etl", "--pool", "big", "1"], 0);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 1 added, 0 changed, 0 replaced, 0 destroyed."),
        "{}",
        r.out()
    );
    assert_eq!(workers(&p), ["worker-big-0", "worker-default-0"]);
    // A pool removed from the files takes its recorded size with it.
    p.write("main.tik.hcl", &cluster_config(1, "small"));
    p.ok(&["apply", "--auto-approve"], 0);
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "--json"], 0).stdout).unwrap();
    assert_eq!(shown["sizes"], serde_json::json!({}), "{shown}");
}

#[test]
fn a_plan_saved_before_a_scale_is_stale() {
    let p = Project::new(&[("main.tik.hcl", &cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.ok(&["plan", "--out", "saved.plan"], 0);
    p.ok(&["scale", "etl", "2"], 0);
    let r = p.ok(&["apply", "saved.plan"], 1);
    assert!(
        r.stderr.contains("stale") || r.stderr.contains("changed since"),
        "{}",
        r.out()
    );
    assert_eq!(workers(&p), ["worker-default-0"]);
}
