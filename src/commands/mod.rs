//! One module per command, as `tik --help` lists them: each parses its own
//! arguments, asks the engine, and hands what it answers to the renderers.

use crate::project::*;
use crate::render::Style;
use crate::{backends, Cli, Command};
use std::path::{Path, PathBuf};
use tik_engine::diag::Diagnostic;

pub(crate) mod apply;
pub(crate) mod completion;
pub(crate) mod controller;
pub(crate) mod destroy;
pub(crate) mod drift;
pub(crate) mod exec;
pub(crate) mod fmt;
pub(crate) mod force_unlock;
pub(crate) mod graph;
pub(crate) mod import;
pub(crate) mod init;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod runtimes;
pub(crate) mod scale;
pub(crate) mod show;
pub(crate) mod ssh;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod validate;

pub(crate) async fn run(cli: Cli, style: Style) -> Result<u8> {
    // Like Terraform's -chdir: every other path on the command line is relative to DIR.
    if cli.dir != Path::new(".") {
        std::env::set_current_dir(&cli.dir).map_err(|e| {
            Diagnostic::new(format!(
                "cannot change to the directory {}: {e}",
                cli.dir.display()
            ))
        })?;
    }
    let timeout = backends::parse_duration(&cli.lock_timeout)
        .map_err(|e| Diagnostic::new(format!("--lock-timeout: {e}")))?;
    let _ = LOCK_TIMEOUT.set(timeout);
    let dir = PathBuf::from(".");
    match cli.command {
        Command::Fmt(args) => fmt::run(args, &dir, style).await,
        Command::Init(args) => init::run(args, &dir, style).await,
        Command::Validate => validate::run(&dir, style).await,
        Command::Plan(args) => plan::run(args, &dir, style).await,
        Command::Apply(args) => apply::run(args, &dir, style).await,
        Command::Destroy(args) => destroy::run(args, &dir, style).await,
        Command::Drift(args) => drift::run(args, &dir, style).await,
        Command::Show(args) => show::run(args, &dir, style).await,
        Command::Output(args) => output::run(args, &dir, style).await,
        Command::Graph => graph::run(&dir, style).await,
        Command::Status(args) => status::run(args, &dir, style).await,
        Command::Exec(args) => exec::run(args, &dir, style).await,
        Command::Ssh(args) => ssh::run(args, &dir, style).await,
        Command::State(cmd) => state::state_command(&dir, cmd),
        Command::Import(args) => import::run(args, &dir, style).await,
        Command::ForceUnlock(args) => force_unlock::run(args, &dir, style).await,
        Command::Completion(args) => completion::run(args),
        Command::Runtimes(args) => runtimes::run(args, &dir, style).await,
        Command::Scale(args) => scale::run(args, &dir, style).await,
        Command::Controller(args) => controller::run(args, &dir, style).await,
    }
}
