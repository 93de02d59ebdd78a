//! Numbers: abs, ceil, floor, min, max, range, tonumber.

use super::*;

pub(super) fn call(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
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
        "tonumber" => {
            arity(&args, 1)?;
            match &args[0] {
                Value::Null => Ok(Value::Null),
                v => to_number(v)
                    .map(Value::Number)
                    .ok_or_else(|| format!("cannot convert {v} to a number")),
            }
        }
        other => Err(format!("unknown function {other}")),
    }
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
