//! What a controller remembers between rounds: how many checks in a row each service
//! failed its health check, how often it was recovered, and how long to wait after a
//! round whose changes failed.

use super::Control;
use crate::addr::Address;
use crate::plan::Plan;
use crate::state::State;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the controller does about a service that kept failing its health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heal {
    /// Runs its start again (`attempt` of `of` before its node is replaced).
    Restart {
        check: Address,
        attempt: u64,
        of: u64,
    },
    /// Replaces the node it runs on: `attempts` restarts did not keep it well.
    Replace {
        check: Address,
        node: Address,
        attempts: u64,
    },
}

impl Heal {
    /// What the heal's plan targets, and what it replaces.
    pub fn target(&self) -> (&Address, Option<&Address>) {
        match self {
            Heal::Restart { check, .. } => (check, None),
            Heal::Replace { node, .. } => (node, Some(node)),
        }
    }
}

/// A wait after failed rounds.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub until: Instant,
    /// When it ends, as UTC text for the log and for status.
    pub until_utc: String,
    /// How long this wait is; the next failure doubles it (up to 16 times the
    /// cluster's `backoff`).
    pub wait: Duration,
    pub failures: u32,
    /// What failed.
    pub reason: String,
    /// The pool that waits, by its cluster and name; `None`: the whole watched set
    /// (what failed is in no pool).
    pub pool: Option<PoolKey>,
}

/// A pool by its cluster and name.
pub type PoolKey = (Address, String);

/// Where a cluster's pool's workers are: providers put them at
/// `node.worker["POOL"][I]` under the cluster.
pub fn workers_of(pool: &PoolKey) -> Address {
    pool.0
        .clone()
        .name("node")
        .name("worker")
        .key(pool.1.clone())
}

impl Backoff {
    /// A wait after `failures` failed rounds in a row: the base doubled per failure
    /// after the first, up to 16 times.
    fn after(failures: u32, base: Duration, reason: String, pool: Option<PoolKey>) -> Backoff {
        let wait = base.saturating_mul(1 << (failures - 1).min(4));
        let until_utc = SystemTime::now()
            .checked_add(wait)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| crate::timefmt::format_utc(d.as_secs()))
            .unwrap_or_default();
        Backoff {
            until: Instant::now() + wait,
            until_utc,
            wait,
            failures,
            reason,
            pool,
        }
    }
}

/// A service failing its checks now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub check: Address,
    pub rounds: u64,
    pub of: u64,
}

#[derive(Debug, Default)]
struct Recovery {
    attempts: u64,
    /// Rounds in a row it has been well since its last recovery.
    well: u64,
}

#[derive(Debug, Default)]
pub struct Memory {
    failing: HashMap<Address, u64>,
    recovered: HashMap<Address, Recovery>,
    backoff: Option<Backoff>,
    /// The waits of pools a node of which could not be made: the other pools go on.
    pools_off: HashMap<PoolKey, Backoff>,
    /// When the last round that checked health started, and how often one does.
    checked: Option<Instant>,
    every: Option<Duration>,
    /// Since when each worker has had nothing to do, as its runtimes said.
    idle_since: HashMap<Address, Instant>,
    /// What each scaling record last said wrong, so that it is said once.
    demand_said: HashMap<Address, String>,
}

/// The settings that hold for `address`: those of the cluster it is in.
pub fn control_of<'p>(plan: &'p Plan, address: &Address) -> Option<&'p Control> {
    plan.controls
        .iter()
        .find(|c| address.starts_with(&c.cluster))
}

/// The resource `check` is nested in (a service's start step in its node): the
/// longest prefix of its address that state records.
fn node_of(state: &State, check: &Address) -> Option<Address> {
    (1..check.0.len())
        .rev()
        .map(|n| Address(check.0[..n].to_vec()))
        .find(|a| state.resources.contains_key(a))
}

impl Memory {
    /// Counts this round's failed health checks (the plan's unhealthy changes);
    /// returns those failing and what is due for the ones that failed often enough.
    /// A check that passed (no longer in the plan) starts again from zero; one that
    /// stays well for three times its threshold forgets its recoveries.
    pub fn observe(&mut self, plan: &Plan, state: &State) -> (Vec<Failing>, Vec<Heal>) {
        let unhealthy: Vec<&Address> = plan
            .changes
            .iter()
            .filter(|c| c.unhealthy)
            .map(|c| &c.address)
            .collect();
        self.failing.retain(|a, _| unhealthy.contains(&a));
        let mut failing = Vec::new();
        let mut due = Vec::new();
        for check in unhealthy {
            let control = control_of(plan, check)
                .cloned()
                .unwrap_or_else(|| Control::defaults(check));
            let rounds = self.failing.entry(check.clone()).or_insert(0);
            *rounds += 1;
            let rounds = *rounds;
            failing.push(Failing {
                check: check.clone(),
                rounds,
                of: control.unhealthy_after,
            });
            if rounds < control.unhealthy_after {
                continue;
            }
            let attempts = self.recovered.get(check).map_or(0, |r| r.attempts);
            match node_of(state, check) {
                Some(node) if attempts >= control.recovery_attempts => due.push(Heal::Replace {
                    check: check.clone(),
                    node,
                    attempts,
                }),
                _ => due.push(Heal::Restart {
                    check: check.clone(),
                    attempt: attempts + 1,
                    of: control.recovery_attempts,
                }),
            }
        }
        for (check, r) in self.recovered.iter_mut() {
            if !self.failing.contains_key(check) {
                r.well += 1;
            }
        }
        let forget: Vec<Address> = self
            .recovered
            .iter()
            .filter(|(check, r)| {
                let of = control_of(plan, check).map_or(3, |c| c.unhealthy_after);
                r.well >= 3 * of
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in forget {
            self.recovered.remove(&a);
        }
        (failing, due)
    }

    /// Notes what a round did about failing services: each restarted check counts
    /// an attempt; a replaced node starts its checks afresh.
    pub fn healed(&mut self, heals: &[Heal]) {
        for h in heals {
            match h {
                Heal::Restart { check, .. } => {
                    self.failing.remove(check);
                    let r = self.recovered.entry(check.clone()).or_default();
                    r.attempts += 1;
                    r.well = 0;
                }
                Heal::Replace { node, .. } => {
                    self.failing.retain(|a, _| !a.starts_with(node));
                    self.recovered.retain(|a, _| !a.starts_with(node));
                }
            }
        }
    }

    /// How often rounds check health (a cluster's `health_interval`).
    pub fn health_every(&mut self, every: Duration) {
        self.every = Some(every);
    }

    /// Whether this round checks health: the first does, then one every
    /// `health_every` (10 s until told).
    pub fn health_due(&mut self) -> bool {
        let every = self.every.unwrap_or(Duration::from_secs(10));
        let due = self.checked.is_none_or(|c| c.elapsed() >= every);
        if due {
            self.checked = Some(Instant::now());
        }
        due
    }

    /// Notes the workers idle now (the others are busy again), and returns how long
    /// each has been.
    pub fn idle(&mut self, idle: &[Address]) -> HashMap<Address, Duration> {
        self.idle_since.retain(|a, _| idle.contains(a));
        let now = Instant::now();
        idle.iter()
            .map(|a| {
                let since = *self.idle_since.entry(a.clone()).or_insert(now);
                (a.clone(), now.duration_since(since))
            })
            .collect()
    }

    /// Whether `what` is new for `source` (said once until it changes or clears).
    pub fn demand_news(&mut self, source: &Address, what: Option<&str>) -> bool {
        match what {
            Some(w) => {
                self.demand_said
                    .insert(source.clone(), w.to_string())
                    .as_deref()
                    != Some(w)
            }
            None => {
                self.demand_said.remove(source);
                false
            }
        }
    }

    /// The wait in force, if any.
    pub fn backing_off(&self) -> Option<&Backoff> {
        self.backoff.as_ref().filter(|b| Instant::now() < b.until)
    }

    /// Every wait in force: the whole watched set's, then the pools'.
    pub fn waits(&self) -> Vec<&Backoff> {
        let mut all: Vec<&Backoff> = self.backing_off().into_iter().collect();
        all.extend(self.pools_backing_off());
        all
    }

    /// The pools waiting now.
    pub fn pools_backing_off(&self) -> Vec<&Backoff> {
        let now = Instant::now();
        let mut off: Vec<&Backoff> = self.pools_off.values().filter(|b| now < b.until).collect();
        off.sort_by(|a, b| a.pool.cmp(&b.pool));
        off
    }

    /// A round acted. What failed in a pool (`failed`, each with the pool its
    /// address is in) starts or doubles that pool's wait; what failed outside every
    /// pool (or a round cut short: `failed` empty, `ok` false) the whole set's. A
    /// part that went well ends its wait; the pools the round kept as they are
    /// (`kept`) keep theirs.
    pub fn round_ended(
        &mut self,
        ok: bool,
        base: Duration,
        failed: &[(Option<PoolKey>, String)],
        kept: &[PoolKey],
    ) {
        let whole = failed
            .iter()
            .find(|(pool, _)| pool.is_none())
            .map(|(_, why)| why.clone())
            .or_else(|| (!ok && failed.is_empty()).then(|| "the round was interrupted".into()));
        self.backoff = whole.map(|reason| {
            let failures = self.backoff.as_ref().map_or(0, |b| b.failures) + 1;
            Backoff::after(failures, base, reason, None)
        });
        let failed_pools: HashMap<&PoolKey, &String> = failed
            .iter()
            .filter_map(|(pool, why)| pool.as_ref().map(|p| (p, why)))
            .collect();
        self.pools_off
            .retain(|p, _| kept.contains(p) || failed_pools.contains_key(p));
        for (pool, why) in failed_pools {
            let failures = self.pools_off.get(pool).map_or(0, |b| b.failures) + 1;
            self.pools_off.insert(
                pool.clone(),
                Backoff::after(failures, base, why.clone(), Some(pool.clone())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change};
    use crate::state::{ResourceState, Status};

    fn address(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    fn unhealthy(at: &str) -> Change {
        Change {
            address: address(at),
            type_name: "t".into(),
            provider: "p".into(),
            action: Action::Update,
            reasons: Vec::new(),
            before: None,
            after: None,
            sensitive: Vec::new(),
            dependencies: Vec::new(),
            create_before_destroy: false,
            kept: false,
            unhealthy: true,
        }
    }

    fn plan_of(changes: Vec<Change>) -> Plan {
        let mut plan: Plan = serde_json::from_str(
            r#"{"format_version":1,"tik_version":"0","lineage":"l","serial":0,"config_hash":"",
                "destroy":false,"variables":{},"drift":[],"changes":[],"outputs":[]}"#,
        )
        .unwrap();
        plan.changes = changes;
        let mut control = Control::defaults(&address("cluster.etl"));
        control.unhealthy_after = 2;
        control.recovery_attempts = 2;
        plan.controls = vec![control];
        plan
    }

    #[test]
    fn a_service_is_restarted_after_its_threshold_and_its_node_replaced_after_its_attempts() {
        let node = address("cluster.etl.node.worker[\"default\"][0]");
        let check =
            address("cluster.etl.node.worker[\"default\"][0].runtime.web.service.server.start");
        let mut state = State::new("l".into());
        state.resources.insert(
            node.clone(),
            ResourceState {
                address: node.clone(),
                type_name: "n".into(),
                provider: "p".into(),
                status: Status::Ready,
                attributes: Default::default(),
                sensitive_attributes: Vec::new(),
                dependencies: Vec::new(),
            },
        );
        let failing = plan_of(vec![unhealthy(&check.to_string())]);
        let well = plan_of(Vec::new());
        let mut m = Memory::default();
        // What is due once the check failed twice more in a row (the threshold).
        let twice = |m: &mut Memory| {
            m.observe(&failing, &state);
            let (_, due) = m.observe(&failing, &state);
            m.healed(&due);
            due
        };
        let restart = |attempt| Heal::Restart {
            check: check.clone(),
            attempt,
            of: 2,
        };
        // One failed check is not enough; a pass in between starts again.
        let (f, due) = m.observe(&failing, &state);
        assert_eq!((f[0].rounds, f[0].of, due.len()), (1, 2, 0));
        m.observe(&well, &state);
        assert_eq!(twice(&mut m), [restart(1)]);
        assert_eq!(twice(&mut m), [restart(2)]);
        let replace = Heal::Replace {
            check: check.clone(),
            node: node.clone(),
            attempts: 2,
        };
        assert_eq!(twice(&mut m), [replace]);
        // A new node's service starts afresh.
        assert_eq!(twice(&mut m), [restart(1)]);
        // Well for three times its threshold: its recoveries are forgotten.
        for _ in 0..6 {
            m.observe(&well, &state);
        }
        assert_eq!(twice(&mut m), [restart(1)]);
    }

    #[test]
    fn failed_rounds_back_off_longer_each_time_and_a_good_one_ends_it() {
        let mut m = Memory::default();
        assert!(m.backing_off().is_none());
        let base = Duration::from_secs(30);
        let waits: Vec<u64> = (0..6)
            .map(|_| {
                m.round_ended(false, base, &[(None, "no capacity".into())], &[]);
                m.backing_off().unwrap().wait.as_secs()
            })
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 480]);
        assert!(m.backing_off().unwrap().until_utc.ends_with('Z'));
        m.round_ended(true, base, &[], &[]);
        assert!(m.backing_off().is_none());
        // A node of a pool that could not be made: that pool waits, the rest goes on;
        // a round that kept it as it is leaves its wait, one that made it ends it.
        let gpu: PoolKey = (address("cluster.etl"), "gpu".into());
        let cpu: PoolKey = (address("cluster.etl"), "cpu".into());
        m.round_ended(
            false,
            base,
            &[(Some(gpu.clone()), "no capacity".into())],
            &[],
        );
        assert!(m.backing_off().is_none());
        let off = m.pools_backing_off();
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].pool.as_ref(), Some(&gpu));
        assert_eq!(off[0].wait, base);
        m.round_ended(
            false,
            base,
            &[(Some(gpu.clone()), "no capacity".into())],
            &[cpu],
        );
        assert_eq!(m.pools_backing_off()[0].wait, base * 2);
        m.round_ended(true, base, &[], std::slice::from_ref(&gpu));
        assert_eq!(m.pools_backing_off().len(), 1);
        m.round_ended(true, base, &[], &[]);
        assert!(m.pools_backing_off().is_empty());
        assert_eq!(
            workers_of(&gpu).to_string(),
            "cluster.etl.node.worker[\"gpu\"]"
        );
    }
}
