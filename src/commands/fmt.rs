use crate::project::*;
use crate::render::Style;
use clap::Args;
use std::path::{Path, PathBuf};
use tik_engine::diag::Diagnostic;

#[derive(Args)]
pub(crate) struct Run {
    /// Only list files that need formatting; exit 3 if there are any.
    #[arg(long)]
    pub(crate) check: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run { check } = args;
    fmt(dir, check)
}

pub(crate) fn fmt(dir: &Path, check: bool) -> Result<u8> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".tik.hcl"))
        })
        .collect();
    entries.sort();
    let mut unformatted = 0;
    for path in entries {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", path.display())))?;
        let formatted = tik_engine::fmt::format(&text).ok_or_else(|| {
            Diagnostic::new(format!(
                "{} has syntax errors, so it was not formatted",
                path.display()
            ))
            .help("tik validate shows where")
        })?;
        if formatted != text {
            unformatted += 1;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            outln!("{name}");
            if !check {
                std::fs::write(&path, formatted).map_err(|e| {
                    Diagnostic::new(format!("cannot write {}: {e}", path.display()))
                })?;
            }
        }
    }
    Ok(if check && unformatted > 0 { 3 } else { 0 })
}
