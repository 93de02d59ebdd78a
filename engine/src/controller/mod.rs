//! The cluster controller's round: plan the watched clusters against what exists, and
//! when something is wrong (a node lost, a pool short of its recorded size) take the
//! lock and apply that plan. It acts only for the configuration last applied in
//! whole, so files edited since and not applied are never applied by it; and it
//! holds the state lock only while it changes something.

use crate::addr::Address;
use crate::apply::{apply, ApplyEvent, ApplyOptions, ApplyReport};
use crate::config::{Config, ObjectKind};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::ops::make_plan;
use crate::plan::{Plan, PlanOptions};
use crate::provider::Providers;
use crate::state::{Backend, JournalEntry, LockInfo, Locked, State, StateStore};
use crate::walk::{InputValue, Inputs};
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

mod demand;
mod memory;
mod settings;
mod status;
pub use demand::{Scale, MORE_PER_ROUND};
pub use memory::{control_of, workers_of, Backoff, Failing, Heal, Memory, PoolKey};
pub use settings::Control;
pub use status::{read as read_status, Registration, Seen, Status, BEAT_EVERY};

/// How a round ended.
#[derive(Debug)]
pub enum Outcome {
    /// Everything watched is as the configuration and the recorded sizes say.
    Idle,
    /// The configuration here is not the one last applied: the round did nothing.
    Paused(String),
    /// Something needed doing, but another run holds the state lock.
    Waiting(LockInfo),
    /// Something needed doing, but a round failed a while ago: rounds read and
    /// wait until the backoff ends.
    BackingOff(Backoff),
    /// The round applied `plan`: what changed is in `report`.
    Acted {
        plan: Box<Plan>,
        report: ApplyReport,
    },
}

/// What a controller keeps.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The clusters, by address.
    pub clusters: Vec<Address>,
    /// Whether it keeps the whole configuration: with no cluster named, what depends
    /// on the clusters (a file listing their addresses) follows a replaced node;
    /// with some named, only they and what they need are planned.
    pub everything: bool,
}

impl Watch {
    fn targets(&self) -> Vec<Address> {
        if self.everything {
            Vec::new()
        } else {
            self.clusters.clone()
        }
    }
}

/// The clusters a controller watches: those named (a root cluster by its name, one
/// in a module by its address), or every cluster of the configuration. An unknown
/// name gets the close one.
pub fn watched(config: &Config, named: &[String]) -> Result<Watch, Diagnostics> {
    let mut all: Vec<Address> = Vec::new();
    let mut prefix: Vec<Address> = vec![Address::new(); config.modules.len()];
    for (mi, m) in config.modules.iter().enumerate() {
        for c in m.calls.values() {
            prefix[c.child] = prefix[mi].clone().name("module").name(c.name.clone());
        }
    }
    for (mi, m) in config.modules.iter().enumerate() {
        for o in m.objects.iter().filter(|o| o.kind == ObjectKind::Cluster) {
            all.push(prefix[mi].clone().name("cluster").name(o.name.clone()));
        }
    }
    if named.is_empty() {
        if all.is_empty() {
            return Err(
                Diagnostic::new("this configuration has no cluster to watch")
                    .help("the controller keeps clusters: add a cluster block and apply it")
                    .into(),
            );
        }
        return Ok(Watch {
            clusters: all,
            everything: true,
        });
    }
    let labels: Vec<String> = all.iter().map(crate::scale::cluster_label).collect();
    let mut picked = Vec::new();
    for name in named {
        let found = all
            .iter()
            .zip(&labels)
            .find(|(a, l)| *l == name || a.to_string() == *name);
        match found {
            Some((a, _)) if !picked.contains(a) => picked.push(a.clone()),
            Some(_) => {}
            None => {
                return Err(
                    Diagnostic::new(format!("no cluster \"{name}\" in this configuration"))
                        .help(
                            did_you_mean(name, labels.iter().map(String::as_str))
                                .unwrap_or_else(|| format!("its clusters: {}", labels.join(", "))),
                        )
                        .into(),
                )
            }
        }
    }
    Ok(Watch {
        clusters: picked,
        everything: false,
    })
}

/// The inputs of the controller's plans: the variables the last whole apply had, as
/// state records them. Or why the controller may not act for `config` against
/// `state`: nothing applied yet, or files that differ from those applied.
pub fn applied_inputs(config: &Config, state: &State) -> Result<Inputs, String> {
    let Some(applied) = &state.applied else {
        return Err(if state.resources.is_empty() {
            "nothing is applied yet: run tik apply first".into()
        } else {
            "state records no whole apply by this version of tik: run tik apply once".into()
        });
    };
    if applied.config != config.hash {
        return Err(format!(
            "the configuration files differ from those applied at {}: the controller applies no edit; run tik apply",
            applied.at
        ));
    }
    Ok(Inputs {
        values: applied
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), InputValue::Value(v.clone())))
            .collect(),
        ..Inputs::default()
    })
}

/// Whether `plan` evaluated the variables as the last whole apply did (it took
/// them from state, so only a state recorded without them differs).
fn same_variables(state: &State, plan: &Plan) -> Option<String> {
    let applied = state.applied.as_ref()?;
    (applied.inputs != plan.inputs_hash()).then(|| {
        format!(
            "the variables evaluate otherwise than those applied at {}: run tik apply once",
            applied.at
        )
    })
}

/// What one round needs: the configuration and providers, where state is, the
/// variables and what is watched.
pub struct Round<'a> {
    pub config: &'a Config,
    pub providers: &'a Providers,
    pub backend: &'a dyn Backend,
    pub watch: &'a Watch,
    pub parallelism: usize,
}

/// What a round tells as it goes, for the log.
#[derive(Debug)]
pub enum Event<'a> {
    /// A service failed its health check this round.
    Failing(&'a Failing),
    /// What the round does about a service that kept failing.
    Healing(&'a Heal),
    /// The plan the round applies now.
    Acting(&'a Plan),
    /// A change of that apply.
    Change(ApplyEvent),
    /// A runtime's scaling commands could not tell how busy its cluster is (said
    /// once until what they say changes).
    DemandUnknown(&'a crate::provider::Demand),
    /// A size the round records for an on-demand pool.
    Scaling(&'a Scale),
    /// A size the round decided and dropped: the pool's recorded size changed since
    /// it read it (a person's `tik scale`), and that one stands.
    Superseded { scale: &'a Scale, now: Option<u64> },
}

/// What a round acts on: the whole plan of what it watches (its services' health
/// checked or not, the pools that back off kept as they are), or heals.
enum Act<'h> {
    Repair {
        health: bool,
        exclude: &'h [Address],
    },
    Heal(&'h [Heal]),
    /// Records these sizes, then applies what they make.
    Scale {
        scales: &'h [Scale],
        exclude: &'h [Address],
    },
}

impl Round<'_> {
    /// The plan of `act`, with the variables state recorded; `Err(why)` where the
    /// controller may not act (paused).
    async fn plan(
        &self,
        state: &State,
        act: &Act<'_>,
    ) -> Result<Result<Plan, String>, Diagnostics> {
        let inputs = match applied_inputs(self.config, state) {
            Ok(inputs) => inputs,
            Err(why) => return Ok(Err(why)),
        };
        let options = match act {
            Act::Repair { health, exclude } => PlanOptions {
                targets: self.watch.targets(),
                skip_health: !health,
                exclude: exclude.to_vec(),
                ..PlanOptions::default()
            },
            Act::Scale { exclude, .. } => PlanOptions {
                targets: self.watch.targets(),
                skip_health: true,
                exclude: exclude.to_vec(),
                ..PlanOptions::default()
            },
            Act::Heal(heals) => PlanOptions {
                targets: heals.iter().map(|h| h.target().0.clone()).collect(),
                replace: heals.iter().filter_map(|h| h.target().1.cloned()).collect(),
                ..PlanOptions::default()
            },
        };
        let plan = make_plan(self.config, self.providers, state, inputs, &options, true).await?;
        Ok(match same_variables(state, &plan) {
            Some(why) => Err(why),
            None => Ok(plan),
        })
    }

    /// The least of a setting over the watched clusters' `controller` blocks.
    fn least(&self, plan: &Plan, setting: impl Fn(&Control) -> u64) -> Option<u64> {
        plan.controls
            .iter()
            .filter(|c| self.watch.clusters.contains(&c.cluster))
            .map(setting)
            .min()
    }

    /// One round: read, and act where the watched clusters are not as they should be.
    /// A service failing its health check is restarted only after its cluster's
    /// `unhealthy_after` failed checks in a row (a check every `health_interval`),
    /// and its node replaced after
    /// `recovery_attempts` restarts; after a round whose changes failed, rounds only
    /// read until the backoff ends. `cancel` interrupts an apply in progress as
    /// Ctrl-C does `tik apply`'s.
    pub async fn run<F: Future<Output = ()>>(
        &self,
        memory: &mut Memory,
        cancel: F,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Outcome, Diagnostics> {
        let store = StateStore::load(self.backend)?;
        // Health is checked every `health_interval` (the least of the watched
        // clusters', as the last plan said); the rounds between read the nodes alone.
        let health = memory.health_due();
        // A pool a node of which could not be made waits, kept as it is; the rest
        // goes on.
        let held: Vec<Backoff> = memory.pools_backing_off().into_iter().cloned().collect();
        let held_pools: Vec<PoolKey> = held.iter().filter_map(|b| b.pool.clone()).collect();
        let exclude: Vec<Address> = held_pools.iter().map(workers_of).collect();
        let repair = Act::Repair {
            health,
            exclude: &exclude,
        };
        let plan = match self.plan(&store.state, &repair).await? {
            Ok(plan) => plan,
            Err(why) => return Ok(Outcome::Paused(why)),
        };
        if let Some(every) = self.least(&plan, |c| c.health_interval) {
            memory.health_every(Duration::from_secs(every));
        }
        let (failing, due) = if health {
            memory.observe(&plan, &store.state)
        } else {
            (Vec::new(), Vec::new())
        };
        for f in &failing {
            on(Event::Failing(f));
        }
        let repairs = needs_repair(&plan, &exclude);
        // A node of a pool that waits is not replaced either.
        let due: Vec<Heal> = due
            .into_iter()
            .filter(|h| {
                !matches!(h, Heal::Replace { node, .. } if exclude.iter().any(|e| node.within(e)))
            })
            .collect();
        // With nothing to repair or heal, a round that checks health asks the
        // on-demand pools' runtimes how busy they are.
        let scales: Vec<Scale> = if health && !repairs && due.is_empty() {
            self.on_demand(memory, &plan, &store.state, on)
                .await?
                .into_iter()
                .filter(|s| !held_pools.contains(&(s.cluster.clone(), s.pool.clone())))
                .collect()
        } else {
            Vec::new()
        };
        if !repairs && due.is_empty() && scales.is_empty() {
            // What waits is said as long as the pool is not as it should be.
            return Ok(
                match held.iter().find(|b| pending(b, &plan, &store.state)) {
                    Some(b) => Outcome::BackingOff(b.clone()),
                    None => Outcome::Idle,
                },
            );
        }
        if let Some(b) = memory.backing_off() {
            return Ok(Outcome::BackingOff(b.clone()));
        }
        drop(store);
        let info = LockInfo::new("controller");
        match self.backend.lock(&info)? {
            Locked::Held(holder) => return Ok(Outcome::Waiting(holder)),
            Locked::Taken { .. } => {}
        }
        let healing = !repairs && !due.is_empty();
        let act = if repairs {
            repair
        } else if healing {
            for h in &due {
                on(Event::Healing(h));
            }
            Act::Heal(&due)
        } else {
            Act::Scale {
                scales: &scales,
                exclude: &exclude,
            }
        };
        let result = self.locked(&act, cancel, on).await;
        let unlocked = self.backend.unlock(&info.id);
        let outcome = result?;
        unlocked?;
        let Outcome::Acted { plan, report } = &outcome else {
            return Ok(outcome);
        };
        if healing {
            // A recovery that failed (a restart whose service never became well) is
            // an attempt all the same: after enough of them the node goes.
            memory.healed(&due);
        } else {
            if report.ok() {
                // A repair restarts what fails its checks too.
                let restarted: Vec<Heal> = plan
                    .changes
                    .iter()
                    .filter(|c| c.unhealthy)
                    .map(|c| Heal::Restart {
                        check: c.address.clone(),
                        attempt: 0,
                        of: 0,
                    })
                    .collect();
                memory.healed(&restarted);
            }
            // A repair that failed (a node that cannot be created) waits before the
            // next try: the pool of the node alone, or the whole watched set where
            // what failed is in no pool.
            let base = self.least(plan, |c| c.backoff).unwrap_or(30);
            let failed: Vec<(Option<PoolKey>, String)> = report
                .failures
                .iter()
                .map(|(what, why)| {
                    let pool = Address::parse(what).ok().and_then(|a| {
                        plan.pools
                            .iter()
                            .map(|p| (p.cluster.clone(), p.pool.clone()))
                            .find(|p| a.within(&workers_of(p)))
                    });
                    (pool, format!("{what}: {why}"))
                })
                .collect();
            memory.round_ended(report.ok(), Duration::from_secs(base), &failed, &held_pools);
        }
        Ok(outcome)
    }

    /// The round's part under the lock: state and the world read again, for what
    /// changed while the lock was free (an apply of new files pauses it).
    async fn locked<F: Future<Output = ()>>(
        &self,
        act: &Act<'_>,
        cancel: F,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Outcome, Diagnostics> {
        let mut store = StateStore::load(self.backend)?;
        if let Err(why) = applied_inputs(self.config, &store.state) {
            // An apply of other files came in while the lock was free.
            return Ok(Outcome::Paused(why));
        }
        if let Act::Scale { scales, .. } = act {
            // Recorded as `tik scale` records them, before the plan that makes them;
            // but a size recorded since the round read state is a person's, and
            // stands.
            for s in scales.iter() {
                let now = store
                    .state
                    .sizes
                    .get(&s.cluster)
                    .and_then(|pools| pools.get(&s.pool))
                    .copied();
                if now != s.seen {
                    on(Event::Superseded { scale: s, now });
                    continue;
                }
                on(Event::Scaling(s));
                store.record(JournalEntry::Size {
                    cluster: s.cluster.clone(),
                    pool: s.pool.clone(),
                    size: Some(s.to),
                })?;
            }
            store.save()?;
        }
        let plan = match self.plan(&store.state, act).await? {
            Ok(plan) => plan,
            Err(why) => return Ok(Outcome::Paused(why)),
        };
        if !plan.has_changes() && plan.drift.is_empty() {
            return Ok(Outcome::Idle);
        }
        on(Event::Acting(&plan));
        let options = ApplyOptions {
            parallelism: self.parallelism.max(1),
            ..ApplyOptions::default()
        };
        let report = apply(
            self.config,
            self.providers,
            &mut store,
            &plan,
            &options,
            cancel,
            &mut |e| on(Event::Change(e)),
        )
        .await?;
        Ok(Outcome::Acted {
            plan: Box::new(plan),
            report,
        })
    }
}

/// Whether the plan has anything to do besides restarting services that failed
/// their health check (which waits for their threshold): a lost node, a pool off
/// its size, drift (but within a pool that waits, `exclude`).
fn needs_repair(plan: &Plan, exclude: &[Address]) -> bool {
    let unhealthy: HashSet<&Address> = plan
        .changes
        .iter()
        .filter(|c| c.unhealthy)
        .map(|c| &c.address)
        .collect();
    plan.changes.iter().any(|c| !c.unhealthy)
        || plan.drift.iter().any(|d| {
            !unhealthy.contains(&d.address) && !exclude.iter().any(|e| d.address.within(e))
        })
        || !plan.moves.is_empty()
}

/// Whether a pool that waits is not as it should be: a worker of it lost, or
/// fewer or more workers than its size.
fn pending(b: &Backoff, plan: &Plan, state: &State) -> bool {
    let Some(pool) = &b.pool else {
        return false;
    };
    let workers = workers_of(pool);
    if plan.drift.iter().any(|d| d.address.within(&workers)) {
        return true;
    }
    let have = state
        .resources
        .keys()
        .filter(|a| a.0.len() == workers.0.len() + 1 && a.starts_with(&workers))
        .count() as u64;
    plan.pools
        .iter()
        .find(|p| p.cluster == pool.0 && p.pool == pool.1)
        .is_some_and(|p| p.size != have)
}
