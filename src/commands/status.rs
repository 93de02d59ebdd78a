use crate::project::*;
use crate::render::{self, Style};
use clap::Args;
use std::path::Path;

#[derive(Args)]
pub(crate) struct Run {
    /// Only this cluster (all of them by default).
    pub(crate) cluster: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let Run { cluster, json } = args;
    status(dir, cluster.as_deref(), json, style).await
}

pub(crate) async fn status(
    dir: &Path,
    cluster: Option<&str>,
    json: bool,
    style: Style,
) -> Result<u8> {
    let p = Project::load(dir)?;
    let store = p.state()?;
    let nodes = nodes_in(&store.state, cluster)?;
    let endpoints = tik_nodes::nodes::endpoints_from_state(&store.state, cluster);
    drop(store);
    let mut controllers = Vec::new();
    let mut labels: Vec<&str> = nodes.iter().map(|n| n.cluster.as_str()).collect();
    labels.dedup();
    for label in labels {
        let Some(address) = tik_engine::scale::cluster_address(label) else {
            continue;
        };
        // Only a status: one that cannot be read is said, and the rest shown.
        match tik_engine::controller::read_status(p.backend()?, &address) {
            Ok(Some(seen)) => controllers.push((label.to_string(), seen)),
            Ok(None) => {}
            Err(e) => errln!("warning: cannot read cluster {label}'s controller record: {e}"),
        }
    }
    let services = tik_nodes::nodes::services(&step_runner(&p), &nodes).await;
    if json {
        outln!(
            "{}",
            render::status_json(&nodes, &services, &endpoints, &controllers)
        );
    } else {
        out!(
            "{}",
            render::status(&nodes, &services, &endpoints, &controllers, style)
        );
    }
    Ok(if tik_nodes::nodes::all_well(&nodes, &services) {
        0
    } else {
        2
    })
}
