use crate::project::*;
use crate::render::{self, Style};
use clap::Args;
use std::path::Path;
use tik_engine::diag::Diagnostic;

#[derive(Args)]
pub(crate) struct Run {
    /// Only this output (all of them by default).
    pub(crate) name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print a string output without quotes.
    #[arg(long)]
    pub(crate) raw: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run { name, json, raw } = args;
    let p = Project::load(dir)?;
    let store = p.state()?;
    let outputs = &store.state.outputs;
    match name {
        Some(n) => {
            let o = outputs.get(&n).ok_or_else(|| {
                Diagnostic::new(format!("no output \"{n}\" in state")).help(
                    tik_engine::diag::did_you_mean(&n, outputs.keys().map(String::as_str))
                        .unwrap_or_else(|| "outputs are recorded by tik apply".into()),
                )
            })?;
            use tik_engine::value::Value;
            match (&o.value, json, raw) {
                (v, true, _) => outln!("{}", v.to_json()),
                (Value::String(s), _, true) => out!("{s}"),
                (v @ (Value::Number(_) | Value::Bool(_)), _, true) => out!("{v}"),
                (v, _, true) => {
                    return Err(Diagnostic::new(format!(
                        "output \"{n}\" is {}; --raw prints only a string, number or bool",
                        match v {
                            Value::List(_) => "a list",
                            Value::Object(_) => "an object",
                            _ => "null",
                        }
                    ))
                    .help(format!("print it as JSON with tik output {n} --json"))
                    .into())
                }
                (v, _, _) => outln!("{v}"),
            }
        }
        None if json => {
            let all: serde_json::Map<String, serde_json::Value> = outputs
                .iter()
                .map(|(k, o)| (k.clone(), serde_json::json!({ "value": o.value.to_json(), "sensitive": o.sensitive, "sensitive_parts": o.sensitive_parts })))
                .collect();
            outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        }
        None => out!("{}", render::outputs(outputs)),
    }
    Ok(0)
}
