//! Plans a reviewer can read: each node with its session and steps as one entry, a
//! step's attributes only where they change, the same change on many nodes shown
//! once, the full text one flag away.

use crate::common::{cluster_config_with, Project};

fn config(workers: u32, title: &str) -> String {
    let web = format!("  runtime \"web\" {{\n    title = \"{title}\"\n  }}\n");
    cluster_config_with(workers, "small", &web)
}

#[test]
fn a_plan_shows_each_node_with_what_runs_on_it_as_one_entry() {
    let p = Project::new(&[("main.tik.hcl", &config(2, "one"))]);
    let plan = p.ok(&["plan"], 0).stdout;
    for node in ["head", "worker-default-0", "worker-default-1"] {
        assert!(
            plan.contains(&format!(
                "  + node \"{node}\" (local_node, instance_type = \"small\")\n      + session\n      + web server: install, configure, start\n"
            )),
            "{node}\n{plan}"
        );
    }
    assert!(
        plan.contains("# cluster.etl.node.worker[\"default\"][1] will be created\n"),
        "{plan}"
    );
    assert!(
        plan.contains("Nodes: 3 to add (9 steps to run).\nPlan: 17 to add, 0 to change, 0 to replace, 0 to destroy.\n"),
        "{plan}"
    );
    // The runtime's endpoints, as tik status will list them, in one short entry.
    assert!(
        plan.contains("  # cluster.etl.endpoints[\"web\"]: web's endpoints are recorded (tik status lists them)\n  + url = \"http://(the head's address):8000/\"\n"),
        "{plan}"
    );
    // No script, no step record: those are one flag away.
    assert!(
        !plan.contains("tik_step") && !plan.contains("EOT"),
        "{plan}"
    );
    // The bound for a 3-node cluster is 80; this one is 33 with its output
    // and its endpoints.
    assert!(
        plan.lines().count() <= 33,
        "{} lines:\n{plan}",
        plan.lines().count()
    );
    let verbose = p.ok(&["plan", "--verbose"], 0).stdout;
    assert!(
        verbose.contains(
            "  # cluster.etl.node.head.runtime.web.service.server.install will run\n  + tik_step {\n"
        ) && verbose.contains("+ script         = <<-EOT"),
        "{verbose}"
    );
    assert!(verbose.lines().count() > 150, "{verbose}");
    // --json holds every resource whatever the view.
    let json = p.ok(&["plan", "--json"], 0).stdout;
    assert_eq!(json.matches("\"type\": \"tik_step\"").count(), 9, "{json}");
}

#[test]
fn a_param_change_shows_its_diff_once_and_one_more_worker_is_one_entry() {
    let p = Project::new(&[("main.tik.hcl", &config(2, "one"))]);
    p.ok(&["apply", "--auto-approve"], 0);

    p.write("main.tik.hcl", &config(2, "two"));
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains(
            "  # cluster.etl.node.head is unchanged; what runs on it changes\n      ~ web server: configure will run again (a param it uses changed)\n"
        ),
        "{plan}"
    );
    assert_eq!(
        plan.matches("~ TIK_PARAM_TITLE = \"one\" -> \"two\"")
            .count(),
        1,
        "the diff is shown once:\n{plan}"
    );
    assert_eq!(
        plan.matches("# (the same changes as on cluster.etl.node.head)")
            .count(),
        2,
        "{plan}"
    );
    // A restart caused by an earlier step says why, without its hashes.
    assert!(
        plan.contains(
            "~ web server: start will run again (an earlier step of its service changed)\n"
        ) && !plan.contains("after_hash"),
        "{plan}"
    );
    assert!(
        plan.contains("Nodes: 3 to change (6 steps to run again).\nPlan: 0 to add, 6 to change,"),
        "{plan}"
    );
    assert!(plan.lines().count() < 30, "{plan}");
    p.ok(&["apply", "--auto-approve"], 0);

    p.write("main.tik.hcl", &config(3, "two"));
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("  + node \"worker-default-2\" (local_node, instance_type = \"small\")\n"),
        "{plan}"
    );
    assert!(
        plan.contains("Nodes: 1 to add (3 steps to run).\nPlan: 5 to add, 0 to change,"),
        "{plan}"
    );
    assert!(
        plan.lines().count() < 20,
        "{} lines:\n{plan}",
        plan.lines().count()
    );

    // One worker fewer: the node goes with what ran on it.
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("main.tik.hcl", &config(2, "two"));
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("  # cluster.etl.node.worker[\"default\"][2] will be destroyed\n"),
        "{plan}"
    );
    // In the order they go: the service stops first.
    assert!(
        plan.contains("  # (it is no longer in the configuration)\n  - node \"worker-default-2\" (local_node, instance_type = \"small\")\n      - session\n      - web server: start, configure, install (undone)\n"),
        "{plan}"
    );
    assert!(
        plan.contains("Nodes: 1 to destroy (3 steps to undo).\n"),
        "{plan}"
    );
}
