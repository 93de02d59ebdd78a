//! What a user finds without reading the source: the runtimes and what they take,
//! param mistakes caught at plan time, shell completion.

use crate::common::{self, Project};

#[test]
fn runtimes_lists_shipped_and_project_runtimes_and_shows_one() {
    let p = Project::new(&[
        ("main.tik.hcl", "locals {}\n"),
        (
            "runtimes/echo/runtime.tik.hcl",
            "runtime \"echo\" {\n  description = \"says hello\"\n  param \"greeting\" {\n    type        = string\n    default     = \"hi\"\n    description = \"what it says\"\n  }\n  param \"times\" {\n    type    = number\n    default = 1\n  }\n  service \"speaker\" {\n    on    = \"workers\"\n    ports = [param.times, 9999]\n    start = \"echo $TIK_PARAM_GREETING\"\n  }\n  endpoint \"where\" { value = \"${cluster.head.private_ip}\" }\n}\n",
        ),
    ]);
    let list = p.ok(&["runtimes"], 0).stdout;
    for line in [
        "spark       shipped  Apache Spark standalone",
        "echo        project  says hello",
        "web         shipped  static web server",
    ] {
        assert!(list.contains(line), "{line}\n{list}");
    }
    let spark = p.ok(&["runtimes", "show", "spark"], 0).stdout;
    for part in [
        "  install_method  one of \"archive\", \"pip\"; default \"archive\"\n",
        "  worker_cores    number; default 1\n",
        "  master on the head; ports master_port (7077), master_ui_port (8080); install, configure, start, stop, health\n",
        "  worker on every worker; ports worker_ui_port (8081)",
        "  ui_url = \"http://${cluster.head.private_ip}:${param.master_ui_port}/\"\n",
    ] {
        assert!(spark.contains(part), "{part}\n{spark}");
    }
    let echo = p.ok(&["runtimes", "show", "echo"], 0).stdout;
    assert!(
        echo.contains("echo — says hello (this project's runtimes/echo/)")
            && echo.contains("  greeting  string; default \"hi\"\n            what it says\n")
            && echo.contains("  speaker on every worker; ports times (1), 9999; start\n"),
        "{echo}"
    );
    let wrong = p.tik(&["runtimes", "show", "sprak"]);
    assert_eq!(wrong.code, 1, "{}", wrong.out());
    assert!(
        wrong.stderr.contains("there is no runtime \"sprak\"")
            && wrong.stderr.contains("did you mean \"spark\"?"),
        "{}",
        wrong.out()
    );
    // A broken project runtime is named where it is broken.
    p.write(
        "runtimes/echo/runtime.tik.hcl",
        "runtime \"echo\" {\n  param \"times\" {\n    type = numbr\n  }\n}\n",
    );
    let broken = p.tik(&["runtimes"]);
    assert_eq!(broken.code, 1, "{}", broken.out());
    assert!(
        broken.stderr.contains("runtime.tik.hcl:3:12"),
        "{}",
        broken.out()
    );
}

#[test]
fn param_values_are_checked_at_plan_time_against_their_declaration() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"etl\" {\n  workspace = workspace.dev\n  workers \"w\" {\n    min = 1\n    max = 2\n  }\n  runtime \"spark\" {\n    worker_cores   = \"lots\"\n    install_method = \"pipp\"\n    master_port    = \"7078\"\n  }\n}\n",
    )]);
    let r = p.tik(&["plan"]);
    assert_eq!(r.code, 1, "{}", r.out());
    let e = &r.stderr;
    assert!(
        e.contains("error: runtime \"spark\": param \"worker_cores\" takes a number, not \"lots\"\n  --> main.tik.hcl:11:22\n"),
        "{e}"
    );
    assert!(
        e.contains("error: runtime \"spark\": param \"install_method\" takes one of \"archive\", \"pip\", not \"pipp\"\n  --> main.tik.hcl:12:22\n")
            && e.contains("did you mean \"pip\"?"),
        "{e}"
    );
    // "7078" is a number as HCL converts it: no error.
    assert_eq!(e.matches("error:").count(), 2, "{e}");
    assert!(
        !p.file(".tik/local/workspaces").exists(),
        "nothing was made"
    );
}

#[test]
fn completion_scripts_cover_every_command() {
    let p = Project::new(&[("main.tik.hcl", "locals {}\n")]);
    let bash = p.ok(&["completion", "bash"], 0).stdout;
    assert!(
        bash.contains("complete -F _tik") && bash.contains("runtimes"),
        "{bash}"
    );
    for shell in ["zsh", "fish"] {
        let out = p.ok(&["completion", shell], 0).stdout;
        assert!(out.contains("force-unlock"), "{shell}: {out}");
    }
    let wrong = p.tik(&["completion", "tcsh"]);
    assert_eq!(wrong.code, 1, "{}", wrong.out());
}

#[test]
fn what_a_runtime_installs_is_on_the_path_of_exec_and_ssh() {
    on_the_path_of_exec_and_ssh("local");
}

/// The same over a real sshd per node: `tik ssh` logs in to the node's home with
/// the runtime's profile read, interactively and with a command.
#[test]
fn what_a_runtime_installs_is_on_the_path_of_ssh_over_sshd() {
    common::need_sshd();
    on_the_path_of_exec_and_ssh("ssh");
}

fn on_the_path_of_exec_and_ssh(transport: &str) {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            &format!("workspace \"dev\" {{\n  provider = \"local\"\n  transport = \"{transport}\"\n}}\ncluster \"c\" {{\n  workspace = workspace.dev\n  workers \"w\" {{\n    min = 1\n    max = 1\n  }}\n  runtime \"greeter\" {{}}\n}}\n"),
        ),
        (
            "runtimes/greeter/runtime.tik.hcl",
            "runtime \"greeter\" {\n  description = \"a command on every node\"\n  service \"tool\" {\n    on      = \"all\"\n    install = file(\"install.sh\")\n  }\n}\n",
        ),
        (
            "runtimes/greeter/install.sh",
            "set -e\nmkdir -p \"$TIK_HOME/greeter/bin\" \"$TIK_HOME/profile.d\"\nprintf '#!/bin/sh\\necho \"hello from $TIK_NODE_NAME in $(pwd)\"\\n' >\"$TIK_HOME/greeter/bin/greet\"\nchmod +x \"$TIK_HOME/greeter/bin/greet\"\nprintf '%s\\n' 'export PATH=\"$TIK_HOME/greeter/bin:$PATH\"' >\"$TIK_HOME/profile.d/greeter.sh\"\n",
        ),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let home = |node: &str| {
        p.file(&format!(".tik/local/workspaces/dev/clusters/c/{node}/home"))
            .canonicalize()
            .unwrap()
    };
    let r = p.ok(&["exec", "c", "--node", "head", "--", "greet"], 0);
    assert_eq!(
        r.stdout,
        format!("hello from head in {}\n", home("head").display()),
        "{}",
        r.out()
    );
    let all = p.ok(&["exec", "c", "--", "greet"], 0).stdout;
    assert!(
        all.contains("worker-w-0 | hello from worker-w-0 in "),
        "{all}"
    );
    let r = p.ok(&["ssh", "c", "worker-w-0", "--", "greet"], 0);
    assert_eq!(
        r.stdout,
        format!(
            "hello from worker-w-0 in {}\n",
            home("worker-w-0").display()
        ),
        "{}",
        r.out()
    );
    // A login as a user types it: the shell starts in the node's home, the
    // runtime's command found.
    let out = common::on_a_terminal(&p, "ssh c", "greet\nexit\n", &[]);
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains(&format!("hello from head in {}", home("head").display())),
        "{tty}"
    );
}

#[test]
fn two_runtimes_opening_one_port_on_a_node_are_refused_at_plan_time() {
    let config = |minio_port: u32| {
        format!(
            "workspace \"dev\" {{\n  provider = \"local\"\n}}\ncluster \"etl\" {{\n  workspace = workspace.dev\n  workers \"w\" {{\n    min = 1\n    max = 1\n  }}\n  runtime \"hdfs\" {{\n    replication = 1\n  }}\n  runtime \"minio\" {{\n    root_password = \"secret-password\"\n    port          = {minio_port}\n  }}\n}}\n"
        )
    };
    let p = Project::new(&[("main.tik.hcl", &config(9000))]);
    let r = p.tik(&["plan"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains("error: cluster \"etl\": port 9000 is opened twice on head: by runtime \"hdfs\" (service namenode) and runtime \"minio\" (service server)\n  --> main.tik.hcl:13:3\n"),
        "{}",
        r.out()
    );
    assert_eq!(
        r.stderr.matches("error:").count(),
        1,
        "once, not per step: {}",
        r.out()
    );
    // The head serves its download cache on 7799: no runtime may take that port there.
    p.write("main.tik.hcl", &config(7799));
    let r = p.tik(&["plan"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains("error: cluster \"etl\": port 7799 is opened twice on head: by tik's download cache (what the head downloaded, for the other nodes) and runtime \"minio\" (service server)\n"),
        "{}",
        r.out()
    );
    // Without a runtime that downloads once, nothing holds it.
    p.write(
        "main.tik.hcl",
        &config(7799).replace("  runtime \"hdfs\" {\n    replication = 1\n  }\n", ""),
    );
    p.ok(&["validate"], 0);
    p.write("main.tik.hcl", &config(9002));
    p.ok(&["validate"], 0);
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("+ minio server: install, configure, start"),
        "{plan}"
    );
}
