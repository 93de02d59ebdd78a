use super::*;
use crate::value::Map;
use std::path::Path;

fn scope() -> Map {
    let mut var = Map::new();
    var.insert("region".into(), "us-west-2".into());
    var.insert("n".into(), Value::Number(3.0));
    var.insert(
        "tags".into(),
        Value::Object([("a".to_string(), Value::from("1"))].into_iter().collect()),
    );
    let mut s = Map::new();
    s.insert("var".into(), Value::Object(var));
    s.insert("id".into(), Value::Unknown);
    s
}

fn eval(src: &str) -> std::result::Result<Value, EvalError> {
    let expr = hcl_edit::parser::parse_expr(src).expect("test expression parses");
    let s = scope();
    Evaluator::new(&s, Path::new(".")).eval(&expr)
}

fn ok(src: &str) -> String {
    eval(src)
        .unwrap_or_else(|e| panic!("{src}: {e:?}"))
        .to_string()
}

#[test]
fn references_templates_and_conditionals() {
    assert_eq!(
        ok(r#""analytics-${var.region}""#),
        r#""analytics-us-west-2""#
    );
    assert_eq!(ok("var.n > 2 ? \"big\" : \"small\""), r#""big""#);
    assert_eq!(ok("var.tags[\"a\"]"), r#""1""#);
    assert_eq!(ok("\"${var.n}\""), "3");
    assert_eq!(
        ok("[for k, v in {a = 1, b = 2} : \"${k}=${v}\" if v > 1]"),
        "[\n  \"b=2\",\n]"
    );
    assert_eq!(
        ok("{for s in [\"a\", \"b\", \"a\"] : s => s...}").replace(char::is_whitespace, ""),
        "{a=[\"a\",\"a\",]b=[\"b\",]}"
    );
    assert_eq!(
        ok("[{x = 1}, {x = 2}][*].x").replace(char::is_whitespace, ""),
        "[1,2,]"
    );
    assert_eq!(ok("\"%{ for x in [1, 2] }${x};%{ endfor }\""), "\"1;2;\"");
    assert_eq!(ok("\"a %{~ if true ~} b %{~ endif ~}\""), "\"ab\"");
}

#[test]
fn heredoc_directives_strip_and_dedent() {
    let src = "<<-EOT\n    head\n    %{ for w in [1, 2] ~}\n    worker ${w}\n    %{ endfor ~}\n    tail\n  EOT";
    assert_eq!(
        eval(src).unwrap(),
        Value::from("head\nworker 1\nworker 2\ntail\n")
    );
}

#[test]
fn unknown_flows_through_everything() {
    for src in [
        "id",
        "\"x-${id}\"",
        "id + 1",
        "upper(id)",
        "id == \"a\" ? 1 : 2",
        "[for x in id : x]",
        "{a = id}.a",
    ] {
        assert!(eval(src).unwrap().has_unknown(), "{src}");
    }
    assert_eq!(ok("can(id)"), "(known after apply)");
}

#[test]
fn functions_do_what_terraform_users_expect() {
    assert_eq!(ok(r#"cidrsubnet("10.0.0.0/16", 8, 2)"#), r#""10.0.2.0/24""#);
    assert_eq!(
        ok(r#"cidrsubnet("fd00::/48", 16, 1)"#),
        r#""fd00:0:0:1::/64""#
    );
    assert_eq!(ok(r#"format("%s-%03d", "w", 7)"#), r#""w-007""#);
    assert_eq!(ok(r#"join(",", split("-", "a-b-c"))"#), r#""a,b,c""#);
    assert_eq!(
        ok(r#"regex("^([a-z]+)-([0-9])$", "us-2")"#).replace(char::is_whitespace, ""),
        r#"["us","2",]"#
    );
    assert_eq!(
        ok(r#"can(regex("^[a-z]+-[a-z]+-[0-9]$", var.region))"#),
        "true"
    );
    assert_eq!(ok(r#"can(regex("^x$", var.region))"#), "false");
    assert_eq!(ok(r#"try(var.nope, "fallback")"#), r#""fallback""#);
    assert_eq!(ok(r#"lookup({a = 1}, "b", 9)"#), "9");
    assert_eq!(ok(r#"merge({a = 1}, {b = 2}, {a = 3}).a"#), "3");
    assert_eq!(ok(r#"length(concat([1], [2, 3]))"#), "3");
    assert_eq!(
        ok(r#"jsondecode(jsonencode({a = [1, true]})).a[1]"#),
        "true"
    );
    assert_eq!(ok(r#"replace("a.b.c", "/[.]/", "-")"#), r#""a-b-c""#);
    assert_eq!(ok(r#"coalesce("", null, "x")"#), r#""x""#);
    assert_eq!(ok(r#"tonumber("42") + min(3, 1, 2) + max(1, 5)"#), "48");
    assert_eq!(
        ok(r#"range(3)"#).replace(char::is_whitespace, ""),
        "[0,1,2,]"
    );
    assert_eq!(
        ok(r#"keys({b = 1, a = 2})"#).replace(char::is_whitespace, ""),
        r#"["a","b",]"#
    );
    assert_eq!(ok(r#"contains(values({b = 1}), 1)"#), "true");
    assert_eq!(ok(r#"lower("AB") == "ab" && upper("a") == "A""#), "true");
    assert_eq!(ok(r#"tostring(1.5)"#), r#""1.5""#);
}

#[test]
fn errors_point_at_the_offending_part() {
    let e = eval("var.regoin").unwrap_err();
    assert_eq!(e.message, "this object has no attribute \"regoin\"");
    assert_eq!(e.span, Some(4..10));
    assert_eq!(e.help.as_deref(), Some("did you mean \"region\"?"));
    let e = eval("lenght([])").unwrap_err();
    assert_eq!(e.message, "unknown function \"lenght\"");
    assert_eq!(e.help.as_deref(), Some("did you mean \"length\"?"));
    assert!(eval("1 / 0")
        .unwrap_err()
        .message
        .contains("division by zero"));
    assert!(eval("\"x${[1]}\"")
        .unwrap_err()
        .message
        .contains("cannot interpolate a list"));
    assert!(eval("regex(\"(\", \"x\")")
        .unwrap_err()
        .message
        .contains("invalid regular expression"));
    assert!(eval("range(1e12)").is_err());
}

/// A scope with a sensitive variable and a cluster whose nodes' connections are
/// sensitive, and where it is marked so.
fn marked_scope() -> (Map, Marks) {
    let node = |ip: &str| serde_json::json!({ "ip": ip, "conn": format!("key-of-{ip}") });
    let scope = serde_json::json!({
        "var": { "secret": "hunter2", "plain": "p" },
        "c": { "node": { "head": node("1"), "w": [node("2"), node("3")] } },
    });
    let Value::Object(scope) = Value::from_json(&scope) else {
        unreachable!("an object")
    };
    let mut marks = Marks::default();
    marks.mark(&["var", "secret"]);
    marks.mark(&["c", "node", "head", "conn"]);
    marks.mark(&["c", "node", "w", "0", "conn"]);
    marks.mark(&["c", "node", "w", "1", "conn"]);
    (scope, marks)
}

#[test]
fn reading_a_marked_part_is_sensitive_and_reading_beside_it_is_not() {
    let (scope, marks) = marked_scope();
    let read = |src: &str| {
        let expr = hcl_edit::parser::parse_expr(src).expect("test expression parses");
        let mut ev = Evaluator::new(&scope, Path::new(".")).with_marks(&marks);
        ev.eval(&expr).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        ev.take_touched()
    };
    for src in [
        "var.plain",
        "c.node.head.ip",
        "c.node.w[1].ip",
        "c.node.w[0][\"ip\"]",
        "c.node.w[*].ip",
        "[for w in c.node.w : w.ip]",
        "{for i, w in c.node.w : w.ip => i}",
        "\"%{for w in c.node.w}${w.ip} %{endfor}\"",
        "[for k, v in var : k]",
    ] {
        assert!(!read(src), "{src} reads nothing sensitive");
    }
    for src in [
        "var.secret",
        "var",
        "\"x-${var.secret}\"",
        "upper(var.secret)",
        "var.secret == \"\" ? 1 : 2",
        "c.node.head",
        "c.node.w[1].conn",
        "c.node.w[*].conn",
        "[for w in c.node.w : w]",
        "[for w in c.node.w : w.conn]",
        "\"%{for w in c.node.w}${w.conn}%{endfor}\"",
        "length(c.node.w)",
        "(c.node).head.conn",
    ] {
        assert!(read(src), "{src} reads something sensitive");
    }
    // A plain reference keeps the marks of what it names; anything else that read a
    // sensitive value is sensitive as a whole.
    let with = |src: &str| {
        let expr = hcl_edit::parser::parse_expr(src).expect("test expression parses");
        let mut ev = Evaluator::new(&scope, Path::new(".")).with_marks(&marks);
        ev.eval_with_marks(&expr).unwrap().1
    };
    let node = with("c.node");
    assert!(!node.is_whole());
    assert!(node.at(&["head", "conn"]).is_some());
    assert!(node.at(&["head", "ip"]).is_none());
    assert!(with("upper(var.secret)").is_whole());
    assert!(with("c.node.head.ip").is_empty());
}
