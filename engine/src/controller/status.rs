//! Where a controller runs and what it last did: a record per watched cluster beside
//! the state (`Backend::write_record`), which `tik status` reads and a second
//! controller for the same cluster is refused by.

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics};
use crate::state::{record_name, Backend, LockInfo, StateError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many action lines a record keeps.
const ACTIONS_KEPT: usize = 20;
/// A controller that has written nothing for this long (or three rounds, if longer)
/// is taken to be gone.
const GONE_AFTER: Duration = Duration::from_secs(90);
/// How often a controller with nothing new to say writes its record anyway.
pub const BEAT_EVERY: Duration = Duration::from_secs(30);

/// The record: who runs the controller, where, since when, and what it last did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub id: String,
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// Where it runs, in words: "here" (a terminal, a CI runner), or the cluster's
    /// head.
    pub on: String,
    pub clusters: Vec<Address>,
    pub started: String,
    pub interval_ms: u64,
    /// When it last wrote this record (seconds since the epoch).
    pub seen: u64,
    /// When its last round ended, and how.
    pub last_round: Option<String>,
    pub last_outcome: String,
    /// Its last action lines, oldest first, each with its time.
    pub actions: Vec<String>,
    /// What waits now after failed rounds (a pool without capacity, say), a line
    /// each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// When it stopped, if it stopped cleanly.
    pub stopped: Option<String>,
}

/// A record as `tik status` shows it: the record, and whether its controller still
/// runs as far as its record tells.
#[derive(Debug, Clone)]
pub struct Seen {
    pub status: Status,
    pub alive: bool,
    /// Seconds since it last wrote.
    pub silent_for: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The record's name for a cluster.
pub fn record_of(cluster: &Address) -> String {
    record_name("controller-", &cluster.to_string())
}

impl Status {
    fn alive(&self, now: u64) -> bool {
        let window = GONE_AFTER
            .max(Duration::from_millis(self.interval_ms).saturating_mul(3))
            .as_secs();
        self.stopped.is_none() && now.saturating_sub(self.seen) <= window && !self.gone_here()
    }

    /// Whether it ran on this machine and its process is gone (killed, say): then
    /// its record is no claim, however fresh.
    fn gone_here(&self) -> bool {
        let here = LockInfo::new("controller").who;
        if self.who != here || self.pid == std::process::id() {
            return false;
        }
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        // A pid taken since by another program is not it either.
        !cmdline.split(|b| *b == 0).any(|arg| arg == b"controller")
    }
}

/// Reads the record of `cluster`'s controller, if one was ever written. A record
/// that does not parse is reported as absent: it is only a status.
pub fn read(backend: &dyn Backend, cluster: &Address) -> Result<Option<Seen>, StateError> {
    let Some(bytes) = backend.read_record(&record_of(cluster))? else {
        return Ok(None);
    };
    let Ok(status) = serde_json::from_slice::<Status>(&bytes) else {
        return Ok(None);
    };
    let now = now_secs();
    Ok(Some(Seen {
        alive: status.alive(now),
        silent_for: now.saturating_sub(status.seen),
        status,
    }))
}

/// This controller's claim on the clusters it watches, kept up to date each round.
pub struct Registration {
    status: Status,
    written: Option<std::time::Instant>,
}

fn held_by(cluster: &Address, other: &Status, silent_for: u64) -> Diagnostics {
    Diagnostic::new(format!(
        "cluster {} is kept by another controller: {} (pid {}, {}), running since {}, last heard from {silent_for}s ago",
        crate::scale::cluster_label(cluster),
        other.who,
        other.pid,
        other.on,
        other.started
    ))
    .help("stop that one first (Ctrl-C or SIGTERM); if it died, this one may take over once it has been silent for 90s")
    .into()
}

impl Registration {
    /// Claims `clusters` for this controller, refused where another live controller
    /// keeps one of them (it is named).
    pub fn claim(
        backend: &dyn Backend,
        clusters: &[Address],
        on: &str,
        interval: Duration,
    ) -> Result<Registration, Diagnostics> {
        for c in clusters {
            if let Some(seen) = read(backend, c)? {
                if seen.alive {
                    return Err(held_by(c, &seen.status, seen.silent_for));
                }
            }
        }
        let lock = LockInfo::new("controller");
        let mut reg = Registration {
            status: Status {
                id: lock.id,
                who: lock.who,
                pid: std::process::id(),
                on: on.to_string(),
                clusters: clusters.to_vec(),
                started: lock.created,
                interval_ms: interval.as_millis().min(u128::from(u64::MAX)) as u64,
                seen: now_secs(),
                last_round: None,
                last_outcome: "starting".into(),
                actions: Vec::new(),
                waiting: Vec::new(),
                stopped: None,
            },
            written: None,
        };
        reg.write(backend)?;
        // Two started at once both wrote: the one whose record is not there yields.
        std::thread::sleep(Duration::from_millis(100));
        reg.check_ours(backend)?;
        Ok(reg)
    }

    fn check_ours(&self, backend: &dyn Backend) -> Result<(), Diagnostics> {
        for c in &self.status.clusters {
            if let Some(seen) = read(backend, c)? {
                if seen.status.id != self.status.id && seen.alive {
                    return Err(held_by(c, &seen.status, seen.silent_for));
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, backend: &dyn Backend) -> Result<(), Diagnostics> {
        self.status.seen = now_secs();
        let bytes = serde_json::to_vec_pretty(&self.status).unwrap_or_default();
        for c in &self.status.clusters {
            backend.write_record(&record_of(c), &bytes)?;
        }
        self.written = Some(std::time::Instant::now());
        Ok(())
    }

    /// Notes a round that ended with `outcome` and logged `actions` (each line with
    /// its time), with what waits after it. Written when there is something new, or
    /// every `BEAT_EVERY`; a record another controller has taken over ends this one.
    pub fn round(
        &mut self,
        backend: &dyn Backend,
        outcome: &str,
        actions: Vec<String>,
        waiting: Vec<String>,
    ) -> Result<(), Diagnostics> {
        self.status.last_round = Some(crate::timefmt::now_utc());
        let new = outcome != self.status.last_outcome
            || !actions.is_empty()
            || waiting != self.status.waiting;
        self.status.waiting = waiting;
        self.status.last_outcome = outcome.to_string();
        self.status.actions.extend(actions);
        let over = self.status.actions.len().saturating_sub(ACTIONS_KEPT);
        self.status.actions.drain(..over);
        let due = self.written.is_none_or(|w| w.elapsed() >= BEAT_EVERY);
        if new || due {
            self.check_ours(backend)?;
            self.write(backend)?;
        }
        Ok(())
    }

    /// Marks the record stopped: `tik status` says so, and another controller may
    /// start at once.
    pub fn stop(mut self, backend: &dyn Backend) -> Result<(), Diagnostics> {
        self.status.stopped = Some(crate::timefmt::now_utc());
        self.check_ours(backend)?;
        self.write(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryBackend;

    #[test]
    fn a_second_controller_is_refused_naming_the_first_until_it_stops() {
        let backend = MemoryBackend::default();
        let etl = Address::parse("cluster.etl").unwrap();
        let watched = [etl.clone()];
        let first =
            Registration::claim(&backend, &watched, "here", Duration::from_secs(5)).unwrap();
        let e = Registration::claim(&backend, &watched, "here", Duration::from_secs(5))
            .err()
            .unwrap();
        let text = &e.0[0].message;
        assert!(
            text.starts_with("cluster etl is kept by another controller: "),
            "{text}"
        );
        assert!(
            text.contains(&format!("(pid {}, here)", std::process::id())),
            "{text}"
        );
        let seen = read(&backend, &etl).unwrap().unwrap();
        assert!(seen.alive);
        first.stop(&backend).unwrap();
        let seen = read(&backend, &etl).unwrap().unwrap();
        assert!(!seen.alive && seen.status.stopped.is_some());
        let mut second =
            Registration::claim(&backend, &watched, "here", Duration::from_secs(5)).unwrap();
        second
            .round(
                &backend,
                "acted",
                vec!["a line".into()],
                vec!["a pool waits".into()],
            )
            .unwrap();
        let seen = read(&backend, &etl).unwrap().unwrap();
        assert_eq!(seen.status.actions, ["a line"]);
        assert_eq!(seen.status.waiting, ["a pool waits"]);
        assert_eq!(seen.status.last_outcome, "acted");
        // One whose process on this machine is gone is gone, however fresh.
        let mut dead = seen.status.clone();
        dead.pid = u32::MAX;
        backend
            .write_record(&record_of(&etl), &serde_json::to_vec(&dead).unwrap())
            .unwrap();
        assert!(!read(&backend, &etl).unwrap().unwrap().alive);
        // One silent for long is taken to be gone, wherever it ran.
        let mut old = seen.status.clone();
        old.who = "someone@elsewhere".into();
        old.seen -= 100;
        backend
            .write_record(&record_of(&etl), &serde_json::to_vec(&old).unwrap())
            .unwrap();
        assert!(!read(&backend, &etl).unwrap().unwrap().alive);
        // A record name is plain whatever the address.
        let odd = Address::parse("module.m[\"a/../b\"].cluster.x").unwrap();
        assert!(
            crate::state::record_name_ok(&record_of(&odd)),
            "{}",
            record_of(&odd)
        );
    }
}
