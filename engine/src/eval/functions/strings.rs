//! Strings: case, trimming, substrings, join and split, replace, regular expressions, format, tostring.

use super::*;

pub(super) fn call(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
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
        other => Err(format!("unknown function {other}")),
    }
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))
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
