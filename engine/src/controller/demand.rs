//! Scaling on demand: a pool with `idle_timeout` grows when its runtimes' work
//! wants more workers (their `scaling` commands, through `Provider::demand`), by at
//! most `MORE_PER_ROUND` a round up to `max`, and shrinks, down to `min`, by the
//! newest workers once each has had nothing to do for `idle_timeout`.

use super::{Event, Memory, Round};
use crate::addr::Address;
use crate::diag::Diagnostics;
use crate::ops::make_plan;
use crate::plan::{Action, Plan, PlanOptions};
use crate::provider::Demand;
use crate::state::{ResourceState, State};
use crate::walk::Pool;
use std::collections::HashMap;
use std::time::Duration;

/// Workers a round adds to a pool at most.
pub const MORE_PER_ROUND: u64 = 4;

/// A size the controller records for a pool, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub cluster: Address,
    pub pool: String,
    pub from: u64,
    pub to: u64,
    pub why: String,
    /// The size state recorded for the pool when the round decided: one recorded
    /// since (a person's `tik scale`) stands, and this decision is dropped.
    pub seen: Option<u64>,
}

impl Round<'_> {
    /// The sizes the watched on-demand pools should have now, if other than theirs.
    pub(super) async fn on_demand(
        &self,
        memory: &mut Memory,
        plan: &Plan,
        state: &State,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<Scale>, Diagnostics> {
        let pools: Vec<&Pool> = plan
            .pools
            .iter()
            .filter(|p| p.idle_timeout.is_some() && self.watch.clusters.contains(&p.cluster))
            .collect();
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        let resources: Vec<ResourceState> = state
            .resources
            .values()
            .filter(|r| pools.iter().any(|p| r.address.starts_with(&p.cluster)))
            .cloned()
            .collect();
        let mut demands: Vec<Demand> = Vec::new();
        for p in self.providers.all() {
            demands.extend(p.demand(&resources).await);
        }
        for d in &demands {
            let wrong = d
                .more
                .as_ref()
                .err()
                .or_else(|| d.idle.as_ref().and_then(|i| i.as_ref().err()));
            if memory.demand_news(&d.source, wrong.map(String::as_str)) {
                on(Event::DemandUnknown(d));
            }
        }
        let idle: Vec<Address> = idle_workers(&demands);
        let idle_for = memory.idle(&idle);
        let mut scales = Vec::new();
        for pool in pools {
            let mine: Vec<&Demand> = demands
                .iter()
                .filter(|d| d.source.starts_with(&pool.cluster))
                .collect();
            // No runtime tells, or one could not: no decision from it.
            if mine.is_empty() || mine.iter().any(|d| d.more.is_err()) {
                continue;
            }
            let more = mine
                .iter()
                .filter_map(|d| d.more.clone().ok())
                .max()
                .unwrap_or(0);
            if more > 0 {
                let to = (pool.size + more.min(MORE_PER_ROUND)).min(pool.max);
                if to > pool.size {
                    let names = runtimes_of(&mine);
                    scales.push(scale(
                        pool,
                        to,
                        format!("{names} want {more} more worker{}", plural(more)),
                    ));
                }
                continue;
            }
            let patience = Duration::from_secs(pool.idle_timeout.unwrap_or(u64::MAX));
            let long_idle: Vec<&Address> = idle_for
                .iter()
                .filter(|(_, d)| **d >= patience)
                .map(|(a, _)| a)
                .collect();
            let k = self.removable(pool, &long_idle, state).await?;
            if k > 0 {
                scales.push(scale(
                    pool,
                    pool.size - k,
                    format!(
                        "{k} worker{} had nothing to do for {}s",
                        plural(k),
                        patience.as_secs()
                    ),
                ));
            }
        }
        Ok(scales)
    }

    /// How many of the pool's newest workers may go: the most `k` for which what a
    /// size `k` smaller would remove is all within workers idle long enough.
    async fn removable(
        &self,
        pool: &Pool,
        long_idle: &[&Address],
        state: &State,
    ) -> Result<u64, Diagnostics> {
        if long_idle.is_empty() {
            return Ok(0);
        }
        let Ok(inputs) = super::applied_inputs(self.config, state) else {
            return Ok(0);
        };
        let mut k = 0;
        while pool.size - k > pool.min {
            let mut smaller = state.clone();
            smaller
                .sizes
                .entry(pool.cluster.clone())
                .or_default()
                .insert(pool.pool.clone(), pool.size - k - 1);
            let options = PlanOptions {
                targets: vec![pool.cluster.clone()],
                ..PlanOptions::default()
            };
            let plan = make_plan(
                self.config,
                self.providers,
                &smaller,
                inputs.clone(),
                &options,
                false,
            )
            .await?;
            let gone: Vec<&Address> = plan
                .changes
                .iter()
                .filter(|c| c.action == Action::Delete)
                .map(|c| &c.address)
                .collect();
            if gone.is_empty() || !gone.iter().all(|a| long_idle.iter().any(|n| a.within(n))) {
                break;
            }
            k += 1;
        }
        Ok(k)
    }
}

fn scale(pool: &Pool, to: u64, why: String) -> Scale {
    Scale {
        cluster: pool.cluster.clone(),
        pool: pool.pool.clone(),
        from: pool.size,
        to,
        why,
        seen: pool.recorded,
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The runtimes of these answers, by the keys of their records (`scaling["spark"]`).
fn runtimes_of(demands: &[&Demand]) -> String {
    let names: Vec<String> = demands
        .iter()
        .filter(|d| d.more.as_ref().is_ok_and(|m| *m > 0))
        .map(|d| match d.source.0.last() {
            Some(crate::addr::Segment::Key(k)) => k.clone(),
            _ => d.source.to_string(),
        })
        .collect();
    names.join(" and ")
}

/// The workers every runtime that can tell says are idle (none where one could not
/// tell), per cluster.
fn idle_workers(demands: &[Demand]) -> Vec<Address> {
    let mut by_cluster: HashMap<Address, Option<Vec<Address>>> = HashMap::new();
    for d in demands {
        let Some(idle) = &d.idle else { continue };
        let cluster = Demand::cluster_of(&d.source);
        let entry = by_cluster.entry(cluster).or_insert_with(|| match idle {
            Ok(list) => Some(list.clone()),
            Err(_) => None,
        });
        match (entry.as_mut(), idle) {
            (Some(all), Ok(list)) => all.retain(|a| list.contains(a)),
            (Some(_), Err(_)) => *entry = None,
            (None, _) => {}
        }
    }
    by_cluster.into_values().flatten().flatten().collect()
}
