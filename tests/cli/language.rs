//! The language as users write it: variables from every source, locals, modules,
//! tik_data, lifecycle, sensitive values, outputs and the other commands.

use crate::common;
use crate::common::{Cleanup, Project};

#[test]
fn variables_come_from_flags_files_and_the_environment() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "variable \"n\" {\n  type = number\n}\nvariable \"tags\" {\n  type    = map(string)\n  default = {}\n}\nvariable \"name\" {\n  type = string\n}\nresource \"tik_data\" \"x\" {\n  input = \"${var.name}-${var.n * 2}-${lookup(var.tags, \"team\", \"none\")}\"\n}\noutput \"x\" {\n  value = tik_data.x.output\n}\n",
    )]);
    p.write("dev.tikvars", "n = 4\ntags = { team = \"data\" }\n");
    let r = p.tik_env(
        &[
            "apply",
            "--auto-approve",
            "--var-file",
            "dev.tikvars",
            "--var",
            "n=5",
        ],
        &[("TIK_VAR_name", "etl"), ("TIK_VAR_unrelated", "x")],
    );
    assert_eq!(r.code, 0, "{}", r.out());
    assert_eq!(p.ok(&["output", "x", "--raw"], 0).stdout, "etl-10-data");
    let r = p.tik(&["plan", "--var", "nope=1", "--var", "n=1", "--var", "name=x"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("--var nope sets \"nope\", but no variable \"nope\" is declared"),
        "{}",
        r.out()
    );
    let r = p.tik(&["plan", "--var", "n=[1", "--var", "name=x"]);
    assert!(
        r.stderr
            .contains("--var n: the value of \"n\" is not valid"),
        "{}",
        r.out()
    );
    p.write("vars.json", "{\"n\": 3, \"name\": \"j\"}");
    let r = p.ok(&["plan", "--var-file", "vars.json", "--json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["changes"][0]["after"]["input"], "j-6-none");
    assert_eq!(plan["changes"][0]["action"], "update");
}

#[test]
fn tik_data_ids_references_and_triggers_replace() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "variable \"v\" {\n  default = \"1\"\n}\nresource \"tik_data\" \"a\" {\n  input            = { version = var.v }\n  triggers_replace = var.v\n}\nresource \"tik_data\" \"b\" {\n  input = \"after ${tik_data.a.id}\"\n}\noutput \"a_id\" {\n  value = tik_data.a.id\n}\n",
    )]);
    let r = p.ok(&["plan", "--json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["changes"][1]["address"], "tik_data.b");
    assert_eq!(
        plan["changes"][1]["after_unknown"],
        serde_json::json!(["id", "input", "output"])
    );
    assert_eq!(plan["summary"]["add"], 2);
    p.ok(&["apply", "--auto-approve"], 0);
    let first = p.ok(&["output", "a_id", "--raw"], 0).stdout;
    assert_eq!(first.len(), 36, "{first}");
    let b = p.ok(&["state", "show", "tik_data.b"], 0).stdout;
    assert!(b.contains(&format!("input  = \"after {first}\"")), "{b}");
    let r = p.ok(&["plan", "--var", "v=2"], 0);
    assert!(
        r.stdout
            .contains("# tik_data.a must be replaced\n  # (triggers_replace forces replacement)"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout.contains("# tik_data.b will be updated in place"),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve", "--var", "v=2"], 0);
    let second = p.ok(&["output", "a_id", "--raw"], 0).stdout;
    assert_ne!(first, second);
    assert!(p
        .ok(&["state", "show", "tik_data.b"], 0)
        .stdout
        .contains(&second));
    // The dependency is recorded in state, direct only.
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let b = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "tik_data.b")
        .unwrap()
        .clone();
    assert_eq!(b["dependencies"], serde_json::json!(["tik_data.a"]));
}

#[test]
fn modules_take_inputs_and_give_outputs() {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            "module \"net\" {\n  source = \"./modules/net\"\n  cidr   = \"10.1.0.0/16\"\n}\nresource \"tik_data\" \"subnets\" {\n  input = module.net.subnets\n}\noutput \"second\" {\n  value = module.net.subnets[1]\n}\n",
        ),
        (
            "modules/net/net.tik.hcl",
            "variable \"cidr\" {\n  type = string\n}\nlocals {\n  subnets = [for i in range(3) : cidrsubnet(var.cidr, 8, i)]\n}\nresource \"tik_data\" \"plan\" {\n  input = local.subnets\n}\noutput \"subnets\" {\n  value = tik_data.plan.output\n}\n",
        ),
    ]);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("module.net.tik_data.plan: Creation complete"),
        "{}",
        r.out()
    );
    assert_eq!(
        p.ok(&["output", "second", "--raw"], 0).stdout,
        "10.1.1.0/24"
    );
    let dot = p.ok(&["graph"], 0).stdout;
    assert!(dot.starts_with("digraph tik {"), "{dot}");
    assert!(
        dot.contains("\"tik_data.subnets\" -> \"module.net\""),
        "{dot}"
    );
    assert!(
        dot.contains("\"module.net.output.subnets\" -> \"module.net.tik_data.plan\""),
        "{dot}"
    );
    p.write(
        "main.tik.hcl",
        "module \"net\" {\n  source = \"./modules/net\"\n  cidrr  = \"x\"\n}\n",
    );
    let r = p.tik(&["validate"]);
    assert!(
        r.stderr
            .contains("module \"net\" has no variable \"cidrr\"")
            && r.stderr.contains("did you mean \"cidr\"?"),
        "{}",
        r.out()
    );
    p.write(
        "main.tik.hcl",
        "module \"net\" {\n  source = \"github.com/acme/net\"\n}\n",
    );
    let r = p.tik(&["validate"]);
    assert!(
        r.stderr
            .contains("is neither a local directory nor a git source")
            && r.stderr.contains("git::https://github.com/acme/net.git"),
        "{}",
        r.out()
    );
}

/// Runs git in `dir` as a test author; returns what it printed.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs (Debian: apt-get install git)");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A commit of the module repository whose greeting says `version`; returns its hash.
fn module_commit(repo: &std::path::Path, version: &str) -> String {
    std::fs::create_dir_all(repo.join("mon")).unwrap();
    std::fs::create_dir_all(repo.join("shared")).unwrap();
    std::fs::write(
        repo.join("mon/main.tik.hcl"),
        format!(
            "variable \"name\" {{\n  type = string\n}}\nmodule \"shared\" {{\n  source = \"../shared\"\n}}\nresource \"tik_data\" \"greeting\" {{\n  input = \"${{module.shared.word}} ${{var.name}} {version}\"\n}}\noutput \"greeting\" {{\n  value = tik_data.greeting.output\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("shared/main.tik.hcl"),
        "output \"word\" {\n  value = \"hello\"\n}\n",
    )
    .unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", version]);
    git(repo, &["rev-parse", "HEAD"])
}

#[test]
fn modules_come_from_git_at_the_ref_init_fetched() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let v1 = module_commit(repo, "v1");
    git(repo, &["tag", "v1"]);
    let v2 = module_commit(repo, "v2");
    git(repo, &["tag", "v2"]);
    let url = format!("file://{}", repo.display());
    let use_source = |p: &Project, source: &str| {
        p.write(
            "main.tik.hcl",
            &format!("module \"mon\" {{\n  source = \"{source}\"\n  name   = \"etl\"\n}}\noutput \"greeting\" {{\n  value = module.mon.greeting\n}}\n"),
        );
    };
    let greeting = |p: &Project| {
        p.ok(&["apply", "--auto-approve"], 0);
        p.ok(&["output", "greeting", "--raw"], 0).stdout
    };
    let p = Project::new(&[]);
    use_source(&p, &format!("git::{url}//mon?ref=v1"));

    // Not fetched: plan says where, and what to run; it never reaches out itself.
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains(&format!(
            "module source git::{url}//mon?ref=v1 is not fetched yet"
        )) && r.stderr.contains("main.tik.hcl:2:12")
            && r.stderr.contains("run tik init to fetch it"),
        "{}",
        r.out()
    );
    let r = p.ok(&["init"], 0);
    assert!(
        r.stdout.starts_with(&format!(
            "Fetched modules:\n  git::{url}?ref=v1 at {}\n",
            &v1[..12]
        )),
        "{}",
        r.out()
    );
    assert_eq!(greeting(&p), "hello etl v1");
    // Fetched once: init again fetches nothing.
    assert!(!p.ok(&["init"], 0).stdout.contains("Fetched"));

    // A new ref is fetched by init, not by plan.
    use_source(&p, &format!("git::{url}//mon?ref=v2"));
    assert!(p.ok(&["plan"], 1).stderr.contains("is not fetched yet"));
    assert!(p.ok(&["init"], 0).stdout.contains(&v2[..12]));
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("# module.mon.tik_data.greeting will be updated in place")
            && plan.contains("\"hello etl v1\" -> \"hello etl v2\""),
        "{plan}"
    );
    assert_eq!(greeting(&p), "hello etl v2");

    // A branch stays where init found it until init --upgrade.
    use_source(&p, &format!("git::{url}//mon?ref=main"));
    p.ok(&["init"], 0);
    let v3 = module_commit(repo, "v3");
    assert!(!p.ok(&["init"], 0).stdout.contains("Fetched"));
    assert_eq!(greeting(&p), "hello etl v2");
    let r = p.ok(&["init", "--upgrade"], 0);
    assert!(
        r.stdout
            .contains(&format!("git::{url}?ref=main at {}", &v3[..12])),
        "{}",
        r.out()
    );
    assert_eq!(greeting(&p), "hello etl v3");

    // A commit, by a prefix of its hash.
    use_source(&p, &format!("git::{url}//mon?ref={}", &v1[..10]));
    assert!(p.ok(&["init"], 0).stdout.contains(&v1[..12]));
    assert_eq!(greeting(&p), "hello etl v1");

    // What does not exist is named, with the place it was written and what there is.
    use_source(&p, &format!("git::{url}//mon?ref=v9"));
    let r = p.ok(&["init"], 1);
    assert!(
        r.stderr.contains(&format!(
            "cannot fetch git::{url}?ref=v9: no branch or tag \"v9\""
        )) && r.stderr.contains("main.tik.hcl:2:12"),
        "{}",
        r.out()
    );
    use_source(&p, &format!("git::{url}//monitoring?ref=v2"));
    let r = p.ok(&["init"], 1);
    assert!(
        r.stderr.contains(&format!(
            "git::{url}?ref=v2 has no directory \"monitoring\""
        )) && r.stderr.contains("its top directories are: mon, shared"),
        "{}",
        r.out()
    );
    // A repository that is not there is not called a missing ref.
    use_source(&p, "git::file:///nonexistent/tik-test.git//mon?ref=v1");
    let r = p.ok(&["init"], 1);
    assert!(
        r.stderr.contains(
            "cannot fetch git::file:///nonexistent/tik-test.git?ref=v1: git clone failed: "
        ) && !r.stderr.contains("no branch or tag"),
        "{}",
        r.out()
    );
    // tik run where GIT_DIR names another repository (a git hook) still reads
    // its own clone.
    let other_dir = tempfile::tempdir().unwrap();
    git(other_dir.path(), &["init", "-q", "-b", "main"]);
    let other = module_commit(other_dir.path(), "other");
    use_source(&p, &format!("git::{url}//mon?ref=v2"));
    let git_dir = other_dir.path().join(".git");
    let r = p.tik_env(
        &["init", "--upgrade"],
        &[("GIT_DIR", git_dir.to_str().unwrap())],
    );
    assert!(
        r.code == 0 && r.stdout.contains(&format!("?ref=v2 at {}", &v2[..12])),
        "{}",
        r.out()
    );
    assert_eq!(git(other_dir.path(), &["rev-parse", "HEAD"]), other);
    // A failed fetch leaves nothing half made, and state is as it was.
    let left: Vec<String> = std::fs::read_dir(p.file(".tik/modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    use_source(&p, &format!("git::{url}//mon?ref={}", &v1[..10]));
    assert!(p.ok(&["plan"], 0).stdout.contains("No changes."));
}

#[test]
fn lifecycle_rules_are_honoured() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "variable \"v\" {\n  default = \"a\"\n}\nresource \"tik_data\" \"kept\" {\n  input = var.v\n  lifecycle {\n    prevent_destroy = true\n  }\n}\nresource \"tik_data\" \"ignored\" {\n  input = var.v\n  lifecycle {\n    ignore_changes = [input]\n  }\n}\nresource \"tik_data\" \"order\" {\n  depends_on = [tik_data.ignored]\n}\n",
    )]);
    let r = p.ok(&["apply", "--auto-approve", "--parallelism", "1"], 0);
    let pos = |s: &str| r.stdout.find(s).unwrap();
    assert!(
        pos("tik_data.ignored: Creation complete") < pos("tik_data.order: Creating"),
        "{}",
        r.out()
    );
    let r = p.ok(&["plan", "--var", "v=b"], 0);
    assert!(
        r.stdout
            .contains("# tik_data.kept will be updated in place"),
        "{}",
        r.out()
    );
    assert!(!r.stdout.contains("tik_data.ignored will"), "{}", r.out());
    let r = p.tik(&["destroy", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains(
            "the plan would destroy tik_data.kept, but its lifecycle has prevent_destroy = true"
        ),
        "{}",
        r.out()
    );
    assert_eq!(p.ok(&["state", "list"], 0).stdout.lines().count(), 3);
    let r = p.ok(&["plan", "--replace", "tik_data.order"], 0);
    assert!(
        r.stdout.contains("# (--replace asked for it)"),
        "{}",
        r.out()
    );
}

#[test]
fn sensitive_values_are_never_printed() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "variable \"password\" {\n  type      = string\n  sensitive = true\n}\nresource \"tik_data\" \"db\" {\n  input = \"user:${var.password}\"\n}\noutput \"dsn\" {\n  value = tik_data.db.input\n}\n",
    )]);
    let env = [("TIK_VAR_password", "hunter2")];
    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(
        !r.stdout.contains("hunter2") && r.stdout.contains("(sensitive value)"),
        "{}",
        r.out()
    );
    let r = p.tik_env(&["plan", "--json"], &env);
    assert!(!r.stdout.contains("hunter2"), "{}", r.out());
    for args in [
        vec!["show"],
        vec!["output"],
        vec!["state", "show", "tik_data.db"],
    ] {
        let r = p.ok(&args, 0);
        assert!(!r.stdout.contains("hunter2"), "{args:?}\n{}", r.out());
    }
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    assert_eq!(
        state["resources"][0]["sensitive_attributes"],
        serde_json::json!(["input", "output"])
    );
    assert_eq!(state["outputs"]["dsn"]["sensitive"], true);
    // Asked for by name, the value is given, as a script needs it.
    assert_eq!(p.ok(&["output", "dsn", "--raw"], 0).stdout, "user:hunter2");

    // An output that no longer reads the secret: its change still hides the old
    // value, in text and JSON, until it is applied.
    p.write(
        "main.tik.hcl",
        "output \"dsn\" {\n  value = \"user:nobody\"\n}\n",
    );
    let r = p.ok(&["plan", "--no-color"], 0);
    assert!(
        r.stdout
            .contains("~ dsn = (sensitive value) -> (sensitive value)"),
        "{}",
        r.out()
    );
    let r = p.ok(&["plan", "--json"], 0);
    assert!(!r.stdout.contains("hunter2"), "{}", r.out());
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(plan["outputs"][0]["before"], "(sensitive)", "{}", r.out());
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(p.ok(&["output", "dsn"], 0).stdout.trim(), "\"user:nobody\"");
}

/// A sensitive value hides what holds it, wherever it goes: a runtime param given
/// one (its steps' env, a script that names it, an endpoint made from it), an output
/// that reads it, a module's output. What only sits beside it stays in view: the
/// cluster's addresses, its other params and endpoints.
#[test]
fn a_sensitive_value_hides_what_holds_it_and_nothing_beside_it() {
    let p = Cleanup(Project::new(&[
        (
            "main.tik.hcl",
            r#"variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2"
}

module "m" {
  source = "./modules/m"
  pw     = var.secret
}

workspace "lab" {
  provider = "local"
}

cluster "c" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 2
    max = 2
  }
  runtime "greet" {
    greeting = var.secret
    name     = "plain-name"
  }
}

output "head_ip" { value = cluster.c.node.head.private_ip }
output "worker_ips" { value = [for w in cluster.c.node.worker["w"] : w.private_ip] }
output "name" { value = cluster.c.runtime.greet.name }
output "url" { value = cluster.c.runtime.greet.endpoint.url }
output "greeting" { value = cluster.c.runtime.greet.greeting }
output "banner" { value = cluster.c.runtime.greet.endpoint.banner }
output "head" { value = cluster.c.node.head }
output "from_module" { value = module.m.echoed }
output "module_plain" { value = module.m.plain }
"#,
        ),
        (
            "modules/m/main.tik.hcl",
            "variable \"pw\" {\n  type = string\n}\noutput \"echoed\" {\n  value = \"pw=${var.pw}\"\n}\noutput \"plain\" {\n  value = \"plain\"\n}\n",
        ),
        (
            "runtimes/greet/runtime.tik.hcl",
            r#"runtime "greet" {
  param "greeting" {}
  param "name" { default = "x" }
  service "s" {
    on        = "all"
    install   = "echo '${param.name}' >name.txt"
    configure = "printf '%s' \"$TIK_PARAM_GREETING\" >greeting.txt"
  }
  service "loud" {
    on        = "head"
    configure = "echo '${upper(param.greeting)}' >loud.txt"
  }
  endpoint "url" { value = "http://${cluster.head.private_ip}/${param.name}" }
  endpoint "banner" { value = "say ${param.greeting}" }
}
"#,
        ),
    ]));
    let leaks = |out: &str| out.contains("hunter2") || out.contains("HUNTER2");
    let plan = p.ok(&["plan"], 0);
    assert!(!leaks(&plan.out()), "{}", plan.out());
    assert!(
        plan.stdout.contains("echo 'plain-name' >name.txt"),
        "a script that names no secret is shown: {}",
        plan.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(!leaks(&r.out()), "{}", r.out());
    // The value reached the nodes all the same.
    let home = ".tik/local/workspaces/lab/clusters/c/head/home";
    assert_eq!(p.read(&format!("{home}/greeting.txt")), "hunter2");
    assert_eq!(p.read(&format!("{home}/loud.txt")), "HUNTER2\n");

    let out = p.ok(&["output"], 0).stdout;
    assert!(!leaks(&out), "{out}");
    let shown = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no output {name}: {out}"))
            .to_string()
    };
    for name in ["greeting", "banner", "from_module"] {
        assert_eq!(shown(name), "(sensitive value)", "{name}: {out}");
    }
    // The head as a whole is shown with the parts that hold the secret hidden: the
    // env of the step given it, the script that names it.
    assert_eq!(shown("head"), "{", "{out}");
    assert!(
        out.contains("\n            env            = (sensitive value)\n")
            && out.contains("\n            script         = (sensitive value)\n"),
        "{out}"
    );
    assert!(
        out.contains("script         = \"printf '%s' \\\"$TIK_PARAM_GREETING\\\" >greeting.txt\""),
        "a script beside them is shown: {out}"
    );
    assert!(shown("head_ip").starts_with("\"127."), "{out}");
    assert_eq!(shown("name"), "\"plain-name\"", "{out}");
    assert_eq!(shown("module_plain"), "\"plain\"", "{out}");
    assert!(shown("url").ends_with("/plain-name\""), "{out}");
    let ips = p.ok(&["output", "--json", "worker_ips"], 0).stdout;
    let ips: Vec<String> = serde_json::from_str(&ips).expect("a JSON list");
    assert_eq!(ips.len(), 2);
    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    for (name, sensitive) in [("head_ip", false), ("url", false), ("banner", true)] {
        assert_eq!(state["outputs"][name]["sensitive"], sensitive, "{name}");
    }
    assert_eq!(state["outputs"]["head"]["sensitive"], false);
    let parts: Vec<Vec<String>> =
        serde_json::from_value(state["outputs"]["head"]["sensitive_parts"].clone()).unwrap();
    assert!(
        parts
            .iter()
            .any(|p| p.join(".") == "runtime.greet.service.s.configure.env"),
        "{parts:?}"
    );
    // Machines read it whole, told which parts are sensitive.
    let all: serde_json::Value =
        serde_json::from_str(&p.ok(&["output", "--json"], 0).stdout).unwrap();
    assert_eq!(
        all["head"]["sensitive_parts"],
        state["outputs"]["head"]["sensitive_parts"]
    );
    for (step, hidden) in [
        ("node.head.runtime.greet.service.s.configure", "env"),
        ("node.head.runtime.greet.service.loud.configure", "script"),
    ] {
        let r = p.ok(&["state", "show", &format!("cluster.c.{step}")], 0);
        assert!(!leaks(&r.out()), "{}", r.out());
        let line = r
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{hidden} ")));
        assert!(
            line.is_some_and(|l| l.ends_with("= (sensitive value)")),
            "{step}: {}",
            r.out()
        );
    }
}

/// A provider copies values out of a workspace's or cluster's block into the
/// resources it makes: a copy of a sensitive value is hidden in them too.
#[test]
fn a_providers_copy_of_a_sensitive_value_is_hidden() {
    let p = Project::new(&[(
        "main.tik.hcl",
        r#"variable "net" {
  type      = string
  sensitive = true
  default   = "127.93.0.0/16"
}
workspace "lab" {
  provider = "local"
  network {
    cidr = var.net
  }
}
cluster "c" {
  workspace = workspace.lab
  head {
    instance_type = "small"
  }
}
"#,
    )]);
    let plan = p.ok(&["plan"], 0).stdout;
    assert!(!plan.contains("127.93.0.0/16"), "{plan}");
    let cidrs: Vec<&str> = plan
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("+ cidr "))
        .collect();
    assert_eq!(cidrs.len(), 2, "the workspace's and the node's: {plan}");
    assert!(
        cidrs.iter().all(|l| l.ends_with("= (sensitive value)")),
        "{plan}"
    );
    assert!(plan.contains("+ instance_type = \"small\""), "{plan}");
}

/// A validation rule whose message names a sensitive value still fails the plan, and
/// says so without the value: a variable's rule, and a runtime param's.
#[test]
fn a_failed_rule_does_not_print_the_secret_its_message_names() {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            r#"variable "secret" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.secret) > 4
    error_message = "the secret ${var.secret} is too short"
  }
}
workspace "lab" {
  provider = "local"
}
cluster "c" {
  workspace = workspace.lab
  head {}
  runtime "greet" { greeting = var.secret }
}
"#,
        ),
        (
            "runtimes/greet/runtime.tik.hcl",
            r#"runtime "greet" {
  param "greeting" {
    validation {
      condition     = length(param.greeting) < 8
      error_message = "the greeting ${param.greeting} is too long"
    }
  }
  service "s" { configure = "true" }
}
"#,
        ),
    ]);
    let r = p.tik_env(&["plan"], &[("TIK_VAR_secret", "zq")]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(!r.out().contains("zq"), "{}", r.out());
    assert!(
        r.stderr.contains(
            "invalid value for variable \"secret\": (the rule's message names a sensitive value"
        ),
        "{}",
        r.out()
    );
    let r = p.tik_env(&["plan"], &[("TIK_VAR_secret", "zqzqzqzqzq")]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(!r.out().contains("zqzq"), "{}", r.out());
    assert!(
        r.stderr.contains("invalid value for param \"greeting\" of runtime \"greet\": (the rule's message names a sensitive value"),
        "{}",
        r.out()
    );
}

#[test]
fn show_output_state_and_fmt_commands() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\ninput=\"x\"\n  }\noutput \"o\" {\n value = { a = 1 }\n}\n",
    )]);
    let r = p.ok(&["fmt", "--check"], 3);
    assert_eq!(r.stdout, "main.tik.hcl\n");
    p.ok(&["fmt"], 0);
    assert_eq!(p.read("main.tik.hcl"), "resource \"tik_data\" \"a\" {\n  input = \"x\"\n}\noutput \"o\" {\n  value = { a = 1 }\n}\n");
    p.ok(&["fmt", "--check"], 0);
    p.ok(&["init"], 0);
    p.ok(&["apply", "--auto-approve"], 0);
    let shown = p.ok(&["show"], 0).stdout;
    assert!(
        shown.contains("# tik_data.a:\ntik_data {\n") && shown.contains("Outputs:"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["output", "--json"], 0).stdout).unwrap();
    assert_eq!(json["o"]["value"]["a"], 1);
    assert_eq!(
        p.ok(&["output", "o", "--json"], 0).stdout.trim(),
        "{\"a\":1}"
    );
    let r = p.ok(&["output", "p"], 1);
    assert!(
        r.stderr.contains("no output \"p\" in state") && r.stderr.contains("did you mean \"o\"?"),
        "{}",
        r.out()
    );
    let r = p.ok(&["state", "show", "tik_data.b"], 1);
    assert!(
        r.stderr.contains("did you mean \"tik_data.a\"?"),
        "{}",
        r.out()
    );
    p.ok(&["state", "rm", "tik_data.a"], 0);
    assert_eq!(p.ok(&["state", "list"], 0).stdout, "");
    assert!(p.ok(&["plan"], 0).stdout.contains("Plan: 1 to add"));
}

#[test]
fn the_plan_reads_like_terraform() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = \"one\\ntwo\\nthree\\n\"\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = \"one\\n2\\nthree\\n\"\n}\n",
    );
    let r = p.ok(&["plan", "--refresh=false"], 0);
    let expected = "tik will perform the following actions:

  # tik_data.a will be updated in place
  ~ tik_data {
      ~ input  = <<-EOT
            one
          - two
          + 2
            three
        EOT
      ~ output = <<-EOT
            one
          - two
          + 2
            three
        EOT
        # (1 unchanged attribute hidden)
    }

Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.
";
    assert_eq!(r.stdout, expected);
}

/// A changed object shows the elements that changed, at any depth, and counts the
/// others: a one-param change in a step's env of twenty reads as one line.
#[test]
fn a_changed_object_shows_only_its_changed_elements() {
    let config = |port: u32, extra: &str| {
        format!(
            "resource \"tik_data\" \"a\" {{\n  input = {{\n    name = \"db\"\n    port = {port}\n    tags = {{ team = \"data\", tier = \"gold\" }}\n    {extra}\n    \"odd key\" = true\n  }}\n}}\n"
        )
    };
    let p = Project::new(&[("main.tik.hcl", &config(5432, "old = 1"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "main.tik.hcl",
        &config(6543, "new = \"x\"").replace("tier = \"gold\"", "tier = \"silver\""),
    );
    let r = p.ok(&["plan", "--refresh=false"], 0);
    // tik_data's output is its input.
    let diff = "{
          + new  = \"x\"
          - old  = 1 -> null
          ~ port = 5432 -> 6543
          ~ tags = {
              ~ tier = \"gold\" -> \"silver\"
                # (1 unchanged element hidden)
            }
            # (2 unchanged elements hidden)
        }";
    let expected = format!(
        "tik will perform the following actions:

  # tik_data.a will be updated in place
  ~ tik_data {{
      ~ input  = {diff}
      ~ output = {diff}
        # (1 unchanged attribute hidden)
    }}

Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.
"
    );
    assert_eq!(r.stdout, expected);
}

/// A changed list shows the elements that went and came, one element of context
/// around each change, and counts the others, at any depth.
#[test]
fn a_changed_list_shows_the_elements_that_went_and_came() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]\n}\nresource \"tik_data\" \"b\" {\n  input = { ports = [7077, 8080, 8081], name = \"x\" }\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = [\"a\", \"b\", \"x\", \"d\", \"e\", \"f\", \"g\"]\n}\nresource \"tik_data\" \"b\" {\n  input = { ports = [7077, 8080], name = \"x\" }\n}\n",
    );
    let r = p.ok(&["plan", "--refresh=false"], 0);
    let list = "[
            # (1 unchanged element hidden)
            \"b\",
          - \"c\",
          + \"x\",
            \"d\",
            # (1 unchanged element hidden)
            \"f\",
          + \"g\",
        ]";
    let object = "{
          ~ ports = [
                # (1 unchanged element hidden)
                8080,
              - 8081,
            ]
            # (1 unchanged element hidden)
        }";
    let expected = format!(
        "tik will perform the following actions:

  # tik_data.a will be updated in place
  ~ tik_data {{
      ~ input  = {list}
      ~ output = {list}
        # (1 unchanged attribute hidden)
    }}

  # tik_data.b will be updated in place
  ~ tik_data {{
      ~ input  = {object}
      ~ output = {object}
        # (1 unchanged attribute hidden)
    }}

Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy.
"
    );
    assert_eq!(r.stdout, expected);
}

/// New text reads as a heredoc, once per plan (a step's script is the same on every
/// node), with what could steer the terminal escaped; text that goes is counted.
#[test]
fn new_text_is_shown_once_as_a_heredoc_and_text_destroyed_by_its_length() {
    let p = Project::new(&[(
        "main.tik.hcl",
        r#"resource "tik_data" "a" {
  input = "one\n\n\tthree\n"
}
resource "tik_data" "b" {
  input = "one\n\n\tthree\n"
}
resource "tik_data" "c" {
  input = "red \u001b[31m\nback\r\n"
}
"#,
    )]);
    let r = p.ok(&["plan", "--refresh=false"], 0);
    let expected = "tik will perform the following actions:

  # tik_data.a will be created
  + tik_data {
      + id     = (known after apply)
      + input  = <<-EOT
            one

            \tthree
        EOT
      + output = (the same 3 lines as in tik_data.a's input)
    }

  # tik_data.b will be created
  + tik_data {
      + id     = (known after apply)
      + input  = (the same 3 lines as in tik_data.a)
      + output = (the same 3 lines as in tik_data.a's input)
    }

  # tik_data.c will be created
  + tik_data {
      + id     = (known after apply)
      + input  = <<-EOT
            red \\u001b[31m
            back\\r
        EOT
      + output = (the same 2 lines as in tik_data.c's input)
    }

Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy.
";
    assert_eq!(r.stdout, expected);

    p.ok(&["apply", "--auto-approve"], 0);
    // What state holds reads the same way.
    let r = p.ok(&["state", "show", "tik_data.c"], 0);
    assert!(
        r.stdout
            .contains("\n    input  = <<-EOT\n        red \\u001b[31m\n        back\\r\n    EOT\n"),
        "{}",
        r.stdout
    );
    let r = p.ok(&["plan", "--destroy", "--refresh=false"], 0);
    assert!(
        r.stdout
            .contains("\n      - input  = (3 lines) -> null\n      - output = (3 lines) -> null\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n      - input  = (2 lines) -> null\n"),
        "{}",
        r.stdout
    );
}

/// Scripts that begin with the same library (tik.sh) show it once: a later one
/// names where its first lines were shown, from ten lines on.
#[test]
fn new_text_that_begins_as_one_shown_names_it_for_those_lines() {
    let lines = |n: usize, last: &str| {
        let mut l: Vec<String> = (1..=n).map(|i| format!("lib {i}")).collect();
        l.push(last.to_string());
        l.join("\\n")
    };
    let p = Project::new(&[(
        "main.tik.hcl",
        &format!(
            "resource \"tik_data\" \"a\" {{\n  input = \"{}\\n\"\n}}\nresource \"tik_data\" \"b\" {{\n  input = \"{}\\n\"\n}}\nresource \"tik_data\" \"c\" {{\n  input = \"{}\\n\"\n}}\n",
            lines(12, "a's own"),
            lines(11, "b's own"),
            lines(9, "c's own")
        ),
    )]);
    let r = p.ok(&["plan", "--refresh=false"], 0);
    assert!(
        r.stdout.contains(
            "  # tik_data.b will be created
  + tik_data {
      + id     = (known after apply)
      + input  = <<-EOT
            # (the first 11 lines as in tik_data.a)
            b's own
        EOT
      + output = (the same 12 lines as in tik_data.b's input)
"
        ),
        "{}",
        r.stdout
    );
    // Nine lines in common: shown again.
    assert!(
        r.stdout.contains(
            "      + input  = <<-EOT
            lib 1
"
        ) && r.stdout.matches("            lib 1\n").count() == 2,
        "{}",
        r.stdout
    );
}

/// A long script with a line changed reads as that line, not as the script.
#[test]
fn a_changed_text_shows_its_changes_with_three_lines_around_them() {
    let text = |lines: &[String]| {
        format!(
            "resource \"tik_data\" \"a\" {{\n  input = \"{}\\n\"\n}}\n",
            lines.join("\\n")
        )
    };
    let mut lines: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
    let p = Project::new(&[("main.tik.hcl", &text(&lines))]);
    p.ok(&["apply", "--auto-approve"], 0);
    lines[9] = "line ten".into();
    lines.insert(19, "line 19.5".into());
    p.write("main.tik.hcl", &text(&lines));
    let r = p.ok(&["plan", "--refresh=false"], 0);
    let diff = "<<-EOT
            # (6 unchanged lines hidden)
            line 7
            line 8
            line 9
          - line 10
          + line ten
            line 11
            line 12
            line 13
            # (3 unchanged lines hidden)
            line 17
            line 18
            line 19
          + line 19.5
            line 20
        EOT
";
    assert!(
        r.stdout.contains(&format!("      ~ input  = {diff}")),
        "{}",
        r.stdout
    );
}

#[test]
fn text_changed_outside_of_tik_is_shown_as_a_line_diff() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"local_file\" \"f\" {\n  path    = \"out/f.txt\"\n  content = \"one\\ntwo\\nthree\\n\"\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("out/f.txt", "one\n2\nthree\n");
    let r = p.ok(&["plan"], 0);
    assert!(
        r.stdout.starts_with(
            "Objects changed outside of tik:

  # local_file.f was changed outside of tik
      ~ content = <<-EOT
            one
          - two
          + 2
            three
        EOT
"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_targeted_apply_leaves_the_rest_and_its_outputs_alone() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = \"a\"\n}\nresource \"tik_data\" \"b\" {\n  input = \"b\"\n}\noutput \"b\" {\n  value = tik_data.b.output\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("main.tik.hcl", "resource \"tik_data\" \"a\" {\n  input = \"a2\"\n}\nresource \"tik_data\" \"b\" {\n  input = \"b2\"\n}\noutput \"b\" {\n  value = tik_data.b.output\n}\n");
    let r = p.ok(&["apply", "--auto-approve", "--target", "tik_data.a"], 0);
    assert!(
        r.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    assert!(!r.stdout.contains("Changes to outputs"), "{}", r.out());
    assert_eq!(p.ok(&["output", "b", "--raw"], 0).stdout, "b");
    let r = p.ok(&["plan"], 0);
    assert!(
        r.stdout.contains("# tik_data.b will be updated in place")
            && !r.stdout.contains("tik_data.a will"),
        "{}",
        r.out()
    );
}

#[test]
fn state_mv_pull_and_push() {
    let p = Project::new(&[("main.tik.hcl", &common::cluster_config(1, "small"))]);
    p.ok(&["apply", "--auto-approve"], 0);
    // A renamed cluster block: move its state instead of replacing its nodes.
    p.write(
        "main.tik.hcl",
        &common::cluster_config(1, "small")
            .replace("cluster \"etl\"", "cluster \"spark\"")
            .replace("cluster.etl", "cluster.spark"),
    );
    assert!(p.ok(&["plan"], 0).stdout.contains("2 to add"));
    let r = p.ok(&["state", "mv", "cluster.etl", "cluster.spark"], 0);
    assert!(
        r.stdout
            .contains("Moved 2 resource(s) from cluster.etl to cluster.spark."),
        "{}",
        r.out()
    );
    let r = p.ok(&["state", "mv", "cluster.etl", "cluster.x"], 1);
    assert!(
        r.stderr.contains("nothing in state is at cluster.etl"),
        "{}",
        r.out()
    );
    // The local nodes' directories keep their old cluster name, so the plan replaces
    // them in place; the addresses, though, are the new ones.
    let listed = p.ok(&["state", "list"], 0).stdout;
    assert!(
        listed.contains("cluster.spark.node.head") && !listed.contains("cluster.etl"),
        "{listed}"
    );

    let pulled = p.ok(&["state", "pull"], 0).stdout;
    let json: serde_json::Value = serde_json::from_str(&pulled).unwrap();
    p.write("copy.tikstate", &pulled);
    p.ok(&["state", "rm", "cluster.spark"], 0);
    assert_eq!(p.ok(&["state", "list"], 0).stdout.lines().count(), 1);
    // The copy is older than the state now: refused without --force.
    let r = p.ok(&["state", "push", "copy.tikstate"], 1);
    assert!(r.stderr.contains("older than this one"), "{}", r.out());
    p.ok(&["state", "push", "copy.tikstate", "--force"], 0);
    assert_eq!(p.ok(&["state", "list"], 0).stdout, listed);
    let other = pulled.replace(json["lineage"].as_str().unwrap(), "another-lineage");
    p.write("other.tikstate", &other);
    let r = p.ok(&["state", "push", "other.tikstate"], 1);
    assert!(r.stderr.contains("it is another state"), "{}", r.out());
}

const REPEATED: &str = r#"variable "n" {
  type    = number
  default = 2
}
variable "names" {
  type    = list(string)
  default = ["a", "b"]
}
resource "local_file" "f" {
  count   = var.n
  path    = "out/f${count.index}.txt"
  content = "file ${count.index}"
}
resource "tik_data" "d" {
  for_each = toset(var.names)
  input    = "${each.key}:${each.value}"
}
resource "tik_data" "port" {
  for_each = { web = 80, ssh = 22 }
  input    = each.value
}
output "paths" {
  value = local_file.f[*].path
}
output "named" {
  value = { for k, d in tik_data.d : k => d.output }
}
output "ssh" {
  value = tik_data.port["ssh"].output
}
"#;

/// The addresses and actions of a plan, as "ADDRESS ACTION" lines in plan order.
fn planned(p: &Project, args: &[&str]) -> Vec<String> {
    let mut all = vec!["plan", "--json"];
    all.extend_from_slice(args);
    let r = p.ok(&all, 0);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn count_and_for_each_make_one_resource_per_index_and_key() {
    let p = Project::new(&[("main.tik.hcl", REPEATED)]);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        p.ok(&["state", "list"], 0)
            .stdout
            .lines()
            .collect::<Vec<_>>(),
        [
            "local_file.f[0]",
            "local_file.f[1]",
            "tik_data.d[\"a\"]",
            "tik_data.d[\"b\"]",
            "tik_data.port[\"ssh\"]",
            "tik_data.port[\"web\"]",
        ]
    );
    assert_eq!(p.read("out/f1.txt"), "file 1");
    let paths = p.ok(&["output", "paths", "--json"], 0).stdout;
    let paths: serde_json::Value = serde_json::from_str(&paths).unwrap();
    assert_eq!(paths, serde_json::json!(["out/f0.txt", "out/f1.txt"]));
    let named = p.ok(&["output", "named", "--json"], 0).stdout;
    let named: serde_json::Value = serde_json::from_str(&named).unwrap();
    assert_eq!(named, serde_json::json!({"a": "a:a", "b": "b:b"}));
    assert_eq!(p.ok(&["output", "ssh", "--raw"], 0).stdout, "22");
    let r = p.ok(&["output", "paths", "--raw"], 1);
    assert!(
        r.stderr.contains("output \"paths\" is a list")
            && r.stderr.contains("tik output paths --json"),
        "{}",
        r.out()
    );
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // An output's list shows the elements that came, as a resource's does.
    let r = p.ok(&["plan", "--var", "n=3"], 0);
    assert!(
        r.stdout.contains(
            "  ~ paths = [\n        # (1 unchanged element hidden)\n        \"out/f1.txt\",\n      + \"out/f2.txt\",\n    ]\n"
        ),
        "{}",
        r.out()
    );

    // One more index and one key swapped: only those instances change.
    let grown = ["--var", "n=3", "--var", "names=[\"b\",\"c\"]"];
    assert_eq!(
        planned(&p, &grown),
        [
            "local_file.f[2] create",
            "tik_data.d[\"c\"] create",
            "tik_data.d[\"a\"] delete"
        ]
    );
    // A target that names one instance plans and applies that one only.
    let apply = |args: &[&str]| {
        let mut all = vec!["apply", "--auto-approve"];
        all.extend_from_slice(args);
        p.ok(&all, 0)
    };
    let wider = ["--var", "n=4", "--target", "local_file.f[2]"];
    assert_eq!(planned(&p, &wider), ["local_file.f[2] create"]);
    apply(&wider);
    let mut one = grown.to_vec();
    one.extend(["--target", "tik_data.d[\"c\"]"]);
    assert_eq!(planned(&p, &one), ["tik_data.d[\"c\"] create"]);
    apply(&one);
    assert_eq!(planned(&p, &grown), ["tik_data.d[\"a\"] delete"]);
    apply(&grown);
    assert_eq!(p.read("out/f2.txt"), "file 2");
    let state = p.ok(&["state", "show", "tik_data.d[\"c\"]"], 0).stdout;
    assert!(state.contains("input  = \"c:c\""), "{state}");

    // count = 0 removes them all; an instance's own data goes with it.
    assert_eq!(
        planned(&p, &["--var", "n=0", "--var", "names=[\"b\",\"c\"]"]),
        [
            "local_file.f[0] delete",
            "local_file.f[1] delete",
            "local_file.f[2] delete"
        ]
    );
}

/// The id state records for `address`.
fn recorded_id(p: &Project, address: &str) -> String {
    let shown = p.ok(&["state", "show", address], 0).stdout;
    shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("id"))
        .map(|v| v.trim_start_matches([' ', '=']).to_string())
        .unwrap_or_else(|| panic!("no id in {shown}"))
}

#[test]
fn moved_blocks_rename_what_state_holds_without_replacing_it() {
    let p = Project::new(&[
        (
            "main.tik.hcl",
            "resource \"tik_data\" \"old\" {\n  input = \"x\"\n}\n",
        ),
        (
            "m/main.tik.hcl",
            "resource \"tik_data\" \"inner\" {\n  input = \"x\"\n}\n",
        ),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let before = recorded_id(&p, "tik_data.old");
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"new\" {\n  input = \"x\"\n}\nmoved {\n  from = tik_data.old\n  to   = tik_data.new\n}\n",
    );
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        r.stdout
            .contains("# tik_data.old has moved to tik_data.new")
            && r.stdout
                .contains("Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 1 to move."),
        "{}",
        r.out()
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(recorded_id(&p, "tik_data.new"), before);
    // Kept after the move, the block does nothing.
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // Into a module.
    p.write(
        "main.tik.hcl",
        "module \"m\" {\n  source = \"./m\"\n}\nmoved {\n  from = tik_data.new\n  to   = module.m.tik_data.inner\n}\n",
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        p.ok(&["state", "list"], 0).stdout.trim(),
        "module.m.tik_data.inner"
    );
    assert_eq!(recorded_id(&p, "module.m.tik_data.inner"), before);

    // Both addresses in state: refused, and state stays as it was.
    p.write(
        "main.tik.hcl",
        "module \"m\" {\n  source = \"./m\"\n}\nresource \"tik_data\" \"other\" {\n  input = \"y\"\n}\n",
    );
    p.ok(&["apply", "--auto-approve"], 0);
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"other\" {\n  input = \"y\"\n}\nmoved {\n  from = module.m\n  to   = tik_data.other\n}\n",
    );
    let r = p.ok(&["plan"], 1);
    assert!(r.stderr.contains("a move keeps the kind"), "{}", r.out());
    p.write(
        "main.tik.hcl",
        "module \"n\" {\n  source = \"./m\"\n}\nresource \"tik_data\" \"other\" {\n  input = \"y\"\n}\nmoved {\n  from = module.m\n  to   = module.n\n}\n",
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(recorded_id(&p, "module.n.tik_data.inner"), before);
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"kept\" {\n  input = \"y\"\n}\nmoved {\n  from = module.n.tik_data.inner\n  to   = tik_data.kept\n}\nmoved {\n  from = tik_data.other\n  to   = tik_data.kept\n}\n",
    );
    let listed = p.ok(&["state", "list"], 0).stdout;
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stderr
            .contains("state holds both tik_data.other and tik_data.kept")
            && r.stderr.contains("tik state rm 'tik_data.other'"),
        "{}",
        r.out()
    );
    assert_eq!(p.ok(&["state", "list"], 0).stdout, listed);
}

#[test]
fn adding_count_to_a_resource_moves_it_to_index_zero() {
    let one = "resource \"tik_data\" \"one\" {\n  input = \"x\"\n}\n";
    let p = Project::new(&[("main.tik.hcl", one)]);
    p.ok(&["apply", "--auto-approve"], 0);
    let id = |address: &str| recorded_id(&p, address);
    let before = id("tik_data.one");
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"one\" {\n  count = 2\n  input = \"x\"\n}\n",
    );
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        r.stdout
            .contains("# tik_data.one has moved to tik_data.one[0]")
            && r.stdout.contains("# tik_data.one[1] will be created")
            && r.stdout
                .contains("Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy, 1 to move."),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("1 moved."), "{}", r.out());
    assert_eq!(id("tik_data.one[0]"), before);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // And back: [0] is the resource again, [1] goes.
    p.write("main.tik.hcl", one);
    let r = p.ok(&["plan", "--json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        plan["moves"],
        serde_json::json!([{"from": "tik_data.one[0]", "to": "tik_data.one"}])
    );
    assert_eq!(plan["changes"][0]["address"], "tik_data.one[1]");
    assert_eq!(plan["changes"][0]["action"], "delete");
    assert_eq!(plan["changes"].as_array().unwrap().len(), 1);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(id("tik_data.one"), before);
    assert_eq!(p.ok(&["state", "list"], 0).stdout.trim(), "tik_data.one");
}

const POOLS: &str = r#"variable "pools" {
  type = map(object({ size = number, type = string }))
}
workspace "dev" {
  provider = "local"
}
cluster "etl" {
  workspace = workspace.dev
  head {
    instance_type = "small"
  }
  dynamic "workers" {
    for_each = var.pools
    iterator = pool
    labels   = [pool.key]
    content {
      instance_type = pool.value.type
      min           = pool.value.size
      max           = pool.value.size + 2
    }
  }
}
output "pools" {
  value = keys(cluster.etl.workers)
}
"#;

#[test]
fn a_dynamic_block_makes_one_worker_pool_per_element() {
    let p = Project::new(&[("main.tik.hcl", POOLS)]);
    // Without the variable, validate checks the block once.
    p.ok(&["validate"], 0);
    let two = [
        "--var",
        "pools={ cpu = { size = 1, type = \"small\" }, gpu = { size = 2, type = \"large\" } }",
    ];
    let mut apply = vec!["apply", "--auto-approve"];
    apply.extend(two);
    p.ok(&apply, 0);
    let nodes: Vec<String> = p
        .ok(&["state", "list"], 0)
        .stdout
        .lines()
        .filter(|l| l.starts_with("cluster.etl.node."))
        .map(str::to_string)
        .collect();
    assert_eq!(
        nodes,
        [
            "cluster.etl.node.head",
            "cluster.etl.node.worker[\"cpu\"][0]",
            "cluster.etl.node.worker[\"gpu\"][0]",
            "cluster.etl.node.worker[\"gpu\"][1]",
        ]
    );
    let gpu = p
        .ok(&["state", "show", "cluster.etl.node.worker[\"gpu\"][1]"], 0)
        .stdout;
    assert!(gpu.contains("instance_type = \"large\""), "{gpu}");
    assert_eq!(
        p.ok(&["output", "pools", "--json"], 0).stdout.trim(),
        "[\"cpu\",\"gpu\"]"
    );
    let mut same = vec!["plan", "--detailed-exitcode"];
    same.extend(two);
    p.ok(&same, 0);
    // One pool gone: its nodes go, the other's stay.
    let changes = planned(
        &p,
        &["--var", "pools={ cpu = { size = 1, type = \"small\" } }"],
    );
    assert_eq!(
        changes,
        [
            "cluster.etl.node.worker[\"gpu\"][0] delete",
            "cluster.etl.node.worker[\"gpu\"][1] delete"
        ]
    );
}

#[test]
fn what_reads_a_counted_block_records_the_block_and_is_destroyed_first() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  count = 3\n  input = count.index\n}\nresource \"tik_data\" \"b\" {\n  count = 3\n  input = tik_data.a[count.index].id\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    let state: serde_json::Value =
        serde_json::from_str(&p.ok(&["state", "pull"], 0).stdout).unwrap();
    let b1 = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "tik_data.b[1]")
        .unwrap();
    // One address for the block, not one per resource of it.
    assert_eq!(b1["dependencies"], serde_json::json!(["tik_data.a"]));
    let r = p.ok(&["destroy", "--auto-approve"], 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let last_b = lines
        .iter()
        .rposition(|l| l.starts_with("tik_data.b[") && l.contains("complete"))
        .unwrap();
    let first_a = lines
        .iter()
        .position(|l| l.starts_with("tik_data.a["))
        .unwrap();
    assert!(last_b < first_a, "{}", r.out());
}

#[test]
fn a_moved_block_takes_a_resource_to_one_of_its_for_each_keys() {
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = \"web\"\n}\n",
    )]);
    p.ok(&["apply", "--auto-approve"], 0);
    let before = recorded_id(&p, "tik_data.a");
    p.write(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  for_each = toset([\"web\", \"db\"])\n  input    = each.key\n}\nmoved {\n  from = tik_data.a\n  to   = tik_data.a[\"web\"]\n}\n",
    );
    assert_eq!(planned(&p, &[]), ["tik_data.a[\"db\"] create"]);
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(recorded_id(&p, "tik_data.a[\"web\"]"), before);
    // With both keys in state, the block's from names the block: nothing more moves.
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

const TEAM_MODULE: &str = r#"variable "name" {}
variable "workers" {
  default = 0
}
workspace "w" {
  provider = "local"
}
cluster "c" {
  workspace = workspace.w
  workers "default" {
    min = var.workers
  }
}
resource "tik_data" "label" {
  input = "${var.name} on ${cluster.c.name}"
}
output "head" {
  value = cluster.c.node.head.private_ip
}
output "label" {
  value = tik_data.label.output
}
"#;

const TEAMS: &str = r#"variable "teams" {
  type    = map(number)
  default = { ml = 1, bi = 0 }
}
variable "tag" {
  default = "v1"
}
module "team" {
  source   = "./team"
  for_each = var.teams
  name     = "${each.key}-${var.tag}"
  workers  = each.value
}
module "spare" {
  source = "./team"
  count  = 2
  name   = "spare-${count.index}"
}
output "labels" {
  value = { for k, t in module.team : k => t.label }
}
output "spares" {
  value = module.spare[*].label
}
module "quiet" {
  source = "./quiet"
  count  = 3
}
output "quiet" {
  value = length(module.quiet)
}
"#;

#[test]
fn a_module_with_for_each_or_count_makes_one_instance_per_key() {
    let p = Project::new(&[
        ("main.tik.hcl", TEAMS),
        ("team/main.tik.hcl", TEAM_MODULE),
        ("quiet/main.tik.hcl", "locals {\n  x = 1\n}\n"),
    ]);
    p.ok(&["apply", "--auto-approve"], 0);
    let listed = p.ok(&["state", "list"], 0).stdout;
    for a in [
        "module.team[\"ml\"].cluster.c.node.head",
        "module.team[\"ml\"].cluster.c.node.worker[\"default\"][0]",
        "module.team[\"bi\"].workspace.w.directory",
        "module.spare[1].tik_data.label",
    ] {
        assert!(listed.lines().any(|l| l == a), "{a} in:\n{listed}");
    }
    assert!(!listed.contains("module.team[\"bi\"].cluster.c.node.worker"));
    // Each instance's workspace and cluster have names of their own.
    let r = p.ok(&["output", "--json"], 0);
    let outputs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        outputs["labels"]["value"],
        serde_json::json!({"ml": "ml-v1 on c-ml", "bi": "bi-v1 on c-bi"})
    );
    assert_eq!(
        outputs["spares"]["value"],
        serde_json::json!(["spare-0 on c-0", "spare-1 on c-1"])
    );
    // A module without outputs is a list of its instances all the same.
    assert_eq!(outputs["quiet"]["value"], serde_json::json!(3));
    let mut dirs: Vec<String> = std::fs::read_dir(p.file(".tik/local/workspaces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["w-0", "w-1", "w-bi", "w-ml"]);
    p.ok(&["plan", "--detailed-exitcode"], 0);

    // A target in one instance plans that instance only.
    let ml = "module.team[\"ml\"]";
    assert_eq!(
        planned(&p, &["--var", "tag=v2", "--target", ml]),
        [format!("{ml}.tik_data.label update")]
    );
    assert_eq!(
        planned(&p, &["--var", "tag=v2", "--target", "module.team"]).len(),
        2
    );
    p.ok(
        &["apply", "--auto-approve", "--var", "tag=v2", "--target", ml],
        0,
    );
    assert_eq!(
        planned(&p, &["--var", "tag=v2"]),
        ["module.team[\"bi\"].tik_data.label update"]
    );

    // --replace names every instance of a block when it leaves out the key.
    let mut replaced = planned(
        &p,
        &["--var", "tag=v2", "--replace", "module.team.tik_data.label"],
    );
    replaced.sort();
    assert_eq!(
        replaced,
        [
            "module.team[\"bi\"].tik_data.label replace",
            "module.team[\"ml\"].tik_data.label replace"
        ]
    );

    // A key gone destroys its instance alone.
    let gone = planned(&p, &["--var", "teams={ml = 1}", "--var", "tag=v2"]);
    assert!(
        gone.iter()
            .all(|c| c.starts_with("module.team[\"bi\"]") && c.ends_with("delete")),
        "{gone:?}"
    );
    assert_eq!(gone.len(), 3, "{gone:?}");

    // A call without its key names every instance, in state rm as in targets.
    p.ok(&["state", "rm", "module.spare.tik_data.label"], 0);
    let listed = p.ok(&["state", "list"], 0).stdout;
    assert!(
        !listed.contains("module.spare[0].tik_data.label"),
        "{listed}"
    );
    assert!(
        !listed.contains("module.spare[1].tik_data.label"),
        "{listed}"
    );
    assert!(
        listed.contains("module.spare[1].cluster.c.node.head"),
        "{listed}"
    );
}

#[test]
fn a_module_call_gaining_count_or_for_each_keeps_what_it_made() {
    let module = "variable \"x\" {}\nresource \"tik_data\" \"d\" {\n  input = var.x\n}\n";
    let one = "module \"m\" {\n  source = \"./m\"\n  x      = \"a\"\n}\n";
    let p = Project::new(&[("main.tik.hcl", one), ("m/main.tik.hcl", module)]);
    p.ok(&["apply", "--auto-approve"], 0);
    let before = recorded_id(&p, "module.m.tik_data.d");

    // count: implied, as Terraform does.
    p.write(
        "main.tik.hcl",
        "module \"m\" {\n  source = \"./m\"\n  count  = 1\n  x      = \"a\"\n}\n",
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("# module.m has moved to module.m[0]") && r.stdout.contains("1 moved."),
        "{}",
        r.out()
    );
    assert_eq!(recorded_id(&p, "module.m[0].tik_data.d"), before);

    // for_each: by a moved block, which applies in each instance of a module too.
    p.write(
        "main.tik.hcl",
        "module \"m\" {\n  source   = \"./m\"\n  for_each = toset([\"a\", \"b\"])\n  x        = each.key\n}\nmoved {\n  from = module.m[0]\n  to   = module.m[\"a\"]\n}\n",
    );
    p.write(
        "m/main.tik.hcl",
        "variable \"x\" {}\nresource \"tik_data\" \"e\" {\n  input = var.x\n}\nmoved {\n  from = tik_data.d\n  to   = tik_data.e\n}\n",
    );
    assert_eq!(
        planned(&p, &[]),
        ["module.m[\"b\"].tik_data.e create"],
        "module.m[\"a\"].tik_data.e is the old one, moved twice"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(recorded_id(&p, "module.m[\"a\"].tik_data.e"), before);
    p.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn prevent_destroy_holds_in_every_instance_of_a_module() {
    let module = "resource \"tik_data\" \"keep\" {\n  input = \"x\"\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n";
    let root = |n: u32| format!("module \"m\" {{\n  source = \"./m\"\n  count  = {n}\n}}\n");
    let p = Project::new(&[("main.tik.hcl", &root(2)), ("m/main.tik.hcl", module)]);
    p.ok(&["apply", "--auto-approve"], 0);
    p.write("main.tik.hcl", &root(1));
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains(
            "the plan would destroy module.m[1].tik_data.keep, but its lifecycle has prevent_destroy = true"
        ) && r.stderr.contains("m/main.tik.hcl:1:1"),
        "{}",
        r.out()
    );
}
