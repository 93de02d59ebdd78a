//! Plans: what would change to make the world match the configuration.

use crate::addr::Address;
use crate::config::{Config, ObjectKind, Repeat};
use crate::diag::{Diagnostic, Diagnostics};
use crate::provider::{planned_attributes, Providers, ReadRequest, ResourceSchema};
use crate::state::{JournalEntry, OutputState, ResourceState, State, Status};
use crate::value::{Map, Value};
use crate::walk::{Inputs, Instance, Walk};
use indexmap::IndexMap;
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

/// One resource's planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    #[serde(rename = "type")]
    pub type_name: String,
    pub provider: String,
    pub action: Action,
    /// Why: the attributes that force a replacement, a taint, `--replace`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub before: Option<Map>,
    pub after: Option<Map>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Address>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_before_destroy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// Recorded in state, gone from the world.
    Deleted,
    /// Its attributes in the world differ from what state recorded.
    Changed,
    /// A create was interrupted and the object turned out to exist: taken into state.
    Adopted,
    /// A create was interrupted and the object turned out not to exist, or (a step)
    /// not to have run to its end: its record goes, and the plan makes it anew.
    Unfinished,
    /// An object with this state's tags that the state did not record, taken into state
    /// on request (`--adopt-orphans`, or tainted by `--destroy-orphans`).
    Orphan,
}

/// An object with this state's tags that the state does not record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrphanReport {
    pub address: Address,
    #[serde(rename = "type")]
    pub type_name: String,
    pub provider: String,
    pub attributes: Map,
}

/// What a plan does with orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrphanAction {
    /// Show them; change nothing.
    #[default]
    Report,
    /// Take them into state: what the configuration wants is kept, the rest deleted.
    Adopt,
    /// Take them into state tainted: what the configuration wants is replaced, the rest deleted.
    Destroy,
}

/// What refresh found: differences for what state records, and orphans.
#[derive(Debug, Default)]
pub struct Refreshed {
    pub drift: Vec<Drift>,
    pub orphans: Vec<OrphanReport>,
}

/// A difference between state and the world, found by refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: Address,
    #[serde(rename = "type")]
    pub type_name: String,
    pub kind: DriftKind,
    pub before: ResourceState,
    /// What the world holds now; `None` when deleted.
    pub after: Option<ResourceState>,
}

impl Drift {
    /// The state change that records what refresh found.
    pub fn entry(&self) -> JournalEntry {
        match &self.after {
            Some(r) => JournalEntry::Put {
                resource: r.clone(),
            },
            None => JournalEntry::Remove {
                address: self.address.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Value,
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_parts: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub tik_version: String,
    /// The state the plan was made against: applying it to any other is refused.
    pub lineage: String,
    pub serial: u64,
    pub config_hash: String,
    pub destroy: bool,
    pub variables: Map,
    pub drift: Vec<Drift>,
    /// Every change but no-ops, creates and updates in dependency order, then deletes.
    pub changes: Vec<Change>,
    pub outputs: Vec<OutputChange>,
    /// Objects with this state's tags that it does not record, left alone by this plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<OrphanReport>,
    /// `--target`s: apply walks only these and what they depend on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Address>,
    /// Records that change address and nothing else, before any change: a resource
    /// block that gained `count` (its resource is now `[0]`) or lost it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Move>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub from: Address,
    pub to: Address,
}

/// A `moved` block of a module: its module's address as the configuration names it
/// (`module.team`), and its addresses relative to the module.
#[derive(Debug, Clone)]
pub struct MovedBlock {
    pub module: Address,
    pub from: Address,
    pub to: Address,
}

impl MovedBlock {
    /// The moves it makes in `state`: one per instance of its module that state
    /// holds (`module.team["ml"]`), or one where its module is not repeated.
    pub fn moves(&self, state: &State) -> Vec<Move> {
        instances_of(&held_instances(state), &self.module)
            .into_iter()
            .map(|at| Move {
                from: at.join(&self.from),
                to: at.join(&self.to),
            })
            .collect()
    }
}

/// The module instances state holds resources in, by their module as the
/// configuration names it: `module.team` holds `module.team["ml"]`, ..., and
/// `module.m` holds `module.m` where its call is not repeated.
fn held_instances(state: &State) -> HashMap<Address, BTreeSet<Address>> {
    let mut held: HashMap<Address, BTreeSet<Address>> = HashMap::new();
    for a in state.resources.keys() {
        for (call, _) in a.module_path() {
            if let Some(at) = a.module_instance(&call) {
                held.entry(call).or_default().insert(at);
            }
        }
    }
    held
}

/// The instances of `module` (as the configuration names it) among those `held`;
/// the root is one instance.
fn instances_of(held: &HashMap<Address, BTreeSet<Address>>, module: &Address) -> Vec<Address> {
    if module.0.is_empty() {
        return vec![Address::new()];
    }
    held.get(module)
        .map(|at| at.iter().cloned().collect())
        .unwrap_or_default()
}

/// The `moved` blocks of every module, with absolute addresses, checked against the
/// configuration: `to` is something it has, `from` something it no longer has (or
/// another instance of the same block), and both are the same kind of thing.
pub fn explicit_moves(config: &Config) -> Result<Vec<MovedBlock>, Diagnostics> {
    let mut objects: HashSet<Address> = HashSet::new();
    // Whether each module's call is repeated: its instances have keys.
    let mut repeated: HashMap<Address, bool> = HashMap::new();
    for m in &config.modules {
        objects.insert(m.prefix.clone());
        for o in &m.objects {
            objects.insert(m.object_address(&o.kind, &o.name));
        }
        for c in m.calls.values() {
            repeated.insert(config.modules[c.child].prefix.clone(), c.repeat.is_some());
        }
    }
    // The first module call an address (relative to the module `at`) names
    // otherwise than the configuration has it: with a key where the call is not
    // repeated, or without where it is.
    let misnamed_call = |at: &Address, a: &Address| -> Option<(Address, bool)> {
        a.module_path()
            .into_iter()
            .map(|(call, keyed)| {
                let call = at.join(&call);
                (repeated.get(&call).copied().unwrap_or(keyed), call, keyed)
            })
            .find(|(wanted, _, keyed)| wanted != keyed)
            .map(|(wanted, call, _)| (call, wanted))
    };
    // What kind of thing an address names: a resource type, cluster, workspace or module.
    let kind = |a: &Address| -> String {
        let object = a.object();
        match object.0.get(object.0.len().saturating_sub(2)) {
            Some(crate::addr::Segment::Name(k)) => k.clone(),
            _ => String::new(),
        }
    };
    let mut moves = Vec::new();
    let mut diags = Diagnostics::default();
    for m in &config.modules {
        for mv in &m.moved {
            let (from, to) = (m.prefix.join(&mv.from), m.prefix.join(&mv.to));
            // The blocks, as the configuration names them.
            let from_block = from.object().unkeyed_modules();
            let to_block = to.object().unkeyed_modules();
            let at_to = |d: Diagnostic| d.at(mv.file, mv.to_span.clone());
            let at_from = |d: Diagnostic| d.at(mv.file, mv.from_span.clone());
            let nested = from.starts_with(&to) || to.starts_with(&from);
            if from == to || (nested && from_block != to_block) {
                diags.push(at_to(
                    Diagnostic::new(format!("{from} cannot move to {to}: one holds the other"))
                        .help(
                            "a moved block renames: give from the old address and to the new one",
                        ),
                ));
            } else if kind(&from_block) != kind(&to_block) {
                diags.push(at_to(Diagnostic::new(format!(
                    "{from} is a {}, {to} a {}: a move keeps the kind",
                    kind(&from_block),
                    kind(&to_block)
                )).help("to replace one kind of resource with another, remove the moved block: the plan destroys the old and creates the new")));
            } else if !objects.contains(&to_block) {
                let names: Vec<String> = objects.iter().map(Address::to_string).collect();
                diags.push(at_to(
                    Diagnostic::new(format!("{to} is not in the configuration")).help(
                        crate::diag::did_you_mean(
                            &to.object().to_string(),
                            names.iter().map(String::as_str),
                        )
                        .unwrap_or_else(|| {
                            "to names the new address: a block the configuration has".into()
                        }),
                    ),
                ));
            } else if let Some((call, wanted)) = misnamed_call(&m.prefix, &mv.to) {
                let (message, help) = if wanted {
                    (
                        format!("{to} names no instance of {call}, which has count or for_each"),
                        format!("name one of its instances, as {call}[\"KEY\"] or {call}[0]"),
                    )
                } else {
                    (
                        format!("{to} has a key for {call}, which has no count or for_each"),
                        format!("write {call} without a key"),
                    )
                };
                diags.push(at_to(Diagnostic::new(message).help(help)));
            } else if from_block != to_block
                && objects.contains(&from_block)
                && misnamed_call(&m.prefix, &mv.from).is_none()
            {
                diags.push(at_from(Diagnostic::new(format!(
                    "{} is still in the configuration",
                    from.object()
                )).help("from names the old address, which no block has any more; remove or rename that block")));
            } else {
                moves.push(MovedBlock {
                    module: m.prefix.clone(),
                    from: mv.from.clone(),
                    to: mv.to.clone(),
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(moves)
    } else {
        Err(diags)
    }
}

/// The moves a configuration implies, as Terraform's: a resource recorded at
/// `TYPE.NAME` whose block now has `count` is `TYPE.NAME[0]`, and one at
/// `TYPE.NAME[0]` whose block has lost it is `TYPE.NAME`; when the new address is
/// free in state.
pub fn implied_moves(config: &Config, state: &State) -> Vec<Move> {
    let held = held_instances(state);
    let holds_module = |at: &Address| {
        held.get(&at.unkeyed_modules())
            .is_some_and(|instances| instances.contains(at))
    };
    let mut moves = Vec::new();
    for m in &config.modules {
        for at in instances_of(&held, &m.prefix) {
            for o in &m.objects {
                if !matches!(o.kind, ObjectKind::Resource(_)) {
                    continue;
                }
                let one = at.clone().name(o.kind.root()).name(&o.name);
                let holds = |a: &Address| state.resources.contains_key(a);
                if let Some(mv) = count_move(one, o.repeat.as_ref(), holds) {
                    moves.push(mv);
                }
            }
            for c in m.calls.values() {
                let one = at.clone().name("module").name(&c.name);
                if let Some(mv) = count_move(one, c.repeat.as_ref(), holds_module) {
                    moves.push(mv);
                }
            }
        }
    }
    moves
}

/// The move that a block's gaining or losing `count` implies: from `X` to `X[0]`
/// or back, when state holds the one and not the other.
fn count_move(
    one: Address,
    repeat: Option<&Repeat>,
    held: impl Fn(&Address) -> bool,
) -> Option<Move> {
    let first = one.clone().index(0);
    let (from, to) = match repeat {
        Some(Repeat::Count(_)) => (one, first),
        None => (first, one),
        Some(Repeat::ForEach(_)) => return None,
    };
    (held(&from) && !held(&to)).then_some(Move { from, to })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.outputs.is_empty() || !self.moves.is_empty()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Plan, String> {
        let raw: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not a tik plan file: {e}"))?;
        match raw.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(PLAN_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "plan file format {v} is not one this tik reads ({PLAN_FORMAT_VERSION})"
                ))
            }
            None => return Err("not a tik plan file: it has no format_version".into()),
        }
        serde_json::from_value(raw).map_err(|e| format!("the plan file is damaged: {e}"))
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub destroy: bool,
    pub orphans: OrphanAction,
    pub targets: Vec<Address>,
    pub replace: Vec<Address>,
}

/// Reads every resource in state from its provider, one call per resource type,
/// all types at once. Returns the differences; `state` is left as it is.
pub async fn refresh(state: &State, providers: &Providers) -> Result<Refreshed, Diagnostics> {
    let mut by_type: IndexMap<(String, String), Vec<&ResourceState>> = IndexMap::new();
    for r in state.resources.values() {
        by_type
            .entry((r.provider.clone(), r.type_name.clone()))
            .or_default()
            .push(r);
    }
    let mut known: IndexMap<String, Vec<ReadRequest>> = IndexMap::new();
    for ((provider, _), items) in &by_type {
        let entry = known.entry(provider.clone()).or_default();
        entry.extend(items.iter().map(|r| ReadRequest {
            address: r.address.clone(),
            attributes: r.attributes.clone(),
            pending: r.status == Status::Pending,
            lineage: state.lineage.clone(),
        }));
    }
    for provider in known.keys() {
        if let Some(p) = providers.get(provider) {
            p.begin_refresh().await;
        }
    }
    let mut discoveries = Vec::new();
    for (provider, items) in known {
        if let Some(p) = providers.get(&provider).cloned() {
            let lineage = state.lineage.clone();
            discoveries.push((
                provider,
                tokio::spawn(async move { p.discover(&lineage, &items).await }),
            ));
        }
    }
    let mut reads = Vec::new();
    for ((provider, type_name), items) in &by_type {
        let p = providers.get(provider).cloned().ok_or_else(|| {
            Diagnostics::from(Diagnostic::new(format!(
                "state holds {} resources of provider \"{provider}\", which this tik does not have",
                items.len()
            )))
        })?;
        let requests: Vec<ReadRequest> = items
            .iter()
            .map(|r| ReadRequest {
                address: r.address.clone(),
                attributes: r.attributes.clone(),
                pending: r.status == Status::Pending,
                lineage: state.lineage.clone(),
            })
            .collect();
        let type_name = type_name.clone();
        reads.push(tokio::spawn(
            async move { p.read(&type_name, &requests).await },
        ));
    }
    let mut drift = Vec::new();
    let mut diags = Diagnostics::default();
    for (((provider, type_name), items), read) in by_type.iter().zip(reads) {
        let found = match read.await {
            Ok(Ok(found)) if found.len() == items.len() => found,
            Ok(Ok(_)) => {
                diags.push(Diagnostic::new(format!("provider {provider} answered a read of {type_name} with the wrong number of results")));
                continue;
            }
            Ok(Err(e)) => {
                diags.push(Diagnostic::new(format!(
                    "reading {type_name} resources failed: {e}"
                )));
                continue;
            }
            Err(e) => {
                diags.push(Diagnostic::new(format!(
                    "reading {type_name} resources failed: {e}"
                )));
                continue;
            }
        };
        for (r, now) in items.iter().zip(found) {
            let (kind, after) = match (now, r.status) {
                (None, Status::Pending) => (DriftKind::Unfinished, None),
                (None, _) => (DriftKind::Deleted, None),
                (Some(mut attrs), Status::Pending) => {
                    let half_made = attrs.shift_remove(crate::provider::HALF_MADE).is_some();
                    (
                        DriftKind::Adopted,
                        Some(ResourceState {
                            attributes: attrs,
                            status: if half_made {
                                Status::Tainted
                            } else {
                                Status::Ready
                            },
                            ..(*r).clone()
                        }),
                    )
                }
                (Some(mut attrs), _) if attrs.contains_key(crate::provider::HALF_MADE) => {
                    attrs.shift_remove(crate::provider::HALF_MADE);
                    (
                        DriftKind::Changed,
                        Some(ResourceState {
                            attributes: attrs,
                            status: Status::Tainted,
                            ..(*r).clone()
                        }),
                    )
                }
                (Some(attrs), _) if attrs != r.attributes => (
                    DriftKind::Changed,
                    Some(ResourceState {
                        attributes: attrs,
                        ..(*r).clone()
                    }),
                ),
                (Some(_), _) => continue,
            };
            drift.push(Drift {
                address: r.address.clone(),
                type_name: r.type_name.clone(),
                kind,
                before: (*r).clone(),
                after,
            });
        }
    }
    let mut orphans = Vec::new();
    for (provider, discovery) in discoveries {
        match discovery.await {
            Ok(Ok(found)) => orphans.extend(
                found
                    .into_iter()
                    .filter(|o| !state.resources.contains_key(&o.address))
                    .map(|o| OrphanReport {
                        address: o.address,
                        type_name: o.type_name,
                        provider: provider.clone(),
                        attributes: o.attributes,
                    }),
            ),
            Ok(Err(e)) => diags.push(Diagnostic::new(format!(
                "looking for orphans of provider {provider} failed: {e}"
            ))),
            Err(e) => diags.push(Diagnostic::new(format!(
                "looking for orphans of provider {provider} failed: {e}"
            ))),
        }
    }
    orphans.sort_by(|a, b| a.address.cmp(&b.address));
    if diags.is_empty() {
        Ok(Refreshed { drift, orphans })
    } else {
        Err(diags)
    }
}

/// Decides what one instance needs, against what state holds for its address.
pub fn diff(
    inst: &Instance,
    schema: &ResourceSchema,
    prior: Option<&ResourceState>,
    force_replace: bool,
) -> Change {
    let mut change = Change {
        address: inst.address.clone(),
        type_name: inst.type_name.clone(),
        provider: inst.provider.clone(),
        action: Action::NoOp,
        reasons: Vec::new(),
        before: prior.map(|p| p.attributes.clone()),
        after: None,
        sensitive: inst.sensitive.clone(),
        dependencies: inst.dependencies.clone(),
        create_before_destroy: inst.lifecycle.create_before_destroy,
    };
    let Some(prior) = prior else {
        change.action = Action::Create;
        change.after = Some(planned_attributes(schema, &inst.config));
        return change;
    };
    let ignored = |name: &str| {
        inst.lifecycle.ignore_all_changes || inst.lifecycle.ignore_changes.iter().any(|i| i == name)
    };
    let mut after = prior.attributes.clone();
    let mut changed: Vec<&str> = Vec::new();
    for a in schema.attributes.iter().filter(|a| !a.computed) {
        let want = inst.config.get(a.name).cloned().unwrap_or(Value::Null);
        // An attribute newer than the record, which the configuration now sets.
        let absent_as = a.absent_as.filter(|_| inst.config.contains_key(a.name));
        let have = prior
            .attributes
            .get(a.name)
            .or(absent_as)
            .cloned()
            .unwrap_or(Value::Null);
        if want.has_unknown() || want != have {
            if ignored(a.name) {
                continue;
            }
            changed.push(a.name);
            after.insert(a.name.to_string(), want);
        }
    }
    if prior.type_name != inst.type_name {
        change.reasons.push(format!(
            "the type changed from {} to {}",
            prior.type_name, inst.type_name
        ));
    } else if prior.status == Status::Tainted {
        change.reasons.push(
            schema
                .tainted_reason
                .unwrap_or("a change to it failed part way (tainted)")
                .into(),
        );
    } else if prior.status == Status::Pending {
        change.reasons.push("its create was interrupted".into());
    } else if force_replace {
        change.reasons.push("--replace asked for it".into());
    }
    for name in &changed {
        if schema.attribute(name).is_some_and(|a| a.force_new) {
            change.reasons.push(format!("{name} forces replacement"));
        }
    }
    if !change.reasons.is_empty() {
        change.action = Action::Replace;
        change.after = Some(planned_attributes(schema, &inst.config));
    } else if !changed.is_empty() {
        change.action = Action::Update;
        for a in schema.attributes.iter().filter(|a| a.computed) {
            if let Some(src) = a.copies.filter(|src| changed.contains(src)) {
                let value = after.get(src).cloned().unwrap_or(Value::Null);
                after.insert(a.name.to_string(), value);
            }
        }
        change.after = Some(after);
        if let Some(reasons) = schema.update_reasons {
            change.reasons = reasons(&changed);
        }
    } else {
        change.after = Some(prior.attributes.clone());
    }
    change
}

/// The attributes an instance's references see before apply: state's for a no-op,
/// the planned ones (unknown where computed) otherwise.
pub fn planned_value(change: &Change) -> Map {
    change.after.clone().unwrap_or_default()
}

/// Takes what the API cannot report of an object tik did not make (a disk size,
/// say) from its configuration, so that taking it into state (adopting or
/// importing it) does not replace it.
pub(crate) fn fill_unread(read: &mut Map, schema: &ResourceSchema, config: &Map) {
    for a in schema.attributes.iter().filter(|a| !a.computed) {
        if let (false, Some(v)) = (read.contains_key(a.name), config.get(a.name)) {
            read.insert(a.name.to_string(), v.clone());
        }
    }
}

/// The plan against `state`, which refresh has already brought up to date: the
/// step of `ops::make_plan` after refresh (and of `ops::validate`).
pub(crate) fn against_refreshed(
    config: &Config,
    providers: &Providers,
    state: &State,
    mut drift: Vec<Drift>,
    inputs: Inputs,
    options: &PlanOptions,
) -> Result<Plan, Diagnostics> {
    let mut walk = Walk::new(config, providers, inputs)?;
    // make_plan has moved what they say in `state`; here they are checked for validate.
    explicit_moves(config)?;
    // Adopted orphans, whose records hold only what the provider could read back.
    let adopted: HashMap<Address, usize> = drift
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.kind == DriftKind::Orphan
                && d.after.as_ref().is_some_and(|a| a.status == Status::Ready)
        })
        .map(|(i, d)| (d.address.clone(), i))
        .collect();
    let order = walk.graph.topo_order(config)?;
    let mut changes = Vec::new();
    let mut wanted: HashSet<Address> = HashSet::new();
    let mut diags = Diagnostics::default();
    // prevent_destroy of the block an address comes from, if it is still in the configuration.
    let mut blocks: HashMap<Address, (bool, Option<crate::diag::Location>)> = HashMap::new();
    for m in &config.modules {
        for o in &m.objects {
            let loc = o
                .span
                .clone()
                .map(|span| crate::diag::Location { file: o.file, span });
            let base = m.object_address(&o.kind, &o.name);
            blocks.insert(base, (o.lifecycle.prevent_destroy, loc));
        }
    }
    let lifecycle_of = |addr: &Address| -> Option<(bool, Option<crate::diag::Location>)> {
        let addr = addr.unkeyed_modules();
        (1..=addr.0.len())
            .rev()
            .find_map(|n| blocks.get(&Address(addr.0[..n].to_vec())).cloned())
    };
    let included = included_nodes(&walk, config, &order, &options.targets);
    if !options.destroy {
        // An error here ends the plan: without the whole configuration, what is
        // missing from it cannot be told from what was removed. What does not
        // depend on a failed object is still evaluated, so that one run names every
        // mistake; what does is skipped, as its errors would only echo the first.
        let mut failed: HashSet<NodeIndex> = HashSet::new();
        for &i in &order {
            if !included.as_ref().is_none_or(|s| s.contains(&i)) {
                continue;
            }
            if walk.graph.dependencies(i).any(|d| failed.contains(&d)) {
                failed.insert(i);
                continue;
            }
            let object = match walk.eval_node(i) {
                Ok(None) => continue,
                Ok(Some(o)) => o,
                Err(d) => {
                    diags.0.extend(d.0);
                    failed.insert(i);
                    continue;
                }
            };
            let mut object = object;
            let mut values = HashMap::new();
            for inst in &mut object.instances {
                if !included.as_ref().is_none_or(|s| s.covers(i, &inst.address)) {
                    // Another instance of a block whose targets name some: as it is.
                    if let Some(prior) = state.resources.get(&inst.address) {
                        values.insert(inst.address.clone(), prior.attributes.clone());
                    }
                    continue;
                }
                inst.resolve_refs(&values);
                let Some((_, schema)) = providers.schema(&inst.type_name) else {
                    continue;
                };
                let force = options.replace.iter().any(|r| inst.address.within(r));
                let mut prior = state.resources.get(&inst.address);
                if let Some(after) = adopted
                    .get(&inst.address)
                    .and_then(|&i| drift[i].after.as_mut())
                {
                    fill_unread(&mut after.attributes, schema, &inst.config);
                    after.dependencies = inst.dependencies.clone();
                    prior = Some(after);
                }
                let change = diff(inst, schema, prior, force);
                wanted.insert(inst.address.clone());
                values.insert(inst.address.clone(), planned_value(&change));
                if change.action == Action::Replace && inst.lifecycle.prevent_destroy {
                    diags.push(prevent_destroy_error(
                        &inst.address,
                        "replace",
                        lifecycle_of(&inst.address).and_then(|l| l.1),
                    ));
                }
                if change.action != Action::NoOp {
                    changes.push(change);
                }
            }
            walk.finish_object(&object, &values);
        }
        if !failed.is_empty() {
            // In the order of the files, as a reader goes through them.
            diags.0.sort_by_key(|d| {
                d.location
                    .as_ref()
                    .map_or((1, crate::diag::FileId(0), 0), |l| {
                        (0, l.file, l.span.start)
                    })
            });
            return Err(diags);
        }
    }
    // What state holds and the configuration no longer wants is deleted, dependents first.
    let mut deletes: Vec<&ResourceState> = state
        .resources
        .values()
        .filter(|r| !wanted.contains(&r.address))
        .filter(|r| {
            options.targets.is_empty() || options.targets.iter().any(|t| r.address.within(t))
        })
        .collect();
    if !options.destroy && included.is_some() {
        // With --target, only deletes of what the targets cover are planned.
        deletes.retain(|r| options.targets.iter().any(|t| r.address.within(t)));
    }
    for r in order_deletes(&deletes) {
        if let Some((true, loc)) = lifecycle_of(&r.address) {
            diags.push(prevent_destroy_error(&r.address, "destroy", loc));
        }
        changes.push(Change {
            address: r.address.clone(),
            type_name: r.type_name.clone(),
            provider: r.provider.clone(),
            action: Action::Delete,
            reasons: if options.destroy {
                Vec::new()
            } else {
                vec!["it is no longer in the configuration".into()]
            },
            before: Some(r.attributes.clone()),
            after: None,
            sensitive: r.sensitive_attributes.clone(),
            dependencies: r.dependencies.clone(),
            create_before_destroy: false,
        });
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let after = if options.destroy {
        IndexMap::new()
    } else {
        walk.root_outputs.clone()
    };
    // Outputs a targeted plan did not reach keep their values; only undeclared ones go.
    let declared = if options.destroy {
        None
    } else {
        Some(&config.modules[0].outputs)
    };
    let outputs = output_changes(&state.outputs, after, |name| {
        declared.is_some_and(|d| d.contains_key(name))
    });
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        tik_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: state.lineage.clone(),
        serial: state.serial.get(),
        config_hash: config.hash.clone(),
        destroy: options.destroy,
        variables: walk.root_variables.clone(),
        drift,
        changes,
        outputs,
        orphans: Vec::new(),
        targets: options.targets.clone(),
        moves: Vec::new(),
    })
}

fn prevent_destroy_error(
    addr: &Address,
    what: &str,
    loc: Option<crate::diag::Location>,
) -> Diagnostic {
    let mut d = Diagnostic::new(format!("the plan would {what} {addr}, but its lifecycle has prevent_destroy = true"))
        .help("remove prevent_destroy from its lifecycle block if you mean it, or change the configuration so it is kept");
    d.location = loc;
    d
}

/// What a plan with `--target` covers.
pub(crate) struct Included {
    targets: Vec<Address>,
    /// The targeted objects and everything they depend on, each with the targets
    /// that reach it.
    nodes: HashMap<petgraph::graph::NodeIndex, Vec<usize>>,
    /// Repeated resource blocks whose targets name some of their instances
    /// (`tik_data.d["a"]`), and that nothing else included reads: those targets.
    instances: HashMap<petgraph::graph::NodeIndex, Vec<Address>>,
}

impl Included {
    pub fn contains(&self, i: &petgraph::graph::NodeIndex) -> bool {
        self.nodes.contains_key(i)
    }

    /// Whether the plan covers an instance of an included node: one in a module
    /// instance that a target reaching the node is in or calls (not another
    /// instance of a repeated module than the one targeted), and of a resource
    /// block whose targets name instances, one of those.
    pub fn covers(&self, i: petgraph::graph::NodeIndex, address: &Address) -> bool {
        let reached = self.nodes.get(&i).is_some_and(|ts| {
            ts.iter()
                .any(|&t| address.same_module_instance(&self.targets[t]))
        });
        reached
            && self
                .instances
                .get(&i)
                .is_none_or(|targets| targets.iter().any(|t| address.within(t)))
    }
}

/// With targets: the nodes of the targeted objects and everything they depend on;
/// of a resource block, only the instances targeted when nothing included reads the
/// others. A cluster is covered whole: its nodes' steps depend on one another.
pub(crate) fn included_nodes(
    walk: &Walk<'_>,
    config: &Config,
    order: &[petgraph::graph::NodeIndex],
    targets: &[Address],
) -> Option<Included> {
    if targets.is_empty() {
        return None;
    }
    // Nodes are blocks: a target in a module instance names the block as its
    // configuration has it (`module.team.cluster.etl`).
    let blocks: Vec<Address> = targets.iter().map(Address::unkeyed_modules).collect();
    let mut nodes: HashMap<petgraph::graph::NodeIndex, Vec<usize>> = HashMap::new();
    let mut targeted = Vec::new();
    for (t, block) in blocks.iter().enumerate() {
        let mut stack: Vec<_> = order
            .iter()
            .copied()
            .filter(|&i| {
                walk.graph
                    .object_address(config, i)
                    .is_some_and(|a| a.starts_with(block) || block.starts_with(&a))
            })
            .collect();
        targeted.extend(stack.iter().copied());
        while let Some(i) = stack.pop() {
            let reached = nodes.entry(i).or_default();
            if !reached.contains(&t) {
                reached.push(t);
                stack.extend(walk.graph.dependencies(i));
            }
        }
    }
    targeted.sort();
    targeted.dedup();
    let mut instances = HashMap::new();
    for i in targeted {
        let is_resource = matches!(
            walk.graph.vertex(i).key,
            crate::graph::Key::Object(ObjectKind::Resource(_), _)
        );
        let Some(a) = walk.graph.object_address(config, i) else {
            continue;
        };
        let whole = blocks.iter().any(|t| a.starts_with(t));
        let read = walk.graph.dependents(i).any(|d| nodes.contains_key(&d));
        if is_resource && !whole && !read {
            let some: Vec<Address> = targets
                .iter()
                .zip(&blocks)
                .filter(|(_, b)| b.starts_with(&a))
                .map(|(t, _)| t.clone())
                .collect();
            instances.insert(i, some);
        }
    }
    Some(Included {
        targets: targets.to_vec(),
        nodes,
        instances,
    })
}

/// The order among resources being deleted, from their recorded dependencies: a
/// resource goes before what it depends on. A dependency names one resource, or a
/// configuration object (`tik_data.a` with count, `cluster.etl`) and so each resource
/// of it; such a dependency goes through one node for the object, so the graph grows
/// with the records and their dependencies, not with their product.
pub(crate) struct DeleteOrder {
    /// Nodes `0..items` are the resources, in the order given; the rest are objects.
    pub items: usize,
    /// The object each node past `items` stands for.
    pub objects: Vec<Address>,
    /// Per node, the nodes that wait for it.
    pub then: Vec<Vec<usize>>,
    /// Per node, how many nodes it waits for.
    pub waits: Vec<usize>,
}

pub(crate) fn delete_order(items: &[(&Address, &[Address])]) -> DeleteOrder {
    let n = items.len();
    let exact: HashMap<&Address, usize> = items
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (*a, i))
        .collect();
    let mut members: HashMap<Address, Vec<usize>> = HashMap::new();
    for (i, (a, _)) in items.iter().enumerate() {
        members.entry(a.object()).or_default().push(i);
    }
    let mut order = DeleteOrder {
        items: n,
        objects: Vec::new(),
        then: vec![Vec::new(); n],
        waits: vec![0; n],
    };
    let mut node_of: HashMap<&Address, usize> = HashMap::new();
    for (i, (a, deps)) in items.iter().enumerate() {
        let own = a.object();
        for d in deps.iter() {
            // A record never needs its own object: nothing to order.
            if *d == own {
                continue;
            }
            let node = match (exact.get(d), members.get_key_value(d)) {
                (Some(&j), _) => j,
                (None, Some((object, of))) => *node_of.entry(object).or_insert_with(|| {
                    let g = order.then.len();
                    order.objects.push(object.clone());
                    order.then.push(of.clone());
                    order.waits.push(0);
                    for &x in of {
                        order.waits[x] += 1;
                    }
                    g
                }),
                (None, None) => continue,
            };
            order.then[i].push(node);
            order.waits[node] += 1;
        }
    }
    order
}

/// Orders deletes so that a resource goes before the resources it depends on.
pub fn order_deletes<'a>(items: &[&'a ResourceState]) -> Vec<&'a ResourceState> {
    let records: Vec<(&Address, &[Address])> = items
        .iter()
        .map(|r| (&r.address, r.dependencies.as_slice()))
        .collect();
    let DeleteOrder {
        items: n,
        then,
        waits,
        ..
    } = delete_order(&records);
    let mut kahn = crate::order::Kahn::fifo();
    for w in waits {
        kahn.add(w);
    }
    let mut out = Vec::with_capacity(n);
    while let Some(i) = kahn.pop() {
        if i < n {
            out.push(items[i]);
        }
        kahn.release(then[i].iter().copied());
    }
    // A cycle in recorded dependencies cannot come from tik; keep such entries, last.
    if out.len() < n {
        let done: HashSet<&Address> = out.iter().map(|r| &r.address).collect();
        let rest: Vec<&ResourceState> = items
            .iter()
            .filter(|r| !done.contains(&r.address))
            .copied()
            .collect();
        out.extend(rest);
    }
    out
}

fn output_changes(
    before: &IndexMap<String, OutputState>,
    after: IndexMap<String, OutputState>,
    still_declared: impl Fn(&str) -> bool,
) -> Vec<OutputChange> {
    let mut out = Vec::new();
    for (name, new) in &after {
        let prior = before.get(name);
        let old = prior.map(|o| o.value.clone());
        if old.as_ref() != Some(&new.value) || new.value.has_unknown() {
            // Shown hidden where either side is: what was sensitive stays hidden in
            // the "before" after the configuration stops calling it so.
            let mut parts = new.sensitive_parts.clone();
            for p in prior.map_or(&[][..], |o| &o.sensitive_parts) {
                if !parts.contains(p) {
                    parts.push(p.clone());
                }
            }
            out.push(OutputChange {
                name: name.clone(),
                before: old,
                after: new.value.clone(),
                sensitive: new.sensitive || prior.is_some_and(|o| o.sensitive),
                sensitive_parts: parts,
            });
        }
    }
    for (name, old) in before {
        if !after.contains_key(name) && !still_declared(name) {
            out.push(OutputChange {
                name: name.clone(),
                before: Some(old.value.clone()),
                after: Value::Null,
                sensitive: old.sensitive,
                sensitive_parts: old.sensitive_parts.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Address;
    use crate::state::{ResourceState, Status};

    fn recorded(attrs: &[(&str, Value)]) -> ResourceState {
        ResourceState {
            address: Address::default().name("step"),
            type_name: "tik_step".into(),
            provider: "tik".into(),
            status: Status::Ready,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            sensitive_attributes: Vec::new(),
            dependencies: Vec::new(),
        }
    }

    #[test]
    fn deletes_go_before_the_objects_and_resources_they_depend_on() {
        let record = |addr: &str, deps: &[&str]| ResourceState {
            address: Address::parse(addr).unwrap(),
            dependencies: deps.iter().map(|d| Address::parse(d).unwrap()).collect(),
            ..recorded(&[])
        };
        let records = [
            // A counted block's resources: what reads the block records the block.
            record("tik_data.a[0]", &[]),
            record("tik_data.a[1]", &[]),
            record("tik_data.b[0]", &["tik_data.a"]),
            record("tik_data.b[1]", &["tik_data.a"]),
            // A cluster's node and its session: the session records the node; the
            // node records the workspace object, the session its own object too.
            record("workspace.dev.dir", &[]),
            record("cluster.c.node.head", &["workspace.dev"]),
            record(
                "cluster.c.node.head.session",
                &["cluster.c", "cluster.c.node.head"],
            ),
            // A record written before objects were recorded: resource by resource.
            record("tik_data.old", &["tik_data.a[1]"]),
        ];
        let items: Vec<&ResourceState> = records.iter().collect();
        let order: Vec<String> = order_deletes(&items)
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        let at = |a: &str| order.iter().position(|x| x == a).unwrap();
        assert_eq!(order.len(), records.len(), "{order:?}");
        for (first, then) in [
            ("tik_data.b[0]", "tik_data.a[0]"),
            ("tik_data.b[0]", "tik_data.a[1]"),
            ("tik_data.b[1]", "tik_data.a[0]"),
            ("tik_data.b[1]", "tik_data.a[1]"),
            ("tik_data.old", "tik_data.a[1]"),
            ("cluster.c.node.head.session", "cluster.c.node.head"),
            ("cluster.c.node.head", "workspace.dev.dir"),
        ] {
            assert!(at(first) < at(then), "{first} before {then}: {order:?}");
        }
        // One node per object read, not an edge per pair.
        let deps: Vec<(&Address, &[Address])> = records
            .iter()
            .map(|r| (&r.address, r.dependencies.as_slice()))
            .collect();
        let graph = delete_order(&deps);
        assert_eq!(graph.objects.len(), 2, "{:?}", graph.objects);
    }

    #[test]
    fn an_output_change_hides_what_either_side_held_sensitive() {
        let out = |v: &str, sensitive: bool, parts: &[&[&str]]| OutputState {
            value: Value::from_json(&serde_json::json!({ "a": v, "b": v })),
            sensitive,
            sensitive_parts: parts
                .iter()
                .map(|p| p.iter().map(|k| k.to_string()).collect())
                .collect(),
        };
        let before = IndexMap::from([
            ("x".to_string(), out("old", false, &[&["a"]])),
            ("y".to_string(), out("old", true, &[])),
        ]);
        let after = IndexMap::from([
            ("x".to_string(), out("new", false, &[&["b"]])),
            ("y".to_string(), out("new", false, &[])),
        ]);
        let changes = output_changes(&before, after, |_| true);
        assert_eq!(changes[0].name, "x");
        assert!(!changes[0].sensitive);
        assert_eq!(
            changes[0].sensitive_parts,
            [vec!["b".to_string()], vec!["a".to_string()]]
        );
        assert_eq!(changes[1].name, "y");
        assert!(changes[1].sensitive, "it was sensitive before");
    }
}
