//! tik-backend-objects: state in an object store (S3, GCS), shared by a team.
//!
//! A store only needs three things: read an object with its version, write one on a
//! condition (absent, or still at a version), and delete garbage. On that this crate
//! builds what the engine's [`Backend`] asks for:
//!
//! - **Snapshot** `BASE`: written only on the version this run read (`If-Match` on S3,
//!   `ifGenerationMatch` on GCS), so no writer ever clobbers a state it did not read. The
//!   snapshot it replaces is first copied to `BASE.backup`.
//! - **Journal** `BASE.journal/EPOCH/N`: each append is one small object, created only if
//!   absent. `EPOCH` names the snapshot version the journal continues, so a journal
//!   folded into a newer snapshot is never read again, and deleting it afterwards is
//!   tidying, not a step anything depends on.
//! - **Lock** `BASE.lock`: a lease. Its holder rewrites it (on the version it wrote last)
//!   every third of the lease; a run that finds a lease not renewed for its length
//!   takes it over with a conditional write, so of two runs that both see it expired
//!   only one wins. Releasing writes it back as free, also conditionally.
//!
//! The engine's calls are synchronous; this crate runs its store on a runtime of its
//! own and waits for the answers, so it can be called from inside another runtime.

mod lease;
pub mod seal;

use async_trait::async_trait;
use lease::{LeaseFile, Renewal};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tik_engine::state::{Backend, LockInfo, Locked, StateError};

/// An object as read: its bytes, its version (ETag, generation) and when the store
/// last wrote it, by the store's clock.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub version: String,
    pub modified: Option<SystemTime>,
}

/// On what a write is made.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Only if no object has the name.
    Absent,
    /// Only if the object is still at this version.
    Version(String),
    /// Whatever is there.
    Any,
}

#[derive(Debug, Clone)]
pub enum StoreError {
    /// The write's condition did not hold: someone else wrote first.
    Precondition,
    /// Anything else, said for a user: what failed, on which bucket and key.
    Failed {
        message: String,
        help: Option<String>,
    },
}

impl StoreError {
    pub fn failed(message: impl Into<String>, help: Option<String>) -> Self {
        StoreError::Failed {
            message: message.into(),
            help,
        }
    }

    fn into_state(self, what: &str) -> StateError {
        match self {
            StoreError::Precondition => {
                StateError::new(format!("{what}: someone else wrote it first"))
            }
            StoreError::Failed { message, help } => {
                let e = StateError::new(message);
                match help {
                    Some(h) => e.help(h),
                    None => e,
                }
            }
        }
    }
}

/// An object store: S3, GCS, ... Names are full object names in its bucket.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Where the state is, such as `s3://bucket/prod/etl.tikstate`.
    fn describe(&self) -> String;
    /// The name of the state's snapshot object; the others are named after it.
    fn base(&self) -> String;
    async fn get(&self, name: &str) -> Result<Option<Object>, StoreError>;
    /// Writes `bytes` if `condition` holds; returns the new version.
    async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError>;
    /// Deletes objects that nothing reads any more.
    async fn delete(&self, names: Vec<String>) -> Result<(), StoreError>;
    /// What a user setting this store up should know (versioning off, ...).
    async fn advice(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Writes on a condition, and counts a write as done when a retry of it (after a lost
/// answer) finds its own bytes already there.
async fn put_checked<S: ObjectStore>(
    store: &S,
    name: &str,
    bytes: Vec<u8>,
    condition: Condition,
) -> Result<String, StoreError> {
    match store.put(name, bytes.clone(), condition).await {
        Err(StoreError::Precondition) => match store.get(name).await? {
            Some(o) if o.bytes == bytes => Ok(o.version),
            _ => Err(StoreError::Precondition),
        },
        other => other,
    }
}

/// The part of a version that may stand in an object name.
fn name_safe(version: &str) -> String {
    version
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[derive(Default)]
struct Inner {
    /// The snapshot as this run last read or wrote it: its version and bytes. `None`
    /// before it is read; `Some(None)` when there is none.
    snapshot: Option<Option<(String, Vec<u8>)>>,
    /// The next journal object's number in the current epoch.
    journal_next: u64,
    /// The journal objects of the current epoch, to delete once folded.
    journal: Vec<String>,
    /// The lock while this run holds it.
    lock: Option<Renewal>,
    /// Since when this run has seen each other holder's lock at each version: a lease
    /// unchanged for its length, by this run's own clock, has expired.
    seen: HashMap<String, Instant>,
}

pub struct ObjectBackend<S: ObjectStore> {
    store: Arc<S>,
    runtime: Option<tokio::runtime::Runtime>,
    lease: Duration,
    inner: Arc<Mutex<Inner>>,
}

/// The default length of a lock's lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

impl<S: ObjectStore> ObjectBackend<S> {
    /// Makes the store (on this backend's own runtime: clients are bound to the runtime
    /// they are made on) and a backend on it.
    pub fn open<F, Fut>(lease: Duration, make: F) -> Result<Self, StateError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S, StoreError>> + Send + 'static,
    {
        let runtime = worker("tik-state")?;
        let store = wait(runtime.handle(), make())?
            .map_err(|e| e.into_state("cannot open the state store"))?;
        Ok(ObjectBackend {
            store: Arc::new(store),
            runtime: Some(runtime),
            lease: lease.max(Duration::from_secs(1)),
            inner: Arc::new(Mutex::new(Inner::default())),
        })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StateError> {
        match &self.runtime {
            Some(rt) => wait(rt.handle(), f),
            None => Err(StateError::new("the state store's worker has stopped")),
        }
    }

    /// Reads one object on the store's runtime.
    fn get(&self, name: String) -> Result<Result<Option<Object>, StoreError>, StateError> {
        let store = self.store.clone();
        self.run(async move { store.get(&name).await })
    }

    /// Writes one object on a condition (see `put_checked`) on the store's runtime.
    fn put(
        &self,
        name: String,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<Result<String, StoreError>, StateError> {
        let store = self.store.clone();
        self.run(async move { put_checked(&*store, &name, bytes, condition).await })
    }

    /// Writes the lock back as free, over `version`.
    fn release(&self, id: &str, version: String) -> Result<Result<String, StoreError>, StateError> {
        self.put(
            self.name(".lock"),
            LeaseFile::released(id).to_bytes(),
            Condition::Version(version),
        )
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.store.base())
    }

    /// The object a record beside the state is kept in: `STATE.records/NAME`.
    fn record_object(&self, name: &str) -> Result<String, StateError> {
        if !tik_engine::state::record_name_ok(name) {
            return Err(tik_engine::state::bad_record_name(name));
        }
        Ok(self.name(&format!(".records/{name}")))
    }

    fn epoch_prefix(version: Option<&str>) -> String {
        match version {
            Some(v) => format!(".journal/{}/", name_safe(v)),
            None => ".journal/none/".into(),
        }
    }

    /// Refuses to write when this run holds the lock but can no longer be sure of it:
    /// it was taken over, or not renewed for most of a lease.
    fn check_lease(&self) -> Result<(), StateError> {
        let inner = self.inner();
        match &inner.lock {
            Some(r) => r.check(&self.store.describe(), self.lease),
            None => Ok(()),
        }
    }

    /// Who holds the lock now, if anyone, and the lock object's version.
    pub fn current_lock(&self) -> Result<Option<(LockInfo, LeaseFile, Object)>, StateError> {
        let what = format!("cannot read the lock of {}", self.store.describe());
        let object = match self
            .get(self.name(".lock"))?
            .map_err(|e| e.into_state(&what))?
        {
            Some(o) => o,
            None => return Ok(None),
        };
        let file = LeaseFile::parse(&object.bytes);
        Ok(file.holder().map(|h| (h, file, object)))
    }

    /// Whether a lease seen at `object` has run out: unchanged for its length by this
    /// run's clock (since it first saw that version), or, by the store's clock, last
    /// written more than twice its length (and a second) ago, leaving room for clocks
    /// that differ.
    fn expired(&self, file: &LeaseFile, object: &Object) -> bool {
        let lease = file.lease();
        let watched = {
            let mut inner = self.inner();
            let first = *inner
                .seen
                .entry(object.version.clone())
                .or_insert_with(Instant::now);
            first.elapsed() >= lease
        };
        let stale = object
            .modified
            .or_else(|| file.renewed_at())
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            // Stores and lease files tell time in whole seconds: one more for that.
            .is_some_and(|age| age >= lease * 2 + Duration::from_secs(1));
        watched || stale
    }
}

/// A runtime of one worker thread for a client whose calls the engine makes
/// synchronously; shut it down with `shutdown_background`, which may run anywhere.
pub fn worker(name: &str) -> Result<tokio::runtime::Runtime, StateError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| StateError::new(format!("cannot start the {name} worker: {e}")))
}

/// Runs `f` on `handle` and waits for it on this thread, which may belong to another
/// runtime.
pub fn wait<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    f: impl Future<Output = T> + Send + 'static,
) -> Result<T, StateError> {
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| StateError::new("the state store's worker stopped before it answered"))
}

impl<S: ObjectStore> Drop for ObjectBackend<S> {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Never blocks, so it may run inside another runtime.
            rt.shutdown_background();
        }
    }
}

impl<S: ObjectStore> Backend for ObjectBackend<S> {
    fn describe(&self) -> String {
        self.store.describe()
    }

    fn advice(&self) -> Vec<String> {
        let store = self.store.clone();
        self.run(async move { store.advice().await })
            .unwrap_or_default()
    }

    fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        let what = format!("cannot read the state {}", self.store.describe());
        let got = self
            .get(self.store.base())?
            .map_err(|e| e.into_state(&what))?;
        let mut inner = self.inner();
        inner.snapshot = Some(got.as_ref().map(|o| (o.version.clone(), o.bytes.clone())));
        inner.journal_next = 1;
        inner.journal.clear();
        Ok(got.map(|o| o.bytes))
    }

    fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let prefix = {
            let inner = self.inner();
            let Some(snapshot) = &inner.snapshot else {
                return Err(StateError::new(
                    "internal: the journal was read before the snapshot",
                ));
            };
            self.name(&Self::epoch_prefix(snapshot.as_ref().map(|s| s.0.as_str())))
        };
        let store = self.store.clone();
        let what = format!("cannot read the journal of {}", self.store.describe());
        let (bytes, names) = self
            .run(async move {
                let mut bytes = Vec::new();
                let mut names = Vec::new();
                for n in 1u64.. {
                    let name = format!("{prefix}{n:08}");
                    match store.get(&name).await? {
                        Some(o) => {
                            bytes.extend(o.bytes);
                            names.push(name);
                        }
                        None => break,
                    }
                }
                Ok::<_, StoreError>((bytes, names))
            })?
            .map_err(|e| e.into_state(&what))?;
        let mut inner = self.inner();
        inner.journal_next = names.len() as u64 + 1;
        inner.journal = names;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.check_lease()?;
        let name = {
            let inner = self.inner();
            let Some(snapshot) = &inner.snapshot else {
                return Err(StateError::new(
                    "internal: the journal was written before the snapshot was read",
                ));
            };
            format!(
                "{}{:08}",
                self.name(&Self::epoch_prefix(snapshot.as_ref().map(|s| s.0.as_str()))),
                inner.journal_next
            )
        };
        match self.put(name.clone(), bytes.to_vec(), Condition::Absent)? {
            Ok(_) => {
                let mut inner = self.inner();
                inner.journal_next += 1;
                inner.journal.push(name);
                Ok(())
            }
            Err(StoreError::Precondition) => Err(StateError::new(format!(
                "another run wrote the journal object {name} of {} first: two runs are changing this state at once",
                self.store.describe()
            ))
            .help("only one run may hold the lock; check that every run uses the same backend settings")),
            Err(e) => Err(e.into_state(&format!("cannot append to the journal of {}", self.store.describe()))),
        }
    }

    fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.check_lease()?;
        let (previous, folded) = {
            let inner = self.inner();
            (inner.snapshot.clone().flatten(), inner.journal.clone())
        };
        let store = self.store.clone();
        let base = self.store.base();
        let backup = self.name(".backup");
        let bytes = bytes.to_vec();
        let describe = self.store.describe();
        let result = self.run(async move {
            let condition = match &previous {
                Some((version, old)) => {
                    // The snapshot this one replaces stays recoverable.
                    store
                        .put(&backup, old.clone(), Condition::Any)
                        .await
                        .map_err(|e| {
                            (
                                format!("cannot keep the previous state of {describe} as {backup}"),
                                e,
                            )
                        })?;
                    Condition::Version(version.clone())
                }
                None => Condition::Absent,
            };
            let version = put_checked(&*store, &base, bytes.clone(), condition)
                .await
                .map_err(|e| (format!("cannot write the state {describe}"), e))?;
            // Folded into the snapshot: never read again, so removing them is tidying.
            if !folded.is_empty() {
                let _ = store.delete(folded).await;
            }
            Ok::<_, (String, StoreError)>((version, bytes))
        })?;
        match result {
            Ok((version, bytes)) => {
                let mut inner = self.inner();
                inner.snapshot = Some(Some((version, bytes)));
                inner.journal_next = 1;
                inner.journal.clear();
                Ok(())
            }
            Err((_, StoreError::Precondition)) => Err(StateError::new(format!(
                "the state {} changed since this run read it: tik did not overwrite it",
                self.store.describe()
            ))
            .help("another run wrote it without holding the lock, or took over this run's lock; run tik plan to see the state as it is now")),
            Err((what, e)) => Err(e.into_state(&what)),
        }
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let what = format!("cannot read the record {name} of {}", self.store.describe());
        Ok(self
            .get(self.record_object(name)?)?
            .map_err(|e| e.into_state(&what))?
            .map(|o| o.bytes))
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let what = format!(
            "cannot write the record {name} of {}",
            self.store.describe()
        );
        self.put(self.record_object(name)?, bytes.to_vec(), Condition::Any)?
            .map_err(|e| e.into_state(&what))
            .map(|_| ())
    }

    fn remove_record(&self, name: &str) -> Result<(), StateError> {
        let what = format!(
            "cannot remove the record {name} of {}",
            self.store.describe()
        );
        let object = self.record_object(name)?;
        let store = self.store.clone();
        self.run(async move { store.delete(vec![object]).await })?
            .map_err(|e| e.into_state(&what))
    }

    fn lock(&self, info: &LockInfo) -> Result<Locked, StateError> {
        let name = self.name(".lock");
        let describe = self.store.describe();
        for _ in 0..3 {
            let current = self
                .get(name.clone())?
                .map_err(|e| e.into_state(&format!("cannot read the lock of {describe}")))?;
            let (condition, broke) = match &current {
                None => (Condition::Absent, None),
                Some(o) => {
                    let file = LeaseFile::parse(&o.bytes);
                    match file.holder() {
                        None => (Condition::Version(o.version.clone()), None),
                        Some(holder) if self.expired(&file, o) => {
                            (Condition::Version(o.version.clone()), Some(holder))
                        }
                        Some(holder) => return Ok(Locked::Held(holder)),
                    }
                }
            };
            let bytes = LeaseFile::held(info, self.lease).to_bytes();
            let sent = Instant::now();
            match self.put(name.clone(), bytes, condition)? {
                Ok(version) => {
                    let renewal = Renewal::start(
                        self.runtime.as_ref().map(|r| r.handle().clone()),
                        self.store.clone(),
                        name.clone(),
                        info.clone(),
                        version,
                        sent,
                        self.lease,
                    );
                    self.inner().lock = Some(renewal);
                    return Ok(Locked::Taken { broke });
                }
                // Someone else took or renewed it meanwhile: look again.
                Err(StoreError::Precondition) => continue,
                Err(e) => return Err(e.into_state(&format!("cannot take the lock of {describe}"))),
            }
        }
        match self.current_lock()? {
            Some((holder, _, _)) => Ok(Locked::Held(holder)),
            None => Err(StateError::new(format!(
                "the lock of {describe} keeps changing under this run; try again"
            ))),
        }
    }

    fn unlock(&self, id: &str) -> Result<(), StateError> {
        let renewal = self.inner().lock.take();
        let Some(renewal) = renewal else {
            return Ok(());
        };
        let (version, lost) = self.run(renewal.stop())?;
        if let Some(lost) = lost {
            return Err(StateError::new(format!(
                "the lock {id} of {} was lost before it was released: {lost}",
                self.store.describe()
            )));
        }
        match self.release(id, version)? {
            Ok(_) => Ok(()),
            Err(StoreError::Precondition) => Err(StateError::new(format!(
                "the lock {id} of {} was taken over before this run released it",
                self.store.describe()
            ))),
            Err(e) => Err(e.into_state(&format!(
                "cannot release the lock of {} (its lease runs out by itself in {}s)",
                self.store.describe(),
                self.lease.as_secs()
            ))),
        }
    }

    fn force_unlock(&self, id: &str, force: bool) -> Result<(), StateError> {
        let describe = self.store.describe();
        let Some((holder, file, object)) = self.current_lock()? else {
            return Err(StateError::new(format!(
                "the state {describe} is not locked"
            )));
        };
        if holder.id != id {
            return Err(StateError::new(format!(
                "the lock of {describe} has id {}, not {id}",
                holder.id
            ))
            .help(format!(
                "it is held by {} for {} since {}; pass its id to force-unlock",
                holder.who, holder.operation, holder.created
            )));
        }
        if !force && !self.expired(&file, &object) {
            let age = object
                .modified
                .or_else(|| file.renewed_at())
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .map(|a| format!(", renewed {}s ago", a.as_secs()))
                .unwrap_or_default();
            return Err(StateError::new(format!(
                "the lock {id} of {describe} is a live lease: {} for {} since {}{age}; its lease is {}s",
                holder.who,
                holder.operation,
                holder.created,
                file.lease().as_secs()
            ))
            .help("if that run is gone, its lease runs out by itself and the next run takes it over; to remove it while it may still run (two runs may then change the state at once), pass --force"));
        }
        match self.release(id, object.version.clone())? {
            Ok(_) => Ok(()),
            Err(StoreError::Precondition) => Err(StateError::new(format!(
                "the lock {id} of {describe} changed while tik removed it: its holder renewed it, or another run took it"
            ))
            .help("look again with any tik command that locks, such as tik plan")),
            Err(e) => Err(e.into_state(&format!("cannot remove the lock of {describe}"))),
        }
    }
}

#[cfg(test)]
mod tests;
