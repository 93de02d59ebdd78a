//! Plans: what would change to make the world match the configuration. The model
//! is here (`Plan`, `Change`, `Drift`, ...) with `against_refreshed`, which walks
//! the configuration and diffs each resource; `refresh`, `diff`, `moves`,
//! `targets` and `deletes` are its parts.

mod deletes;
mod diff;
mod exclude;
mod moves;
mod refresh;
mod targets;

pub(crate) use deletes::delete_order;
pub use deletes::order_deletes;
pub(crate) use diff::fill_unread;
pub use diff::{diff, planned_value};
pub(crate) use exclude::Kept;
pub use moves::{explicit_moves, implied_moves};
use moves::{held_instances, instances_of};
pub use refresh::refresh;
pub(crate) use targets::{included_nodes, Included};

use crate::addr::Address;
use crate::config::{Config, ObjectKind, Repeat};
use crate::diag::{Diagnostic, Diagnostics};
use crate::provider::{planned_attributes, Providers, ReadRequest, ResourceSchema};
use crate::state::{JournalEntry, OutputState, ResourceState, State, Status};
use crate::value::{Map, Value};
use crate::walk::{Inputs, Instance, Pool, Walk};
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
    /// A delete that leaves the object in the world and only forgets it (its
    /// provider says so: a bucket kept on destroy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept: bool,
    /// A change whose one cause is a failed health check (its type's
    /// `ResourceSchema::health` attribute read false), or a failed change that
    /// tainted it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unhealthy: bool,
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
    /// What the plan keeps as it is (`PlanOptions::exclude`): apply keeps it alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Address>,
    /// Records that change address and nothing else, before any change: a resource
    /// block that gained `count` (its resource is now `[0]`) or lost it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Move>,
    /// Every cluster's worker pools with the size the plan gives each: apply expands
    /// the clusters with the same sizes, and records a size the bounds changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
    /// Every cluster's controller settings (its `controller` block, or defaults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<crate::controller::Control>,
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    /// Deletes that leave the object in the world (`Change::kept`).
    pub keep: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete if c.kept => s.keep += 1,
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
    /// Refresh reads no type whose schema has a `health` attribute (a start step,
    /// whose read is its service's health check): the controller checks health less
    /// often than it looks for lost nodes.
    pub skip_health: bool,
    /// Kept as they are (a controller's pool that backs off, by its workers'
    /// address): nothing is planned within them, nor for what needs one of them that
    /// does not exist.
    pub exclude: Vec<Address>,
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
    let inputs = Inputs {
        sizes: state.sizes.clone(),
        ..inputs
    };
    let mut walk = Walk::new(config, providers, inputs)?;
    // make_plan has moved what they say in `state`; here they are checked for validate.
    explicit_moves(config)?;
    let adopted = adopted_orphans(&drift);
    let order = walk.graph.topo_order(config)?;
    let mut changes = Vec::new();
    let mut wanted: HashSet<Address> = HashSet::new();
    let mut diags = Diagnostics::default();
    let blocks = PreventDestroy::of(config);
    let included = included_nodes(&walk, config, &order, &options.targets);
    let mut kept = Kept::new(&options.exclude);
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
                // Its own misspelt names are still named; the rest would echo.
                diags.0.extend(walk.check_unevaluated(i).0);
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
                if kept.keeps(inst, state.resources.contains_key(&inst.address)) {
                    if let Some(prior) = state.resources.get(&inst.address) {
                        values.insert(inst.address.clone(), prior.attributes.clone());
                    }
                    wanted.insert(inst.address.clone());
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
                        blocks.of_address(&inst.address).and_then(|l| l.1),
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
    changes.extend(
        delete_changes(
            state,
            &wanted,
            options,
            included.is_some(),
            &blocks,
            walk.providers,
            &mut diags,
        )
        .into_iter()
        .filter(|c| !kept.covers(&c.address)),
    );
    if !diags.is_empty() {
        return Err(diags);
    }
    let outputs = planned_outputs(config, state, &walk, options.destroy);
    // A plan is held while it is applied: without the room left for more.
    changes.shrink_to_fit();
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
        exclude: options.exclude.clone(),
        moves: Vec::new(),
        pools: std::mem::take(&mut walk.pools),
        controls: std::mem::take(&mut walk.controls),
    })
}

impl crate::state::Applied {
    /// What applying `plan` in whole applies: its configuration's hash, and a hash
    /// of its variables' values (salted with the state's lineage; state holds what
    /// they made anyway).
    pub fn of(plan: &Plan) -> Self {
        crate::state::Applied {
            config: plan.config_hash.clone(),
            inputs: plan.inputs_hash(),
            variables: plan.variables.clone(),
            at: crate::timefmt::now_utc(),
        }
    }
}

impl Plan {
    /// The hash `Applied::inputs` records for this plan's variables.
    pub fn inputs_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.lineage.as_bytes());
        hasher.update([0]);
        let json = Value::Object(self.variables.clone()).to_json();
        hasher.update(json.to_string().as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Orphans the plan adopts, by address: their records hold only what the provider
/// could read back (the index of each in `drift`).
fn adopted_orphans(drift: &[Drift]) -> HashMap<Address, usize> {
    drift
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.kind == DriftKind::Orphan
                && d.after.as_ref().is_some_and(|a| a.status == Status::Ready)
        })
        .map(|(i, d)| (d.address.clone(), i))
        .collect()
}

/// `prevent_destroy` of the block an address comes from, while it is still in the
/// configuration, with where the block is written.
struct PreventDestroy {
    blocks: HashMap<Address, (bool, Option<crate::diag::Location>)>,
}

impl PreventDestroy {
    fn of(config: &Config) -> Self {
        let mut blocks = HashMap::new();
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
        PreventDestroy { blocks }
    }

    fn of_address(&self, addr: &Address) -> Option<(bool, Option<crate::diag::Location>)> {
        let addr = addr.unkeyed_modules();
        (1..=addr.0.len())
            .rev()
            .find_map(|n| self.blocks.get(&Address(addr.0[..n].to_vec())).cloned())
    }
}

/// What state holds and the configuration no longer wants (`wanted`): deleted,
/// dependents first; with `--target`, only what the targets cover.
fn delete_changes(
    state: &State,
    wanted: &HashSet<Address>,
    options: &PlanOptions,
    targeted: bool,
    blocks: &PreventDestroy,
    providers: &Providers,
    diags: &mut Diagnostics,
) -> Vec<Change> {
    let mut deletes: Vec<&ResourceState> = state
        .resources
        .values()
        .filter(|r| !wanted.contains(&r.address))
        .filter(|r| {
            options.targets.is_empty() || options.targets.iter().any(|t| r.address.within(t))
        })
        .collect();
    if !options.destroy && targeted {
        // With --target, only deletes of what the targets cover are planned.
        deletes.retain(|r| options.targets.iter().any(|t| r.address.within(t)));
    }
    let mut changes = Vec::new();
    for r in order_deletes(&deletes) {
        if let Some((true, loc)) = blocks.of_address(&r.address) {
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
            kept: providers
                .get(&r.provider)
                .is_some_and(|p| p.keeps_on_delete(&r.type_name, &r.attributes)),
            unhealthy: false,
        });
    }
    changes
}

/// The root outputs' changes: what the walk evaluated against what state records.
/// Outputs a targeted plan did not reach keep their values; only undeclared ones go.
fn planned_outputs(
    config: &Config,
    state: &State,
    walk: &Walk<'_>,
    destroy: bool,
) -> Vec<OutputChange> {
    let after = if destroy {
        IndexMap::new()
    } else {
        walk.root_outputs.clone()
    };
    let declared = if destroy {
        None
    } else {
        Some(&config.modules[0].outputs)
    };
    output_changes(&state.outputs, after, |name| {
        declared.is_some_and(|d| d.contains_key(name))
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
