//! Apply: walk the graph, evaluate each object once what it references exists, and make
//! its changes through providers, up to `parallelism` at once. State is recorded after
//! every change; a create is recorded as pending before it starts.

use crate::addr::{Address, Segment};
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::order::Kahn;
use crate::plan::{diff, Action, Change, Plan, Summary};
use crate::provider::{
    ChangeRequest, Operation, Progress, Provider, ProviderError, Providers, SiblingRef,
};
use crate::state::{
    Applied, JournalEntry, OutputState, ResourceState, Sizes, State, StateError, StateStore, Status,
};
use crate::value::{Map, Value};
use crate::walk::{InputValue, Inputs, ObjectEval, Walk};
use indexmap::IndexMap;
use petgraph::graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many changes may be ready to start before apply evaluates more of the
/// configuration.
const EVALUATE_AHEAD: usize = 2048;
/// How many state-only changes (not counted against `parallelism`) one round starts.
const UNLIMITED_PER_ROUND: usize = 1024;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// How often a change still in flight is reported (`ApplyEvent::Progress`).
    pub progress_every: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            progress_every: Duration::from_secs(10),
        }
    }
}

/// What apply reports as it goes; the CLI renders these.
#[derive(Debug, Clone)]
pub enum ApplyEvent {
    Started {
        address: Address,
        action: Action,
        /// A delete that only forgets the object (`Change::kept`).
        kept: bool,
    },
    Finished {
        address: Address,
        action: Action,
        kept: bool,
        elapsed: Duration,
        id: Option<String>,
    },
    Failed {
        address: Address,
        action: Action,
        message: String,
    },
    /// A change still running, every `progress_every`: how long it has run, and what
    /// its provider says it waits for.
    Progress {
        address: Address,
        action: Action,
        elapsed: Duration,
        note: Option<String>,
    },
    Interrupted {
        in_flight: usize,
    },
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Summary,
    pub failures: Vec<(String, String)>,
    /// Objects not evaluated or changed because something they need failed.
    pub skipped: Vec<String>,
    pub interrupted: bool,
    /// Changes that never started because of the interrupt.
    pub not_started: usize,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.interrupted
    }
}

struct Unit {
    /// The change and what it carries, until it is done: an apply keeps one small
    /// record per change, and the attributes only of those still to run.
    work: Option<Box<Work>>,
    /// Index into `objects`, for creates and updates of configuration objects.
    object: Option<usize>,
    /// The units that wait for this one (its waits are counted in `Driver::runnable`).
    dependents: Vec<usize>,
    done: bool,
    /// No change: it passes once what it waits for is done (an object's deletes
    /// wait for what depends on the object, through one barrier).
    barrier: bool,
}

struct Work {
    change: Change,
    planned: Map,
    /// Attributes to take from siblings' results when the change starts.
    refs: Vec<SiblingRef>,
}

impl Unit {
    fn new(change: Change, object: Option<usize>, planned: Map, refs: Vec<SiblingRef>) -> Unit {
        Unit {
            work: Some(Box::new(Work {
                change,
                planned,
                refs,
            })),
            object,
            dependents: Vec::new(),
            done: false,
            barrier: false,
        }
    }
}

struct ObjectRun {
    eval: ObjectEval,
    pending: usize,
    failed: bool,
    values: HashMap<Address, Map>,
}

type TaskResult = (usize, Result<Map, ProviderError>, Duration);
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>>;

pub async fn apply<F: Future<Output = ()>>(
    config: &Config,
    providers: &Providers,
    store: &mut StateStore<'_>,
    plan: &Plan,
    options: &ApplyOptions,
    cancel: F,
    on_event: &mut dyn FnMut(ApplyEvent),
) -> Result<ApplyReport, Diagnostics> {
    let state_err = Diagnostics::from;
    check_fresh(config, store, plan)?;
    // What one round records (the results that came in together, the pending records
    // of the changes it starts; first the plan's drift and moves) is stored in one
    // journal write, before those changes start.
    store.hold();
    record_drift_and_moves(store, plan).map_err(state_err)?;
    let inputs = Inputs {
        values: plan
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), InputValue::Value(v.clone())))
            .collect(),
        missing_unknown: false,
        sizes: planned_sizes(plan),
    };
    let mut walk = Walk::new(config, providers, inputs)?;
    let graph_order = walk.graph.topo_order(config)?;
    let planned: HashMap<&Address, &Change> =
        plan.changes.iter().map(|c| (&c.address, c)).collect();
    let mut driver = Driver {
        units: Vec::new(),
        objects: Vec::new(),
        runnable: Kahn::fifo(),
        report: ApplyReport::default(),
        diags: Diagnostics::default(),
        blocked: vec![false; graph_order.len()],
        in_flight: Default::default(),
        // A destroy evaluates no configuration node.
        ready: if plan.destroy {
            Kahn::fifo()
        } else {
            Kahn::fifo().of_graph(&walk.graph.graph)
        },
        included: crate::plan::included_nodes(&walk, config, &graph_order, &plan.targets),
        exclude: plan.exclude.clone(),
    };
    driver.add_deletes(plan);

    let mut tasks: JoinSet<TaskResult> = JoinSet::new();
    let parallelism = options.parallelism.max(1);
    let cancel = cancel;
    tokio::pin!(cancel);
    let every = options.progress_every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut starting: Vec<Task> = Vec::new();
    // What a round reports (started, finished, failed) is told once the round's
    // records are stored: what tik says is done is recorded as done.
    let mut told: Vec<ApplyEvent> = Vec::new();
    // The changes in flight that count against `parallelism`.
    let mut busy = 0;
    let mut inline: Vec<Task> = Vec::new();
    loop {
        let mut round = Round {
            busy: &mut busy,
            parallelism,
            tasks: &mut starting,
            inline: &mut inline,
            told: &mut told,
        };
        driver
            .run_round(&mut walk, store, &planned, providers, &mut round)
            .map_err(state_err)?;
        store.flush().map_err(state_err)?;
        for e in told.drain(..) {
            on_event(e);
        }
        for task in starting.drain(..) {
            tasks.spawn(task);
        }
        store.hold();
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(mut joined) = joined else { continue };
                loop {
                    let (u, result, elapsed) = match joined {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = store.flush();
                            return Err(Diagnostic::new(format!("internal: a provider task failed: {e}")).into());
                        }
                    };
                    busy -= usize::from(driver.counted(u, providers));
                    driver
                        .finish(u, result, elapsed, &mut walk, store, &mut |e| told.push(e))
                        .map_err(state_err)?;
                    match tasks.try_join_next() {
                        Some(next) => joined = next,
                        None => break,
                    }
                }
            }
            _ = ticks.tick() => {
                for (&u, (started, progress)) in &driver.in_flight {
                    let elapsed = started.elapsed();
                    if let (true, Some(w)) = (elapsed >= every, &driver.units[u].work) {
                        let change = &w.change;
                        on_event(ApplyEvent::Progress {
                            address: change.address.clone(),
                            action: change.action,
                            elapsed,
                            note: progress.current(),
                        });
                    }
                }
            }
            _ = &mut cancel, if !driver.report.interrupted => {
                driver.report.interrupted = true;
                on_event(ApplyEvent::Interrupted { in_flight: tasks.len() });
            }
        }
    }
    driver.report.not_started = driver
        .units
        .iter()
        .filter(|u| !u.done && !u.barrier)
        .count();
    let skipped = skipped_objects(config, plan, &driver.blocked, &walk);
    driver.report.skipped.extend(skipped);
    if !driver.report.interrupted {
        let outputs = merged_outputs(config, plan, &store.state.outputs, &walk.root_outputs);
        if outputs != store.state.outputs {
            store
                .record(JournalEntry::Outputs { outputs })
                .map_err(state_err)?;
        }
        let whole = plan.targets.is_empty()
            && plan.exclude.is_empty()
            && driver.report.failures.is_empty()
            && driver.diags.is_empty();
        if whole {
            let applied = (!plan.destroy).then(|| Applied::of(plan));
            let same = |a: &Applied, b: &Applied| {
                a.config == b.config && a.inputs == b.inputs && a.variables == b.variables
            };
            let changed = match (&applied, &store.state.applied) {
                (Some(a), Some(b)) => !same(a, b),
                (None, None) => false,
                _ => true,
            };
            if changed {
                store
                    .record(JournalEntry::Applied { applied })
                    .map_err(state_err)?;
            }
        }
    }
    store.save().map_err(state_err)?;
    if !driver.diags.is_empty() {
        for d in &driver.diags.0 {
            driver
                .report
                .failures
                .push(("configuration".into(), d.message.clone()));
        }
        return Err(driver.diags);
    }
    Ok(driver.report)
}

/// A state-only change's result, when its provider has it at once (as it should:
/// nothing outside state is waited for); else the change, to run as any other.
fn run_inline(mut task: Task) -> Result<TaskResult, Task> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match task.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => Ok(r),
        std::task::Poll::Pending => Err(task),
    }
}

/// A plan applies only to the state and configuration it was made from; a new
/// state takes the plan's lineage.
fn check_fresh(
    config: &Config,
    store: &mut StateStore<'_>,
    plan: &Plan,
) -> Result<(), Diagnostics> {
    if store.is_new() && plan.serial == 0 {
        store.state.lineage = plan.lineage.clone();
    }
    if store.state.lineage != plan.lineage || store.state.serial.get() != plan.serial {
        return Err(Diagnostic::new(format!(
            "the saved plan is stale: it was made against state serial {} (lineage {}), but the state is now at serial {} (lineage {})",
            plan.serial,
            plan.lineage,
            store.state.serial.get(),
            store.state.lineage
        ))
        .help("make a new plan with tik plan --out FILE and apply that")
        .into());
    }
    if plan.config_hash != config.hash {
        return Err(Diagnostic::new(
            "the saved plan is stale: the configuration files changed since it was made",
        )
        .help("make a new plan with tik plan --out FILE and apply that")
        .into());
    }
    Ok(())
}

/// The plan's drift and moves, recorded before any change: the first round's records.
fn record_drift_and_moves(store: &mut StateStore<'_>, plan: &Plan) -> Result<(), StateError> {
    for d in &plan.drift {
        store.record(d.entry())?;
    }
    for m in &plan.moves {
        for e in store.state.moves(&m.from, &m.to)? {
            store.record(e)?;
        }
    }
    for e in size_records(&store.state, plan) {
        store.record(e)?;
    }
    Ok(())
}

/// The sizes the plan expanded its clusters with, where state records one.
fn planned_sizes(plan: &Plan) -> Sizes {
    let mut sizes = Sizes::new();
    for p in plan.pools.iter().filter(|p| p.recorded.is_some()) {
        sizes
            .entry(p.cluster.clone())
            .or_default()
            .insert(p.pool.clone(), p.size);
    }
    sizes
}

/// What apply changes in the recorded sizes: one that the pool's bounds moved is
/// recorded within them (a later change of bounds starts from there); one of a pool
/// or cluster the configuration no longer has is forgotten, unless the plan is
/// `--target`ed and so does not see every pool.
fn size_records(state: &State, plan: &Plan) -> Vec<JournalEntry> {
    let size = |cluster: &Address, pool: &str, size| JournalEntry::Size {
        cluster: cluster.clone(),
        pool: pool.to_string(),
        size,
    };
    let mut records: Vec<JournalEntry> = plan
        .pools
        .iter()
        .filter(|p| p.recorded.is_some_and(|r| r != p.size))
        .map(|p| size(&p.cluster, &p.pool, Some(p.size)))
        .collect();
    if plan.targets.is_empty() {
        let planned: HashSet<(&Address, &str)> = plan
            .pools
            .iter()
            .map(|p| (&p.cluster, p.pool.as_str()))
            .collect();
        for (cluster, pools) in &state.sizes {
            for pool in pools.keys() {
                if !planned.contains(&(cluster, pool.as_str())) {
                    records.push(size(cluster, pool, None));
                }
            }
        }
    }
    records
}

/// The objects a failure kept from running (`blocked`), by address.
fn skipped_objects(config: &Config, plan: &Plan, blocked: &[bool], walk: &Walk<'_>) -> Vec<String> {
    // An object behind a failure is skipped only if the plan had something for it to
    // do: one with nothing planned would have done nothing, whatever failed before it.
    // By the blocks' addresses as the configuration names them: `module.team.cluster.c`
    // for a change in `module.team["ml"]`.
    let unkeyed: Vec<Address> = plan
        .changes
        .iter()
        .map(|c| c.address.unkeyed_modules())
        .collect();
    let changed: HashSet<&[Segment]> = unkeyed
        .iter()
        .flat_map(|a| (1..=a.0.len()).map(|n| &a.0[..n]))
        .collect();
    let mut skipped = Vec::new();
    for (i, blocked) in blocked.iter().enumerate() {
        if *blocked {
            if let Some(a) = walk.graph.object_address(config, NodeIndex::new(i)) {
                if changed.contains(a.0.as_slice()) {
                    skipped.push(a.to_string());
                }
            }
        }
    }
    skipped
}

/// Outputs evaluated now replace the recorded ones; ones not reached keep their old value.
fn merged_outputs(
    config: &Config,
    plan: &Plan,
    old: &IndexMap<String, OutputState>,
    new: &IndexMap<String, OutputState>,
) -> IndexMap<String, OutputState> {
    if plan.destroy {
        return IndexMap::new();
    }
    let mut out = IndexMap::new();
    for name in config.modules[0].outputs.keys() {
        if let Some(o) = new.get(name).or_else(|| old.get(name)) {
            out.insert(name.clone(), o.clone());
        }
    }
    out
}

struct Driver {
    units: Vec<Unit>,
    objects: Vec<ObjectRun>,
    /// The units in dependency order: a unit is runnable once what it waits for is done.
    runnable: Kahn,
    report: ApplyReport,
    diags: Diagnostics,
    blocked: Vec<bool>,
    /// The configuration's nodes in dependency order: a node is evaluated once the
    /// nodes it refers to are.
    ready: Kahn,
    /// With targets: the nodes the plan covered.
    included: Option<crate::plan::Included>,
    /// What the plan kept as it is (`Plan::exclude`).
    exclude: Vec<Address>,
    /// Changes running now: since when, and what their provider notes.
    in_flight: std::collections::BTreeMap<usize, (Instant, Progress)>,
}

/// What one round of starts shares with the loop around it.
struct Round<'r> {
    /// The changes in flight that count against `parallelism`.
    busy: &'r mut usize,
    parallelism: usize,
    tasks: &'r mut Vec<Task>,
    /// The state-only changes started: run within the round (see `run_inline`).
    inline: &'r mut Vec<Task>,
    told: &'r mut Vec<ApplyEvent>,
}

impl Driver {
    /// Evaluates the configuration nodes that are ready, but only so far ahead of
    /// what runs: what waits to start holds its planned attributes, so memory
    /// follows what is in flight, not the width of the graph.
    fn evaluate_ahead(
        &mut self,
        walk: &mut Walk<'_>,
        store: &StateStore<'_>,
        planned: &HashMap<&Address, &Change>,
        providers: &Providers,
    ) {
        while !self.report.interrupted && self.runnable.ready_len() < EVALUATE_AHEAD {
            let Some(n) = self.ready.pop().map(NodeIndex::new) else {
                break;
            };
            if self.blocked[n.index()] {
                continue;
            }
            self.eval(walk, store, n, planned, providers);
        }
    }

    /// Whether a change counts against `parallelism`: all do but those that live in
    /// state alone.
    fn counted(&self, u: usize, providers: &Providers) -> bool {
        self.units[u].work.as_ref().is_some_and(|w| {
            !providers
                .get(&w.change.provider)
                .is_some_and(|p| p.in_state_only(&w.change.type_name))
        })
    }

    /// One round: evaluates what is ready and starts what may start. State-only
    /// changes run as they become ready, inside the round: nothing of them exists
    /// outside state, so a crash before the round's journal write loses nothing, and
    /// a chain of them costs one write per round (up to `UNLIMITED_PER_ROUND`), not
    /// one each.
    fn run_round(
        &mut self,
        walk: &mut Walk<'_>,
        store: &mut StateStore<'_>,
        planned: &HashMap<&Address, &Change>,
        providers: &Providers,
        round: &mut Round<'_>,
    ) -> Result<(), StateError> {
        let mut ran = 0;
        loop {
            self.evaluate_ahead(walk, store, planned, providers);
            self.start_round(store, providers, round)?;
            if round.inline.is_empty() || ran >= UNLIMITED_PER_ROUND {
                break;
            }
            for task in std::mem::take(round.inline) {
                match run_inline(task) {
                    Ok((u, result, elapsed)) => {
                        ran += 1;
                        let told = &mut *round.told;
                        self.finish(u, result, elapsed, walk, store, &mut |e| told.push(e))?;
                    }
                    Err(waiting) => round.tasks.push(waiting),
                }
            }
        }
        round.tasks.append(round.inline);
        Ok(())
    }

    /// Starts what may start now: up to `parallelism` counted changes in flight,
    /// and state-only ones in rounds of a bounded size (each round is one journal
    /// write); barriers whose waits are over pass.
    fn start_round(
        &mut self,
        store: &mut StateStore<'_>,
        providers: &Providers,
        round: &mut Round<'_>,
    ) -> Result<(), StateError> {
        let mut unlimited = 0;
        while !self.report.interrupted {
            let Some(u) = self.runnable.peek() else {
                break;
            };
            let barrier = self.units[u].barrier;
            let limited = !barrier && self.counted(u, providers);
            if limited && *round.busy >= round.parallelism {
                break;
            }
            if !limited && !barrier {
                if unlimited == UNLIMITED_PER_ROUND {
                    break;
                }
                unlimited += 1;
            }
            self.runnable.pop();
            if barrier {
                self.pass(u);
                continue;
            }
            *round.busy += usize::from(limited);
            let told = &mut *round.told;
            let tasks = if limited {
                &mut *round.tasks
            } else {
                &mut *round.inline
            };
            self.start(u, store, providers, tasks, &mut |e| told.push(e))?;
        }
        Ok(())
    }

    fn add_deletes(&mut self, plan: &Plan) {
        let first = self.units.len();
        let deletes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .collect();
        for c in &deletes {
            let change = Change {
                address: c.address.clone(),
                type_name: c.type_name.clone(),
                provider: c.provider.clone(),
                action: c.action,
                reasons: Vec::new(),
                before: None,
                after: None,
                sensitive: c.sensitive.clone(),
                dependencies: c.dependencies.clone(),
                create_before_destroy: c.create_before_destroy,
                kept: c.kept,
                unhealthy: false,
            };
            let planned = c.before.clone().unwrap_or_default();
            self.units
                .push(Unit::new(change, None, planned, Vec::new()));
        }
        // A resource is deleted before what it depends on; a dependency on an object
        // waits, through one barrier, for each of its resources.
        let records: Vec<(&Address, &[Address])> = deletes
            .iter()
            .map(|c| (&c.address, c.dependencies.as_slice()))
            .collect();
        let order = crate::plan::delete_order(&records);
        for _ in order.objects {
            self.units.push(Unit {
                work: None,
                object: None,
                dependents: Vec::new(),
                done: false,
                barrier: true,
            });
        }
        let mut waits = vec![0; self.units.len() - first];
        for (x, then) in order.then.into_iter().enumerate() {
            for y in then {
                self.units[first + x].dependents.push(first + y);
                waits[y] += 1;
            }
        }
        for w in waits {
            self.runnable.add(w);
        }
    }

    /// A barrier whose waits are over: what waits for it may start.
    fn pass(&mut self, u: usize) {
        self.units[u].done = true;
        let dependents = std::mem::take(&mut self.units[u].dependents);
        self.runnable.release(dependents);
    }

    fn complete_node(&mut self, walk: &Walk<'_>, n: NodeIndex) {
        // What a failed node blocks is never released: it waits for that node.
        self.ready
            .release(walk.graph.dependents(n).map(|d| d.index()));
    }

    /// Marks everything that depends on `n` as skipped.
    fn fail_node(&mut self, walk: &Walk<'_>, n: NodeIndex) {
        let mut stack: Vec<NodeIndex> = walk.graph.dependents(n).collect();
        while let Some(d) = stack.pop() {
            if !self.blocked[d.index()] {
                self.blocked[d.index()] = true;
                stack.extend(walk.graph.dependents(d));
            }
        }
    }

    fn eval(
        &mut self,
        walk: &mut Walk<'_>,
        store: &StateStore<'_>,
        n: NodeIndex,
        planned: &HashMap<&Address, &Change>,
        providers: &Providers,
    ) {
        if self.included.as_ref().is_some_and(|set| !set.contains(&n)) {
            // Outside the plan's targets: nothing included depends on it.
            return self.complete_node(walk, n);
        }
        let object = match walk.eval_node(n) {
            Ok(None) => return self.complete_node(walk, n),
            Ok(Some(o)) => o,
            Err(d) => {
                self.diags.0.extend(d.0);
                return self.fail_node(walk, n);
            }
        };
        let oi = self.objects.len();
        let mut run = ObjectRun {
            eval: object,
            pending: 0,
            failed: false,
            values: HashMap::new(),
        };
        let mut unit_of: HashMap<Address, usize> = HashMap::new();
        let mut new_units = Vec::new();
        // Siblings as the plan saw them: what attributes taken from them resolve to now.
        let mut planned_siblings: HashMap<Address, Map> = HashMap::new();
        let exclude = self.exclude.clone();
        let mut kept = crate::plan::Kept::new(&exclude);
        for inst in &mut run.eval.instances {
            if !self
                .included
                .as_ref()
                .is_none_or(|s| s.covers(n, &inst.address))
            {
                // Not targeted: as the plan left it.
                if let Some(prior) = store.state.resources.get(&inst.address) {
                    run.values
                        .insert(inst.address.clone(), prior.attributes.clone());
                }
                continue;
            }
            let prior = store.state.resources.get(&inst.address);
            if kept.keeps(inst, prior.is_some()) {
                // Excluded: as the plan left it.
                if let Some(prior) = prior {
                    run.values
                        .insert(inst.address.clone(), prior.attributes.clone());
                    planned_siblings.insert(inst.address.clone(), prior.attributes.clone());
                }
                continue;
            }
            inst.resolve_refs(&planned_siblings);
            let Some((_, schema)) = providers.schema(&inst.type_name) else {
                continue;
            };
            let expected = planned
                .get(&inst.address)
                .map(|c| c.action)
                .unwrap_or(Action::NoOp);
            let forced = planned
                .get(&inst.address)
                .is_some_and(|c| c.reasons.iter().any(|r| r.starts_with("--replace")));
            let mut change = diff(inst, schema, prior, forced);
            planned_siblings.insert(inst.address.clone(), crate::plan::planned_value(&change));
            let consistent = change.action == expected
                || (expected == Action::Update && change.action == Action::NoOp);
            if !consistent {
                self.diags.push(
                    Diagnostic::new(format!(
                        "{}: the plan said {:?}, but applying it now needs {:?}",
                        inst.address, expected, change.action
                    ))
                    .help("the configuration or the world changed since the plan was made; run tik plan again"),
                );
                run.failed = true;
                continue;
            }
            if change.action == Action::NoOp {
                run.values.insert(
                    inst.address.clone(),
                    prior.map(|p| p.attributes.clone()).unwrap_or_default(),
                );
                continue;
            }
            let mut planned_attrs = match change.action {
                Action::Update => change.after.take().unwrap_or_default(),
                _ => inst.config.clone(),
            };
            // The unit carries what it plans in `planned`; the plan's copy stays in the plan.
            change.before = None;
            change.after = None;
            planned_attrs.retain(|_, v| *v != Value::Unknown);
            unit_of.insert(inst.address.clone(), self.units.len());
            new_units.push((self.units.len(), inst.intra_deps.clone()));
            self.units.push(Unit::new(
                change,
                Some(oi),
                planned_attrs,
                inst.refs.clone(),
            ));
            run.pending += 1;
        }
        // Units are numbered as they are added: `runnable` gets them in the same order.
        for (u, deps) in new_units {
            let mut waits = 0;
            for d in deps {
                if let Some(&du) = unit_of.get(&d) {
                    self.units[du].dependents.push(u);
                    waits += 1;
                }
            }
            self.runnable.add(waits);
        }
        let failed = run.failed;
        let pending = run.pending;
        self.objects.push(run);
        if pending == 0 {
            self.settle_object(walk, oi, failed);
        }
    }

    /// An object whose changes are all done: make its value visible, or skip its dependents.
    fn settle_object(&mut self, walk: &mut Walk<'_>, oi: usize, failed: bool) {
        let node = self.objects[oi].eval.node;
        if failed {
            self.fail_node(walk, node);
        } else {
            walk.finish_object(&self.objects[oi].eval, &self.objects[oi].values);
            self.complete_node(walk, node);
        }
        // Its value is in the walk now: what it was made from is not needed again,
        // so memory stays the size of what is in flight, not of the whole apply.
        let run = &mut self.objects[oi];
        run.eval.release();
        run.values = HashMap::new();
    }

    fn start(
        &mut self,
        u: usize,
        store: &mut StateStore<'_>,
        providers: &Providers,
        tasks: &mut Vec<Task>,
        on_event: &mut dyn FnMut(ApplyEvent),
    ) -> Result<(), StateError> {
        let object = self.units[u].object;
        let Some(unit) = self.units[u].work.as_deref_mut() else {
            tasks.push(Box::pin(async move {
                let e = ProviderError::new("internal: a change started twice");
                (u, Err(e), Duration::ZERO)
            }));
            return Ok(());
        };
        if let (Some(oi), false) = (object, unit.refs.is_empty()) {
            // Every sibling it takes from has finished: fill in their real values.
            let refs = std::mem::take(&mut unit.refs);
            let planned = &mut unit.planned;
            crate::walk::resolve_refs(planned, &refs, &self.objects[oi].values);
            planned.retain(|_, v| *v != Value::Unknown);
        }
        let change = &unit.change;
        let prior = store.state.resources.get(&change.address).cloned();
        if matches!(change.action, Action::Create | Action::Replace) {
            // Recorded before the call: a crash now still leaves a state that knows of it.
            let attributes = match (&prior, change.action) {
                (Some(p), Action::Replace) => p.attributes.clone(),
                _ => unit.planned.clone(),
            };
            store.record(JournalEntry::Put {
                resource: resource_state(change, Status::Pending, attributes),
            })?;
        }
        let Some(provider) = providers.get(&change.provider).cloned() else {
            let msg = format!("provider {} is not available", change.provider);
            tasks.push(Box::pin(async move {
                (u, Err(ProviderError::new(msg)), Duration::ZERO)
            }));
            return Ok(());
        };
        on_event(ApplyEvent::Started {
            address: change.address.clone(),
            action: change.action,
            kept: change.kept,
        });
        let request = ChangeRequest {
            address: change.address.clone(),
            type_name: change.type_name.clone(),
            operation: Operation::Create,
            prior: prior.map(|p| p.attributes),
            planned: unit.planned.clone(),
            lineage: store.state.lineage.clone(),
            progress: Progress::default(),
        };
        self.in_flight
            .insert(u, (Instant::now(), request.progress.clone()));
        let action = change.action;
        let cbd = change.create_before_destroy;
        tasks.push(Box::pin(async move {
            let started = Instant::now();
            let result = run_change(provider, request, action, cbd).await;
            (u, result, started.elapsed())
        }));
        Ok(())
    }

    fn finish(
        &mut self,
        u: usize,
        result: Result<Map, ProviderError>,
        elapsed: Duration,
        walk: &mut Walk<'_>,
        store: &mut StateStore<'_>,
        on_event: &mut dyn FnMut(ApplyEvent),
    ) -> Result<(), StateError> {
        self.units[u].done = true;
        self.in_flight.remove(&u);
        // What the change carried is recorded by the end of this: only its record
        // in `units` is kept.
        let Some(work) = self.units[u].work.take() else {
            return Ok(());
        };
        let Work {
            change, planned, ..
        } = *work;
        let ok = result.is_ok();
        match result {
            Ok(attrs) => {
                if change.action == Action::Delete {
                    store.record(JournalEntry::Remove {
                        address: change.address.clone(),
                    })?;
                } else {
                    store.record(JournalEntry::Put {
                        resource: resource_state(&change, Status::Ready, attrs.clone()),
                    })?;
                }
                let id = attrs.get("id").and_then(Value::as_str).map(str::to_string);
                on_event(ApplyEvent::Finished {
                    address: change.address.clone(),
                    action: change.action,
                    kept: change.kept,
                    elapsed,
                    id,
                });
                match change.action {
                    Action::Create => self.report.done.add += 1,
                    Action::Update => self.report.done.change += 1,
                    Action::Replace => self.report.done.replace += 1,
                    Action::Delete if change.kept => self.report.done.keep += 1,
                    Action::Delete => self.report.done.destroy += 1,
                    Action::NoOp => {}
                }
                if let Some(oi) = self.units[u].object {
                    self.objects[oi]
                        .values
                        .insert(change.address.clone(), attrs);
                }
            }
            Err(e) => {
                // It may exist in part: tainted, so the next plan replaces it. Some
                // types are in part after a failed update too (a node step's service
                // may be down): their schema says so.
                let in_part_after_update = || {
                    walk.providers
                        .schema(&change.type_name)
                        .is_some_and(|(_, s)| s.failed_update_taints)
                };
                if matches!(change.action, Action::Create | Action::Replace)
                    || (change.action == Action::Update && in_part_after_update())
                {
                    store.record(JournalEntry::Put {
                        resource: resource_state(&change, Status::Tainted, planned),
                    })?;
                }
                let message = e.to_string();
                on_event(ApplyEvent::Failed {
                    address: change.address.clone(),
                    action: change.action,
                    message: message.clone(),
                });
                self.report
                    .failures
                    .push((change.address.to_string(), message));
            }
        }
        let mut finished = vec![(u, ok)];
        while let Some((u, ok)) = finished.pop() {
            if let Some(oi) = self.units[u].object {
                self.objects[oi].pending -= 1;
                self.objects[oi].failed |= !ok;
                if self.objects[oi].pending == 0 {
                    let failed = self.objects[oi].failed;
                    self.settle_object(walk, oi, failed);
                }
            }
            for d in std::mem::take(&mut self.units[u].dependents) {
                if ok {
                    self.runnable.release([d]);
                } else if !self.units[d].done {
                    // Something it needs failed: it is skipped, and so is what needs it.
                    self.units[d].done = true;
                    if let Some(w) = self.units[d].work.take() {
                        self.report.skipped.push(w.change.address.to_string());
                    }
                    finished.push((d, false));
                }
            }
        }
        Ok(())
    }
}

fn resource_state(change: &Change, status: Status, attributes: Map) -> ResourceState {
    ResourceState {
        address: change.address.clone(),
        type_name: change.type_name.clone(),
        provider: change.provider.clone(),
        status,
        attributes,
        sensitive_attributes: change.sensitive.clone(),
        dependencies: change.dependencies.clone(),
    }
}

/// One change through the provider; a replace is a delete and a create, in the order
/// the lifecycle asks for.
async fn run_change(
    provider: Arc<dyn Provider>,
    request: ChangeRequest,
    action: Action,
    create_before_destroy: bool,
) -> Result<Map, ProviderError> {
    let delete = |r: &ChangeRequest| ChangeRequest {
        operation: Operation::Delete,
        planned: r.prior.clone().unwrap_or_default(),
        ..r.clone()
    };
    let create = |r: &ChangeRequest| ChangeRequest {
        operation: Operation::Create,
        prior: None,
        ..r.clone()
    };
    match action {
        Action::Create => provider.apply(create(&request)).await,
        Action::Update => {
            provider
                .apply(ChangeRequest {
                    operation: Operation::Update,
                    ..request
                })
                .await
        }
        Action::Delete => provider.apply(delete(&request)).await,
        Action::Replace if create_before_destroy => {
            let attrs = provider.apply(create(&request)).await?;
            provider.apply(delete(&request)).await?;
            Ok(attrs)
        }
        Action::Replace => {
            provider.apply(delete(&request)).await?;
            provider.apply(create(&request)).await
        }
        Action::NoOp => Ok(request.prior.unwrap_or_default()),
    }
}
