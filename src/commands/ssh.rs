use crate::project::*;
use crate::render::Style;
use clap::Args;
use std::path::Path;
use tik_engine::diag::Diagnostic;

#[derive(Args)]
pub(crate) struct Run {
    /// The cluster, as named in its block.
    pub(crate) cluster: String,
    /// The node: its name (worker-default-0) or address (worker["default"][0]); the
    /// head by default.
    pub(crate) node: Option<String>,
    /// A command to run instead of a login shell, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run {
        cluster,
        node,
        command,
    } = args;
    ssh(dir, &cluster, node.as_deref(), &command)
}

pub(crate) fn ssh(dir: &Path, cluster: &str, node: Option<&str>, command: &[String]) -> Result<u8> {
    let p = Project::load(dir)?;
    let nodes = recorded_nodes(&p, Some(cluster))?;
    let n = match node {
        Some(n) => tik_nodes::nodes::pick(&nodes, n)
            .map_err(|e| Diagnostic::new(e.message).help_opt(e.help))?,
        None => nodes
            .iter()
            .find(|n| n.name == "head")
            .or(nodes.first())
            .ok_or_else(|| Diagnostic::new(format!("the cluster {cluster} has no nodes")))?,
    };
    let command = (!command.is_empty()).then(|| command.join(" "));
    let login = tik_nodes::steps::login(&n.target_attributes(), command.as_deref())
        .map_err(|e| Diagnostic::new(format!("cannot log in to {}: {}", n.name, e.message)))?;
    let mut child = std::process::Command::new(&login.program);
    child.args(&login.args).envs(login.env.iter().cloned());
    if let Some(d) = &login.dir {
        child.current_dir(d);
    }
    let status = child.status();
    for f in &login.scratch {
        let _ = std::fs::remove_file(f);
    }
    let status = status.map_err(|e| {
        Diagnostic::new(format!("cannot run {}: {e}", login.program)).help_opt(
            (login.program == "ssh").then(|| {
                "install an ssh client (Debian: apt-get install openssh-client)".to_string()
            }),
        )
    })?;
    Ok(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)))
}
