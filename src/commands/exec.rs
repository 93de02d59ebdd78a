use crate::project::*;
use crate::render::Style;
use clap::Args;
use std::path::Path;
use tik_engine::diag::Diagnostic;

#[derive(Args)]
pub(crate) struct Run {
    /// The cluster, as named in its block.
    pub(crate) cluster: String,
    /// Only this node: its name (worker-default-0) or address (worker["default"][0]).
    #[arg(long, value_name = "NODE")]
    pub(crate) node: Option<String>,
    /// The command, after `--`: run by `sh -c` in each node's home.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run {
        cluster,
        node,
        command,
    } = args;
    exec(dir, &cluster, node.as_deref(), &command.join(" ")).await
}

pub(crate) async fn exec(
    dir: &Path,
    cluster: &str,
    node: Option<&str>,
    command: &str,
) -> Result<u8> {
    let p = Project::load(dir)?;
    let mut nodes = recorded_nodes(&p, Some(cluster))?;
    if let Some(n) = node {
        let one = tik_nodes::nodes::pick(&nodes, n)
            .map_err(|e| Diagnostic::new(e.message).help_opt(e.help))?
            .clone();
        nodes = vec![one];
    }
    let targets = nodes.iter().map(|n| n.target_attributes()).collect();
    let results = step_runner(&p).command_all(targets, command).await;
    let single = node.is_some();
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let mut failed: Vec<String> = Vec::new();
    let mut last_code = 0;
    for (n, r) in nodes.iter().zip(results) {
        match r {
            Ok(o) => {
                if single {
                    use std::io::Write as _;
                    let _ = std::io::stdout().lock().write_all(&o.stdout);
                    let _ = std::io::stderr().lock().write_all(&o.stderr);
                } else {
                    for line in String::from_utf8_lossy(&o.stdout).lines() {
                        outln!("{:width$} | {line}", n.name);
                    }
                    for line in String::from_utf8_lossy(&o.stderr).lines() {
                        errln!("{:width$} | {line}", n.name);
                    }
                }
                if o.code != 0 {
                    failed.push(format!("{} (exit {})", n.name, o.code));
                    last_code = o.code;
                }
            }
            Err(e) => {
                errln!("{}: {}", n.name, e.message);
                failed.push(format!("{} (not reached)", n.name));
                last_code = 1;
            }
        }
    }
    if single {
        // One node: its exit code, as ssh would give it.
        return Ok(u8::try_from(last_code).unwrap_or(1));
    }
    if !failed.is_empty() {
        errln!("The command failed on {}.", failed.join(", "));
        return Ok(1);
    }
    Ok(0)
}
