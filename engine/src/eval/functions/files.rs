//! Files of the module: file, fileexists, templatefile (relative to the module's directory).

use super::*;

pub(super) fn call(ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
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
