//! Encodings and digests: jsonencode, jsondecode, sha256.

use super::*;

pub(super) fn call(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
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
        other => Err(format!("unknown function {other}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
