//! `tik completion SHELL`: the shell's completion script for every command and flag.

use crate::project::*;
use crate::Cli;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args)]
pub(crate) struct Run {
    /// The shell to complete in: bash, zsh, fish, elvish or powershell.
    pub(crate) shell: Shell,
}

pub(crate) fn run(args: Run) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "tik", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}
