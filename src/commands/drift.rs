use crate::project::*;
use crate::render::{self, Style};
use clap::Args;
use std::path::Path;
use tik_engine::diag::Diagnostic;
use tik_engine::plan::Plan;

#[derive(Args)]
pub(crate) struct Run {
    /// Print what drifted as JSON (see docs/json-output.md).
    #[arg(long, conflicts_with = "markdown")]
    pub(crate) json: bool,
    /// Print a Markdown summary, for a CI job's page.
    #[arg(long)]
    pub(crate) markdown: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run { json, markdown } = args;
    let p = Project::load(dir)?;
    let store = p.state()?;
    if store.is_new() && declares_objects(&p) {
        // A scheduled drift job on a clone without its state would stay green
        // for ever: no state where objects are declared is an error.
        return Err(Diagnostic::new(format!(
            "no state found at {}, but the configuration declares objects: nothing to compare the world with",
            p.backend()?.describe()
        ))
        .help("point tik at the state the applies write (tik init --backend-config ..., TIK_BACKEND_*), or apply first")
        .into());
    }
    let (_, found) = tik_engine::ops::refreshed(&store.state, &p.providers, false)
        .await
        .map_err(|d| p.fail(d))?;
    let (drift, orphans) = (found.drift, found.orphans);
    let any = !drift.is_empty() || !orphans.is_empty();
    if json {
        let plan = Plan {
            drift: drift.clone(),
            orphans: orphans.clone(),
            ..empty_plan()
        };
        let body = render::plan_json(&plan);
        let doc = serde_json::json!({ "format_version": "1", "drift": body["drift"], "orphans": body["orphans"], "drift_found": any });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if markdown {
        out!("{}", render::drift_markdown(&drift, &orphans));
    } else if !any {
        outln!("{}", style.green("No drift: the world matches the state."));
    } else {
        if !drift.is_empty() {
            out!("{}", render::drift_sections(&drift, style));
            outln!(
                "\n{} object{} drifted. Run tik plan to see how tik would restore them.",
                drift.len(),
                if drift.len() == 1 { "" } else { "s" }
            );
        }
        out!("{}", render::orphans(&orphans, style));
    }
    Ok(if any { 2 } else { 0 })
}

/// Whether the configuration asks for anything to exist.
pub(crate) fn declares_objects(p: &Project) -> bool {
    p.config.modules.iter().any(|m| !m.objects.is_empty())
}
