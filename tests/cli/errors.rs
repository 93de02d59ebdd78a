//! Bad input gets a clear error naming file, line and column, and never a panic.

use crate::common::Project;

fn error_of(files: &[(&str, &str)]) -> String {
    let p = Project::new(files);
    let r = p.tik(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(!r.stderr.contains("panicked"), "{}", r.out());
    r.stderr
}

#[test]
fn a_syntax_error_shows_the_line_and_a_caret() {
    let e = error_of(&[("main.tik.hcl", "locals {\n  a = 1\n  b = = 2\n}\n")]);
    assert!(e.contains("error: syntax error"), "{e}");
    assert!(e.contains("--> main.tik.hcl:3:"), "{e}");
    assert!(e.contains("3 |   b = = 2\n"), "{e}");
    assert!(e.contains('^'), "{e}");
}

#[test]
fn misspelt_attributes_and_blocks_get_did_you_mean() {
    let e = error_of(&[("main.tik.hcl", "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  head {\n    instanc_type = \"x\"\n  }\n  worker \"w\" {\n    min = 1\n  }\n}\n")]);
    assert!(
        e.contains("unsupported attribute \"instanc_type\" in head"),
        "{e}"
    );
    assert!(e.contains("--> main.tik.hcl:7:5"), "{e}");
    assert!(e.contains("did you mean \"instance_type\"?"), "{e}");
    assert!(
        e.contains("unsupported block \"worker\" in cluster \"c\""),
        "{e}"
    );
    assert!(e.contains("did you mean \"workers\"?"), "{e}");
    let e = error_of(&[("main.tik.hcl", "resurce \"tik_data\" \"a\" {}\n")]);
    assert!(e.contains("did you mean \"resource\"?"), "{e}");
    let e = error_of(&[("main.tik.hcl", "resource \"tik_dat\" \"a\" {}\n")]);
    assert!(e.contains("unknown resource type \"tik_dat\""), "{e}");
    assert!(e.contains("did you mean \"tik_data\"?"), "{e}");
}

#[test]
fn undefined_references_and_functions_are_named() {
    let e = error_of(&[(
        "main.tik.hcl",
        "variable \"region\" { default = \"x\" }\nlocals {\n  a = var.regoin\n}\n",
    )]);
    assert!(
        e.contains("reference to undeclared variable \"var.regoin\""),
        "{e}"
    );
    assert!(e.contains("--> main.tik.hcl:3:7"), "{e}");
    assert!(e.contains("did you mean \"region\"?"), "{e}");
    let e = error_of(&[("main.tik.hcl", "locals {\n  a = lenght([1])\n}\n")]);
    assert!(e.contains("unknown function \"lenght\""), "{e}");
    assert!(e.contains("did you mean \"length\"?"), "{e}");
    let e = error_of(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = tik_data.b.id\n}\n",
    )]);
    assert!(
        e.contains("reference to undeclared resource \"tik_data.b\""),
        "{e}"
    );
}

#[test]
fn a_cycle_lists_its_members_and_where_each_reference_is() {
    let e = error_of(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = tik_data.c.id\n}\nresource \"tik_data\" \"b\" {\n  input = tik_data.a.id\n}\nresource \"tik_data\" \"c\" {\n  input = tik_data.b.id\n}\n",
    )]);
    assert!(e.contains("dependency cycle (each refers to the next): tik_data.a -> tik_data.c -> tik_data.b -> tik_data.a"), "{e}");
    assert!(e.contains("tik_data.a refers to tik_data.c here"), "{e}");
    for line in [":2:11", ":5:11", ":8:11"] {
        assert!(e.contains(&format!("main.tik.hcl{line}")), "{line}\n{e}");
    }
}

#[test]
fn types_validations_and_duplicates_are_checked() {
    let e = error_of(&[(
        "main.tik.hcl",
        "variable \"n\" {\n  type    = number\n  default = \"many\"\n}\n",
    )]);
    assert!(
        e.contains("invalid value for variable \"n\": a number is required, got \"many\""),
        "{e}"
    );
    // At the value that is wrong, with the declaration as a note.
    assert!(e.contains("--> main.tik.hcl:3:13"), "{e}");
    assert!(e.contains("note: the variable"), "{e}");
    let e = error_of(&[(
        "main.tik.hcl",
        "variable \"names\" {\n  type    = list(string)\n  default = [{ a = 1 }]\n}\n",
    )]);
    assert!(
        e.contains("element 0: a string is required, got an object"),
        "{e}"
    );
    let p = Project::new(&[(
        "main.tik.hcl",
        "variable \"pin\" {\n  type      = number\n  sensitive = true\n}\n",
    )]);
    let r = p.tik(&["plan", "--var", "pin=\"hunter2\""]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr.contains("--var pin: invalid value for variable \"pin\": it is not a number (the value is sensitive, so it is not shown)"),
        "{}",
        r.out()
    );
    assert!(!r.out().contains("hunter2"), "{}", r.out());
    let p = Project::new(&[("main.tik.hcl", "variable \"region\" {\n  type = string\n  validation {\n    condition     = can(regex(\"^[a-z]+-[a-z]+-[0-9]$\", var.region))\n    error_message = \"region looks like us-west-2\"\n  }\n}\n")]);
    let r = p.tik(&["plan", "--var", "region=Mars"]);
    assert_eq!(r.code, 1, "{}", r.out());
    assert!(
        r.stderr
            .contains("invalid value for variable \"region\": region looks like us-west-2"),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("--> main.tik.hcl:4:21"), "{}", r.out());
    p.ok(&["plan", "--var", "region=us-west-2"], 0);
    let r = p.tik(&["plan"]);
    assert!(
        r.stderr
            .contains("no value for the required variable \"region\""),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("TIK_VAR_region"), "{}", r.out());
    let e = error_of(&[
        ("a.tik.hcl", "resource \"tik_data\" \"x\" {}\n"),
        ("b.tik.hcl", "\nresource \"tik_data\" \"x\" {}\n"),
    ]);
    assert!(e.contains("duplicate resource block \"x\""), "{e}");
    assert!(
        e.contains("--> b.tik.hcl:2:1")
            && e.contains("first defined here")
            && e.contains("--> a.tik.hcl:1:1"),
        "{e}"
    );
}

/// One plan names every mistake of the objects that do not depend on a failed one,
/// in the files' order, and does not echo a mistake through what depends on it.
#[test]
fn every_independent_mistake_is_named_once_in_one_run() {
    let p = Project::new(&[(
        "main.tik.hcl",
        r#"resource "tik_data" "x" {
  input = upper("a", "b")
}

variable "n" {
  type    = number
  default = "many"
}

locals {
  twice = var.n * 2
}

resource "tik_data" "y" {
  input = local.twice
}

resource "tik_data" "z" {
  input = nosuch(1)
}
"#,
    )]);
    let r = p.tik(&["plan", "--no-color"]);
    assert_eq!(r.code, 1, "{}", r.out());
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 3, "{}", r.out());
    let at = |needle: &str| {
        r.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}:\n{}", r.out()))
    };
    assert!(at("main.tik.hcl:2:") < at("main.tik.hcl:5:"), "{}", r.out());
    assert!(
        at("main.tik.hcl:5:") < at("main.tik.hcl:19:"),
        "{}",
        r.out()
    );
    assert!(
        r.stderr.contains("invalid value for variable \"n\""),
        "{}",
        r.out()
    );
    assert!(!r.stderr.contains("local.twice"), "{}", r.out());
}

#[test]
fn bad_utf8_deep_nesting_and_empty_directories_do_not_panic() {
    let p = Project::new(&[]);
    std::fs::write(p.file("main.tik.hcl"), b"locals {\n  a = \"\xff\xfe\"\n}\n").unwrap();
    let r = p.tik(&["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not valid UTF-8") && r.stderr.contains("main.tik.hcl:2:8"),
        "{}",
        r.out()
    );

    for depth in [200usize, 100_000] {
        let deep = format!(
            "locals {{\n  a = {}1{}\n}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let e = error_of(&[("main.tik.hcl", &deep)]);
        assert!(e.contains("error:"), "{e}");
        let deep_blocks = format!(
            "{}{}",
            "a {\n".repeat(depth.min(5000)),
            "}\n".repeat(depth.min(5000))
        );
        let e = error_of(&[("main.tik.hcl", &deep_blocks)]);
        assert!(e.contains("error:"), "{e}");
    }
    let empty = Project::new(&[]);
    let r = empty.tik(&["plan"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no *.tik.hcl files"), "{}", r.out());
}

#[test]
fn provider_level_mistakes_point_at_the_value_at_fault() {
    let e = error_of(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"lokal\"\n}\n",
    )]);
    assert!(
        e.contains("unknown provider \"lokal\"") && e.contains("did you mean \"local\"?"),
        "{e}"
    );
    let e = error_of(&[("main.tik.hcl", "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  workers \"w\" {\n    min = 5\n    max = 2\n  }\n}\n")]);
    assert!(
        e.contains("cluster \"c\": workers \"w\": min (5) is more than max (2)"),
        "{e}"
    );
    // The provider names the attribute at fault, and the caret is on its value.
    assert!(e.contains("--> main.tik.hcl:8:11"), "{e}");
    let e = error_of(&[("main.tik.hcl", "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  workers \"w\" {\n    min = \"two\"\n  }\n}\n")]);
    assert!(
        e.contains("workers \"w\" min must be a whole number"),
        "{e}"
    );
    assert!(e.contains("--> main.tik.hcl:7:11"), "{e}");
    let e = error_of(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"local\"\n  network {\n    cidr = \"127.88.0.0/33\"\n  }\n}\n",
    )]);
    assert!(e.contains("--> main.tik.hcl:4:12"), "{e}");
}

#[test]
fn each_provider_checks_its_own_attributes() {
    // The local provider has no availability zones: the attribute is refused
    // where it is written, with what the local provider's network takes.
    let e = error_of(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"local\"\n  network {\n    availability_zones = [\"a\"]\n  }\n}\n",
    )]);
    assert!(
        e.contains("unsupported attribute \"availability_zones\" in network"),
        "{e}"
    );
    assert!(e.contains("--> main.tik.hcl:4:5"), "{e}");
    assert!(e.contains("network takes: cidr, mode, allowed_ssh"), "{e}");
    // AWS's own attributes get did-you-mean against AWS's schema.
    let e = error_of(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"aws\"\n  regoin = \"us-east-1\"\n}\n",
    )]);
    assert!(e.contains("did you mean \"region\"?"), "{e}");
    // A cluster takes its provider's attributes through its workspace.
    let e = error_of(&[("main.tik.hcl", "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"c\" {\n  workspace = workspace.dev\n  workers \"w\" {\n    min = 1\n    spot_falback = true\n  }\n}\n")]);
    assert!(
        e.contains("unsupported attribute \"spot_falback\" in workers \"w\""),
        "{e}"
    );
}

#[test]
fn bad_state_files_are_refused_and_kept() {
    let p = Project::new(&[("main.tik.hcl", "resource \"tik_data\" \"a\" {}\n")]);
    p.write("tik.tikstate", "{\"format_version\": 1, \"serial\"");
    let r = p.tik(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not valid JSON") && r.stderr.contains("left it as it is"),
        "{}",
        r.out()
    );
    assert_eq!(p.read("tik.tikstate"), "{\"format_version\": 1, \"serial\"");
    p.write("tik.tikstate", "{\"format_version\": 7, \"serial\": 1, \"lineage\": \"x\", \"resources\": [], \"outputs\": {}}");
    let r = p.tik(&["plan"]);
    assert!(r.stderr.contains("format version 7"), "{}", r.out());
    // The lock taken by apply was released despite the error.
    assert!(!p.file("tik.tikstate.lock").exists());
}

#[test]
fn count_and_for_each_mistakes_are_named_where_written() {
    let cases: &[(&str, &[&str])] = &[
        (
            "resource \"tik_data\" \"a\" {\n  count    = 2\n  for_each = toset([\"x\"])\n}\n",
            &["a block takes count or for_each, not both", "main.tik.hcl:3:3"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  input = count.index\n}\n",
            &[
                "count.index is known only in a resource or module block that sets count",
                "main.tik.hcl:2:11",
                "add count = ... to the block",
            ],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  for_each = toset([\"x\"])\n  input    = each.val\n}\n",
            &["each has no attribute \"val\"", "main.tik.hcl:3:14", "write each.key or each.value"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  for_each = [\"x\", \"x\"]\n}\n",
            &["for_each lists \"x\" twice", "main.tik.hcl:2:14", "toset"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  for_each = [1]\n}\n",
            &["for_each takes a map or a set of strings; item 0 is a number", "tostring"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  count = -1\n}\n",
            &["count must be a whole number, 0 or more, not -1", "main.tik.hcl:2:11"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  count = { n = 1 }\n}\n",
            &["count must be a whole number, 0 or more, not an object"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  count = 1e9\n}\n",
            &["count makes 1000000000 instances; the most is 100000"],
        ),
        (
            "variable \"keys\" {\n  sensitive = true\n  default   = { a = 1 }\n}\nresource \"tik_data\" \"a\" {\n  for_each = var.keys\n}\n",
            &["for_each reads a sensitive value", "main.tik.hcl:6:14"],
        ),
        (
            "resource \"tik_data\" \"a\" {\n  for_each = { x = 1, y = { z = 2 } }\n  input    = each.value.z\n}\n",
            &["cannot read attribute \"z\" of a number", "in tik_data.a[\"x\"]"],
        ),
        (
            "cluster \"c\" {\n  count = 2\n}\n",
            &["count repeats resource and module blocks, not a cluster block", "put the cluster in a module"],
        ),
        (
            "module \"m\" {\n  source   = \"./m\"\n  for_each = toset([\"A\", \"a\"])\n}\n",
            &["the keys \"A\" and \"a\" of module \"m\" both make names ending in \"-a\"", "main.tik.hcl:3:14"],
        ),
        (
            "module \"m\" {\n  source = \"./m\"\n  count  = true\n}\n",
            &["count must be a whole number, 0 or more, not a bool", "main.tik.hcl:3:12"],
        ),
        (
            "module \"m\" {\n  source = \"./m\"\n  count  = local.n\n}\n",
            &["reference to undeclared local value \"local.n\"", "main.tik.hcl:3:12"],
        ),
        (
            "module \"m\" {\n  source = \"./m\"\n  count  = 1\n}\nmoved {\n  from = module.old\n  to   = module.m\n}\n",
            &["module.m names no instance of module.m, which has count or for_each", "module.m[0]"],
        ),
        (
            "module \"m\" {\n  source = \"./m\"\n}\nmoved {\n  from = module.old\n  to   = module.m[\"x\"]\n}\n",
            &["module.m[\"x\"] has a key for module.m, which has no count or for_each"],
        ),
        (
            "workspace \"w\" {\n  provider = \"local\"\n  name     = \"a/b\"\n}\n",
            &["name must be 1 to 63 letters, digits, - or _", "not \"a/b\"", "main.tik.hcl:3:14"],
        ),
        (
            "workspace \"a\" {\n  provider = \"local\"\n  name     = \"x\"\n}\nworkspace \"b\" {\n  provider = \"local\"\n  name     = \"x\"\n}\n",
            &["workspace.a and workspace.b are both the local workspace \"x\"", "main.tik.hcl:7:14"],
        ),

        (
            "variable \"count\" {}\n",
            &["\"count\" cannot name a variable", "main.tik.hcl:1:10"],
        ),
    ];
    for (config, wanted) in cases {
        let e = error_of(&[("main.tik.hcl", config), ("m/main.tik.hcl", "")]);
        for w in *wanted {
            assert!(e.contains(w), "{config}\nwanted {w:?} in:\n{e}");
        }
    }

    // Known at plan time or not at all: validate checks the block once, plan refuses.
    let p = Project::new(&[(
        "main.tik.hcl",
        "resource \"tik_data\" \"a\" {\n  input = \"x\"\n}\nresource \"tik_data\" \"b\" {\n  count = length(tik_data.a.id)\n  input = count.index\n}\n",
    )]);
    p.ok(&["validate"], 0);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("count is known only after apply")
            && r.stderr.contains("main.tik.hcl:5:11")
            && r.stderr.contains("tik apply --target"),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 1);
    assert!(!p.file("tik.tikstate").exists(), "{}", r.out());

    // So is a module call's, and validate checks the module once, with each unknown.
    let p = Project::new(&[
        (
            "main.tik.hcl",
            "resource \"tik_data\" \"x\" {}\nmodule \"m\" {\n  source   = \"./m\"\n  for_each = toset([tik_data.x.id])\n  x        = each.key\n}\noutput \"o\" {\n  value = module.m\n}\n",
        ),
        ("m/main.tik.hcl", "variable \"x\" {}\nresource \"tik_data\" \"d\" {\n  input = var.x\n}\n"),
    ]);
    p.ok(&["validate"], 0);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("for_each is known only after apply")
            && r.stderr.contains("main.tik.hcl:4:14"),
        "{}",
        r.out()
    );
    p.write(
        "m/main.tik.hcl",
        "variable \"x\" {}\nresource \"tik_data\" \"d\" {\n  input = var.y\n}\n",
    );
    let r = p.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("var.y") && r.stderr.contains("m/main.tik.hcl:3:11"),
        "{}",
        r.out()
    );
}

#[test]
fn dynamic_block_mistakes_are_named_where_written() {
    let cluster = |dynamic: &str| {
        format!("workspace \"dev\" {{\n  provider = \"local\"\n}}\ncluster \"c\" {{\n  workspace = workspace.dev\n{dynamic}}}\n")
    };
    let cases: &[(&str, &[&str])] = &[
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    content { min = workers.value }\n  }\n",
            &["dynamic \"workers\" needs labels", "main.tik.hcl:6:3", "labels = [workers.key]"],
        ),
        (
            "  dynamic \"worker\" {\n    for_each = { a = 1 }\n    content {}\n  }\n",
            &["unsupported block \"worker\" in cluster \"c\"", "main.tik.hcl:6:11", "did you mean \"workers\"?"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = [workers.key]\n    content { min = pool.value }\n  }\n",
            &["unknown name \"pool\"", "main.tik.hcl:9:21"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = { a = 1 }\n    content {}\n  }\n",
            &["the labels of dynamic \"workers\" must be a list, not an object"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = \"x\"\n    labels   = [workers.key]\n    content {}\n  }\n",
            &["the for_each of dynamic \"workers\" takes a map or a list, not a string", "main.tik.hcl:7:16"],
        ),
        (
            "  dynamic \"head\" {\n    for_each = [1, 2]\n    content {}\n  }\n",
            &["only one head block is allowed in cluster \"c\"", "main.tik.hcl:8:5"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = [workers.key]\n    content { mn = 1 }\n  }\n",
            &["unsupported attribute \"mn\" in workers \"a\"", "main.tik.hcl:9:15", "did you mean \"min\"?"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = [workers.key]\n    iterator = \"p\"\n    content {}\n  }\n",
            &["iterator is a bare name", "main.tik.hcl:9:16"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = [workers.key, \"x\"]\n    content {}\n  }\n",
            &["the labels of dynamic \"workers\" hold 2 values", "main.tik.hcl:8:16"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1 }\n    labels   = [workers.key]\n  }\n",
            &["dynamic \"workers\" needs a content block", "main.tik.hcl:6:3"],
        ),
        (
            "  dynamic \"workers\" {\n    for_each = { a = 1, b = 2 }\n    labels   = [\"same\"]\n    content {}\n  }\n",
            &["duplicate workers \"same\" block", "main.tik.hcl:9:5"],
        ),
    ];
    for (dynamic, wanted) in cases {
        let config = cluster(dynamic);
        let e = error_of(&[("main.tik.hcl", &config)]);
        for w in *wanted {
            assert!(e.contains(w), "{config}\nwanted {w:?} in:\n{e}");
        }
    }
    // Known at plan time or refused.
    let p = Project::new(&[(
        "main.tik.hcl",
        &cluster("  dynamic \"workers\" {\n    for_each = { a = tik_data.n.id }\n    labels   = [workers.value]\n    content {}\n  }\n")
            .replace("cluster \"c\"", "resource \"tik_data\" \"n\" {\n  input = 1\n}\ncluster \"c\""),
    )]);
    let r = p.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("the labels of dynamic \"workers\" are known only after apply"),
        "{}",
        r.out()
    );
}

#[test]
fn moved_block_mistakes_are_named_where_written() {
    let cases: &[(&str, &[&str])] = &[
        (
            "resource \"tik_data\" \"new\" {}\nmoved {\n  from = tik_data.old\n  to   = tik_data.nwe\n}\n",
            &["tik_data.nwe is not in the configuration", "main.tik.hcl:4:10", "did you mean \"tik_data.new\"?"],
        ),
        (
            "resource \"tik_data\" \"new\" {}\nresource \"tik_data\" \"old\" {}\nmoved {\n  from = tik_data.old\n  to   = tik_data.new\n}\n",
            &["tik_data.old is still in the configuration", "main.tik.hcl:4:10"],
        ),
        (
            "resource \"local_file\" \"new\" {\n  path    = \"x\"\n  content = \"y\"\n}\nmoved {\n  from = tik_data.old\n  to   = local_file.new\n}\n",
            &["tik_data.old is a tik_data, local_file.new a local_file: a move keeps the kind", "main.tik.hcl:7:10"],
        ),
        (
            "moved \"x\" {\n  from = tik_data.a\n  to   = tik_data.b\n}\n",
            &["a moved block takes no label", "main.tik.hcl:1:7"],
        ),
        (
            "moved {\n  from = tik_data.a\n}\n",
            &["a moved block needs to", "main.tik.hcl:1:1"],
        ),
        (
            "moved {\n  from = \"tik_data.a\"\n  to   = tik_data.b\n}\n",
            &["from must be an address: it is not a reference", "main.tik.hcl:2:10"],
        ),
        (
            "moved {\n  from = tik_data.a[var.i]\n  to   = tik_data.b\n}\n",
            &["from must be an address: an index is a number or a quoted key, written out"],
        ),
        (
            "moved {\n  from = tik_data.a\n  too  = tik_data.b\n}\n",
            &["main.tik.hcl:3:3", "did you mean \"to\"?"],
        ),
    ];
    for (config, wanted) in cases {
        let e = error_of(&[("main.tik.hcl", config)]);
        for w in *wanted {
            assert!(e.contains(w), "{config}\nwanted {w:?} in:\n{e}");
        }
    }
}

#[test]
fn one_run_names_every_mistake_even_behind_a_failed_workspace() {
    let config = r#"workspace "dev" {
  provider = "local"
  network {
    cidr = "127.88.0.0/33"
  }
}

cluster "etl" {
  workspace = workspace.dev
  head { instance_typ = "small" }
  workers "default" {
    instance_type = "small"
    min           = 1
    max           = 2
    dsik_gb       = 10
  }
  runtime "web" {
    titel = "hi"
  }
  runtime "sprak" {}
}
"#;
    let p = Project::new(&[("main.tik.hcl", config)]);
    for command in [&["validate"][..], &["plan"]] {
        let r = p.tik(command);
        assert_eq!(r.code, 1, "{}", r.out());
        let e = &r.stderr;
        for (what, at, help) in [
            (
                "\"127.88.0.0/33\" has a bad prefix length",
                "main.tik.hcl:4:12",
                "",
            ),
            (
                "unsupported attribute \"instance_typ\" in head",
                "main.tik.hcl:10:10",
                "did you mean \"instance_type\"?",
            ),
            (
                "unsupported attribute \"dsik_gb\" in workers \"default\"",
                "main.tik.hcl:15:5",
                "did you mean \"disk_gb\"?",
            ),
            (
                "runtime \"web\" has no param \"titel\"",
                "main.tik.hcl:18:5",
                "did you mean \"title\"?",
            ),
            (
                "unknown runtime \"sprak\"",
                "main.tik.hcl:20:3",
                "did you mean \"spark\"?",
            ),
        ] {
            let at_error = e
                .find(what)
                .unwrap_or_else(|| panic!("{what} missing:\n{e}"));
            let rest = &e[at_error..];
            assert!(rest.contains(&format!("--> {at}")), "{what} at {at}:\n{e}");
            assert!(rest.contains(help), "{what}: {help}\n{e}");
        }
        assert_eq!(
            e.matches("error:").count(),
            5,
            "nothing echoes the first:\n{e}"
        );
    }
    // Fixed, they are all gone, and nothing else was waiting behind them.
    let fixed = config
        .replace("/33", "/16")
        .replace("instance_typ ", "instance_type ")
        .replace("dsik_gb", "disk_gb")
        .replace("titel", "title")
        .replace("sprak", "spark");
    p.write("main.tik.hcl", &fixed);
    p.ok(&["validate"], 0);
}

#[test]
fn a_misspelt_reference_suggests_the_object_it_meant() {
    let e = error_of(&[(
        "main.tik.hcl",
        "workspace \"dev\" {\n  provider = \"local\"\n}\ncluster \"spark\" {\n  workspace = workspace.dev\n}\noutput \"x\" {\n  value = cluster.sprak.name\n}\n",
    )]);
    assert!(
        e.contains("reference to undeclared cluster \"cluster.sprak\""),
        "{e}"
    );
    assert!(e.contains("did you mean \"spark\"?"), "{e}");
    assert!(e.contains("--> main.tik.hcl:8:"), "{e}");
}
