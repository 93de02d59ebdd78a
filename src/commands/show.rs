use crate::project::*;
use crate::render::{self, Style};
use crate::PlanView;
use clap::Args;
use std::path::{Path, PathBuf};
use tik_engine::diag::Diagnostic;
use tik_engine::plan::Plan;

#[derive(Args)]
pub(crate) struct Run {
    /// A plan saved by `tik plan --out FILE`; without it, the state.
    pub(crate) planfile: Option<PathBuf>,
    /// Print it as JSON (see docs/json-output.md).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) view: PlanView,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run {
        planfile,
        json,
        view,
    } = args;
    let style = view.style(style);
    if let Some(file) = planfile {
        let bytes = std::fs::read(&file).map_err(|e| {
            Diagnostic::new(format!("cannot read the plan {}: {e}", file.display()))
        })?;
        let plan = Plan::from_json(&bytes)
            .map_err(|e| Diagnostic::new(format!("{}: {e}", file.display())))?;
        if json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default()
            );
        } else {
            out!("{}", render::plan(&plan, style));
        }
        return Ok(0);
    }
    let p = Project::load(dir)?;
    let store = p.state()?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&render::state_json(&store.state)).unwrap_or_default()
        );
    } else {
        out!("{}", render::state(&store.state));
    }
    Ok(0)
}
