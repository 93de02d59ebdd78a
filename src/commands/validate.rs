use crate::project::*;
use crate::render::Style;
use std::path::Path;

pub(crate) async fn run(dir: &Path, style: Style) -> Result<u8> {
    let p = Project::load(dir)?;
    tik_engine::ops::validate(&p.config, &p.providers).map_err(|d| p.fail(d))?;
    outln!("{}", style.green("The configuration is valid."));
    Ok(0)
}
