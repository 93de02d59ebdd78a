//! `tik runtimes`: the runtimes this project can use (shipped and its own
//! `runtimes/NAME/`), and `tik runtimes show NAME`: each param, service, port and
//! endpoint of one.

use crate::project::*;
use crate::render::{self, Style};
use clap::{Args, Subcommand};
use std::path::Path;
use tik_engine::diag::{did_you_mean, Diagnostic, Sources};
use tik_nodes::runtime::{listed, load_all, RuntimeRef};

#[derive(Args)]
pub(crate) struct Run {
    #[command(subcommand)]
    pub(crate) show: Option<Show>,
    /// Print the reference of every runtime as Markdown (docs/runtime-reference.md is this,
    /// for the shipped runtimes).
    #[arg(long)]
    pub(crate) markdown: bool,
}

#[derive(Subcommand)]
pub(crate) enum Show {
    /// Show one runtime: its params (type, default, allowed values), services
    /// (the nodes they run on, their ports, their steps) and endpoints.
    Show {
        /// The runtime's name, as in `runtime "NAME" { ... }`.
        name: String,
    },
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let mut sources = Sources::default();
    let (defs, diags) = load_all(dir, &mut sources);
    if !diags.is_empty() {
        return Err(Failure { sources, diags });
    }
    let refs: Vec<RuntimeRef> = listed(defs.values());
    match args.show {
        None if args.markdown => out!("{}", render::runtimes::markdown(&refs)),
        None => out!("{}", render::runtimes::list(&refs, style)),
        Some(Show::Show { name }) => {
            let Some(r) = refs.iter().find(|r| r.name == name) else {
                let help = did_you_mean(&name, refs.iter().map(|r| r.name.as_str()))
                    .unwrap_or_else(|| "tik runtimes lists them".into());
                return Err(Diagnostic::new(format!("there is no runtime \"{name}\""))
                    .help(help)
                    .into());
            };
            if args.markdown {
                out!("{}", render::runtimes::markdown(std::slice::from_ref(r)));
            } else {
                out!("{}", render::runtimes::show(r, style));
            }
        }
    }
    Ok(0)
}
