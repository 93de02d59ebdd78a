//! The lock object and the task that renews its lease.

use crate::{put_checked, Condition, ObjectStore, StoreError, DEFAULT_LEASE};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tik_engine::state::{LockInfo, StateError};

/// What the lock object holds: its holder and lease, or that it is free.
#[cfg(test)]
#[test]
fn renewal_times_read_back() {
    let f = LeaseFile {
        renewed: Some(tik_engine::timefmt::format_utc(1_795_362_780)),
        ..LeaseFile::default()
    };
    assert_eq!(
        f.renewed_at(),
        Some(std::time::UNIX_EPOCH + Duration::from_secs(1_795_362_780))
    );
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeaseFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<LockInfo>,
    #[serde(default)]
    pub lease_seconds: u64,
    /// When the holder last renewed it, by its clock (for people; expiry is judged by
    /// the store's clock and the waiting run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<String>,
    /// The id of the lock released last, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
}

impl LeaseFile {
    /// A lock object that is not a lease file is held by someone unknown: tik never
    /// takes what it cannot read, until its lease (the default one) runs out.
    pub fn parse(bytes: &[u8]) -> LeaseFile {
        serde_json::from_slice(bytes).unwrap_or_else(|_| LeaseFile {
            holder: Some(LockInfo {
                id: "unreadable".into(),
                who: "unknown".into(),
                operation: "unknown".into(),
                created: "unknown".into(),
                version: "unknown".into(),
            }),
            ..LeaseFile::default()
        })
    }

    pub fn holder(&self) -> Option<LockInfo> {
        self.holder.clone()
    }

    /// When its holder last renewed it, by the holder's clock: stands in for the
    /// store's time where a store does not tell it.
    pub fn renewed_at(&self) -> Option<std::time::SystemTime> {
        let t = self.renewed.as_deref()?;
        let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
        // Howard Hinnant's days-from-civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
        Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    }

    pub fn lease(&self) -> Duration {
        match self.lease_seconds {
            0 => DEFAULT_LEASE,
            s => Duration::from_secs(s),
        }
    }

    pub fn held(info: &LockInfo, lease: Duration) -> LeaseFile {
        LeaseFile {
            holder: Some(info.clone()),
            lease_seconds: lease.as_secs().max(1),
            renewed: Some(tik_engine::timefmt::now_utc()),
            released: None,
        }
    }

    pub fn released(id: &str) -> LeaseFile {
        LeaseFile {
            released: Some(id.to_string()),
            ..LeaseFile::default()
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

struct Shared {
    /// The lock object's version as this run wrote it last.
    version: String,
    /// When the last write that succeeded was sent.
    sent: Instant,
    /// Why the lock is no longer this run's, once it is not.
    lost: Option<String>,
    /// The last renewal's failure, while it keeps failing.
    failing: Option<String>,
}

/// A held lock: renewed by a task until stopped.
pub(crate) struct Renewal {
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn locked(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Renewal {
    pub(crate) fn start<S: ObjectStore>(
        handle: Option<tokio::runtime::Handle>,
        store: Arc<S>,
        name: String,
        info: LockInfo,
        version: String,
        sent: Instant,
        lease: Duration,
    ) -> Renewal {
        let shared = Arc::new(Mutex::new(Shared {
            version,
            sent,
            lost: None,
            failing: None,
        }));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = handle.map(|h| {
            let shared = shared.clone();
            h.spawn(async move {
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = tokio::time::sleep(lease / 3) => {}
                    }
                    let current = locked(&shared).version.clone();
                    let bytes = LeaseFile::held(&info, lease).to_bytes();
                    let sent = Instant::now();
                    match put_checked(&*store, &name, bytes, Condition::Version(current)).await {
                        Ok(v) => {
                            let mut s = locked(&shared);
                            s.version = v;
                            s.sent = sent;
                            s.failing = None;
                        }
                        Err(StoreError::Precondition) => {
                            locked(&shared).lost =
                                Some("another run took it over after its lease ran out".into());
                            break;
                        }
                        // Tried again at the next turn; the lease covers a few misses.
                        Err(StoreError::Failed { message, .. }) => {
                            locked(&shared).failing = Some(message);
                        }
                    }
                }
            })
        });
        Renewal {
            shared,
            stop: Some(stop),
            task,
        }
    }

    /// Whether this run may still write as the lock's holder: its last renewal was
    /// sent less than two thirds of a lease ago. No other run takes a lease over before
    /// it has seen it unchanged for a whole lease, so a write that passes this check has
    /// a third of a lease to land.
    pub(crate) fn check(&self, describe: &str, lease: Duration) -> Result<(), StateError> {
        let s = locked(&self.shared);
        if let Some(lost) = &s.lost {
            return Err(StateError::new(format!(
                "this run no longer holds the lock of {describe}: {lost}; tik stopped writing the state"
            ))
            .help("what this run did is in the state it writes locally; push it with tik state push once you have checked the remote state"));
        }
        let since = s.sent.elapsed();
        if since >= lease * 2 / 3 {
            return Err(StateError::new(format!(
                "this run could not renew its lock of {describe} for {}s ({}); another run may take it over, so tik stopped writing the state",
                since.as_secs(),
                s.failing.as_deref().unwrap_or("no answer")
            ))
            .help("check the connection to the store"));
        }
        Ok(())
    }

    /// Stops renewing; gives the lock object's last version and, if it was lost, why.
    pub(crate) fn stop(
        mut self,
    ) -> impl std::future::Future<Output = (String, Option<String>)> + Send + 'static {
        let stop = self.stop.take();
        let task = self.task.take();
        let shared = self.shared.clone();
        async move {
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            if let Some(task) = task {
                let _ = task.await;
            }
            let s = locked(&shared);
            (s.version.clone(), s.lost.clone())
        }
    }
}
