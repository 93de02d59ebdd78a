use crate::project::*;
use crate::render::{self, Style};
use crate::VarArgs;
use clap::Args;
use std::path::Path;
use tik_engine::plan::PlanOptions;

#[derive(Args)]
pub(crate) struct Run {
    /// The cluster: its name, or its address in a module (module.team.cluster.etl).
    pub(crate) cluster: String,
    /// The number of workers the pool should have.
    pub(crate) size: String,
    /// The pool, where the cluster has more than one.
    #[arg(long, value_name = "NAME")]
    pub(crate) pool: Option<String>,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run {
        cluster,
        size,
        pool,
        vars,
    } = args;
    let p = Project::load(dir)?;
    let _lock = LockGuard::take(p.backend()?, "scale")?;
    let mut store = p.state()?;
    // The pools and their bounds as the configuration says them now: a plan from
    // state alone, which reads nothing of the world.
    let plan = p
        .plan(&store.state, &vars, &PlanOptions::default(), false)
        .await?;
    let request = tik_engine::scale::Request {
        cluster: &cluster,
        pool: pool.as_deref(),
        size: &size,
    };
    let scaled = tik_engine::scale::request(&plan.pools, &request).map_err(|d| p.fail(d))?;
    let changed = scaled.pool.recorded != Some(scaled.size);
    if changed {
        store.record(scaled.entry.clone())?;
        store.save()?;
    }
    out!("{}", render::scaled(&scaled, changed, style));
    Ok(0)
}
