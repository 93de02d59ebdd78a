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
