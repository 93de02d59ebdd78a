use crate::backends;
use crate::project::*;
use crate::render::Style;
use clap::Args;
use std::path::Path;
use tik_engine::config::remote;
use tik_engine::diag::Diagnostic;
use tik_engine::state::Backend;
use tik_engine::state::StateStore;

#[derive(Args)]
pub(crate) struct Run {
    /// Fetch every git source again (a branch may have moved).
    #[arg(long)]
    pub(crate) upgrade: bool,
    /// A state backend setting kept out of the configuration: KEY=VALUE, or a file of
    /// KEY = "VALUE" lines (repeatable). Recorded in .tik/ for later commands.
    #[arg(long = "backend-config", value_name = "KEY=VALUE|FILE")]
    pub(crate) backend_config: Vec<String>,
    /// Move the state from the backend set up before to the one configured now.
    #[arg(long, conflicts_with = "reconfigure")]
    pub(crate) migrate_state: bool,
    /// Use the backend configured now, leaving the state of the one before where it is.
    #[arg(long)]
    pub(crate) reconfigure: bool,
}

pub(crate) async fn run(args: Run, dir: &Path, _style: Style) -> Result<u8> {
    let Run {
        upgrade,
        backend_config,
        migrate_state,
        reconfigure,
    } = args;
    let fetch = if upgrade {
        remote::Fetch::Again
    } else {
        remote::Fetch::Missing
    };
    let given = if backend_config.is_empty() {
        None
    } else {
        Some(backends::parse_backend_config(&backend_config)?)
    };
    let (p, fetched) = Project::load_fetching(dir, fetch, given.as_ref())?;
    if !fetched.is_empty() {
        outln!("Fetched modules:");
        for f in &fetched {
            outln!(
                "  {} at {}",
                f.source,
                f.commit.get(..12).unwrap_or(&f.commit)
            );
        }
    }
    let data = p.dir.join(".tik");
    std::fs::create_dir_all(&data)
        .map_err(|e| Diagnostic::new(format!("cannot create {}: {e}", data.display())))?;
    init_backend(&p, migrate_state, reconfigure)?;
    let providers: Vec<&str> = p.providers.names().collect();
    outln!(
        "tik is ready in {}.\n  providers: {}\n  state: {}",
        p.dir.display(),
        providers.join(", "),
        p.backend()?.describe()
    );
    Ok(0)
}

/// `tik init`'s part for state: moves it when asked (`--migrate-state`), refuses to
/// leave a state behind unasked, reads the state once (so a missing bucket or missing
/// credentials show here), and records the backend for later commands.
pub(crate) fn init_backend(p: &Project, migrate: bool, reconfigure: bool) -> Result<()> {
    let before = match &p.recorded {
        Some(r) => Some((r.backend.clone(), r.encryption.clone())),
        None => {
            let local = backends::Chosen::local_default();
            Path::new(&local.place(&p.dir))
                .exists()
                .then_some((local, None))
        }
    };
    let here = p.chosen.place(&p.dir);
    let key_now = p.encryption.as_ref();
    let changed = before.filter(|(b, enc)| b.place(&p.dir) != here || enc.as_ref() != key_now);
    match changed {
        Some((before, enc)) if migrate => {
            let new_raw = p.chosen.open(&p.dir)?;
            let same_place = before.place(&p.dir) == here;
            // In place (encrypting or decrypting): one store, one lock, two views.
            let old_raw = if same_place {
                None
            } else {
                Some(before.open(&p.dir)?)
            };
            let old_ref: &dyn Backend = old_raw.as_deref().unwrap_or(new_raw.as_ref());
            let _old_lock = LockGuard::take(old_ref, "init -migrate-state")?;
            let _new_lock = if same_place {
                None
            } else {
                Some(LockGuard::take(new_raw.as_ref(), "init -migrate-state")?)
            };
            let old = backends::view(old_ref, enc.as_ref())?;
            let new = backends::view(new_raw.as_ref(), key_now)?;
            let moved = if same_place {
                let store = StateStore::load(old.as_ref())?;
                if store.is_new() {
                    None
                } else {
                    new.write_snapshot(&store.state.to_json())?;
                    Some(store.state)
                }
            } else {
                tik_engine::state::migrate(old.as_ref(), new.as_ref())?
            };
            let how = match key_now {
                Some(_) => format!(", {}", backends::said(key_now)),
                None if enc.is_some() => ", decrypted".to_string(),
                None => String::new(),
            };
            match moved {
                Some(state) if same_place => outln!(
                    "Rewrote the state at {here} (lineage {}, serial {}){how}.",
                    state.lineage,
                    state.serial.get()
                ),
                Some(state) => outln!(
                    "Moved the state (lineage {}, serial {}, {} resources) from {} to {here}{how}.\nThe old copy stays at {}: remove it once you have checked the new one.",
                    state.lineage,
                    state.serial.get(),
                    state.resources.len(),
                    old_ref.describe(),
                    old_ref.describe()
                ),
                None => outln!("There was no state at {} to move.", old_ref.describe()),
            }
        }
        Some((before, enc)) if !reconfigure => {
            let old = before.open(&p.dir)?;
            if old.read_snapshot()?.is_some() || old.read_journal()?.is_some() {
                let what = if before.place(&p.dir) == here {
                    format!(
                        "state encryption changed: the state at {here} is {}",
                        backends::said(enc.as_ref())
                    )
                } else {
                    format!(
                        "the state backend changed: the state is at {}, the configuration now puts it at {here}",
                        old.describe()
                    )
                };
                return Err(Diagnostic::new(what)
                    .help("run tik init --migrate-state to move (or re-encrypt) it, or tik init --reconfigure to start from what is at the new place")
                    .into());
            }
        }
        _ if migrate => outln!("The state is already at {here}: nothing to move."),
        _ => {}
    }
    let backend = p.backend()?;
    p.state()?;
    for advice in backend.advice() {
        errln!("warning: {advice}");
    }
    backends::write_record(
        &p.dir,
        &backends::Recorded {
            backend: p.chosen.clone(),
            backend_config: p.backend_config.clone(),
            encryption: key_now.cloned(),
        },
    )?;
    Ok(())
}
