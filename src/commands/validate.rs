use crate::project::*;
use crate::render::Style;
use std::path::Path;
use tik_engine::plan::PlanOptions;
use tik_engine::state::State;
use tik_engine::walk::Inputs;

pub(crate) async fn run(dir: &Path, style: Style) -> Result<u8> {
    let p = Project::load(dir)?;
    let inputs = Inputs {
        missing_unknown: true,
        ..Inputs::default()
    };
    tik_engine::plan::plan(
        &p.config,
        &p.providers,
        &State::new(String::new()),
        Vec::new(),
        inputs,
        &PlanOptions::default(),
    )
    .map_err(|d| p.fail(d))?;
    outln!("{}", style.green("The configuration is valid."));
    Ok(0)
}
