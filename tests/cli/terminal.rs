//! What the terminal sees: colour only on a terminal, paths relative to -C.

use crate::common;
use crate::common::Project;

/// What the terminal shows of `tik ARGS`, with NO_COLOR set or not.
fn on_a_terminal(p: &Project, args: &str, no_color_env: bool) -> String {
    let no_color = if no_color_env { Some("1") } else { None };
    let out = common::on_a_terminal(p, args, "", &[("NO_COLOR", no_color)]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_when_asked_not_to() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = 1\n}\n",
    )]);
    let tty = on_a_terminal(&p, "plan", false);
    assert!(tty.contains("\x1b[32m  +\x1b[0m tik_data {"), "{tty:?}");
    assert!(!on_a_terminal(&p, "plan --no-color", false).contains('\x1b'));
    assert!(!on_a_terminal(&p, "plan", true).contains('\x1b'));
    let piped = p.ok(&["plan"], 0).stdout;
    assert!(!piped.contains('\x1b'), "{piped:?}");
}

#[test]
fn paths_on_the_command_line_are_relative_to_dash_c() {
    let p = Project::new(&[
        (
            "infra/main.tik.hcl",
            "variable \"v\" {}\nresource \"tik_data\" \"a\" {\n  input = var.v\n}\n",
        ),
        ("infra/dev.tikvars", "v = \"from-file\"\n"),
    ]);
    let r = p.ok(
        &[
            "-C",
            "infra",
            "plan",
            "--var-file",
            "dev.tikvars",
            "--out",
            "saved.plan",
        ],
        0,
    );
    assert!(r.stdout.contains("+ input  = \"from-file\""), "{}", r.out());
    assert!(p.file("infra/saved.plan").exists());
    let r = p.ok(&["-C", "infra", "apply", "saved.plan", "--var", "v=x"], 1);
    assert!(
        r.stderr
            .contains("a saved plan is applied exactly as it was made"),
        "{}",
        r.out()
    );
    p.ok(&["-C", "infra", "apply", "saved.plan"], 0);
    assert!(p.file("infra/tik.tikstate").exists());
    let r = p.ok(&["-C", "nowhere", "plan"], 1);
    assert!(
        r.stderr.contains("cannot change to the directory nowhere"),
        "{}",
        r.out()
    );
}

#[test]
fn apply_on_a_terminal_keeps_what_runs_in_view() {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  runtime \"slow\" {}\n}\n",
        ),
        (
            "runtimes/slow/runtime.tik.hcl",
            "runtime \"slow\" {\n  description = \"takes its time\"\n  service \"s\" {\n    on      = \"head\"\n    install = \"sleep 1.5\"\n  }\n}\n",
        ),
    ]);
    let tty = on_a_terminal(&p, "apply --auto-approve", true);
    // The count above what runs, and the line of the step running with its time...
    assert!(tty.contains(" done, 1 running, "), "{tty:?}");
    assert!(
        tty.contains("cluster.c.node.head.runtime.slow.service.s.install: Creating..."),
        "{tty:?}"
    );
    // ...and what finished, as a pipe gets it.
    assert!(
        tty.contains("cluster.c.node.head.runtime.slow.service.s.install: Creation complete after"),
        "{tty:?}"
    );
    let piped = p.ok(&["destroy", "--auto-approve"], 0).stdout;
    assert!(!piped.contains(" running, "), "{piped}");
}

/// A step that fails while the live view shows it: the failure and its output are
/// printed as a pipe gets them, the view ends before the summary, and the exit code
/// says the apply failed.
#[test]
fn a_failure_on_a_terminal_ends_the_live_view_with_what_failed() {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  runtime \"broken\" {}\n}\n",
        ),
        (
            "runtimes/broken/runtime.tik.hcl",
            "runtime \"broken\" {\n  description = \"fails\"\n  service \"s\" {\n    on      = \"head\"\n    install = \"sleep 1.5; echo the-disk-is-full >&2; exit 3\"\n  }\n}\n",
        ),
    ]);
    let out = common::on_a_terminal(&p, "apply --auto-approve", "", &[("NO_COLOR", Some("1"))]);
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    // `script -e` exits with tik's code.
    assert_eq!(out.status.code(), Some(1), "{tty:?}");
    assert!(
        tty.contains(" 1 running, "),
        "the view showed the step: {tty:?}"
    );
    assert!(
        tty.contains("cluster.c.node.head.runtime.broken.service.s.install: create failed: StepFailed: install failed (exit 3)"),
        "{tty:?}"
    );
    assert!(tty.contains("the-disk-is-full"), "{tty:?}");
    // The view's last count has the failure; nothing of it after the summary.
    let summary = tty.rfind("Apply failed").expect("a summary");
    assert!(
        tty[..summary].contains("3 done, 0 running, 0 left, 1 failed"),
        "{tty:?}"
    );
    assert!(!tty[summary..].contains(" running, "), "{tty:?}");
}
