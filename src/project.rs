//! What every command shares: the project (configuration, providers, state
//! backend), its lock, and how failures are reported.

use crate::backends;
use crate::Selection;
use crate::VarArgs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tik_engine::addr::Address;
use tik_engine::config::{remote, Config};
use tik_engine::diag::{Diagnostic, Diagnostics, Sources};
use tik_engine::plan::{Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::{Backend, LockInfo, State, StateError, StateStore};
use tik_engine::walk::Inputs;
use tik_provider_local::LocalProvider;

/// A failure to report: diagnostics with the sources they point into.
pub(crate) struct Failure {
    pub(crate) sources: Sources,
    pub(crate) diags: Diagnostics,
}

impl From<Diagnostics> for Failure {
    fn from(diags: Diagnostics) -> Self {
        Failure {
            sources: Sources::default(),
            diags,
        }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::from(d).into()
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        Diagnostic::new(e.message).help_opt(e.help).into()
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

pub(crate) struct Project {
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) providers: Providers,
    /// The state backend as configured; opened when first used.
    pub(crate) chosen: backends::Chosen,
    /// The settings `tik init --backend-config` gave, now or when it last ran.
    pub(crate) backend_config: indexmap::IndexMap<String, String>,
    /// How the configuration encrypts state, if it does.
    pub(crate) encryption: Option<backends::Encryption>,
    /// What `tik init` recorded of the backend it set up (`.tik/backend.json`).
    pub(crate) recorded: Option<backends::Recorded>,
    pub(crate) opened: std::sync::OnceLock<Box<dyn Backend>>,
}

/// How long a command waits for the state lock (`--lock-timeout`).
pub(crate) static LOCK_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// Closes `.tik` to other users: they may pass through it (0711), as services of
/// the local provider's nodes running as their own users (postgres) must to reach
/// their node's home, but not list or change it; its logs, where steps' output lands,
/// are the owner's alone (0700). Made so, and closed so if an older tik left them open.
pub(crate) fn private_dirs(data: &Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    for (dir, mode) in [(data.to_path_buf(), 0o711), (data.join("logs"), 0o700)] {
        match std::fs::metadata(&dir) {
            Ok(m) if m.permissions().mode() & 0o777 & !mode != 0 => {
                let closed = m.permissions().mode() & mode;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(closed));
            }
            Ok(_) => {}
            Err(_) => {
                let _ = std::fs::DirBuilder::new().mode(mode).create(&dir);
            }
        }
    }
}

/// Writes a file only its owner can read (a saved plan holds every sensitive value).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

impl Project {
    /// The state, with what loading it found worth telling printed as warnings.
    pub(crate) fn state(&self) -> Result<StateStore<'_>> {
        let store = StateStore::load(self.backend()?)?;
        for w in &store.warnings {
            errln!("warning: {w}");
        }
        Ok(store)
    }

    /// The state backend, opened on first use.
    pub(crate) fn backend(&self) -> Result<&dyn Backend> {
        if let Some(b) = self.opened.get() {
            return Ok(b.as_ref());
        }
        let b = backends::view_owned(self.chosen.open(&self.dir)?, self.encryption.as_ref())?;
        Ok(self.opened.get_or_init(|| b).as_ref())
    }

    pub(crate) fn load(dir: &Path) -> Result<Project> {
        let (p, _) = Project::load_fetching(dir, remote::Fetch::Never, None)?;
        p.check_backend_unchanged()?;
        Ok(p)
    }

    /// Refuses to work on a backend other than the one `tik init` set up: the state
    /// would seem empty, and the next apply would make everything again.
    pub(crate) fn check_backend_unchanged(&self) -> Result<()> {
        let record = self.recorded.as_ref();
        if let Some(r) = record.filter(|r| r.encryption != self.encryption) {
            return Err(Diagnostic::new(format!(
                "state encryption changed since tik init: the state is {}, the configuration now wants it {}",
                backends::said(r.encryption.as_ref()),
                backends::said(self.encryption.as_ref())
            ))
            .help("run tik init --migrate-state to re-encrypt (or decrypt) it")
            .into());
        }
        let before = match record {
            Some(r) => r.backend.clone(),
            None => {
                let local = backends::Chosen::local_default();
                if self.chosen.kind == "local" || !Path::new(&local.place(&self.dir)).exists() {
                    return Ok(());
                }
                local
            }
        };
        let (was, is) = (before.place(&self.dir), self.chosen.place(&self.dir));
        if was == is {
            return Ok(());
        }
        let at = self.config.backend.as_ref().map(|b| b.location.clone());
        let mut d = Diagnostic::new(format!(
            "the state backend changed since tik init: the state was at {was}, the configuration now puts it at {is}"
        ))
        .help("run tik init --migrate-state to move the state there, or tik init --reconfigure to start from what is there");
        if let Some(l) = at {
            d = d.at(l.file, Some(l.span));
        }
        Err(self.fail(d.into()))
    }

    /// Loads the project, fetching its git module sources as `fetch` says; returns
    /// what it fetched too. `backend_config` is what `tik init --backend-config` gave;
    /// other commands take what it recorded.
    pub(crate) fn load_fetching(
        dir: &Path,
        fetch: remote::Fetch,
        backend_config: Option<&indexmap::IndexMap<String, String>>,
    ) -> Result<(Project, Vec<remote::Fetched>)> {
        let dir = dir.canonicalize().map_err(|e| {
            Diagnostic::new(format!("cannot open the directory {}: {e}", dir.display()))
        })?;
        private_dirs(&dir.join(".tik"));
        let mut providers = Providers::new();
        let tik = Arc::new(tik_nodes::TikProvider::new(dir.join(".tik").join("logs")));
        providers.add(tik.clone());
        providers.add(Arc::new(LocalProvider::new(local_project(&dir))));
        let aws = Arc::new(tik_provider_aws::AwsProvider::default());
        providers.add(aws.clone());
        let (config, fetched) = Config::load_fetching(&dir, fetch, &providers)
            .map_err(|(sources, diags)| Failure { sources, diags })?;
        let recorded = backends::read_record(&dir)?;
        let configured_kind = config.backend.as_ref().map_or("local", |b| b.kind.as_str());
        let extra = match backend_config {
            Some(given) => given.clone(),
            None => recorded
                .as_ref()
                .filter(|r| r.backend.kind == configured_kind)
                .map(|r| r.backend_config.clone())
                .unwrap_or_default(),
        };
        let chosen = backends::choose(&config, &extra, &|k| std::env::var(k).ok())
            .and_then(|c| backends::encryption(&config).map(|e| (c, e)));
        let (chosen, encryption) = match chosen {
            Ok(c) => c,
            Err(d) => {
                return Err(Failure {
                    sources: config.sources.clone(),
                    diags: d.into(),
                })
            }
        };
        tik.set_bundle(controller_bundle(&dir, &chosen, encryption.as_ref()));
        aws.set_state(state_access(&chosen, encryption.as_ref()));
        let project = Project {
            dir,
            config,
            providers,
            chosen,
            backend_config: extra,
            encryption,
            recorded,
            opened: std::sync::OnceLock::new(),
        };
        Ok((project, fetched))
    }

    pub(crate) fn fail(&self, diags: Diagnostics) -> Failure {
        Failure {
            sources: self.config.sources.clone(),
            diags,
        }
    }

    /// Refresh (unless turned off) and plan against `state`.
    pub(crate) async fn plan(
        &self,
        state: &State,
        vars: &VarArgs,
        options: &PlanOptions,
        refresh: bool,
    ) -> Result<Plan> {
        tik_engine::ops::make_plan(
            &self.config,
            &self.providers,
            state,
            self.inputs(vars)?,
            options,
            refresh,
        )
        .await
        .map_err(|d| self.fail(d))
    }

    pub(crate) fn inputs(&self, vars: &VarArgs) -> Result<Inputs> {
        let files: Vec<&Path> = vars.var_files.iter().map(PathBuf::as_path).collect();
        tik_engine::ops::gather_inputs(std::env::vars(), &files, &vars.vars)
            .map_err(|d| self.fail(d))
    }
}

/// Where the local provider keeps its machines: the project's `.tik/local`, or the
/// one `TIK_LOCAL_PROJECT` names (a controller on a head runs from a copy of the
/// project, and keeps the machines of the project it was installed from).
fn local_project(dir: &Path) -> PathBuf {
    std::env::var_os("TIK_LOCAL_PROJECT")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// What a controller on a head (`controller { on = "head" }`) is installed with:
/// this binary, this project, this backend with its paths made absolute, and the
/// environment that finds the same machines and the state's key. A controller on a
/// head gets back the bundle it was installed with, so that its plans agree with
/// the apply that installed it.
fn controller_bundle(
    dir: &Path,
    chosen: &backends::Chosen,
    encryption: Option<&backends::Encryption>,
) -> tik_nodes::on_head::Bundle {
    use tik_nodes::on_head::{Bundle, ORIGIN};
    if let Some(b) = std::env::var(ORIGIN)
        .ok()
        .and_then(|text| serde_json::from_str::<Bundle>(&text).ok())
    {
        return b;
    }
    let mut backend = chosen.clone();
    if backend.kind == "local" {
        backend.settings.insert("path".into(), chosen.place(dir));
    }
    let recorded = backends::Recorded {
        backend_config: backend.settings.clone(),
        backend,
        encryption: encryption.cloned(),
    };
    let mut env = vec![(
        "TIK_LOCAL_PROJECT".to_string(),
        local_project(dir).display().to_string(),
    )];
    if let Some(name) = encryption.and_then(|e| e.get("key_env")) {
        if let Ok(value) = std::env::var(name) {
            env.push((name.clone(), value));
        }
    }
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_default();
    Bundle {
        binary_id: tik_nodes::on_head::binary_id(&binary),
        platform: tik_nodes::on_head::this_platform(),
        binary,
        project: dir.to_path_buf(),
        backend: serde_json::to_string_pretty(&recorded).unwrap_or_default(),
        env,
    }
}

/// Where the state is, as the AWS provider gives a head that runs the controller
/// access to it.
fn state_access(
    chosen: &backends::Chosen,
    encryption: Option<&backends::Encryption>,
) -> tik_provider_aws::StateAccess {
    if chosen.kind != "s3" {
        return tik_provider_aws::StateAccess::Other(chosen.kind.clone());
    }
    let kms_keys = [
        chosen.get("kms_key_id"),
        encryption.and_then(|e| e.get("kms_key_id")).cloned(),
    ]
    .into_iter()
    .flatten()
    .filter(|k| !k.is_empty())
    .collect();
    tik_provider_aws::StateAccess::S3 {
        bucket: chosen.get("bucket").unwrap_or_default(),
        key: chosen.get("key").unwrap_or_default(),
        kms_keys,
    }
}

/// Holds the state lock for the length of a command.
pub(crate) struct LockGuard<'b> {
    backend: &'b dyn Backend,
    id: String,
}

impl<'b> LockGuard<'b> {
    /// Takes the lock, waiting up to `--lock-timeout` while another run holds it.
    pub(crate) fn take(backend: &'b dyn Backend, operation: &str) -> Result<LockGuard<'b>> {
        let info = LockInfo::new(operation);
        let timeout = LOCK_TIMEOUT.get().copied().unwrap_or_default();
        let broke = tik_engine::state::lock_waiting(backend, &info, timeout, &mut |holder| {
            errln!(
                "Waiting up to {}s for the lock of {}: held by {} (operation {}, since {}, lock id {})...",
                timeout.as_secs(),
                backend.describe(),
                holder.who,
                holder.operation,
                holder.created,
                holder.id
            );
        })?;
        if let Some(old) = broke {
            errln!(
                "warning: took over the lock of {}: the lease of {} (operation {}, since {}, lock id {}) had expired without renewal, so that run is gone",
                backend.describe(),
                old.who,
                old.operation,
                old.created,
                old.id
            );
        }
        Ok(LockGuard {
            backend,
            id: info.id,
        })
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.backend.unlock(&self.id) {
            errln!("warning: {e}");
        }
    }
}

pub(crate) fn parse_addresses(list: &[String]) -> Result<Vec<Address>> {
    list.iter()
        .map(|a| {
            Address::parse(a).map_err(|e| {
                Diagnostic::new(e)
                    .help("addresses look like cluster.etl.node.head or tik_data.a")
                    .into()
            })
        })
        .collect()
}

pub(crate) fn plan_options(sel: &Selection, destroy: bool) -> Result<PlanOptions> {
    use tik_engine::plan::OrphanAction;
    Ok(PlanOptions {
        destroy,
        orphans: match (sel.adopt_orphans, sel.destroy_orphans) {
            (true, _) => OrphanAction::Adopt,
            (_, true) => OrphanAction::Destroy,
            _ => OrphanAction::Report,
        },
        targets: parse_addresses(&sel.targets)?,
        replace: parse_addresses(&sel.replace)?,
        skip_health: false,
        exclude: Vec::new(),
    })
}

/// When the state could not be stored at the end of an apply, writes it beside the
/// configuration as `errored.tikstate`, so that nothing the apply made is forgotten.
pub(crate) fn save_errored(p: &Project, store: &StateStore<'_>, d: &mut Diagnostics) {
    let path = p.dir.join("errored.tikstate");
    let where_ = p.backend().map(|b| b.describe()).unwrap_or_default();
    let plain = store.state.to_json();
    let bytes = match p
        .encryption
        .as_ref()
        .map(|e| backends::seal_snapshot(e, &plain))
    {
        Some(Ok(sealed)) => sealed,
        _ => plain,
    };
    let note = match write_private(&path, &bytes) {
        Ok(()) => Diagnostic::new(format!(
            "the state could not be stored at {where_}, so tik wrote it to {}: it records every object this apply made",
            path.display()
        ))
        .help("once the store answers again, run tik state push errored.tikstate"),
        Err(e) => Diagnostic::new(format!(
            "the state could not be stored at {where_}, nor written to {}: {e}",
            path.display()
        ))
        .help("keep this output: it names every object this apply made"),
    };
    d.0.push(note);
}

pub(crate) fn empty_plan() -> Plan {
    Plan {
        format_version: tik_engine::plan::PLAN_FORMAT_VERSION,
        tik_version: env!("CARGO_PKG_VERSION").into(),
        lineage: String::new(),
        serial: 0,
        config_hash: String::new(),
        destroy: false,
        variables: Default::default(),
        drift: Vec::new(),
        changes: Vec::new(),
        outputs: Vec::new(),
        orphans: Vec::new(),
        targets: Vec::new(),
        exclude: Vec::new(),
        moves: Vec::new(),
        pools: Vec::new(),
        controls: Vec::new(),
    }
}

pub(crate) fn confirm(question: &str) -> bool {
    out!("{question}\n  Only 'yes' will be accepted.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// The nodes state records for `cluster` (all clusters if None), read without a lock:
/// these commands change nothing that state records.
pub(crate) fn recorded_nodes(
    p: &Project,
    cluster: Option<&str>,
) -> Result<Vec<tik_nodes::nodes::Node>> {
    nodes_in(&p.state()?.state, cluster)
}

/// The nodes `state` records, of `cluster` or of all.
pub(crate) fn nodes_in(
    state: &tik_engine::state::State,
    cluster: Option<&str>,
) -> Result<Vec<tik_nodes::nodes::Node>> {
    tik_nodes::nodes::from_state(state, cluster)
        .map_err(|e| Diagnostic::new(e.message).help_opt(e.help).into())
}

pub(crate) fn step_runner(p: &Project) -> Arc<tik_nodes::steps::Runner> {
    Arc::new(tik_nodes::steps::Runner::new(
        p.dir.join(".tik").join("logs"),
    ))
}
