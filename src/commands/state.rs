use crate::backends;
use crate::project::*;
use crate::render::{self};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tik_engine::addr::Address;
use tik_engine::diag::Diagnostic;
use tik_engine::state::State;

#[derive(Subcommand)]
pub(crate) enum StateCommand {
    /// List the addresses in state.
    List,
    /// Show one resource's recorded attributes.
    Show {
        /// The resource's address, as `state list` prints it.
        address: String,
    },
    /// Forget resources (they are not destroyed); an address covers everything under it.
    Rm {
        /// What to forget: resources, or an object or module covering them.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Move resources to another address (after renaming a block); FROM covers everything under it.
    Mv {
        /// Where state holds them now.
        from: String,
        /// Where the configuration has them now.
        to: String,
    },
    /// Print the state as JSON.
    Pull,
    /// Replace the state with a file from `state pull` (refused if it is another or an older state).
    Push {
        /// A state file, as `state pull` printed it.
        file: PathBuf,
        /// Replace even another lineage's or an older serial's state.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn state_command(dir: &Path, cmd: StateCommand) -> Result<u8> {
    let p = Project::load(dir)?;
    match cmd {
        StateCommand::List => {
            let _lock = LockGuard::take(p.backend()?, "state list")?;
            let store = p.state()?;
            let mut addrs: Vec<&Address> = store.state.resources.keys().collect();
            addrs.sort();
            for a in addrs {
                outln!("{a}");
            }
        }
        StateCommand::Show { address } => {
            let addr = parse_addresses(&[address])?.remove(0);
            let _lock = LockGuard::take(p.backend()?, "state show")?;
            let store = p.state()?;
            let r = store.state.resources.get(&addr).ok_or_else(|| {
                let names: Vec<String> = store
                    .state
                    .resources
                    .keys()
                    .map(|a| a.to_string())
                    .collect();
                Diagnostic::new(format!("no resource {addr} in state")).help_opt(
                    tik_engine::diag::did_you_mean(
                        &addr.to_string(),
                        names.iter().map(String::as_str),
                    ),
                )
            })?;
            out!("{}", render::resource(r));
        }
        StateCommand::Mv { from, to } => {
            let addrs = parse_addresses(&[from, to])?;
            let _lock = LockGuard::take(p.backend()?, "state mv")?;
            let mut store = p.state()?;
            let moved = store.move_all(&addrs[0], &addrs[1])?;
            outln!(
                "Moved {moved} resource(s) from {} to {}.",
                addrs[0],
                addrs[1]
            );
        }
        StateCommand::Pull => {
            let _lock = LockGuard::take(p.backend()?, "state pull")?;
            let store = p.state()?;
            out!("{}", String::from_utf8_lossy(&store.state.to_json()));
        }
        StateCommand::Push { file, force } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", file.display())))?;
            let what = file.display().to_string();
            let bytes = match &p.encryption {
                Some(e) if bytes.starts_with(tik_engine::state::SEALED_MAGIC) => {
                    backends::open_snapshot(e, &bytes, &what)?
                }
                _ => bytes,
            };
            let new = State::from_json(&bytes, &what)?;
            let _lock = LockGuard::take(p.backend()?, "state push")?;
            let mut store = p.state()?;
            store.replace(new, force)?;
            outln!(
                "Pushed {} to {} (serial {}).",
                file.display(),
                p.backend()?.describe(),
                store.state.serial.get()
            );
        }
        StateCommand::Rm { addresses } => {
            let addrs = parse_addresses(&addresses)?;
            let _lock = LockGuard::take(p.backend()?, "state rm")?;
            let mut store = p.state()?;
            let removed = store.remove_within(&addrs)?;
            for a in &removed {
                outln!("Removed {a}");
            }
            outln!(
                "Removed {} resource(s) from state; they still exist in the world.",
                removed.len()
            );
        }
    }
    Ok(0)
}
