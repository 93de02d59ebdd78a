//! The built-in functions. `try` and `can` are in the evaluator: they must see errors.

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

pub(super) fn call(ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
        "abs" => {
            arity(&args, 1)?;
            Ok(Value::Number(number(&args[0], "the argument")?.abs()))
        }
        "ceil" | "floor" => {
            arity(&args, 1)?;
            let n = number(&args[0], "the argument")?;
            Ok(Value::Number(if name == "ceil" {
                n.ceil()
            } else {
                n.floor()
            }))
        }
        "min" | "max" => {
            if args.is_empty() {
                return Err("needs at least one number".into());
            }
            let nums = args
                .iter()
                .map(|a| number(a, "each argument"))
                .collect::<Result<Vec<_>, _>>()?;
            let pick = if name == "min" { f64::min } else { f64::max };
            Ok(Value::Number(nums.into_iter().reduce(pick).unwrap_or(0.0)))
        }
        "range" => range(&args),
        "length" => {
            arity(&args, 1)?;
            Ok(Value::Number(match &args[0] {
                Value::List(l) => l.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(format!("cannot take the length of {}", other.a_type())),
            } as f64))
        }
        "lower" | "upper" | "trimspace" => {
            arity(&args, 1)?;
            let s = string(&args[0], "the argument")?;
            Ok(Value::String(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                _ => s.trim().to_string(),
            }))
        }
        "trim" | "trimprefix" | "trimsuffix" | "startswith" | "endswith" => {
            arity(&args, 2)?;
            let s = string(&args[0], "the first argument")?;
            let t = string(&args[1], "the second argument")?;
            Ok(match name {
                "trim" => Value::String(s.trim_matches(|c| t.contains(c)).to_string()),
                "trimprefix" => Value::String(s.strip_prefix(t.as_str()).unwrap_or(&s).to_string()),
                "trimsuffix" => Value::String(s.strip_suffix(t.as_str()).unwrap_or(&s).to_string()),
                "startswith" => Value::Bool(s.starts_with(&t)),
                _ => Value::Bool(s.ends_with(&t)),
            })
        }
        "substr" => {
            arity(&args, 3)?;
            let s = string(&args[0], "the string")?;
            let chars: Vec<char> = s.chars().collect();
            let off = number(&args[1], "the offset")?;
            let len = number(&args[2], "the length")?;
            let start = if off < 0.0 {
                chars.len().saturating_sub((-off) as usize)
            } else {
                (off as usize).min(chars.len())
            };
            let end = if len < 0.0 {
                chars.len()
            } else {
                (start + len as usize).min(chars.len())
            };
            Ok(Value::String(chars[start..end].iter().collect()))
        }
        "join" => {
            arity(&args, 2)?;
            let sep = string(&args[0], "the separator")?;
            Ok(Value::String(
                strings(list(&args[1], "the second argument")?)?.join(&sep),
            ))
        }
        "split" => {
            arity(&args, 2)?;
            let sep = string(&args[0], "the separator")?;
            let s = string(&args[1], "the string")?;
            if s.is_empty() {
                return Ok(Value::List(vec![]));
            }
            Ok(Value::List(
                s.split(sep.as_str()).map(Value::from).collect(),
            ))
        }
        "replace" => {
            arity(&args, 3)?;
            let s = string(&args[0], "the string")?;
            let from = string(&args[1], "the substring")?;
            let to = string(&args[2], "the replacement")?;
            if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
                let re = compile(&from[1..from.len() - 1])?;
                Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()))
            } else {
                Ok(Value::String(s.replace(&from, &to)))
            }
        }
        "regex" | "regexall" => {
            arity(&args, 2)?;
            let re = compile(&string(&args[0], "the pattern")?)?;
            let s = string(&args[1], "the string")?;
            let captures = |c: regex::Captures<'_>| -> Value {
                let named: Vec<&str> = re.capture_names().flatten().collect();
                if !named.is_empty() {
                    Value::Object(
                        named
                            .iter()
                            .map(|n| {
                                (
                                    n.to_string(),
                                    c.name(n).map_or(Value::Null, |m| m.as_str().into()),
                                )
                            })
                            .collect(),
                    )
                } else if c.len() > 1 {
                    Value::List(
                        c.iter()
                            .skip(1)
                            .map(|m| m.map_or(Value::Null, |m| m.as_str().into()))
                            .collect(),
                    )
                } else {
                    Value::from(c.get(0).map_or("", |m| m.as_str()))
                }
            };
            if name == "regexall" {
                Ok(Value::List(re.captures_iter(&s).map(captures).collect()))
            } else {
                re.captures(&s)
                    .map(captures)
                    .ok_or_else(|| "the pattern did not match".to_string())
            }
        }
        "format" => format(&args),
        "tostring" => {
            arity(&args, 1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => Ok(Value::String(string(v, "the argument")?)),
            }
        }
        "tonumber" => {
            arity(&args, 1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => to_number(v)
                    .map(Value::Number)
                    .ok_or_else(|| format!("cannot convert {v} to a number")),
            }
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
        "jsonencode" => {
            arity(&args, 1)?;
            Ok(Value::String(args[0].to_json().to_string()))
        }
        "jsondecode" => {
            arity(&args, 1)?;
            let s = string(&args[0], "the argument")?;
            serde_json::from_str::<serde_json::Value>(&s)
                .map(|j| Value::from_json(&j))
                .map_err(|e| format!("invalid JSON: {e}"))
        }
        "sha256" => {
            arity(&args, 1)?;
            let s = string(&args[0], "the argument")?;
            Ok(Value::String(hex(&Sha256::digest(s.as_bytes()))))
        }
        "file" | "fileexists" => {
            arity(&args, 1)?;
            let rel = string(&args[0], "the path")?;
            let path = ev.base_dir.join(&rel);
            if let Some(files) = ev.embedded {
                let found = files.get(rel.trim_start_matches("./"));
                return match (name, found) {
                    ("fileexists", f) => Ok(Value::Bool(f.is_some())),
                    (_, Some(text)) => Ok(Value::String(text.clone())),
                    (_, None) => Err(format!("no file {rel} in {}", path.display())),
                };
            }
            if name == "fileexists" {
                return Ok(Value::Bool(path.is_file()));
            }
            read_text(&path).map(Value::String)
        }
        "templatefile" => {
            arity(&args, 2)?;
            let rel = string(&args[0], "the path")?;
            let path = ev.base_dir.join(&rel);
            let vars = object(&args[1], "the variables")?.clone();
            let text = match ev.embedded {
                Some(files) => files
                    .get(rel.trim_start_matches("./"))
                    .cloned()
                    .ok_or_else(|| format!("no file {rel} in {}", path.display()))?,
                None => read_text(&path)?,
            };
            let template = hcl_edit::parser::parse_template(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut inner = Evaluator::new(&vars, ev.base_dir);
            inner.embedded = ev.embedded;
            inner.template(&template).map_err(|e| {
                let at = e.span.map(|s| crate::diag::line_col(&text, s.start));
                match at {
                    Some((l, c)) => format!("{}:{l}:{c}: {}", path.display(), e.message),
                    None => format!("{}: {}", path.display(), e.message),
                }
            })
        }
        "cidrsubnet" => {
            arity(&args, 3)?;
            cidrsubnet(
                &string(&args[0], "the prefix")?,
                number(&args[1], "newbits")?,
                number(&args[2], "netnum")?,
            )
            .map(Value::String)
        }
        other => Err(format!("unknown function {other}")),
    }
}

fn read_text(path: &std::path::Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn range(args: &[Value]) -> R {
    let nums = args
        .iter()
        .map(|a| number(a, "each argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, end, step) = match nums.as_slice() {
        [end] => (0.0, *end, 1.0),
        [start, end] => (*start, *end, if end >= start { 1.0 } else { -1.0 }),
        [start, end, step] => (*start, *end, *step),
        _ => return Err("takes 1 to 3 arguments".into()),
    };
    if step == 0.0 || (end - start) * step < 0.0 && end != start {
        return Err("the step must move from the start toward the end".into());
    }
    let count = ((end - start) / step).ceil().max(0.0);
    if count > 1_000_000.0 {
        return Err("a range may hold at most 1,000,000 numbers".into());
    }
    Ok(Value::List(
        (0..count as usize)
            .map(|i| Value::Number(start + i as f64 * step))
            .collect(),
    ))
}

fn format(args: &[Value]) -> R {
    let Some((spec, rest)) = args.split_first() else {
        return Err("needs a format string".into());
    };
    let spec = string(spec, "the format")?;
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    let mut next = rest.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if f.is_ascii_digit() || f == '.' || f == '-' || f == '+' || f == '#' || f == ' ' {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars
            .next()
            .ok_or("the format ends in the middle of a verb")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| format!("not enough arguments for %{verb}"))?;
        let (width, precision) = match flags
            .trim_start_matches(['-', '+', '#', ' '])
            .split_once('.')
        {
            Some((w, p)) => (w.parse::<usize>().ok(), p.parse::<usize>().ok()),
            None => (
                flags
                    .trim_start_matches(['-', '+', '#', ' '])
                    .parse::<usize>()
                    .ok(),
                None,
            ),
        };
        if width.unwrap_or(0) > 1000 || precision.unwrap_or(0) > 100 {
            return Err("a width over 1000 or a precision over 100 is not supported".into());
        }
        let text = match verb {
            's' => string(arg, "a %s argument")?,
            'q' => crate::value::quote(&string(arg, "a %q argument")?),
            'd' => format!("{}", number(arg, "a %d argument")?.trunc() as i64),
            'f' => format!(
                "{:.*}",
                precision.unwrap_or(6),
                number(arg, "a %f argument")?
            ),
            'v' => to_string(arg).unwrap_or_else(|| arg.to_json().to_string()),
            't' => to_bool(arg)
                .ok_or("a %t argument must be a bool")?
                .to_string(),
            other => return Err(format!("unsupported verb %{other}")),
        };
        let w = width.unwrap_or(0);
        let zero_pad = flags.starts_with('0') && matches!(verb, 'd' | 'f');
        if zero_pad {
            let (sign, digits) = text
                .strip_prefix('-')
                .map_or(("", text.as_str()), |d| ("-", d));
            out.push_str(&format!(
                "{sign}{digits:0>w$}",
                w = w.saturating_sub(sign.len())
            ));
        } else if flags.starts_with('-') {
            out.push_str(&format!("{text:<w$}"));
        } else {
            out.push_str(&format!("{text:>w$}"));
        }
    }
    if next.next().is_some() {
        return Err("too many arguments for the format".into());
    }
    Ok(Value::String(out))
}

pub fn cidrsubnet(prefix: &str, newbits: f64, netnum: f64) -> Result<String, String> {
    let (addr, len) = prefix
        .split_once('/')
        .ok_or_else(|| format!("\"{prefix}\" is not a CIDR prefix"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("\"{prefix}\" has a bad prefix length"))?;
    if newbits < 0.0 || newbits.fract() != 0.0 || netnum < 0.0 || netnum.fract() != 0.0 {
        return Err("newbits and netnum must be whole numbers that are not negative".into());
    }
    let (newbits, netnum) = (newbits as u32, netnum as u128);
    let (bits, base): (u32, u128) = if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        (32, u32::from(v4) as u128)
    } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        (128, u128::from(v6))
    } else {
        return Err(format!("\"{addr}\" is not an IP address"));
    };
    let new_len = len.saturating_add(newbits);
    if len > bits || new_len > bits {
        return Err(format!(
            "cannot extend a /{len} prefix by {newbits} bits: the address has {bits}"
        ));
    }
    if newbits < 128 && netnum >= (1u128 << newbits) {
        return Err(format!("netnum {netnum} does not fit in {newbits} bits"));
    }
    let host_bits = bits - new_len;
    let mask: u128 = if len == 0 {
        0
    } else {
        (!0u128 >> (128 - bits)) & !((1u128 << (bits - len)) - 1)
    };
    let network = (base & mask) | netnum.checked_shl(host_bits).unwrap_or(0);
    Ok(if bits == 32 {
        format!("{}/{new_len}", Ipv4Addr::from(network as u32))
    } else {
        format!("{}/{new_len}", Ipv6Addr::from(network))
    })
}
