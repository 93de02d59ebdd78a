use crate::project::*;
use crate::render::Style;
use std::path::Path;

pub(crate) async fn run(dir: &Path, _style: Style) -> Result<u8> {
    let p = Project::load(dir)?;
    let graph = tik_engine::graph::Graph::build(&p.config, &p.providers).map_err(|d| p.fail(d))?;
    out!("{}", graph.to_dot(&p.config));
    Ok(0)
}
