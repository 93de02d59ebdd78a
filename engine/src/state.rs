//! State: what tik created, as recorded. A snapshot (JSON) plus an append-only journal
//! of the changes since, so that saving after each change costs the size of that change.

use crate::addr::Address;
use crate::value::{Map, Value};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const FORMAT_VERSION: u32 = 1;

/// How an encrypted snapshot begins (see `tik-backend-objects`' `seal`).
pub const SEALED_MAGIC: &[u8] = b"tik-sealed-v1\n";

/// A state serial: it only grows, by one for every recorded change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Serial(u64);

impl Serial {
    pub fn get(self) -> u64 {
        self.0
    }
    fn bump(&mut self) {
        self.0 += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created and confirmed.
    Ready,
    /// A create was started; the object may or may not exist.
    Pending,
    /// A change failed part way; the next plan replaces it.
    Tainted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    pub address: Address,
    #[serde(rename = "type")]
    pub type_name: String,
    pub provider: String,
    pub status: Status,
    pub attributes: Map,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_attributes: Vec<String>,
    /// What must outlive it: a resource, or an object (`tik_data.a`, `cluster.etl`)
    /// and so each resource of it (`Address::object`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    pub value: Value,
    /// Sensitive as a whole: shown as `(sensitive value)`.
    #[serde(default)]
    pub sensitive: bool,
    /// Else the parts of it that are (object keys, list indices as text): shown
    /// with those parts hidden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_parts: Vec<Vec<String>>,
}

/// Root outputs by name, in the order the configuration declares them.
pub type Outputs = IndexMap<String, OutputState>;

/// The sizes `tik scale` (or the controller) asked of worker pools: by cluster, then
/// pool. A plan takes a recorded size as the pool's desired size, within its `min`
/// and `max`; a pool with none has `min` workers.
pub type Sizes = IndexMap<Address, IndexMap<String, u64>>;

/// What the last whole apply applied: the configuration's hash, and its variables
/// with their hash. The controller acts only for the configuration applied, never
/// for files edited since, and plans with these variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub config: String,
    pub inputs: String,
    /// The root variables' values it planned with (sensitive ones too: state holds
    /// what they made anyway): what the controller plans with.
    #[serde(default)]
    pub variables: Map,
    /// When it was first applied.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub serial: Serial,
    pub lineage: String,
    pub resources: IndexMap<Address, ResourceState>,
    pub outputs: IndexMap<String, OutputState>,
    pub sizes: Sizes,
    pub applied: Option<Applied>,
}

/// A snapshot as read (its format version is checked on the raw JSON first).
#[derive(Deserialize)]
struct StateFile {
    serial: Serial,
    lineage: String,
    resources: Vec<ResourceState>,
    outputs: IndexMap<String, OutputState>,
    #[serde(default)]
    sizes: Sizes,
    #[serde(default)]
    applied: Option<Applied>,
}

/// A snapshot as written: [`StateFile`]'s fields, borrowed from the state, so that
/// writing one costs its bytes and not a second copy of every resource.
#[derive(Serialize)]
struct StateFileOut<'s> {
    format_version: u32,
    tik_version: &'static str,
    serial: Serial,
    lineage: &'s str,
    resources: Vec<&'s ResourceState>,
    outputs: &'s IndexMap<String, OutputState>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    sizes: &'s Sizes,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: &'s Option<Applied>,
}

/// One journal line: a change to apply on top of the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum JournalEntry {
    Put {
        resource: ResourceState,
    },
    Remove {
        address: Address,
    },
    Outputs {
        outputs: IndexMap<String, OutputState>,
    },
    /// A pool's desired size; `None` forgets it (the pool goes back to its `min`).
    Size {
        cluster: Address,
        pool: String,
        size: Option<u64>,
    },
    /// What a whole apply applied; `None` after a destroy.
    Applied {
        applied: Option<Applied>,
    },
}

#[derive(Serialize, Deserialize)]
struct JournalHeader {
    journal: u32,
    lineage: String,
    base_serial: Serial,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateError {
    pub message: String,
    pub help: Option<String>,
}

impl StateError {
    pub fn new(message: impl Into<String>) -> Self {
        StateError {
            message: message.into(),
            help: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl From<StateError> for crate::diag::Diagnostics {
    fn from(e: StateError) -> Self {
        crate::diag::Diagnostic::new(e.message)
            .help_opt(e.help)
            .into()
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n  = help: {h}")?;
        }
        Ok(())
    }
}

impl State {
    pub fn new(lineage: String) -> Self {
        State {
            serial: Serial::default(),
            lineage,
            resources: IndexMap::new(),
            outputs: IndexMap::new(),
            sizes: Sizes::new(),
            applied: None,
        }
    }

    pub fn apply_entry(&mut self, entry: JournalEntry) {
        match entry {
            JournalEntry::Put { resource } => {
                self.resources.insert(resource.address.clone(), resource);
            }
            JournalEntry::Remove { address } => {
                self.resources.shift_remove(&address);
            }
            JournalEntry::Outputs { outputs } => self.outputs = outputs,
            JournalEntry::Size {
                cluster,
                pool,
                size,
            } => match size {
                Some(n) => {
                    self.sizes.entry(cluster).or_default().insert(pool, n);
                }
                None => {
                    if let Some(pools) = self.sizes.get_mut(&cluster) {
                        pools.shift_remove(&pool);
                        if pools.is_empty() {
                            self.sizes.shift_remove(&cluster);
                        }
                    }
                }
            },
            JournalEntry::Applied { applied } => self.applied = applied,
        }
        self.serial.bump();
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut resources: Vec<&ResourceState> = self.resources.values().collect();
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        let file = StateFileOut {
            format_version: FORMAT_VERSION,
            tik_version: env!("CARGO_PKG_VERSION"),
            serial: self.serial,
            lineage: &self.lineage,
            resources,
            outputs: &self.outputs,
            sizes: &self.sizes,
            applied: &self.applied,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a snapshot; `what` names it in errors. Never guesses at a damaged file.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<State, StateError> {
        if bytes.starts_with(SEALED_MAGIC) {
            return Err(StateError::new(format!(
                "the state {what} is encrypted, and this configuration does not say with which key"
            ))
            .help("add the encryption block it was written with: tik { encryption { key_env = \"NAME\" } } (or kms_key_id = \"...\")"));
        }
        let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            StateError::new(format!(
                "the state {what} is not valid JSON ({e}): it is damaged, or not a tik state; tik left it as it is"
            ))
            .help("restore it from its .backup file, or repair it by hand")
        })?;
        match raw.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(StateError::new(format!(
                    "the state {what} has format version {v}; this tik ({}) reads version {FORMAT_VERSION}",
                    env!("CARGO_PKG_VERSION")
                ))
                .help("use the tik version that wrote it; tik left the file as it is"))
            }
            None => {
                return Err(StateError::new(format!("the state {what} has no format_version; it is not a tik state"))
                    .help("check the path of the state; tik left the file as it is"))
            }
        }
        let file: StateFile = serde_json::from_value(raw).map_err(|e| {
            StateError::new(format!(
                "the state {what} is damaged: {e}; tik left it as it is"
            ))
            .help("restore it from its .backup file, or repair it by hand")
        })?;
        let mut resources = IndexMap::with_capacity(file.resources.len());
        for r in file.resources {
            if let Some(first) = resources.insert(r.address.clone(), r) {
                return Err(StateError::new(format!(
                    "the state {what} records {} twice; tik left it as it is",
                    first.address
                ))
                .help(
                    "restore it from its .backup file, or remove one of the two records by hand",
                ));
            }
        }
        Ok(State {
            serial: file.serial,
            lineage: file.lineage,
            resources,
            outputs: file.outputs,
            sizes: file.sizes,
            applied: file.applied,
        })
    }
}

/// A block's one resource moving to one of its instances (`tik_data.a` to
/// `tik_data.a["web"]`, `module.m` to `module.m[0]`): the move takes what is at its
/// address alone, not the instances under it.
fn into_itself(from: &Address, to: &Address) -> bool {
    *from == from.object() && to.starts_with(from)
}

/// Whether a record is what `into_itself` takes: the resource at `from`, or one in
/// the module at `from` and not in an instance of it.
fn taken_alone(from: &Address, a: &Address) -> bool {
    a.starts_with(from)
        && !matches!(
            a.0.get(from.0.len()),
            Some(crate::addr::Segment::Key(_) | crate::addr::Segment::Index(_))
        )
}

impl State {
    /// Whether state holds anything that a move from `from` to `to` would take.
    pub fn holds_for_move(&self, from: &Address, to: &Address) -> bool {
        if into_itself(from, to) {
            return self.resources.keys().any(|a| taken_alone(from, a));
        }
        self.resources
            .keys()
            .any(|r| r.starts_with(from) && !r.starts_with(to))
    }

    /// Moves every resource under `from` to the same place under `to`, in memory.
    pub fn apply_moves(&mut self, from: &Address, to: &Address) -> Result<(), StateError> {
        for e in self.moves(from, to)? {
            self.apply_entry(e);
        }
        Ok(())
    }

    /// The changes that move every resource under `from` to the same place under `to`,
    /// and rewrite the dependencies that point at them.
    pub fn moves(&self, from: &Address, to: &Address) -> Result<Vec<JournalEntry>, StateError> {
        let rename = |a: &Address| -> Option<Address> {
            if into_itself(from, to) && !taken_alone(from, a) {
                return None;
            }
            a.starts_with(from).then(|| {
                let mut segs = to.0.clone();
                segs.extend(a.0[from.0.len()..].iter().cloned());
                Address(segs)
            })
        };
        let moved: Vec<(&ResourceState, Address)> = self
            .resources
            .values()
            .filter_map(|r| rename(&r.address).map(|n| (r, n)))
            .collect();
        if moved.is_empty() {
            return Err(StateError::new(format!("nothing in state is at {from}"))
                .help("tik state list shows what is there"));
        }
        if let Some((_, clash)) = moved
            .iter()
            .find(|(_, n)| self.resources.contains_key(n) && rename(n).is_none())
        {
            return Err(StateError::new(format!("{clash} is already in state"))
                .help("move or remove it first"));
        }
        let mut entries: Vec<JournalEntry> = moved
            .iter()
            .map(|(r, _)| JournalEntry::Remove {
                address: r.address.clone(),
            })
            .collect();
        // A dependency on the object that receives them stays: moving `tik_data.a`
        // to `tik_data.a[0]` leaves `tik_data.a` naming each of its resources.
        let to_object = to.object();
        let rename_dep = |d: &Address| if *d == to_object { None } else { rename(d) };
        let rewrite = |deps: &[Address]| -> Vec<Address> {
            deps.iter()
                .map(|d| rename_dep(d).unwrap_or_else(|| d.clone()))
                .collect()
        };
        for (r, new) in &moved {
            entries.push(JournalEntry::Put {
                resource: ResourceState {
                    address: new.clone(),
                    dependencies: rewrite(&r.dependencies),
                    ..(*r).clone()
                },
            });
        }
        for r in self
            .resources
            .values()
            .filter(|r| rename(&r.address).is_none())
        {
            if r.dependencies.iter().any(|d| rename_dep(d).is_some()) {
                entries.push(JournalEntry::Put {
                    resource: ResourceState {
                        dependencies: rewrite(&r.dependencies),
                        ..r.clone()
                    },
                });
            }
        }
        // A moved cluster keeps the sizes asked of its pools.
        for (cluster, pools) in &self.sizes {
            if let Some(new) = rename(cluster) {
                for (pool, &n) in pools {
                    let size = |cluster: &Address, size| JournalEntry::Size {
                        cluster: cluster.clone(),
                        pool: pool.clone(),
                        size,
                    };
                    entries.push(size(cluster, None));
                    entries.push(size(&new, Some(n)));
                }
            }
        }
        Ok(entries)
    }
}

/// Where state lives: a local file, an S3 object, ... Backends store bytes; the
/// engine decides what they mean.
pub trait Backend: Send + Sync {
    /// Where the state is, for messages.
    fn describe(&self) -> String;
    /// What a user setting this backend up should know about it (such as a bucket
    /// that keeps no versions), for `tik init` to print.
    fn advice(&self) -> Vec<String> {
        Vec::new()
    }
    fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError>;
    /// Replaces the snapshot atomically, keeps the previous one as a backup, and
    /// then clears the journal.
    fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError>;
    fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError>;
    /// Appends whole lines to the journal, so that a crash loses none that returned.
    fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError>;
    /// Tries once to take the lock: taken (perhaps from a holder whose lease expired),
    /// or held by someone else, whom it names. A backend whose locks are leases keeps
    /// renewing its own until `unlock`.
    fn lock(&self, info: &LockInfo) -> Result<Locked, StateError>;
    fn unlock(&self, id: &str) -> Result<(), StateError>;
    /// Removes the lock whose id is `id` when the run that took it is gone; one whose
    /// holder still runs only when `force`.
    fn force_unlock(&self, id: &str, force: bool) -> Result<(), StateError>;
    /// A record kept beside the state under a plain `name` (see `record_name`): a
    /// controller's status. It is not state: written whole without the lock, read
    /// whole, `None` where there is none.
    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError>;
    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError>;
    fn remove_record(&self, name: &str) -> Result<(), StateError>;
}

/// Whether `name` may name a record beside the state: letters, digits, `-`, `_` and
/// `.`, not starting with a dot; what a backend turns into a file or object name.
pub fn record_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A plain record name for any text (a cluster's address): what is not a letter,
/// digit or `-` becomes `_` and its hex code, so that two texts never share a name.
pub fn record_name(prefix: &str, text: &str) -> String {
    let mut name = String::from(prefix);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            name.push(b as char);
        } else {
            name.push_str(&format!("_{b:02x}"));
        }
    }
    name
}

/// The error a backend gives for a record name that is not plain.
pub fn bad_record_name(name: &str) -> StateError {
    StateError::new(format!(
        "{name:?} is not a plain record name; tik keeps no record under it"
    ))
}

/// What one attempt to take the lock found.
#[derive(Debug, Clone, PartialEq)]
pub enum Locked {
    /// This run holds it now; `broke` names the holder whose expired lease it took over.
    Taken { broke: Option<LockInfo> },
    /// Someone else holds it.
    Held(LockInfo),
}

/// Takes the lock of `backend`, waiting up to `timeout` while someone else holds it:
/// `waiting` hears about the holder once, when the wait starts. After the timeout it
/// fails naming the holder. Returns whose expired lease it broke, if any.
pub fn lock_waiting(
    backend: &dyn Backend,
    info: &LockInfo,
    timeout: std::time::Duration,
    waiting: &mut dyn FnMut(&LockInfo),
) -> Result<Option<LockInfo>, StateError> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match backend.lock(info)? {
            Locked::Taken { broke } => return Ok(broke),
            Locked::Held(holder) => {
                let waited = started.elapsed();
                if waited >= timeout {
                    let mut e = holder.locked_error(&backend.describe());
                    if !timeout.is_zero() {
                        e.message = format!(
                            "{} (waited {}s for it)",
                            e.message,
                            timeout.as_secs_f64().round()
                        );
                    } else {
                        e.help = Some(format!(
                            "{}; or wait for it with --lock-timeout 5m",
                            e.help.unwrap_or_default()
                        ));
                    }
                    return Err(e);
                }
                if !told {
                    waiting(&holder);
                    told = true;
                }
                std::thread::sleep((timeout - waited).min(std::time::Duration::from_millis(500)));
            }
        }
    }
}

/// A backend behind a box or a reference is a backend: views of one (an encrypted
/// one, say) can own it or borrow it.
macro_rules! forward_backend {
    ($($t:tt)*) => {
        impl<T: Backend + ?Sized> Backend for $($t)* {
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn advice(&self) -> Vec<String> {
                (**self).advice()
            }
            fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
                (**self).read_snapshot()
            }
            fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError> {
                (**self).write_snapshot(bytes)
            }
            fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
                (**self).read_journal()
            }
            fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
                (**self).append_journal(bytes)
            }
            fn lock(&self, info: &LockInfo) -> Result<Locked, StateError> {
                (**self).lock(info)
            }
            fn unlock(&self, id: &str) -> Result<(), StateError> {
                (**self).unlock(id)
            }
            fn force_unlock(&self, id: &str, force: bool) -> Result<(), StateError> {
                (**self).force_unlock(id, force)
            }
            fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
                (**self).read_record(name)
            }
            fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
                (**self).write_record(name, bytes)
            }
            fn remove_record(&self, name: &str) -> Result<(), StateError> {
                (**self).remove_record(name)
            }
        }
    };
}
forward_backend!(Box<T>);
forward_backend!(&T);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub who: String,
    pub operation: String,
    pub created: String,
    pub version: String,
}

impl LockInfo {
    pub fn new(operation: &str) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "localhost".into());
        LockInfo {
            id: crate::builtin::new_uuid(),
            who: format!("{user}@{host}"),
            operation: operation.to_string(),
            created: crate::timefmt::now_utc(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    pub fn locked_error(&self, what: &str) -> StateError {
        StateError::new(format!(
            "the state {what} is locked by {} (operation {}, since {}, lock id {})",
            self.who, self.operation, self.created, self.id
        ))
        .help(format!(
            "wait for that run to finish; if it is gone, run `tik force-unlock {}`",
            self.id
        ))
    }
}

/// The state of one run: loaded from a backend, changed through the journal, folded at the end.
pub struct StateStore<'b> {
    backend: &'b dyn Backend,
    pub state: State,
    journal_started: bool,
    base_serial: Serial,
    new: bool,
    /// What loading found worth telling (a torn journal tail it left out), for the
    /// CLI to print.
    pub warnings: Vec<String>,
    /// Changes recorded in memory but not yet appended: see `hold`.
    held: Option<Vec<u8>>,
}

impl<'b> StateStore<'b> {
    /// Loads the snapshot and replays any journal a crashed run left behind.
    pub fn load(backend: &'b dyn Backend) -> Result<StateStore<'b>, StateError> {
        let what = backend.describe();
        let snapshot = backend.read_snapshot()?;
        let new = snapshot.is_none();
        let mut state = match snapshot {
            Some(bytes) => State::from_json(&bytes, &what)?,
            None => State::new(crate::builtin::new_uuid()),
        };
        let mut journal_started = false;
        let mut warnings = Vec::new();
        let base_serial = state.serial;
        if let Some(bytes) = backend.read_journal()? {
            journal_started = replay(&mut state, &bytes, &what, &mut warnings)?;
        }
        let new = new && !journal_started;
        Ok(StateStore {
            backend,
            state,
            journal_started,
            base_serial,
            new,
            warnings,
            held: None,
        })
    }

    /// Records one change: in memory, and as one appended journal line.
    pub fn record(&mut self, entry: JournalEntry) -> Result<(), StateError> {
        let mut bytes = Vec::new();
        if !self.journal_started {
            let header = JournalHeader {
                journal: 1,
                lineage: self.state.lineage.clone(),
                base_serial: self.base_serial,
            };
            bytes.extend(serde_json::to_vec(&header).unwrap_or_default());
            bytes.push(b'\n');
        }
        bytes.extend(serde_json::to_vec(&entry).unwrap_or_default());
        bytes.push(b'\n');
        match &mut self.held {
            Some(held) => held.extend(bytes),
            None => self.backend.append_journal(&bytes)?,
        }
        self.journal_started = true;
        self.state.apply_entry(entry);
        Ok(())
    }

    /// Holds the changes recorded from now on in memory until `flush`, which appends
    /// them as one write: what completes together costs one journal write (one object
    /// on a remote store). The caller flushes before anything depends on them being
    /// stored, such as a provider call a pending record announces.
    pub fn hold(&mut self) {
        if self.held.is_none() {
            self.held = Some(Vec::new());
        }
    }

    /// Appends what `hold` kept, and records straight through again.
    pub fn flush(&mut self) -> Result<(), StateError> {
        match self.held.take() {
            Some(bytes) if !bytes.is_empty() => {
                if let Err(e) = self.backend.append_journal(&bytes) {
                    // Kept for another try (and for the final snapshot).
                    self.held = Some(bytes);
                    return Err(e);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Folds the journal into a new snapshot.
    pub fn save(&mut self) -> Result<(), StateError> {
        if !self.journal_started {
            return Ok(());
        }
        self.backend.write_snapshot(&self.state.to_json())?;
        // What was held is in the snapshot now.
        self.held = None;
        self.journal_started = false;
        self.base_serial = self.state.serial;
        Ok(())
    }

    /// Forgets every resource within one of `addresses` (`tik state rm`): they stay
    /// in the world. Returns what it removed, in state's order; matching nothing is
    /// an error.
    pub fn remove_within(&mut self, addresses: &[Address]) -> Result<Vec<Address>, StateError> {
        let doomed: Vec<Address> = self
            .state
            .resources
            .keys()
            .filter(|a| addresses.iter().any(|x| a.within(x)))
            .cloned()
            .collect();
        if doomed.is_empty() {
            let asked: Vec<String> = addresses.iter().map(Address::to_string).collect();
            return Err(
                StateError::new(format!("nothing in state matches {}", asked.join(", ")))
                    .help("tik state list shows what is there"),
            );
        }
        for a in &doomed {
            self.record(JournalEntry::Remove { address: a.clone() })?;
        }
        self.save()?;
        Ok(doomed)
    }

    /// Moves every resource under `from` to `to` (`tik state mv`); returns how many.
    pub fn move_all(&mut self, from: &Address, to: &Address) -> Result<usize, StateError> {
        let entries = self.state.moves(from, to)?;
        let moved = entries
            .iter()
            .filter(|e| matches!(e, JournalEntry::Remove { .. }))
            .count();
        for e in entries {
            self.record(e)?;
        }
        self.save()?;
        Ok(moved)
    }

    /// Replaces the whole state with `new` (`tik state push`). Refused when it is another
    /// state (lineage) or older than the one here (serial), unless `force`.
    pub fn replace(&mut self, mut new: State, force: bool) -> Result<(), StateError> {
        if !force && !self.is_new() {
            if new.lineage != self.state.lineage {
                return Err(StateError::new(format!(
                    "that state has lineage {}, this one {}: it is another state",
                    new.lineage, self.state.lineage
                ))
                .help("pass --force to replace it anyway"));
            }
            if new.serial < self.state.serial {
                return Err(StateError::new(format!(
                    "that state has serial {}, older than this one ({})",
                    new.serial.get(),
                    self.state.serial.get()
                ))
                .help("pull the current state first, or pass --force"));
            }
        }
        // The pushed state is newer than anything a reader may hold.
        new.serial = new.serial.max(self.state.serial);
        new.serial.bump();
        self.backend.write_snapshot(&new.to_json())?;
        self.base_serial = new.serial;
        self.state = new;
        self.journal_started = false;
        self.new = false;
        Ok(())
    }

    /// Takes `state` as it is (lineage and serial kept) into a backend that holds none:
    /// the end of a migration. Taking the same state again is a no-op, so a migration
    /// cut short can be run again.
    pub fn adopt(&mut self, state: State) -> Result<(), StateError> {
        if !self.is_new() {
            if self.state.lineage == state.lineage && self.state.serial == state.serial {
                return Ok(());
            }
            return Err(StateError::new(format!(
                "{} already holds a state (lineage {}, serial {}, {} resources); tik does not overwrite it",
                self.backend.describe(),
                self.state.lineage,
                self.state.serial.get(),
                self.state.resources.len()
            ))
            .help("move that state aside first, or replace it on purpose with tik state push --force"));
        }
        self.backend.write_snapshot(&state.to_json())?;
        self.base_serial = state.serial;
        self.state = state;
        self.journal_started = false;
        self.held = None;
        self.new = false;
        Ok(())
    }

    /// True when no state existed: its lineage is fresh and may still be chosen.
    pub fn is_new(&self) -> bool {
        self.new && self.state.serial.get() == 0
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend
    }

    pub fn has_unsaved(&self) -> bool {
        self.journal_started
    }
}

/// Copies the state of `from` (its snapshot with its journal replayed) into `to`, which
/// must hold none (or the same one). The caller holds both locks. Returns the state
/// moved, or `None` when `from` has none.
pub fn migrate(from: &dyn Backend, to: &dyn Backend) -> Result<Option<State>, StateError> {
    let old = StateStore::load(from)?;
    if old.is_new() {
        return Ok(None);
    }
    let mut new = StateStore::load(to)?;
    new.adopt(old.state.clone())?;
    Ok(Some(old.state))
}

/// One run's part of a journal: its header and the changes it recorded after it.
struct Segment {
    header: JournalHeader,
    /// The header's line, from 1, for messages.
    line: usize,
    entries: Vec<JournalEntry>,
}

/// Reads a journal into its segments. A run appends a header before its first change;
/// a run that finds a journal already folded into the snapshot (its predecessor was
/// killed between the snapshot's rename and the journal's removal) appends a segment
/// of its own after it, so a journal may hold several. Only a tail without its newline
/// (a write cut short) is left out, with a warning; anything else that does not parse
/// is an error, so no change recorded there is dropped unread.
fn segments(
    bytes: &[u8],
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Segment>, StateError> {
    let damaged = |line: usize, e: &dyn fmt::Display| {
        StateError::new(format!(
            "the journal of the state {what} is damaged at line {line}: {e}; tik left it as it is"
        ))
        .help("repair that line by hand, or move the .journal file aside to give up the changes it records")
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        damaged(
            1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            &e,
        )
    })?;
    let (whole, torn) = match text.rfind('\n') {
        Some(i) => text.split_at(i + 1),
        None => ("", text),
    };
    if !torn.is_empty() {
        warnings.push(format!(
            "the journal of the state {what} ends in a write cut short ({} bytes); tik left that part out: the change it was recording had not started",
            torn.len()
        ));
    }
    let mut segments: Vec<Segment> = Vec::new();
    for (i, line) in whole.lines().enumerate() {
        let line_no = i + 1;
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| damaged(line_no, &e))?;
        if value.get("journal").is_some() {
            let header: JournalHeader =
                serde_json::from_value(value).map_err(|e| damaged(line_no, &e))?;
            segments.push(Segment {
                header,
                line: line_no,
                entries: Vec::new(),
            });
            continue;
        }
        let entry: JournalEntry =
            serde_json::from_value(value).map_err(|e| damaged(line_no, &e))?;
        match segments.last_mut() {
            Some(s) => s.entries.push(entry),
            None => {
                return Err(damaged(
                    line_no,
                    &"a change comes before the journal's header",
                ))
            }
        }
    }
    Ok(segments)
}

/// Replays a journal onto `state`; true when its last segment continues the state, so
/// that the next change joins it.
fn replay(
    state: &mut State,
    bytes: &[u8],
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<bool, StateError> {
    let mut live = false;
    for segment in segments(bytes, what, warnings)? {
        let Segment {
            header,
            line,
            entries,
        } = segment;
        if header.lineage != state.lineage && !state.resources.is_empty() {
            return Err(StateError::new(format!(
                "the journal of the state {what} belongs to another state (lineage {} at line {line}, the snapshot's is {})",
                header.lineage, state.lineage
            ))
            .help("move the .journal file aside if it is left over"));
        }
        let (base, serial, n) = (
            header.base_serial.get(),
            state.serial.get(),
            entries.len() as u64,
        );
        if base == serial {
            state.lineage = header.lineage;
            for entry in entries {
                state.apply_entry(entry);
            }
            live = true;
        } else if base < serial && base + n <= serial {
            // Folded into the snapshot by a run that stopped before removing it.
            live = false;
        } else {
            let held = if base > serial {
                format!("the snapshot is at serial {serial}, older than the journal")
            } else {
                format!("the snapshot (serial {serial}) holds only part of them")
            };
            return Err(StateError::new(format!(
                "the journal of the state {what} records {n} change{} made on top of serial {base} (line {line}), but {held}",
                if n == 1 { "" } else { "s" }
            ))
            .help(format!(
                "tik keeps both as they are: put back the snapshot of serial {base} that the journal continues (the .backup file may be it), or move the .journal file aside to give up its changes"
            )));
        }
    }
    Ok(live)
}

/// State kept in memory: for tests of providers and of the engine, and for previews
/// that must not touch a real state.
#[derive(Default)]
pub struct MemoryBackend {
    snapshot: std::sync::Mutex<Option<Vec<u8>>>,
    journal: std::sync::Mutex<Vec<u8>>,
    records: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    fn records(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<u8>>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal as it stands, as a crash would leave it.
    pub fn journal(&self) -> Vec<u8> {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }

    /// Replaces the journal, to stage what a crash could leave behind.
    pub fn set_journal(&self, bytes: Vec<u8>) {
        if let Ok(mut j) = self.journal.lock() {
            *j = bytes;
        }
    }
}

impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "in memory".into()
    }
    fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .snapshot
            .lock()
            .map_err(|_| StateError::new("memory state poisoned"))?
            .clone())
    }
    fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError> {
        *self
            .snapshot
            .lock()
            .map_err(|_| StateError::new("memory state poisoned"))? = Some(bytes.to_vec());
        self.set_journal(Vec::new());
        Ok(())
    }
    fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let j = self.journal();
        Ok((!j.is_empty()).then_some(j))
    }
    fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.journal
            .lock()
            .map_err(|_| StateError::new("memory state poisoned"))?
            .extend_from_slice(bytes);
        Ok(())
    }
    fn lock(&self, _: &LockInfo) -> Result<Locked, StateError> {
        Ok(Locked::Taken { broke: None })
    }
    fn unlock(&self, _: &str) -> Result<(), StateError> {
        Ok(())
    }
    fn force_unlock(&self, _: &str, _: bool) -> Result<(), StateError> {
        Ok(())
    }
    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.records().get(name).cloned())
    }
    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        if !record_name_ok(name) {
            return Err(bad_record_name(name));
        }
        self.records().insert(name.to_string(), bytes.to_vec());
        Ok(())
    }
    fn remove_record(&self, name: &str) -> Result<(), StateError> {
        self.records().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str) -> ResourceState {
        ResourceState {
            address: Address::new().name("tik_data").name(name),
            type_name: "tik_data".into(),
            provider: "tik".into(),
            status: Status::Ready,
            attributes: Map::new(),
            sensitive_attributes: vec![],
            dependencies: vec![],
        }
    }

    fn put(name: &str) -> JournalEntry {
        JournalEntry::Put {
            resource: resource(name),
        }
    }

    #[test]
    fn state_rm_and_mv_decide_and_store_what_they_change() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        for name in ["a", "b", "c"] {
            store.record(put(name)).unwrap();
        }
        store.save().unwrap();
        let data = Address::new().name("tik_data");
        let e = store.remove_within(&[data.clone().name("zz")]).unwrap_err();
        assert_eq!(e.message, "nothing in state matches tik_data.zz");
        let removed = store
            .remove_within(&[data.clone().name("a"), data.clone().name("c")])
            .unwrap();
        assert_eq!(removed, [data.clone().name("a"), data.clone().name("c")]);
        let moved = store
            .move_all(&data.clone().name("b"), &data.clone().name("d"))
            .unwrap();
        assert_eq!(moved, 1);
        // Both are stored: a new reader sees them.
        let again = StateStore::load(&backend).unwrap();
        let left: Vec<String> = again
            .state
            .resources
            .keys()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(left, ["tik_data.d"]);
    }

    #[test]
    fn a_crash_before_the_fold_loses_no_record() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("a")).unwrap();
        store.record(put("b")).unwrap();
        let lineage = store.state.lineage.clone();
        drop(store); // the process dies here: no save
        backend
            .journal
            .lock()
            .unwrap()
            .extend_from_slice(b"{\"op\":\"put\",\"resou"); // torn write
        let store = StateStore::load(&backend).unwrap();
        assert_eq!(store.state.resources.len(), 2);
        assert_eq!(store.state.lineage, lineage);
        assert_eq!(store.state.serial.get(), 2);
    }

    #[test]
    fn a_folded_journal_is_not_replayed_twice() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("a")).unwrap();
        let journal = backend.journal();
        store.save().unwrap();
        // A crash between writing the snapshot and clearing the journal.
        backend.set_journal(journal);
        let mut store = StateStore::load(&backend).unwrap();
        assert_eq!(store.state.serial.get(), 1);
        store
            .record(JournalEntry::Remove {
                address: Address::new().name("tik_data").name("a"),
            })
            .unwrap();
        store.save().unwrap();
        let store = StateStore::load(&backend).unwrap();
        assert!(store.state.resources.is_empty());
        assert_eq!(store.state.serial.get(), 2);
    }

    /// The first crash falls between the snapshot's rename and the journal's removal,
    /// the second before the next run's fold: both runs' records survive.
    #[test]
    fn records_after_a_folded_journal_survive_a_second_crash() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("a")).unwrap();
        store.record(put("b")).unwrap();
        let folded = backend.journal();
        store.save().unwrap();
        backend.set_journal(folded);
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("c")).unwrap();
        store
            .record(JournalEntry::Remove {
                address: resource("a").address,
            })
            .unwrap();
        drop(store); // killed before its fold
        let store = StateStore::load(&backend).unwrap();
        let names: Vec<String> = store
            .state
            .resources
            .keys()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(names, ["tik_data.b", "tik_data.c"]);
        assert_eq!(store.state.serial.get(), 4);
        assert!(store.warnings.is_empty(), "{:?}", store.warnings);
    }

    #[test]
    fn a_journal_ahead_of_its_snapshot_is_refused_and_kept() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("a")).unwrap();
        store.save().unwrap();
        let older = backend.snapshot.lock().unwrap().clone();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("b")).unwrap();
        store.save().unwrap();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("c")).unwrap();
        drop(store);
        // The user puts back the previous snapshot, as for a damaged one.
        *backend.snapshot.lock().unwrap() = older;
        let journal = backend.journal();
        let err = StateStore::load(&backend).err().unwrap();
        assert!(
            err.message.contains("1 change made on top of serial 2")
                && err.message.contains("at serial 1, older"),
            "{err}"
        );
        assert!(err.help.unwrap().contains("serial 2"));
        assert_eq!(backend.journal(), journal);
    }

    #[test]
    fn damaged_journals_name_the_line_and_torn_tails_are_told() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        store.record(put("a")).unwrap();
        let good = backend.journal();
        let mut bad = good.clone();
        bad.extend_from_slice(b"{\"op\":\"put\"}\n");
        backend.set_journal(bad);
        let err = StateStore::load(&backend).err().unwrap();
        assert!(err.message.contains("damaged at line 3"), "{err}");
        // A journal that is only a torn first write records nothing, and says so.
        backend.set_journal(good[..10].to_vec());
        let store = StateStore::load(&backend).unwrap();
        assert!(store.state.resources.is_empty());
        assert!(
            store.warnings[0].contains("cut short (10 bytes)"),
            "{:?}",
            store.warnings
        );
        backend.set_journal(b"{\"op\":\"remove\",\"address\":\"tik_data.a\"}\n".to_vec());
        let err = StateStore::load(&backend).err().unwrap();
        assert!(err.message.contains("before the journal's header"), "{err}");
    }

    #[test]
    fn a_snapshot_recording_an_address_twice_is_refused() {
        let twice = br#"{"format_version": 1, "tik_version": "0", "serial": 2, "lineage": "l", "outputs": {},
            "resources": [
              {"address": "tik_data.a", "type": "tik_data", "provider": "tik", "status": "ready", "attributes": {}},
              {"address": "tik_data.a", "type": "tik_data", "provider": "tik", "status": "ready", "attributes": {"x": 1}}]}"#;
        let err = State::from_json(twice, "x").unwrap_err();
        assert!(err.message.contains("records tik_data.a twice"), "{err}");
    }

    #[test]
    fn damaged_and_future_files_are_refused() {
        assert!(State::from_json(b"{not json", "x")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        let future = br#"{"format_version": 9, "serial": 1, "lineage": "l", "resources": [], "outputs": {}}"#;
        assert!(State::from_json(future, "x")
            .unwrap_err()
            .message
            .contains("format version 9"));
        assert!(State::from_json(b"[]", "x")
            .unwrap_err()
            .message
            .contains("not a tik state"));
    }

    #[test]
    fn sizes_and_the_last_apply_survive_the_journal_the_fold_and_a_move() {
        let backend = MemoryBackend::default();
        let mut store = StateStore::load(&backend).unwrap();
        let etl = Address::new().name("cluster").name("etl");
        let size = |cluster: &Address, pool: &str, size| JournalEntry::Size {
            cluster: cluster.clone(),
            pool: pool.into(),
            size,
        };
        let mut node = resource("x");
        node.address = etl.clone().name("node").name("head");
        store.record(JournalEntry::Put { resource: node }).unwrap();
        store.record(size(&etl, "default", Some(3))).unwrap();
        store.record(size(&etl, "big", Some(1))).unwrap();
        let applied = Applied {
            config: "c".into(),
            inputs: "i".into(),
            variables: Map::new(),
            at: "2026-12-07T00:00:00Z".into(),
        };
        store
            .record(JournalEntry::Applied {
                applied: Some(applied.clone()),
            })
            .unwrap();
        // Replayed from the journal alone, as after a crash.
        let again = StateStore::load(&backend).unwrap();
        assert_eq!(again.state.sizes[&etl]["default"], 3);
        assert_eq!(again.state.applied.as_ref(), Some(&applied));
        // Folded into the snapshot and read back.
        store.save().unwrap();
        let again = StateStore::load(&backend).unwrap();
        assert_eq!(again.state, store.state);
        // A moved cluster takes its sizes along.
        let renamed = Address::new().name("cluster").name("batch");
        store.move_all(&etl, &renamed).unwrap();
        assert!(!store.state.sizes.contains_key(&etl));
        assert_eq!(store.state.sizes[&renamed]["big"], 1);
        // Forgetting a pool's size leaves the other; the last one takes its cluster.
        store.record(size(&renamed, "big", None)).unwrap();
        assert_eq!(store.state.sizes[&renamed].len(), 1);
        store.record(size(&renamed, "default", None)).unwrap();
        assert!(store.state.sizes.is_empty());
        // A state without either reads as before, and writes neither.
        let text = String::from_utf8(State::new("l".into()).to_json()).unwrap();
        assert!(
            !text.contains("sizes") && !text.contains("applied"),
            "{text}"
        );
    }
}
