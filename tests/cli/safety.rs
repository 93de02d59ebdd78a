//! Failures, locks and interruptions: the state always knows what exists.

use crate::common;
use crate::common::{cluster_config, Cleanup, Project};
use std::time::{Duration, Instant};

#[test]
fn a_failure_skips_its_dependents_and_independent_branches_go_on() {
    let p = Project::new(&[(
        "main.tik.hcl",
        // `blocker` is a file, so a file cannot be created below it.
        "resource \"local_file\" \"bad\" {\n  path    = \"blocker/child.txt\"\n  content = \"x\"\n}\nresource \"tik_data\" \"after_bad\" {\n  input = local_file.bad.id\n}\nresource \"tik_data\" \"independent\" {\n  input = \"fine\"\n}\nresource \"tik_data\" \"after_independent\" {\n  input = tik_data.independent.id\n}\n",
    )]);
    p.write("blocker", "a file, not a directory");
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains("Apply failed: 1 change(s) failed."),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("  - local_file.bad: "), "{}", r.out());
    assert!(
        r.stderr
            .contains("Skipped because something they need failed: tik_data.after_bad"),
        "{}",
        r.out()
    );
    let listed = p.ok(&["state", "list"], 0).stdout;
    assert!(
        listed.contains("tik_data.independent") && listed.contains("tik_data.after_independent"),
        "{listed}"
    );
    assert!(!listed.contains("tik_data.after_bad"), "{listed}");
    // The failed create is recorded as tainted, and the next plan replaces it.
    assert!(p
        .ok(&["state", "show", "local_file.bad"], 0)
        .stdout
        .contains("# status: tainted"));
    std::fs::remove_file(p.file("blocker")).unwrap();
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("tik_data.after_bad: Creation complete"),
        "{}",
        r.out()
    );
    assert_eq!(p.read("blocker/child.txt"), "x");
}

#[test]
fn only_what_had_something_to_do_is_named_as_skipped() {
    let config = |path: &str| {
        format!(
            "resource \"local_file\" \"moved\" {{\n  path    = \"{path}\"\n  content = \"x\"\n}}\nresource \"tik_data\" \"steady\" {{\n  input      = \"same\"\n  depends_on = [local_file.moved]\n}}\nresource \"tik_data\" \"follows\" {{\n  input = local_file.moved.path\n}}\n"
        )
    };
    let p = Project::new(&[("main.tik.hcl", &config("here.txt"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    // The file moves below a file, so its replacement fails. `steady` needs it but has
    // nothing to do; `follows` takes its path, so it had an update planned.
    p.write("blocker", "a file, not a directory");
    p.write("main.tik.hcl", &config("blocker/there.txt"));
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr
            .contains("Skipped because something they need failed: tik_data.follows\n"),
        "{}",
        r.out()
    );
    assert!(!r.stderr.contains("tik_data.steady"), "{}", r.out());
}

#[test]
fn what_is_skipped_in_a_repeated_module_is_named_by_its_block() {
    let module = "variable \"path\" {}\nresource \"local_file\" \"moved\" {\n  path    = var.path\n  content = \"x\"\n}\nresource \"tik_data\" \"follows\" {\n  input = local_file.moved.path\n}\n";
    let root = |path: &str| {
        format!("module \"m\" {{\n  source = \"./m\"\n  count  = 1\n  path   = \"${{path.root}}/{path}\"\n}}\n")
    };
    let p = Project::new(&[
        ("main.tik.hcl", &root("here.txt")),
        ("m/main.tik.hcl", module),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("blocker", "a file, not a directory");
    p.write("main.tik.hcl", &root("blocker/there.txt"));
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr
            .contains("Skipped because something they need failed: module.m.tik_data.follows\n"),
        "{}",
        r.out()
    );
}
#[test]
fn a_second_apply_fails_at_once_naming_the_holder_and_force_unlock_frees_it() {
    let p = Project::new(&[("main.tik.hcl", &many_files(3000))]);
    let log = p.file("first.log");
    let mut first = p
        .command(&["apply", "--auto-approve", "--parallelism", "1"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p.file("tik.tikstate.journal").exists() {
        assert!(
            Instant::now() < deadline && first.try_wait().unwrap().is_none(),
            "the first apply never got going"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it must fail at once, not wait"
    );
    let lock: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate.lock")).unwrap();
    let id = lock["id"].as_str().unwrap().to_string();
    let holder = format!(
        "is locked by {} (operation apply, since {}, lock id {id})",
        lock["who"].as_str().unwrap(),
        lock["created"].as_str().unwrap()
    );
    assert!(r.stderr.contains(&holder), "{holder}\n{}", r.out());
    assert!(
        r.stderr.contains(&format!("tik force-unlock {id}")),
        "{}",
        r.out()
    );
    // Its holder is still going: force-unlock refuses to take the lock from under it.
    let refused = p.tik(&["force-unlock", &id]);
    if first.try_wait().unwrap().is_none() {
        assert_eq!(refused.code, 1, "{}", refused.out());
        assert!(
            refused.stderr.contains("still going") && refused.stderr.contains("--force"),
            "{}",
            refused.out()
        );
        assert!(p.file("tik.tikstate.lock").exists());
    }
    assert!(first.wait().unwrap().success());
    assert!(
        !p.file("tik.tikstate.lock").exists(),
        "a finished apply releases its lock"
    );

    // A lock file whose holder is gone (a crash) does not block the next run.
    p.write("tik.tikstate.lock", "{\"id\": \"1b2c\", \"who\": \"ana@ci-7\", \"operation\": \"apply\", \"created\": \"2026-11-22T10:00:00Z\", \"version\": \"0.1.0\"}");
    assert!(p
        .ok(&["force-unlock", "nope"], 1)
        .stderr
        .contains("not nope"));
    p.ok(&["force-unlock", "1b2c"], 0);
    assert!(!p.file("tik.tikstate.lock").exists());
    p.write("tik.tikstate.lock", "{\"id\": \"1b2c\"}");
    p.ok(&["plan"], 0);
    p.ok(&["state", "rm", "local_file.f0"], 0);
}

fn many_files(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("resource \"local_file\" \"f{i}\" {{\n  path    = \"out/f{i}.txt\"\n  content = \"{i}\"\n}}\n"));
    }
    s
}

/// Files that exist under out/ and addresses in state.
fn files_and_state(p: &Project) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<String> = std::fs::read_dir(p.file("out"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .trim_end_matches(".txt")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let state = p.ok(&["state", "list"], 0).stdout;
    let mut names: Vec<String> = state
        .lines()
        .map(|l| l.trim_start_matches("local_file.").to_string())
        .collect();
    names.sort();
    (files, names)
}

#[test]
fn kill_9_in_the_middle_of_an_apply_loses_no_record_of_what_was_created() {
    let p = Project::new(&[("main.tik.hcl", &many_files(3000))]);
    let mut child = p
        .command(&["apply", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = p.file("tik.tikstate.journal");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait until a few hundred changes are journalled, then kill without warning.
    while std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) < 100_000 {
        assert!(Instant::now() < deadline, "the apply never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply finished before it could be killed: give it more work"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (files, names) = files_and_state(&p);
    assert!(
        !files.is_empty() && files.len() < 3000,
        "{} files",
        files.len()
    );
    for f in &files {
        assert!(names.contains(f), "{f} exists but state does not know it");
    }
    // The next apply finishes the job, creating each file once.
    let r = p.ok(&["apply", "--auto-approve"], 0);
    let added: usize = r
        .stdout
        .lines()
        .filter(|l| l.ends_with("Creating..."))
        .count();
    assert!(added <= 3000 - files.len() + 1, "{added} created again");
    let (files, names) = files_and_state(&p);
    assert_eq!(files.len(), 3000);
    assert_eq!(names.len(), 3000);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn ctrl_c_stops_scheduling_finishes_what_runs_and_saves_state() {
    let p = Project::new(&[("main.tik.hcl", &many_files(3000))]);
    let log = p.file("apply.log");
    let mut child = p
        .command(&["apply", "--auto-approve", "--parallelism", "2"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let journal = p.file("tik.tikstate.journal");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) < 50_000 {
        assert!(Instant::now() < deadline, "the apply never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply finished before the interrupt: give it more work"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Interrupted: no new changes start"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply interrupted; state saved."),
        "{stdout}"
    );
    assert!(
        stdout.contains("did not start. Run tik apply again to finish."),
        "{stdout}"
    );
    // Saved means folded into the snapshot: no journal left, and no lock.
    assert!(!journal.exists());
    assert!(!p.file("tik.tikstate.lock").exists());
    let (files, names) = files_and_state(&p);
    assert_eq!(
        files, names,
        "every file that exists is in state, and only those"
    );
    p.ok(&["apply", "--auto-approve"], 0);
}

/// A pool label becomes a node's name and directory: one that climbs out of the
/// project is refused at its line, before anything is made.
#[test]
fn a_pool_label_that_climbs_out_of_the_project_is_refused() {
    let victim = tempfile::tempdir().unwrap();
    let label = format!("../../../../../../../../..{}/x", victim.path().display());
    let config = cluster_config(1, "small").replace(
        "workers \"default\"",
        &format!("workers \"{}\"", label.replace('"', "\\\"")),
    );
    let p = Project::new(&[("main.tik.hcl", &config)]);
    for cmd in ["validate", "plan", "apply"] {
        let r = p.tik(&[cmd, "--auto-approve"][..if cmd == "apply" { 2 } else { 1 }]);
        assert_eq!(r.code, 1, "{}", r.out());
        assert!(
            r.stderr.contains("must be 1 to 63 letters, digits, - or _")
                && r.stderr.contains("main.tik.hcl:10:3"),
            "{}",
            r.out()
        );
    }
    assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
    // Made by a dynamic block, the label is refused where `labels` gives it.
    let dynamic = cluster_config(1, "small").replace(
        "  workers \"default\" {",
        &format!(
            "  dynamic \"workers\" {{\n    for_each = [\"a\"]\n    labels   = [\"{}\"]\n    content {{\n      min = 1\n    }}\n  }}\n  workers \"default\" {{",
            label.replace('"', "\\\"")
        ),
    );
    p.write("main.tik.hcl", &dynamic);
    let r = p.tik(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains("must be 1 to 63 letters") && r.stderr.contains("main.tik.hcl:12:16"),
        "{}",
        r.out()
    );
}

/// The value a hostile user would pass: any splice of it into a script's text shows
/// it whole (shell quoting would have changed its quotes).
const PAYLOAD: &str = "1';touch PWN;'\"$(touch PWN)\"`touch PWN`";

/// Every param of every shipped runtime, set to a hostile value, is either refused at
/// plan time or reaches the node's scripts as a variable: never as text in a script.
#[test]
fn no_param_of_a_shipped_runtime_is_spliced_into_a_script() {
    let runtimes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/runtimes");
    let param = regex_lite_params();
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(&runtimes)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('_'))
        .collect();
    names.sort();
    for runtime in &names {
        let text = std::fs::read_to_string(runtimes.join(runtime).join("runtime.tik.hcl")).unwrap();
        let params = param(&text);
        assert!(!params.is_empty(), "{runtime} declares no param");
        // The params a runtime needs, given plain values.
        let mut needed: Vec<String> = Vec::new();
        let project = |needed: &[String], extra: &str| {
            let body: String = needed
                .iter()
                .map(|n| format!("    {n} = \"plain-value-1\"\n"))
                .chain([extra.to_string()])
                .collect();
            Project::new(&[(
                "main.tik.hcl",
                &cluster_config(2, "small").replace(
                    "    max           = 10\n  }\n",
                    &format!(
                        "    max           = 10\n  }}\n  runtime \"{runtime}\" {{\n{body}  }}\n"
                    ),
                ),
            )])
        };
        loop {
            let r = project(&needed, "").tik(&["plan", "--json"]);
            if r.code == 0 {
                break;
            }
            let need = r
                .stderr
                .split("needs param \"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap_or_else(|| panic!("{runtime} does not plan:\n{}", r.out()))
                .to_string();
            needed.push(need);
        }
        for name in &params {
            let others: Vec<String> = needed.iter().filter(|n| *n != name).cloned().collect();
            let value = format!("    {name} = {}\n", serde_json::to_string(PAYLOAD).unwrap());
            let r = project(&others, &value).tik(&["plan", "--json"]);
            checked += 1;
            if r.code != 0 {
                continue; // refused at plan time
            }
            let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            for c in plan["changes"].as_array().unwrap() {
                let Some(after) = c["after"].as_object() else {
                    continue;
                };
                // The endpoints' record is text tik status prints, never run: an
                // endpoint says what the user gave (postgres's url names its database).
                if c["type"] == "tik_endpoints" {
                    continue;
                }
                for (k, v) in after.iter().filter(|(k, _)| *k != "env") {
                    assert!(
                        !v.to_string().contains("touch PWN"),
                        "{runtime}'s param {name} is spliced into {} ({k}):\n{v}",
                        c["address"]
                    );
                }
            }
        }
    }
    assert!(checked > 90, "only {checked} params checked");
}

/// `param "NAME"` declarations of a runtime definition.
fn regex_lite_params() -> impl Fn(&str) -> Vec<String> {
    |text: &str| {
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix("param \""))
            .filter_map(|l| l.split('"').next())
            .map(str::to_string)
            .collect()
    }
}

/// A sensitive value is in no file others can read and on no screen unless asked for.
#[test]
fn secrets_stay_in_files_only_their_owner_reads_and_off_the_screen() {
    use std::os::unix::fs::PermissionsExt;
    let secret = "hunter2-very-secret";
    let config = format!(
        "{}\nvariable \"password\" {{\n  sensitive = true\n  default   = \"{secret}\"\n}}\nresource \"tik_data\" \"d\" {{ input = var.password }}\noutput \"pw\" {{\n  value     = var.password\n  sensitive = true\n}}\n",
        cluster_config(1, "small").replace(
            "    max           = 10\n  }\n",
            "    max           = 10\n  }\n  runtime \"web\" { title = var.password }\n",
        )
    );
    let p = Cleanup(Project::new(&[("main.tik.hcl", &config)]));
    p.ok(&["plan", "--out", "saved.plan"], 0);
    p.ok(&["apply", "saved.plan"], 0);
    let mode = |f: &str| std::fs::metadata(p.file(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("saved.plan"), 0o600);
    assert_eq!(mode("tik.tikstate"), 0o600);
    // Passable (a local node's services may run as other users), not listable.
    assert_eq!(mode(".tik"), 0o711);
    assert_eq!(mode(".tik/logs"), 0o700);
    assert!(p.read("tik.tikstate").contains(secret));
    let shown = p.ok(&["show", "--json"], 0).stdout;
    assert!(!shown.contains(secret), "{shown}");
    let state: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(state["resources"].as_array().unwrap().len() > 5);
    assert_eq!(state["outputs"]["pw"]["value"], "(sensitive)");
    assert!(!p.ok(&["show"], 0).stdout.contains(secret));
    assert_eq!(p.ok(&["output", "--raw", "pw"], 0).stdout.trim(), secret);
    p.ok(
        &["apply", "--auto-approve", "--var", "password=other-secret"],
        0,
    );
    assert_eq!(mode("tik.tikstate.backup"), 0o600);
}

/// What a crash or a restore leaves in the journal is told, and never dropped unread.
#[test]
fn a_torn_journal_is_told_and_one_ahead_of_its_snapshot_is_kept() {
    let p = Project::new(&[("main.tik.hcl", &many_files(2))]);
    p.ok(&["apply", "--auto-approve"], 0);
    // A write cut short at the journal's end: left out, with a warning.
    p.write("tik.tikstate.journal", "{\"journal\":1,\"lin");
    let r = p.ok(&["state", "list"], 0);
    assert!(
        r.stderr.contains("warning: the journal of the state")
            && r.stderr.contains("cut short (17 bytes)"),
        "{}",
        r.out()
    );
    std::fs::remove_file(p.file("tik.tikstate.journal")).unwrap();
    // The docs' advice for a damaged snapshot is to restore its .backup. A journal a
    // killed run left on the newer snapshot is refused then, not deleted.
    p.write("main.tik.hcl", &many_files(3));
    p.ok(&["apply", "--auto-approve"], 0);
    let newer = p.read("tik.tikstate");
    let serial =
        |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap()["serial"].clone();
    let journal = format!(
        "{{\"journal\":1,\"lineage\":\"{}\",\"base_serial\":{}}}\n{{\"op\":\"remove\",\"address\":\"local_file.f0\"}}\n",
        common::lineage(&p),
        serial(&newer)
    );
    p.write("tik.tikstate.journal", &journal);
    p.write("tik.tikstate", &p.read("tik.tikstate.backup"));
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("records 1 change made on top of serial")
            && r.stderr.contains("older than the journal"),
        "{}",
        r.out()
    );
    assert_eq!(p.read("tik.tikstate.journal"), journal);
    // Put back the snapshot it continues: it replays.
    p.write("tik.tikstate", &newer);
    let listed = p.ok(&["state", "list"], 0).stdout;
    assert!(!listed.contains("local_file.f0\n"), "{listed}");
}
