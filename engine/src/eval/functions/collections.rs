//! Lists, sets and maps: length, conversions, concat, flatten, lookups, slices, sorting, merge, zipmap, coalesce (and tobool).

use super::*;

/// Conversions between types, and `length`.
pub(super) fn convert(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
        "length" => {
            arity(&args, 1)?;
            Ok(Value::Number(match &args[0] {
                Value::List(l) => l.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(format!("cannot take the length of {}", other.a_type())),
            } as f64))
        }
        "tobool" => {
            arity(&args, 1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => to_bool(v)
                    .map(Value::Bool)
                    .ok_or_else(|| format!("cannot convert {v} to a bool")),
            }
        }
        "tolist" => {
            arity(&args, 1)?;
            list(&args[0], "the argument").map(|l| Value::List(l.clone()))
        }
        "toset" | "distinct" => {
            arity(&args, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in list(&args[0], "the argument")? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::List(out))
        }
        "tomap" => {
            arity(&args, 1)?;
            object(&args[0], "the argument").map(|m| Value::Object(m.clone()))
        }
        other => Err(format!("unknown function {other}")),
    }
}

/// Functions of lists.
pub(super) fn lists(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
        "concat" => {
            let mut out = Vec::new();
            for a in &args {
                out.extend(list(a, "each argument")?.iter().cloned());
            }
            Ok(Value::List(out))
        }
        "flatten" => {
            arity(&args, 1)?;
            fn flat(items: &[Value], out: &mut Vec<Value>) {
                for v in items {
                    match v {
                        Value::List(inner) => flat(inner, out),
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(list(&args[0], "the argument")?, &mut out);
            Ok(Value::List(out))
        }
        "compact" => {
            arity(&args, 1)?;
            Ok(Value::List(
                list(&args[0], "the argument")?
                    .iter()
                    .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
                    .cloned()
                    .collect(),
            ))
        }
        "contains" => {
            arity(&args, 2)?;
            Ok(Value::Bool(
                list(&args[0], "the first argument")?.contains(&args[1]),
            ))
        }
        "index" => {
            arity(&args, 2)?;
            list(&args[0], "the first argument")?
                .iter()
                .position(|v| *v == args[1])
                .map(|i| Value::Number(i as f64))
                .ok_or_else(|| format!("{} is not in the list", args[1]))
        }
        "element" => {
            arity(&args, 2)?;
            let l = list(&args[0], "the first argument")?;
            if l.is_empty() {
                return Err("cannot take an element of an empty list".into());
            }
            let i = number(&args[1], "the index")?;
            if i < 0.0 {
                return Err("the index must not be negative".into());
            }
            Ok(l[i as usize % l.len()].clone())
        }
        "slice" => {
            arity(&args, 3)?;
            let l = list(&args[0], "the first argument")?;
            let (a, b) = (
                number(&args[1], "the start")? as usize,
                number(&args[2], "the end")? as usize,
            );
            if a > b || b > l.len() {
                return Err(format!("cannot slice {a}..{b} of a list of {}", l.len()));
            }
            Ok(Value::List(l[a..b].to_vec()))
        }
        "reverse" => {
            arity(&args, 1)?;
            Ok(Value::List(
                list(&args[0], "the argument")?
                    .iter()
                    .rev()
                    .cloned()
                    .collect(),
            ))
        }
        "sort" => {
            arity(&args, 1)?;
            let mut s = strings(list(&args[0], "the argument")?)?;
            s.sort();
            Ok(Value::List(s.into_iter().map(Value::from).collect()))
        }
        other => Err(format!("unknown function {other}")),
    }
}

/// Functions of maps, and `coalesce`.
pub(super) fn maps(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
        "keys" | "values" => {
            arity(&args, 1)?;
            let m = object(&args[0], "the argument")?;
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Value::List(if name == "keys" {
                pairs
                    .into_iter()
                    .map(|(k, _)| Value::from(k.as_str()))
                    .collect()
            } else {
                pairs.into_iter().map(|(_, v)| v.clone()).collect()
            }))
        }
        "lookup" => {
            if args.len() != 2 && args.len() != 3 {
                return Err(format!("takes 2 or 3 arguments, got {}", args.len()));
            }
            let m = object(&args[0], "the first argument")?;
            let k = string(&args[1], "the key")?;
            match (m.get(&k), args.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("no key \"{k}\" and no default")),
            }
        }
        "merge" => {
            let mut out = Map::new();
            for a in &args {
                if *a != Value::Null {
                    for (k, v) in object(a, "each argument")? {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Ok(Value::Object(out))
        }
        "zipmap" => {
            arity(&args, 2)?;
            let k = strings(list(&args[0], "the keys")?)?;
            let v = list(&args[1], "the values")?;
            if k.len() != v.len() {
                return Err(format!("{} keys but {} values", k.len(), v.len()));
            }
            Ok(Value::Object(
                k.into_iter().zip(v.iter().cloned()).collect(),
            ))
        }
        "coalesce" => args
            .into_iter()
            .find(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
            .ok_or_else(|| "all arguments are null or empty".to_string()),
        other => Err(format!("unknown function {other}")),
    }
}
