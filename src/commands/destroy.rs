use super::apply::apply;
use crate::project::*;
use crate::render::Style;
use crate::{PlanView, Selection, VarArgs};
use clap::Args;
use std::path::Path;

#[derive(Args)]
pub(crate) struct Run {
    /// Destroy without asking.
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// How many deletes may run at once (`tik_data`, which lives in state alone
    /// and calls nothing, is not counted).
    #[arg(long, default_value_t = 10)]
    pub(crate) parallelism: usize,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    #[command(flatten)]
    pub(crate) selection: Selection,
    #[command(flatten)]
    pub(crate) view: PlanView,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run {
        auto_approve,
        parallelism,
        vars,
        selection,
        view,
    } = args;
    let style = view.style(style);
    let p = Project::load(dir)?;
    let _lock = LockGuard::take(p.backend()?, "destroy")?;
    let mut store = p.state()?;
    let options = plan_options(&selection, true)?;
    let plan = p.plan(&store.state, &vars, &options, true).await?;
    apply(
        &p,
        &mut store,
        plan,
        false,
        auto_approve,
        parallelism,
        style,
    )
    .await
}
