//! The built-in functions. `try` and `can` are in the evaluator: they must see errors.

mod collections;
mod encoding;
mod files;
mod network;
mod numbers;
mod strings;

pub use network::cidrsubnet;

use super::{to_bool, to_number, to_string, Evaluator};
use crate::value::{Map, Value};
use sha2::{Digest, Sha256};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const FUNCTION_NAMES: &[&str] = &[
    "abs",
    "can",
    "ceil",
    "cidrsubnet",
    "coalesce",
    "compact",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "file",
    "fileexists",
    "flatten",
    "floor",
    "format",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "range",
    "regex",
    "regexall",
    "replace",
    "reverse",
    "sha256",
    "slice",
    "sort",
    "split",
    "startswith",
    "substr",
    "templatefile",
    "tobool",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "upper",
    "values",
    "zipmap",
];

type R = Result<Value, String>;

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        ))
    }
}

fn string(v: &Value, what: &str) -> Result<String, String> {
    to_string(v).ok_or_else(|| format!("{what} must be a string, got {}", v.a_type()))
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    to_number(v).ok_or_else(|| format!("{what} must be a number, got {}", v.a_type()))
}

fn list<'v>(v: &'v Value, what: &str) -> Result<&'v Vec<Value>, String> {
    match v {
        Value::List(items) => Ok(items),
        other => Err(format!("{what} must be a list, got {}", other.a_type())),
    }
}

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map, String> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "{what} must be an object or map, got {}",
            other.a_type()
        )),
    }
}

fn strings(items: &[Value]) -> Result<Vec<String>, String> {
    items.iter().map(|v| string(v, "each element")).collect()
}

/// Calls the built-in function `name`: each family of functions has a module.
pub(super) fn call(ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    let family = match name {
        "abs" | "ceil" | "floor" | "min" | "max" | "range" | "tonumber" => numbers::call,
        "lower" | "upper" | "trimspace" | "trim" | "trimprefix" | "trimsuffix" | "startswith"
        | "endswith" | "substr" | "join" | "split" | "replace" | "regex" | "regexall"
        | "format" | "tostring" => strings::call,
        "length" | "tobool" | "tolist" | "toset" | "distinct" | "tomap" => collections::convert,
        "concat" | "flatten" | "compact" | "contains" | "index" | "element" | "slice"
        | "reverse" | "sort" => collections::lists,
        "keys" | "values" | "lookup" | "merge" | "zipmap" | "coalesce" => collections::maps,
        "jsonencode" | "jsondecode" | "sha256" => encoding::call,
        "file" | "fileexists" | "templatefile" => files::call,
        "cidrsubnet" => network::call,
        other => return Err(format!("unknown function {other}")),
    };
    family(ev, name, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_has_a_family() {
        let scope = Map::new();
        let mut ev = Evaluator::new(&scope, std::path::Path::new("."));
        for name in FUNCTION_NAMES
            .iter()
            .filter(|n| !["try", "can"].contains(n))
        {
            if let Err(e) = call(&mut ev, name, Vec::new()) {
                assert!(!e.starts_with("unknown function"), "{name}: {e}");
            }
        }
        assert_eq!(
            call(&mut ev, "nosuch", Vec::new()).unwrap_err(),
            "unknown function nosuch"
        );
    }
}
