use crate::project::*;
use crate::render::{self, Style};
use crate::{PlanView, Selection, VarArgs};
use clap::{ArgAction, Args};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tik_engine::apply::{ApplyEvent, ApplyOptions};
use tik_engine::diag::Diagnostic;
use tik_engine::plan::Plan;
use tik_engine::state::StateStore;

#[derive(Args)]
pub(crate) struct Run {
    /// A plan saved by `tik plan --out FILE`.
    pub(crate) planfile: Option<PathBuf>,
    /// Apply without asking.
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// How many changes may run at once (`tik_data`, which lives in state alone
    /// and calls nothing, is not counted).
    #[arg(long, default_value_t = 10)]
    pub(crate) parallelism: usize,
    /// Read the world first (default true): --refresh=false plans from state alone.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) refresh: bool,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    #[command(flatten)]
    pub(crate) selection: Selection,
    #[command(flatten)]
    pub(crate) view: PlanView,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run {
        planfile,
        auto_approve,
        parallelism,
        refresh,
        vars,
        selection,
        view,
    } = args;
    let style = view.style(style);
    if planfile.is_some()
        && (!vars.vars.is_empty()
            || !vars.var_files.is_empty()
            || !selection.targets.is_empty()
            || !selection.replace.is_empty())
    {
        return Err(Diagnostic::new("a saved plan is applied exactly as it was made: --var, --var-file, --target and --replace do not go with it")
            .help("pass them to tik plan --out FILE instead")
            .into());
    }
    let p = Project::load(dir)?;
    let _lock = LockGuard::take(p.backend()?, "apply")?;
    let mut store = p.state()?;
    let (plan, saved) = match planfile {
        Some(file) => {
            let bytes = std::fs::read(&file).map_err(|e| {
                Diagnostic::new(format!("cannot read the plan {}: {e}", file.display()))
            })?;
            (
                Plan::from_json(&bytes)
                    .map_err(|e| Diagnostic::new(format!("{}: {e}", file.display())))?,
                true,
            )
        }
        None => {
            let options = plan_options(&selection, false)?;
            (p.plan(&store.state, &vars, &options, refresh).await?, false)
        }
    };
    apply(
        &p,
        &mut store,
        plan,
        saved,
        auto_approve,
        parallelism,
        style,
    )
    .await
}

pub(crate) async fn apply(
    p: &Project,
    store: &mut StateStore<'_>,
    plan: Plan,
    saved: bool,
    auto_approve: bool,
    parallelism: usize,
    style: Style,
) -> Result<u8> {
    if parallelism == 0 {
        return Err(Diagnostic::new("--parallelism must be at least 1").into());
    }
    if !saved {
        out!("{}", render::plan(&plan, style));
        if !plan.has_changes() && plan.drift.is_empty() {
            return Ok(0);
        }
        if !auto_approve && plan.has_changes() {
            let what = if plan.destroy {
                "Do you really want to destroy everything in this state?"
            } else {
                "Do you want to perform these actions?"
            };
            if !confirm(what) {
                outln!("\nApply cancelled: nothing was changed.");
                return Ok(1);
            }
        }
        outln!();
    }
    // On a terminal, what runs stays in view with its time; elsewhere, plain lines.
    let mut live = std::io::stdout()
        .is_terminal()
        .then(|| render::live::Live::new(plan.changes.len(), style));
    let mut on_event = |e: ApplyEvent| match live.as_mut() {
        Some(view) => view.event(e),
        None => outln!("{}", render::apply_event(e, style)),
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // A second Ctrl-C stops at once: the journal already holds every change started.
    tokio::spawn(async {
        for _ in 0..2 {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
        }
        errln!("\nTwo interrupts: stopping at once. State records every change that was started; run tik plan to see where things stand.");
        std::process::exit(130);
    });
    let options = ApplyOptions {
        parallelism,
        ..Default::default()
    };
    let result = tik_engine::apply::apply(
        &p.config,
        &p.providers,
        store,
        &plan,
        &options,
        cancel,
        &mut on_event,
    )
    .await;
    if let Some(view) = live {
        view.finish();
    }
    let report = match result {
        Ok(r) => r,
        Err(mut d) => {
            if store.has_unsaved() {
                save_errored(p, store, &mut d);
            }
            return Err(p.fail(d));
        }
    };
    let (out, err) = render::apply_report(&plan, &report, &store.state.outputs, style);
    out!("{out}");
    err!("{err}");
    Ok(u8::from(report.interrupted || !report.ok()))
}
