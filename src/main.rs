//! `tik`: the command line. It parses arguments, wires providers and the state backend
//! into the engine, and renders what the engine answers. It decides nothing itself.

mod backends;
mod render;

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

use clap::{ArgAction, Args, Parser, Subcommand};
use render::Style;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tik_engine::addr::Address;
use tik_engine::apply::{ApplyEvent, ApplyOptions};
use tik_engine::config::{remote, Config};
use tik_engine::diag::{Diagnostic, Diagnostics, Sources};
use tik_engine::plan::{Action, Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::{Backend, JournalEntry, LockInfo, State, StateError, StateStore};
use tik_engine::walk::Inputs;
use tik_provider_local::LocalProvider;

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
struct VarArgs {
    /// Set a root variable: --var NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Read variables from a file of NAME = VALUE lines, or a .json object (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    var_files: Vec<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct Selection {
    /// Plan only this address and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<String>,
    /// Replace this resource even if nothing changed (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    replace: Vec<String>,
    /// Take objects with this state's tags that it does not record into state:
    /// what the configuration wants is kept, the rest destroyed.
    #[arg(long, conflicts_with = "destroy_orphans")]
    adopt_orphans: bool,
    /// Destroy objects with this state's tags that it does not record (those the
    /// configuration wants are replaced).
    #[arg(long)]
    destroy_orphans: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the modules of git sources, check the configuration and prepare the
    /// project's data directory.
    Init {
        /// Fetch every git source again (a branch may have moved).
        #[arg(long)]
        upgrade: bool,
        /// A state backend setting kept out of the configuration: KEY=VALUE, or a file of
        /// KEY = "VALUE" lines (repeatable). Recorded in .tik/ for later commands.
        #[arg(long = "backend-config", value_name = "KEY=VALUE|FILE")]
        backend_config: Vec<String>,
        /// Move the state from the backend set up before to the one configured now.
        #[arg(long, conflicts_with = "reconfigure")]
        migrate_state: bool,
        /// Use the backend configured now, leaving the state of the one before where it is.
        #[arg(long)]
        reconfigure: bool,
    },
    /// Check the configuration without reading state or the world.
    Validate,
    /// Rewrite *.tik.hcl files in the canonical layout.
    Fmt {
        /// Only list files that need formatting; exit 3 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Show what would change to make the world match the configuration.
    Plan {
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        selection: Selection,
        /// Save the plan for `tik apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Read the world first (default true): --refresh=false plans from state alone.
        #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        refresh: bool,
        /// Plan the destruction of everything in state.
        #[arg(long)]
        destroy: bool,
        /// Print the plan as JSON (see docs/json-output.md).
        #[arg(long)]
        json: bool,
    },
    /// Make the changes of a plan: a new one, or one saved with `plan --out`.
    Apply {
        /// A plan saved by `tik plan --out FILE`.
        planfile: Option<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// How many changes may run at once (`tik_data`, which lives in state alone
        /// and calls nothing, is not counted).
        #[arg(long, default_value_t = 10)]
        parallelism: usize,
        #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        refresh: bool,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        selection: Selection,
    },
    /// Destroy everything this configuration's state holds.
    Destroy {
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10)]
        parallelism: usize,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        selection: Selection,
    },
    /// Compare state with the world, read-only: exit 0 no drift, 2 drift, 1 error.
    Drift {
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        #[arg(long)]
        markdown: bool,
    },
    /// Show the state, or a saved plan.
    Show {
        planfile: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Show root outputs from state.
    Output {
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print a string output without quotes.
        #[arg(long)]
        raw: bool,
    },
    /// Show a cluster's nodes: address, steps, and their services' health now.
    /// Exit 0 when all is well, 2 when a step failed or a service is not healthy.
    Status {
        /// Only this cluster (all of them by default).
        cluster: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a command on a cluster's nodes (all of them, or one with --node), in each
    /// node's home, as `sh -c` does with the words after `--`.
    Exec {
        cluster: String,
        /// Only this node: its name (worker-default-0) or address (worker["default"][0]).
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Log in to a node (the head by default) with the host key its session recorded;
    /// words after `--` run instead of a login shell.
    Ssh {
        cluster: String,
        node: Option<String>,
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print the dependency graph in Graphviz DOT.
    Graph,
    /// Read and edit state.
    #[command(subcommand)]
    State(StateCommand),
    /// Remove a lock left behind by a run that is gone.
    ForceUnlock {
        id: String,
        /// Remove it even though the run that holds it is still going.
        #[arg(long)]
        force: bool,
    },
    /// Take an object made outside tik into state, at an address the configuration
    /// gives it.
    Import {
        /// Where the configuration puts it, such as workspace.analytics.vpc
        address: String,
        /// Its id as its provider knows it, such as vpc-0abc123
        id: String,
        #[command(flatten)]
        vars: VarArgs,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// List the addresses in state.
    List,
    /// Show one resource's recorded attributes.
    Show { address: String },
    /// Forget resources (they are not destroyed); an address covers everything under it.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Move resources to another address (after renaming a block); FROM covers everything under it.
    Mv { from: String, to: String },
    /// Print the state as JSON.
    Pull,
    /// Replace the state with a file from `state pull` (refused if it is another or an older state).
    Push {
        file: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

/// A failure to report: diagnostics with the sources they point into.
struct Failure {
    sources: Sources,
    diags: Diagnostics,
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

type Result<T> = std::result::Result<T, Failure>;

struct Project {
    dir: PathBuf,
    config: Config,
    providers: Providers,
    /// The state backend as configured; opened when first used.
    chosen: backends::Chosen,
    /// The settings `tik init --backend-config` gave, now or when it last ran.
    backend_config: indexmap::IndexMap<String, String>,
    /// How the configuration encrypts state, if it does.
    encryption: Option<backends::Encryption>,
    /// What `tik init` recorded of the backend it set up (`.tik/backend.json`).
    recorded: Option<backends::Recorded>,
    opened: std::sync::OnceLock<Box<dyn Backend>>,
}

/// How long a command waits for the state lock (`--lock-timeout`).
static LOCK_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// Closes `.tik` to other users: they may pass through it (0711), as services of
/// the local provider's nodes running as their own users (postgres) must to reach
/// their node's home, but not list or change it; its logs, where steps' output lands,
/// are the owner's alone (0700). Made so, and closed so if an older tik left them open.
fn private_dirs(data: &Path) {
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
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
    fn state(&self) -> Result<StateStore<'_>> {
        let store = StateStore::load(self.backend()?)?;
        for w in &store.warnings {
            errln!("warning: {w}");
        }
        Ok(store)
    }

    /// The state backend, opened on first use.
    fn backend(&self) -> Result<&dyn Backend> {
        if let Some(b) = self.opened.get() {
            return Ok(b.as_ref());
        }
        let b = backends::view_owned(self.chosen.open(&self.dir)?, self.encryption.as_ref())?;
        Ok(self.opened.get_or_init(|| b).as_ref())
    }

    fn load(dir: &Path) -> Result<Project> {
        let (p, _) = Project::load_fetching(dir, remote::Fetch::Never, None)?;
        p.check_backend_unchanged()?;
        Ok(p)
    }

    /// Refuses to work on a backend other than the one `tik init` set up: the state
    /// would seem empty, and the next apply would make everything again.
    fn check_backend_unchanged(&self) -> Result<()> {
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
    fn load_fetching(
        dir: &Path,
        fetch: remote::Fetch,
        backend_config: Option<&indexmap::IndexMap<String, String>>,
    ) -> Result<(Project, Vec<remote::Fetched>)> {
        let dir = dir.canonicalize().map_err(|e| {
            Diagnostic::new(format!("cannot open the directory {}: {e}", dir.display()))
        })?;
        private_dirs(&dir.join(".tik"));
        let (config, fetched) = Config::load_fetching(&dir, fetch)
            .map_err(|(sources, diags)| Failure { sources, diags })?;
        let mut providers = Providers::new();
        providers.add(Arc::new(tik_engine::builtin::TikProvider::new(
            dir.join(".tik").join("logs"),
        )));
        providers.add(Arc::new(LocalProvider::new(dir.clone())));
        providers.add(Arc::new(tik_provider_aws::AwsProvider::default()));
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

    fn fail(&self, diags: Diagnostics) -> Failure {
        Failure {
            sources: self.config.sources.clone(),
            diags,
        }
    }

    /// Refresh (unless turned off) and plan against `state`.
    async fn plan(
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

    fn inputs(&self, vars: &VarArgs) -> Result<Inputs> {
        let files: Vec<&Path> = vars.var_files.iter().map(PathBuf::as_path).collect();
        tik_engine::ops::gather_inputs(std::env::vars(), &files, &vars.vars)
            .map_err(|d| self.fail(d))
    }
}

/// Holds the state lock for the length of a command.
struct LockGuard<'b> {
    backend: &'b dyn Backend,
    id: String,
}

impl<'b> LockGuard<'b> {
    /// Takes the lock, waiting up to `--lock-timeout` while another run holds it.
    fn take(backend: &'b dyn Backend, operation: &str) -> Result<LockGuard<'b>> {
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

fn parse_addresses(list: &[String]) -> Result<Vec<Address>> {
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

fn plan_options(sel: &Selection, destroy: bool) -> Result<PlanOptions> {
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
    })
}

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
    match runtime.block_on(run(cli, style)) {
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

async fn run(cli: Cli, style: Style) -> Result<u8> {
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
        Command::Fmt { check } => fmt(&dir, check),
        Command::Init {
            upgrade,
            backend_config,
            migrate_state,
            reconfigure,
        } => {
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
            let (p, fetched) = Project::load_fetching(&dir, fetch, given.as_ref())?;
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
        Command::Validate => {
            let p = Project::load(&dir)?;
            let inputs = Inputs {
                missing_unknown: true,
                ..Inputs::default()
            };
            tik_engine::plan::plan(
                &p.config,
                &p.providers,
                &State::new(String::new()),
                Vec::new(),
                inputs,
                &PlanOptions::default(),
            )
            .map_err(|d| p.fail(d))?;
            outln!("{}", style.green("The configuration is valid."));
            Ok(0)
        }
        Command::Plan {
            vars,
            selection,
            out,
            detailed_exitcode,
            refresh,
            destroy,
            json,
        } => {
            let p = Project::load(&dir)?;
            let _lock = LockGuard::take(p.backend()?, "plan")?;
            let store = p.state()?;
            let options = plan_options(&selection, destroy)?;
            let plan = p.plan(&store.state, &vars, &options, refresh).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default()
                );
            } else {
                out!("{}", render::plan(&plan, style));
            }
            if let Some(out) = out {
                write_private(&out, &plan.to_json()).map_err(|e| {
                    Diagnostic::new(format!("cannot write the plan to {}: {e}", out.display()))
                })?;
                if !json {
                    outln!(
                        "\nSaved the plan to {}. Apply exactly this plan with: tik apply {}",
                        out.display(),
                        out.display()
                    );
                }
            }
            Ok(if detailed_exitcode && plan.has_changes() {
                2
            } else {
                0
            })
        }
        Command::Apply {
            planfile,
            auto_approve,
            parallelism,
            refresh,
            vars,
            selection,
        } => {
            if planfile.is_some()
                && (!vars.vars.is_empty()
                    || !vars.var_files.is_empty()
                    || !selection.targets.is_empty()
                    || !selection.replace.is_empty())
            {
                return Err(Diagnostic::new("a saved plan is applied exactly as it was made: --var, --var-file, --target and --replace do not go with it")
                    .help("pass them to tik plan --out FILE instead")
                    .into());
            }
            let p = Project::load(&dir)?;
            let _lock = LockGuard::take(p.backend()?, "apply")?;
            let mut store = p.state()?;
            let (plan, saved) = match planfile {
                Some(file) => {
                    let bytes = std::fs::read(&file).map_err(|e| {
                        Diagnostic::new(format!("cannot read the plan {}: {e}", file.display()))
                    })?;
                    (
                        Plan::from_json(&bytes)
                            .map_err(|e| Diagnostic::new(format!("{}: {e}", file.display())))?,
                        true,
                    )
                }
                None => {
                    let options = plan_options(&selection, false)?;
                    (p.plan(&store.state, &vars, &options, refresh).await?, false)
                }
            };
            apply(
                &p,
                &mut store,
                plan,
                saved,
                auto_approve,
                parallelism,
                style,
            )
            .await
        }
        Command::Destroy {
            auto_approve,
            parallelism,
            vars,
            selection,
        } => {
            let p = Project::load(&dir)?;
            let _lock = LockGuard::take(p.backend()?, "destroy")?;
            let mut store = p.state()?;
            let options = plan_options(&selection, true)?;
            let plan = p.plan(&store.state, &vars, &options, true).await?;
            apply(
                &p,
                &mut store,
                plan,
                false,
                auto_approve,
                parallelism,
                style,
            )
            .await
        }
        Command::Drift { json, markdown } => {
            let p = Project::load(&dir)?;
            let store = p.state()?;
            if store.is_new() && declares_objects(&p) {
                // A scheduled drift job on a clone without its state would stay green
                // for ever: no state where objects are declared is an error.
                return Err(Diagnostic::new(format!(
                    "no state found at {}, but the configuration declares objects: nothing to compare the world with",
                    p.backend()?.describe()
                ))
                .help("point tik at the state the applies write (tik init --backend-config ..., TIK_BACKEND_*), or apply first")
                .into());
            }
            let (_, found) = tik_engine::ops::refreshed(&store.state, &p.providers)
                .await
                .map_err(|d| p.fail(d))?;
            let (drift, orphans) = (found.drift, found.orphans);
            let any = !drift.is_empty() || !orphans.is_empty();
            if json {
                let plan = Plan {
                    drift: drift.clone(),
                    orphans: orphans.clone(),
                    ..empty_plan()
                };
                let body = render::plan_json(&plan);
                let doc = serde_json::json!({ "format_version": "1", "drift": body["drift"], "orphans": body["orphans"], "drift_found": any });
                outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if markdown {
                out!("{}", render::drift_markdown(&drift, &orphans));
            } else if !any {
                outln!("{}", style.green("No drift: the world matches the state."));
            } else {
                if !drift.is_empty() {
                    out!("{}", render::drift_sections(&drift, style));
                    outln!(
                        "\n{} object{} drifted. Run tik plan to see how tik would restore them.",
                        drift.len(),
                        if drift.len() == 1 { "" } else { "s" }
                    );
                }
                out!("{}", render::orphans(&orphans, style));
            }
            Ok(if any { 2 } else { 0 })
        }
        Command::Show { planfile, json } => {
            if let Some(file) = planfile {
                let bytes = std::fs::read(&file).map_err(|e| {
                    Diagnostic::new(format!("cannot read the plan {}: {e}", file.display()))
                })?;
                let plan = Plan::from_json(&bytes)
                    .map_err(|e| Diagnostic::new(format!("{}: {e}", file.display())))?;
                if json {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default()
                    );
                } else {
                    out!("{}", render::plan(&plan, style));
                }
                return Ok(0);
            }
            let p = Project::load(&dir)?;
            let store = p.state()?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&render::state_json(&store.state))
                        .unwrap_or_default()
                );
            } else {
                out!("{}", render::state(&store.state));
            }
            Ok(0)
        }
        Command::Output { name, json, raw } => {
            let p = Project::load(&dir)?;
            let store = p.state()?;
            let outputs = &store.state.outputs;
            match name {
                Some(n) => {
                    let o = outputs.get(&n).ok_or_else(|| {
                        Diagnostic::new(format!("no output \"{n}\" in state")).help(
                            tik_engine::diag::did_you_mean(&n, outputs.keys().map(String::as_str))
                                .unwrap_or_else(|| "outputs are recorded by tik apply".into()),
                        )
                    })?;
                    use tik_engine::value::Value;
                    match (&o.value, json, raw) {
                        (v, true, _) => outln!("{}", v.to_json()),
                        (Value::String(s), _, true) => out!("{s}"),
                        (v @ (Value::Number(_) | Value::Bool(_)), _, true) => out!("{v}"),
                        (v, _, true) => {
                            return Err(Diagnostic::new(format!(
                                "output \"{n}\" is {}; --raw prints only a string, number or bool",
                                match v {
                                    Value::List(_) => "a list",
                                    Value::Object(_) => "an object",
                                    _ => "null",
                                }
                            ))
                            .help(format!("print it as JSON with tik output {n} --json"))
                            .into())
                        }
                        (v, _, _) => outln!("{v}"),
                    }
                }
                None if json => {
                    let all: serde_json::Map<String, serde_json::Value> = outputs
                        .iter()
                        .map(|(k, o)| (k.clone(), serde_json::json!({ "value": o.value.to_json(), "sensitive": o.sensitive, "sensitive_parts": o.sensitive_parts })))
                        .collect();
                    outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
                }
                None => out!("{}", render::outputs(outputs)),
            }
            Ok(0)
        }
        Command::Graph => {
            let p = Project::load(&dir)?;
            let graph =
                tik_engine::graph::Graph::build(&p.config, &p.providers).map_err(|d| p.fail(d))?;
            out!("{}", graph.to_dot(&p.config));
            Ok(0)
        }
        Command::Status { cluster, json } => status(&dir, cluster.as_deref(), json, style).await,
        Command::Exec {
            cluster,
            node,
            command,
        } => exec(&dir, &cluster, node.as_deref(), &command.join(" ")).await,
        Command::Ssh {
            cluster,
            node,
            command,
        } => ssh(&dir, &cluster, node.as_deref(), &command),
        Command::State(cmd) => state_command(&dir, cmd),
        Command::Import { address, id, vars } => {
            let address = Address::parse(&address).map_err(|e| {
                Diagnostic::new(e).help("addresses look like workspace.lab.vpc or tik_data.a")
            })?;
            let p = Project::load(&dir)?;
            let _lock = LockGuard::take(p.backend()?, "import")?;
            let mut store = p.state()?;
            let resource = tik_engine::ops::import(
                &p.config,
                &p.providers,
                &store.state,
                p.inputs(&vars)?,
                &address,
                &id,
            )
            .await
            .map_err(|d| p.fail(d))?;
            let type_name = resource.type_name.clone();
            store.record(JournalEntry::Put { resource })?;
            store.save()?;
            outln!(
                "Imported {type_name} {id} as {address}.\nRun tik plan to see how it differs from the configuration."
            );
            Ok(0)
        }
        Command::ForceUnlock { id, force } => {
            let p = Project::load(&dir)?;
            p.backend()?.force_unlock(&id, force)?;
            outln!("Removed the lock {id} of {}.", p.backend()?.describe());
            Ok(0)
        }
    }
}

/// `tik init`'s part for state: moves it when asked (`--migrate-state`), refuses to
/// leave a state behind unasked, reads the state once (so a missing bucket or missing
/// credentials show here), and records the backend for later commands.
fn init_backend(p: &Project, migrate: bool, reconfigure: bool) -> Result<()> {
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

/// When the state could not be stored at the end of an apply, writes it beside the
/// configuration as `errored.tikstate`, so that nothing the apply made is forgotten.
fn save_errored(p: &Project, store: &StateStore<'_>, d: &mut Diagnostics) {
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

/// Whether the configuration asks for anything to exist.
fn declares_objects(p: &Project) -> bool {
    p.config.modules.iter().any(|m| !m.objects.is_empty())
}

fn empty_plan() -> Plan {
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
        moves: Vec::new(),
    }
}

fn confirm(question: &str) -> bool {
    out!("{question}\n  Only 'yes' will be accepted.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

async fn apply(
    p: &Project,
    store: &mut StateStore<'_>,
    plan: Plan,
    saved: bool,
    auto_approve: bool,
    parallelism: usize,
    style: Style,
) -> Result<u8> {
    if parallelism == 0 {
        return Err(Diagnostic::new("--parallelism must be at least 1").into());
    }
    if !saved {
        out!("{}", render::plan(&plan, style));
        if !plan.has_changes() && plan.drift.is_empty() {
            return Ok(0);
        }
        if !auto_approve && plan.has_changes() {
            let what = if plan.destroy {
                "Do you really want to destroy everything in this state?"
            } else {
                "Do you want to perform these actions?"
            };
            if !confirm(what) {
                outln!("\nApply cancelled: nothing was changed.");
                return Ok(1);
            }
        }
        outln!();
    }
    let mut on_event = |e: ApplyEvent| match e {
        ApplyEvent::Started { address, action } => outln!("{address}: {}...", verb(action, false)),
        ApplyEvent::Finished {
            address,
            action,
            elapsed,
            id,
        } => {
            let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
            outln!(
                "{address}: {} after {}s{id}",
                verb(action, true),
                elapsed.as_secs()
            );
        }
        ApplyEvent::Failed {
            address,
            action,
            message,
        } => outln!(
            "{}",
            style.red(&format!(
                "{address}: {} failed: {message}",
                match action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Replace => "replace",
                    Action::Delete => "destroy",
                    Action::NoOp => "change",
                }
            ))
        ),
        ApplyEvent::Progress {
            address,
            action,
            elapsed,
            note,
        } => {
            let note = note.map(|n| format!(": {n}")).unwrap_or_default();
            outln!(
                "{address}: still {}... [{}s elapsed]{note}",
                verb(action, false).to_lowercase(),
                elapsed.as_secs()
            )
        }
        ApplyEvent::Interrupted { in_flight } => {
            outln!("\nInterrupted: no new changes start; waiting for the {in_flight} in flight to finish, then state is saved...")
        }
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // A second Ctrl-C stops at once: the journal already holds every change started.
    tokio::spawn(async {
        for _ in 0..2 {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
        }
        errln!("\nTwo interrupts: stopping at once. State records every change that was started; run tik plan to see where things stand.");
        std::process::exit(130);
    });
    let options = ApplyOptions {
        parallelism,
        ..Default::default()
    };
    let result = tik_engine::apply::apply(
        &p.config,
        &p.providers,
        store,
        &plan,
        &options,
        cancel,
        &mut on_event,
    )
    .await;
    let report = match result {
        Ok(r) => r,
        Err(mut d) => {
            if store.has_unsaved() {
                save_errored(p, store, &mut d);
            }
            return Err(p.fail(d));
        }
    };
    let d = report.done;
    let totals = if plan.destroy {
        format!("Resources: {} destroyed.", d.destroy)
    } else {
        let moved = match plan.moves.len() {
            0 => String::new(),
            n => format!(", {n} moved"),
        };
        format!(
            "Resources: {} added, {} changed, {} replaced, {} destroyed{moved}.",
            d.add, d.change, d.replace, d.destroy
        )
    };
    if report.interrupted {
        outln!(
            "\n{} {totals}",
            style.yellow("Apply interrupted; state saved.")
        );
        outln!(
            "{} change(s) did not start. Run tik apply again to finish.",
            report.not_started
        );
        return Ok(1);
    }
    if !report.ok() {
        errln!(
            "\n{} {totals}",
            style.red(&format!(
                "Apply failed: {} change(s) failed.",
                report.failures.len()
            ))
        );
        for (addr, msg) in &report.failures {
            errln!("  - {addr}: {msg}");
        }
        if !report.skipped.is_empty() {
            errln!(
                "Skipped because something they need failed: {}",
                report.skipped.join(", ")
            );
        }
        return Ok(1);
    }
    let head = if plan.destroy {
        "Destroy complete!"
    } else {
        "Apply complete!"
    };
    outln!("\n{} {totals}", style.green(head));
    if !plan.destroy && !store.state.outputs.is_empty() {
        out!("\nOutputs:\n\n{}", render::outputs(&store.state.outputs));
    }
    Ok(0)
}

fn verb(action: Action, done: bool) -> &'static str {
    match (action, done) {
        (Action::Create, false) => "Creating",
        (Action::Create, true) => "Creation complete",
        (Action::Update, false) => "Modifying",
        (Action::Update, true) => "Modifications complete",
        (Action::Replace, false) => "Replacing",
        (Action::Replace, true) => "Replacement complete",
        (Action::Delete, false) => "Destroying",
        (Action::Delete, true) => "Destruction complete",
        (Action::NoOp, _) => "Unchanged",
    }
}

/// The nodes state records for `cluster` (all clusters if None), read without a lock:
/// these commands change nothing that state records.
fn recorded_nodes(p: &Project, cluster: Option<&str>) -> Result<Vec<tik_engine::nodes::Node>> {
    let store = p.state()?;
    tik_engine::nodes::from_state(&store.state, cluster)
        .map_err(|e| Diagnostic::new(e.message).help_opt(e.help).into())
}

fn step_runner(p: &Project) -> Arc<tik_engine::steps::Runner> {
    Arc::new(tik_engine::steps::Runner::new(
        p.dir.join(".tik").join("logs"),
    ))
}

async fn status(dir: &Path, cluster: Option<&str>, json: bool, style: Style) -> Result<u8> {
    let p = Project::load(dir)?;
    let nodes = recorded_nodes(&p, cluster)?;
    let services = tik_engine::nodes::services(&step_runner(&p), &nodes).await;
    if json {
        outln!("{}", render::status_json(&nodes, &services));
    } else {
        out!("{}", render::status(&nodes, &services, style));
    }
    Ok(if tik_engine::nodes::all_well(&nodes, &services) {
        0
    } else {
        2
    })
}

async fn exec(dir: &Path, cluster: &str, node: Option<&str>, command: &str) -> Result<u8> {
    let p = Project::load(dir)?;
    let mut nodes = recorded_nodes(&p, Some(cluster))?;
    if let Some(n) = node {
        let one = tik_engine::nodes::pick(&nodes, n)
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

fn ssh(dir: &Path, cluster: &str, node: Option<&str>, command: &[String]) -> Result<u8> {
    let p = Project::load(dir)?;
    let nodes = recorded_nodes(&p, Some(cluster))?;
    let n = match node {
        Some(n) => tik_engine::nodes::pick(&nodes, n)
            .map_err(|e| Diagnostic::new(e.message).help_opt(e.help))?,
        None => nodes
            .iter()
            .find(|n| n.name == "head")
            .or(nodes.first())
            .ok_or_else(|| Diagnostic::new(format!("the cluster {cluster} has no nodes")))?,
    };
    let command = (!command.is_empty()).then(|| command.join(" "));
    let login = tik_engine::steps::login(&n.target_attributes(), command.as_deref())
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

fn state_command(dir: &Path, cmd: StateCommand) -> Result<u8> {
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
            let entries = store.state.moves(&addrs[0], &addrs[1])?;
            let moved = entries
                .iter()
                .filter(|e| matches!(e, JournalEntry::Remove { .. }))
                .count();
            for e in entries {
                store.record(e)?;
            }
            store.save()?;
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
            let doomed: Vec<Address> = store
                .state
                .resources
                .keys()
                .filter(|a| addrs.iter().any(|x| a.within(x)))
                .cloned()
                .collect();
            if doomed.is_empty() {
                return Err(Diagnostic::new(format!(
                    "nothing in state matches {}",
                    addresses.join(", ")
                ))
                .help("tik state list shows what is there")
                .into());
            }
            for a in &doomed {
                store.record(JournalEntry::Remove { address: a.clone() })?;
                outln!("Removed {a}");
            }
            store.save()?;
            outln!(
                "Removed {} resource(s) from state; they still exist in the world.",
                doomed.len()
            );
        }
    }
    Ok(0)
}

fn fmt(dir: &Path, check: bool) -> Result<u8> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".tik.hcl"))
        })
        .collect();
    entries.sort();
    let mut unformatted = 0;
    for path in entries {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Diagnostic::new(format!("cannot read {}: {e}", path.display())))?;
        let formatted = tik_engine::fmt::format(&text).ok_or_else(|| {
            Diagnostic::new(format!(
                "{} has syntax errors, so it was not formatted",
                path.display()
            ))
            .help("tik validate shows where")
        })?;
        if formatted != text {
            unformatted += 1;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            outln!("{name}");
            if !check {
                std::fs::write(&path, formatted).map_err(|e| {
                    Diagnostic::new(format!("cannot write {}: {e}", path.display()))
                })?;
            }
        }
    }
    Ok(if check && unformatted > 0 { 3 } else { 0 })
}
