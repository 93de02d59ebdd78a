//! The protocol on a store in memory that keeps the same promises as S3 and GCS.

use super::*;
use tik_engine::state::{JournalEntry, ResourceState, StateStore, Status};

/// Bytes, version and time written, by name.
type Objects = HashMap<String, (Vec<u8>, u64, SystemTime)>;

#[derive(Default)]
struct MemStore {
    objects: Mutex<Objects>,
    next: Mutex<u64>,
    /// Lose the answer of the next put (which still happens), as a reset connection does.
    lose_answer: Mutex<bool>,
}

#[async_trait]
impl ObjectStore for Arc<MemStore> {
    fn describe(&self) -> String {
        "mem://bucket/s.tikstate".into()
    }
    fn base(&self) -> String {
        "s.tikstate".into()
    }
    async fn get(&self, name: &str) -> Result<Option<Object>, StoreError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(name)
            .map(|(b, v, m)| Object {
                bytes: b.clone(),
                version: v.to_string(),
                modified: Some(*m),
            }))
    }
    async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut objects = self.objects.lock().unwrap();
        let current = objects.get(name).map(|o| o.1.to_string());
        let ok = match (&condition, &current) {
            (Condition::Any, _) | (Condition::Absent, None) => true,
            (Condition::Version(v), Some(c)) => v == c,
            _ => false,
        };
        if !ok {
            return Err(StoreError::Precondition);
        }
        let mut next = self.next.lock().unwrap();
        *next += 1;
        objects.insert(name.to_string(), (bytes, *next, SystemTime::now()));
        if std::mem::take(&mut *self.lose_answer.lock().unwrap()) {
            return Err(StoreError::Precondition);
        }
        Ok(next.to_string())
    }
    async fn delete(&self, names: Vec<String>) -> Result<(), StoreError> {
        let mut objects = self.objects.lock().unwrap();
        for n in names {
            objects.remove(&n);
        }
        Ok(())
    }
}

fn backend(store: &Arc<MemStore>, lease: Duration) -> ObjectBackend<Arc<MemStore>> {
    let store = store.clone();
    ObjectBackend::open(lease, move || async move { Ok(store) }).unwrap()
}

fn put(name: &str) -> JournalEntry {
    JournalEntry::Put {
        resource: ResourceState {
            address: tik_engine::addr::Address::new().name("tik_data").name(name),
            type_name: "tik_data".into(),
            provider: "tik".into(),
            status: Status::Ready,
            attributes: Default::default(),
            sensitive_attributes: vec![],
            dependencies: vec![],
        },
    }
}

fn names(store: &MemStore) -> Vec<String> {
    let mut n: Vec<String> = store.objects.lock().unwrap().keys().cloned().collect();
    n.sort();
    n
}

#[test]
fn a_journal_is_small_objects_replayed_until_folded() {
    let store = Arc::new(MemStore::default());
    let b = backend(&store, DEFAULT_LEASE);
    let mut s = StateStore::load(&b).unwrap();
    s.record(put("a")).unwrap();
    s.hold();
    s.record(put("b")).unwrap();
    s.record(put("c")).unwrap();
    s.flush().unwrap();
    assert_eq!(
        names(&store),
        [
            "s.tikstate.journal/none/00000001",
            "s.tikstate.journal/none/00000002"
        ]
    );
    // A run killed here: the next one replays both objects.
    let b2 = backend(&store, DEFAULT_LEASE);
    let mut again = StateStore::load(&b2).unwrap();
    assert_eq!(again.state.resources.len(), 3);
    again.record(put("d")).unwrap();
    again.save().unwrap();
    // Folded: the journal is gone and the snapshot holds all four.
    assert_eq!(names(&store), ["s.tikstate"]);
    let b3 = backend(&store, DEFAULT_LEASE);
    assert_eq!(StateStore::load(&b3).unwrap().state.resources.len(), 4);
    // The next fold keeps the one before as the backup.
    let mut s3 = StateStore::load(&b3).unwrap();
    s3.record(put("e")).unwrap();
    s3.save().unwrap();
    assert_eq!(names(&store), ["s.tikstate", "s.tikstate.backup"]);
}

#[test]
fn a_snapshot_is_never_written_over_one_this_run_did_not_read() {
    let store = Arc::new(MemStore::default());
    let (b1, b2) = (
        backend(&store, DEFAULT_LEASE),
        backend(&store, DEFAULT_LEASE),
    );
    let mut s1 = StateStore::load(&b1).unwrap();
    let mut s2 = StateStore::load(&b2).unwrap();
    s1.record(put("a")).unwrap();
    s1.save().unwrap();
    s2.record(put("b")).unwrap();
    let err = s2.save().unwrap_err();
    assert!(
        err.message.contains("changed since this run read it"),
        "{err}"
    );
    let b3 = backend(&store, DEFAULT_LEASE);
    let kept = StateStore::load(&b3).unwrap();
    assert!(kept
        .state
        .resources
        .keys()
        .any(|a| a.to_string() == "tik_data.a"));
}

#[test]
fn a_write_whose_answer_was_lost_counts_when_its_bytes_are_there() {
    let store = Arc::new(MemStore::default());
    let b = backend(&store, DEFAULT_LEASE);
    let mut s = StateStore::load(&b).unwrap();
    *store.lose_answer.lock().unwrap() = true;
    s.record(put("a")).unwrap();
    *store.lose_answer.lock().unwrap() = true;
    s.save().unwrap();
    let b2 = backend(&store, DEFAULT_LEASE);
    assert_eq!(StateStore::load(&b2).unwrap().state.resources.len(), 1);
}

#[test]
fn one_holder_at_a_time_and_a_dead_holders_lease_is_taken_over_once() {
    let store = Arc::new(MemStore::default());
    let lease = Duration::from_secs(1);
    let (b1, b2, b3) = (
        backend(&store, lease),
        backend(&store, lease),
        backend(&store, lease),
    );
    let first = LockInfo::new("apply");
    assert_eq!(b1.lock(&first).unwrap(), Locked::Taken { broke: None });
    // Renewed while its holder lives: never taken over.
    let second = LockInfo::new("apply");
    let deadline = Instant::now() + lease * 3;
    while Instant::now() < deadline {
        assert_eq!(b2.lock(&second).unwrap(), Locked::Held(first.clone()));
        std::thread::sleep(Duration::from_millis(100));
    }
    b1.check_lease().unwrap();
    // Its holder dies (the renewal stops, the lock stays).
    if let Some(r) = b1.inner().lock.take() {
        b1.run(r.stop()).unwrap();
    }
    // By the store's clock, not renewed for two leases and a second: expired at
    // first sight.
    std::thread::sleep(lease * 2 + Duration::from_millis(1200));
    // Both see the same expired version; only one takes it.
    let third = LockInfo::new("plan");
    let r2 = b2.lock(&second).unwrap();
    let r3 = b3.lock(&third).unwrap();
    assert_eq!(
        r2,
        Locked::Taken {
            broke: Some(first.clone())
        }
    );
    assert_eq!(r3, Locked::Held(second.clone()));
    // The old holder cannot write any more, and learns why.
    b1.inner().lock = None;
    b2.unlock(&second.id).unwrap();
    assert_eq!(b3.lock(&third).unwrap(), Locked::Taken { broke: None });
    b3.unlock(&third.id).unwrap();
}

#[test]
fn a_holder_that_lost_its_lock_stops_writing() {
    let store = Arc::new(MemStore::default());
    let lease = Duration::from_secs(1);
    let b1 = backend(&store, lease);
    let mut s = StateStore::load(&b1).unwrap();
    let first = LockInfo::new("apply");
    b1.lock(&first).unwrap();
    // Someone rewrites the lock behind its back (a forced unlock and a new holder).
    let other = backend(&store, lease);
    other.force_unlock(&first.id, true).unwrap();
    other.lock(&LockInfo::new("apply")).unwrap();
    std::thread::sleep(lease);
    let err = s.record(put("a")).unwrap_err();
    assert!(err.message.contains("no longer holds the lock"), "{err}");
}

#[test]
fn force_unlock_refuses_a_live_lease_without_force() {
    let store = Arc::new(MemStore::default());
    let b1 = backend(&store, DEFAULT_LEASE);
    let b2 = backend(&store, DEFAULT_LEASE);
    let info = LockInfo::new("apply");
    b1.lock(&info).unwrap();
    let err = b2.force_unlock(&info.id, false).unwrap_err();
    assert!(err.message.contains("live lease"), "{err}");
    assert!(b2.force_unlock("other", true).is_err());
    b2.force_unlock(&info.id, true).unwrap();
    assert!(b2
        .force_unlock(&info.id, true)
        .unwrap_err()
        .message
        .contains("not locked"));
}

#[test]
fn a_waiting_run_takes_over_a_lease_it_saw_unchanged_for_its_length() {
    let store = Arc::new(MemStore::default());
    let lease = Duration::from_secs(1);
    let (b1, b2) = (backend(&store, lease), backend(&store, lease));
    let first = LockInfo::new("apply");
    b1.lock(&first).unwrap();
    // Its holder dies at once: by the store's clock the lease is fresh, but a run
    // that watches it unchanged for a lease takes it over.
    if let Some(r) = b1.inner().lock.take() {
        b1.run(r.stop()).unwrap();
    }
    let started = Instant::now();
    let mut told = None;
    let broke = tik_engine::state::lock_waiting(&b2, &LockInfo::new("plan"), lease * 5, &mut |h| {
        told = Some(h.id.clone())
    })
    .unwrap();
    assert_eq!(broke, Some(first.clone()));
    assert_eq!(told, Some(first.id));
    // Never before a whole lease.
    assert!(started.elapsed() >= lease);
}
