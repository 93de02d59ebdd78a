use crate::project::*;
use crate::render::Style;
use clap::Args;
use std::path::Path;

#[derive(Args)]
pub(crate) struct Run {
    /// The lock's ID, as the error that named the lock gave it.
    pub(crate) id: String,
    /// Remove it even though the run that holds it is still going.
    #[arg(long)]
    pub(crate) force: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run { id, force } = args;
    let p = Project::load(dir)?;
    p.backend()?.force_unlock(&id, force)?;
    outln!("Removed the lock {id} of {}.", p.backend()?.describe());
    Ok(0)
}
