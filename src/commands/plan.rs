use crate::project::*;
use crate::render::{self, Style};
use crate::{PlanView, Selection, VarArgs};
use clap::{ArgAction, Args};
use std::path::{Path, PathBuf};
use tik_engine::diag::Diagnostic;

#[derive(Args)]
pub(crate) struct Run {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Save the plan for `tik apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Read the world first (default true): --refresh=false plans from state alone.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) refresh: bool,
    /// Plan the destruction of everything in state.
    #[arg(long)]
    pub(crate) destroy: bool,
    /// Print the plan as JSON (see docs/json-output.md).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) view: PlanView,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run {
        vars,
        selection,
        out,
        detailed_exitcode,
        refresh,
        destroy,
        json,
        view,
    } = args;
    let style = view.style(style);
    let p = Project::load(dir)?;
    let _lock = LockGuard::take(p.backend()?, "plan")?;
    let store = p.state()?;
    let options = plan_options(&selection, destroy)?;
    let plan = p.plan(&store.state, &vars, &options, refresh).await?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default()
        );
    } else {
        out!("{}", render::plan(&plan, style));
    }
    if let Some(out) = out {
        write_private(&out, &plan.to_json()).map_err(|e| {
            Diagnostic::new(format!("cannot write the plan to {}: {e}", out.display()))
        })?;
        if !json {
            outln!(
                "\nSaved the plan to {}. Apply exactly this plan with: tik apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}
