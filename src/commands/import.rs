use crate::project::*;
use crate::render::Style;
use crate::VarArgs;
use clap::Args;
use std::path::Path;
use tik_engine::addr::Address;
use tik_engine::diag::Diagnostic;
use tik_engine::state::JournalEntry;

#[derive(Args)]
pub(crate) struct Run {
    /// Where the configuration puts it, such as workspace.analytics.vpc
    pub(crate) address: String,
    /// Its id as its provider knows it, such as vpc-0abc123
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run { address, id, vars } = args;
    let address = Address::parse(&address).map_err(|e| {
        Diagnostic::new(e).help("addresses look like workspace.lab.vpc or tik_data.a")
    })?;
    let p = Project::load(dir)?;
    let _lock = LockGuard::take(p.backend()?, "import")?;
    let mut store = p.state()?;
    let resource = tik_engine::ops::import(
        &p.config,
        &p.providers,
        &store.state,
        p.inputs(&vars)?,
        &address,
        &id,
    )
    .await
    .map_err(|d| p.fail(d))?;
    let type_name = resource.type_name.clone();
    store.record(JournalEntry::Put { resource })?;
    store.save()?;
    outln!(
        "Imported {type_name} {id} as {address}.\nRun tik plan to see how it differs from the configuration."
    );
    Ok(0)
}
