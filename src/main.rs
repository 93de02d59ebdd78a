//! `tik`: the command line. It parses arguments, wires providers and the state backend
//! into the engine, and renders what the engine answers. It decides nothing itself.

/// Output that a closed pipe (`tik plan | head`) cannot turn into a panic: an apply
/// in progress must finish and save its state whoever stopped reading.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod backends;
mod commands;
mod project;
mod render;

use clap::{Args, Parser, Subcommand};
use render::Style;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tik",
    version,
    about = "A declarative planner for analytics and AI clusters",
    propagate_version = true
)]
struct Cli {
    /// Run as if tik was started in DIR.
    #[arg(
        short = 'C',
        long = "chdir",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
    dir: PathBuf,
    /// No colours, also on a terminal (NO_COLOR does the same).
    #[arg(long, global = true)]
    no_color: bool,
    /// How long to wait for the state lock while another run holds it (30s, 5m): by
    /// default not at all.
    #[arg(long, global = true, default_value = "0s", value_name = "DURATION")]
    lock_timeout: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
pub(crate) struct VarArgs {
    /// Set a root variable: --var NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
    /// Read variables from a file of NAME = VALUE lines, or a .json object (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_files: Vec<PathBuf>,
}

#[derive(Args, Clone, Default)]
pub(crate) struct Selection {
    /// Plan only this address and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub(crate) targets: Vec<String>,
    /// Replace this resource even if nothing changed (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    pub(crate) replace: Vec<String>,
    /// Take objects with this state's tags that it does not record into state:
    /// what the configuration wants is kept, the rest destroyed.
    #[arg(long, conflicts_with = "destroy_orphans")]
    pub(crate) adopt_orphans: bool,
    /// Destroy objects with this state's tags that it does not record (those the
    /// configuration wants are replaced).
    #[arg(long)]
    pub(crate) destroy_orphans: bool,
}

/// How a plan is shown.
#[derive(Args, Clone, Default)]
pub(crate) struct PlanView {
    /// Show every resource of the plan in full, each node step with its script,
    /// instead of each node as one entry (--json always shows everything).
    #[arg(long)]
    pub(crate) verbose: bool,
}

impl PlanView {
    pub(crate) fn style(&self, style: Style) -> Style {
        Style {
            verbose: self.verbose,
            ..style
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the modules of git sources, check the configuration and prepare the
    /// project's data directory.
    Init(commands::init::Run),
    /// Check the configuration without reading state or the world.
    Validate,
    /// Rewrite *.tik.hcl files in the canonical layout.
    Fmt(commands::fmt::Run),
    /// Show what would change to make the world match the configuration.
    Plan(commands::plan::Run),
    /// Make the changes of a plan: a new one, or one saved with `plan --out`.
    Apply(commands::apply::Run),
    /// Destroy everything this configuration's state holds.
    Destroy(commands::destroy::Run),
    /// Compare state with the world, read-only: exit 0 no drift, 2 drift, 1 error.
    Drift(commands::drift::Run),
    /// Show the state, or a saved plan.
    Show(commands::show::Run),
    /// Show root outputs from state.
    Output(commands::output::Run),
    /// Show a cluster's nodes: address, steps, and their services' health now.
    /// Exit 0 when all is well, 2 when a step failed or a service is not healthy.
    Status(commands::status::Run),
    /// Run a command on a cluster's nodes (all of them, or one with --node), in each
    /// node's home, as `sh -c` does with the words after `--`.
    Exec(commands::exec::Run),
    /// Log in to a node (the head by default) with the host key its session recorded;
    /// words after `--` run instead of a login shell.
    Ssh(commands::ssh::Run),
    /// Record the size a worker pool should have, within its min and max: the
    /// controller, or the next apply, adds or removes workers to reach it.
    Scale(commands::scale::Run),
    /// Keep clusters as the configuration last applied and the recorded pool sizes
    /// say: each round reads them and repairs what is lost, one log line per action.
    Controller(commands::controller::Run),
    /// Print the dependency graph in Graphviz DOT.
    Graph,
    /// Read and edit state.
    #[command(subcommand)]
    State(commands::state::StateCommand),
    /// Remove a lock left behind by a run that is gone.
    ForceUnlock(commands::force_unlock::Run),
    /// Take an object made outside tik into state, at an address the configuration
    /// gives it.
    Import(commands::import::Run),
    /// List the runtimes this project can use; `runtimes show NAME` shows one's
    /// params, services, ports and endpoints.
    Runtimes(commands::runtimes::Run),
    /// Print a completion script for a shell: `tik completion bash > ~/.local/share/bash-completion/completions/tik`.
    Completion(commands::completion::Run),
}

/// mimalloc: a plan of tens of thousands of resources makes millions of small
/// allocations, and glibc's allocator spent a third of such a run merging free
/// chunks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A usage error exits 1, as every other error: 2 means changes or drift only.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let style = Style {
        color: !cli.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
        verbose: false,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli, style)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let text = f.diags.render(&f.sources);
            err!(
                "{}",
                if style.color {
                    text.replacen("error:", &style.red("error:"), usize::MAX)
                } else {
                    text
                }
            );
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command, argument and flag says what it is for in `--help`.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "tik", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }
}
