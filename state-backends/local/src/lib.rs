//! tik-backend-local: state in a file on this machine.
//!
//! `PATH` holds the snapshot, `PATH.journal` the changes since, `PATH.backup` the
//! previous snapshot and `PATH.lock` the lock. Snapshots are replaced atomically
//! (temporary file, fsync, rename); the journal is appended one whole write per change.
//!
//! ```no_run
//! use tik_backend_local::LocalBackend;
//! use tik_engine::state::{Backend, StateStore};
//! let backend = LocalBackend::new("tik.tikstate".into());
//! let store = StateStore::load(&backend).expect("state loads");
//! ```

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tik_engine::state::{Backend, LockInfo, Locked, StateError};

pub struct LocalBackend {
    path: PathBuf,
    /// The open lock file while this process holds the lock. The operating system's lock
    /// on it dies with the process, so a crashed run never leaves the state locked.
    held: Mutex<Option<File>>,
}

impl LocalBackend {
    pub fn new(path: PathBuf) -> Self {
        LocalBackend {
            path,
            held: Mutex::new(None),
        }
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    /// Where a record beside the state lives: `tik.tikstate.records/NAME.json`.
    fn record_path(&self, name: &str) -> Result<PathBuf, StateError> {
        if !tik_engine::state::record_name_ok(name) {
            return Err(tik_engine::state::bad_record_name(name));
        }
        Ok(self.sibling(".records").join(format!("{name}.json")))
    }

    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".backup")
    }

    /// Who holds the lock now, if anyone.
    pub fn current_lock(&self) -> Result<Option<LockInfo>, StateError> {
        match fs::read(self.lock_path()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                LockInfo {
                    id: "unreadable".into(),
                    who: "unknown".into(),
                    operation: "unknown".into(),
                    created: "unknown".into(),
                    version: "unknown".into(),
                }
            }))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read the lock", &self.lock_path(), e)),
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StateError {
    StateError::new(format!("cannot {what} {}: {e}", path.display()))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Writes `bytes` to a new private file at `path` (whatever was there goes first),
/// synced to disk when `sync`: the first half of replacing a file by a rename.
fn write_fresh(path: &Path, bytes: &[u8], sync: bool) -> Result<(), StateError> {
    let _ = fs::remove_file(path);
    let mut f = private()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error("create", path, e))?;
    f.write_all(bytes).map_err(|e| io_error("write", path, e))?;
    if sync {
        f.sync_all().map_err(|e| io_error("sync", path, e))?;
    }
    Ok(())
}

/// Options that create a file only its owner can read: snapshots, journals and
/// backups hold private keys and every sensitive value.
fn private() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Whether `file` is still the file at `path`: a lock taken on a file that another run
/// removed (or replaced) meanwhile guards nothing.
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        read_optional(&self.path)
    }

    fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_error("create the directory", dir, e))?;
        }
        let tmp = self.sibling(".tmp");
        write_fresh(&tmp, bytes, true)?;
        if self.path.exists() {
            let backup_tmp = self.sibling(".backup.tmp");
            fs::copy(&self.path, &backup_tmp)
                .and_then(|_| fs::set_permissions(&backup_tmp, fs::Permissions::from_mode(0o600)))
                .map_err(|e| io_error("back up", &self.path, e))?;
            fs::rename(&backup_tmp, self.backup_path())
                .map_err(|e| io_error("back up", &self.path, e))?;
        }
        fs::rename(&tmp, &self.path).map_err(|e| io_error("replace", &self.path, e))?;
        sync_dir(&self.path);
        match fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &self.journal_path(), e)),
        }
    }

    fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        read_optional(&self.journal_path())
    }

    fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.journal_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_error("create the directory", dir, e))?;
        }
        // One write of whole lines to an O_APPEND file: once it returns, a crash of this
        // process cannot lose it, and a torn tail is recognised on replay.
        let mut f = private()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        f.write_all(bytes)
            .map_err(|e| io_error("append to", &path, e))
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        read_optional(&self.record_path(name)?)
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.record_path(name)?;
        let dir = self.sibling(".records");
        fs::create_dir_all(&dir).map_err(|e| io_error("create the directory", &dir, e))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        // Whole or not at all: a reader never sees half a record.
        let tmp = dir.join(format!("{name}.tmp"));
        write_fresh(&tmp, bytes, false)?;
        fs::rename(&tmp, &path).map_err(|e| io_error("replace", &path, e))
    }

    fn remove_record(&self, name: &str) -> Result<(), StateError> {
        let path = self.record_path(name)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error("remove", &path, e)),
            _ => Ok(()),
        }
    }

    fn lock(&self, info: &LockInfo) -> Result<Locked, StateError> {
        let path = self.lock_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_error("create the directory", dir, e))?;
        }
        // A run that releases the lock removes its file. One that opened the file just
        // before may then lock the removed file while a third run creates and locks a
        // new one: so a lock counts only on the file still at the path, and is taken
        // again on the new file otherwise.
        let mut file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_error("open the lock", &path, e))?;
            match file.try_lock() {
                Ok(()) if still_at(&file, &path) => break file,
                Ok(()) => continue,
                Err(TryLockError::WouldBlock) => {
                    let holder = self.current_lock()?.unwrap_or_else(|| LockInfo {
                        id: "unknown".into(),
                        ..info.clone()
                    });
                    return Ok(Locked::Held(holder));
                }
                Err(TryLockError::Error(e)) => return Err(io_error("lock", &path, e)),
            }
        };
        // Whatever the file held before was left by a run that is gone.
        let bytes = serde_json::to_vec_pretty(info).unwrap_or_default();
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(&bytes))
            .and_then(|_| file.sync_all())
            .map_err(|e| io_error("write the lock", &path, e))?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
        // The operating system's lock dies with its holder: there is no lease to break.
        Ok(Locked::Taken { broke: None })
    }

    fn unlock(&self, id: &str) -> Result<(), StateError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match self.current_lock()? {
            Some(l) if l.id == id => {
                fs::remove_file(self.lock_path())
                    .map_err(|e| io_error("remove the lock", &self.lock_path(), e))?;
                *held = None;
                Ok(())
            }
            Some(l) => Err(StateError::new(format!(
                "the lock of {} is held by {} (id {}), not by this run",
                self.describe(),
                l.who,
                l.id
            ))),
            None => {
                *held = None;
                Ok(())
            }
        }
    }

    fn force_unlock(&self, id: &str, force: bool) -> Result<(), StateError> {
        let path = self.lock_path();
        let l = match self.current_lock()? {
            Some(l) if l.id == id => l,
            Some(l) => {
                return Err(StateError::new(format!(
                    "the lock of {} has id {}, not {id}",
                    self.describe(),
                    l.id
                ))
                .help(format!(
                    "it is held by {} for {} since {}; pass its id to force-unlock",
                    l.who, l.operation, l.created
                )))
            }
            None => {
                return Err(StateError::new(format!(
                    "the state {} is not locked",
                    self.describe()
                )))
            }
        };
        // The operating system's lock dies with its holder: if it can be taken, the
        // run that wrote the file is gone; if not, it is running now.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open the lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if !force => {
                return Err(StateError::new(format!(
                    "the lock {id} of {} is held by a run that is still going: {} for {} since {}",
                    self.describe(),
                    l.who,
                    l.operation,
                    l.created
                ))
                .help("wait for it to finish; to remove its lock while it runs (two runs may then change the state at once), pass --force"))
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io_error("lock", &path, e)),
        }
        fs::remove_file(&path).map_err(|e| io_error("remove the lock", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tik_engine::addr::Address;
    use tik_engine::state::{JournalEntry, ResourceState, StateStore, Status};

    fn resource(name: &str) -> ResourceState {
        ResourceState {
            address: Address::new().name("tik_data").name(name),
            type_name: "tik_data".into(),
            provider: "tik".into(),
            status: Status::Ready,
            attributes: Default::default(),
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
    fn a_lock_whose_holder_is_gone_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        fs::write(b.lock_path(), "{\"id\": \"old\"}").unwrap();
        b.lock(&LockInfo::new("apply")).unwrap();
        assert_ne!(b.current_lock().unwrap().unwrap().id, "old");
    }

    #[test]
    fn a_second_locker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        let other = LocalBackend::new(dir.path().join("s.tikstate"));
        let first = LockInfo::new("apply");
        b.lock(&first).unwrap();
        let Locked::Held(holder) = other.lock(&LockInfo::new("apply")).unwrap() else {
            panic!("a second locker took a held lock")
        };
        let err = holder.locked_error(&other.describe());
        assert!(
            err.message.contains(&first.who) && err.message.contains(&first.id),
            "{err}"
        );
        assert!(err.help.unwrap().contains("tik force-unlock"));
        assert!(b.force_unlock("wrong", false).is_err());
        // Its holder is alive: only --force removes it.
        let err = b.force_unlock(&first.id, false).unwrap_err();
        assert!(err.message.contains("still going"), "{err}");
        assert!(b.lock_path().exists());
        b.force_unlock(&first.id, true).unwrap();
        other.lock(&LockInfo::new("plan")).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_run_that_is_gone_is_removed_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        let info = LockInfo::new("apply");
        fs::write(b.lock_path(), serde_json::to_vec(&info).unwrap()).unwrap();
        b.force_unlock(&info.id, false).unwrap();
        assert!(!b.lock_path().exists());
    }

    /// B opens the lock file, A removes it on release, B locks the removed file, C
    /// makes a new one: B must not count its lock, and so B and C cannot both hold it.
    #[test]
    fn a_lock_on_a_removed_file_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        let stale = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(b.lock_path())
            .unwrap();
        fs::remove_file(b.lock_path()).unwrap();
        stale.try_lock().unwrap();
        assert!(!still_at(&stale, &b.lock_path()));
        let c = LocalBackend::new(dir.path().join("s.tikstate"));
        c.lock(&LockInfo::new("apply")).unwrap();
        assert!(still_at(
            c.held.lock().unwrap().as_ref().unwrap(),
            &c.lock_path()
        ));
        // And a later locker finds C's lock on the file at the path.
        let d = LocalBackend::new(dir.path().join("s.tikstate"));
        assert!(matches!(
            d.lock(&LockInfo::new("plan")).unwrap(),
            Locked::Held(_)
        ));
    }

    #[test]
    fn files_that_hold_secrets_are_the_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        let mut store = StateStore::load(&b).unwrap();
        store.record(put("a")).unwrap();
        store.save().unwrap();
        store.record(put("b")).unwrap();
        let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(b.journal_path()), 0o600);
        store.save().unwrap();
        assert_eq!(mode(b.path.clone()), 0o600);
        assert_eq!(mode(b.backup_path()), 0o600);
    }

    #[test]
    fn snapshots_keep_a_backup_and_clear_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.tikstate"));
        let mut store = StateStore::load(&b).unwrap();
        store.record(put("a")).unwrap();
        assert!(b.journal_path().exists());
        store.save().unwrap();
        assert!(!b.journal_path().exists());
        store.record(put("b")).unwrap();
        store.save().unwrap();
        let backup = fs::read_to_string(b.backup_path()).unwrap();
        assert!(backup.contains("tik_data.a") && !backup.contains("tik_data.b"));
        assert_eq!(StateStore::load(&b).unwrap().state.resources.len(), 2);
    }

    #[test]
    fn a_corrupt_state_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tikstate");
        fs::write(&path, "{\"format_version\": 1, \"serial\": ").unwrap();
        let b = LocalBackend::new(path.clone());
        let err = StateStore::load(&b).err().unwrap();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"format_version\": 1, \"serial\": "
        );
    }
}
