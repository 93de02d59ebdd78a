//! The contract between the engine and a provider; the binary wires providers in.
//!
//! A provider lowers workspace and cluster blocks into resources, reads what exists
//! (one call per resource type), and creates, updates and deletes single resources.
//! It never sees state files, the graph or the terminal.

use crate::addr::Address;
use crate::diag::{Diagnostics, FileId, Sources};
use crate::eval::Marks;
use crate::state::ResourceState;
use crate::value::{Map, Value};
use async_trait::async_trait;
use hcl_edit::structure::Body;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One attribute of a resource type.
#[derive(Debug, Clone)]
pub struct AttributeSchema {
    pub name: &'static str,
    pub required: bool,
    /// Set by the provider when the resource is created (an id, an address).
    pub computed: bool,
    /// A change of this attribute cannot be made in place: the resource is replaced.
    pub force_new: bool,
    pub sensitive: bool,
    /// A computed attribute that the provider sets to a copy of another one: its planned
    /// value and its sensitivity follow that attribute.
    pub copies: Option<&'static str>,
    /// What a record made before the attribute existed is taken to hold, where the
    /// configuration sets it.
    pub absent_as: Option<&'static Value>,
}

impl AttributeSchema {
    pub const fn optional(name: &'static str) -> Self {
        AttributeSchema {
            name,
            required: false,
            computed: false,
            force_new: false,
            sensitive: false,
            copies: None,
            absent_as: None,
        }
    }
    pub const fn required(name: &'static str) -> Self {
        AttributeSchema {
            name,
            required: true,
            computed: false,
            force_new: false,
            sensitive: false,
            copies: None,
            absent_as: None,
        }
    }
    pub const fn computed(name: &'static str) -> Self {
        AttributeSchema {
            name,
            required: false,
            computed: true,
            force_new: false,
            sensitive: false,
            copies: None,
            absent_as: None,
        }
    }
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    pub const fn copy_of(mut self, source: &'static str) -> Self {
        self.copies = Some(source);
        self
    }
    pub const fn absent_as(mut self, value: &'static Value) -> Self {
        self.absent_as = Some(value);
        self
    }
}

/// Why an update of the named attributes is made, in a resource type's words.
pub type UpdateReasons = fn(&[&str]) -> Vec<String>;

#[derive(Debug, Clone)]
pub struct ResourceSchema {
    pub type_name: &'static str,
    pub attributes: Vec<AttributeSchema>,
    /// A failed update may leave the object in part (a node step stops its service
    /// to rerun it): the object is then recorded tainted, as after a failed create.
    pub failed_update_taints: bool,
    /// Why a tainted object of this type is replaced, in its own words; by default
    /// "a change to it failed part way (tainted)".
    pub tainted_reason: Option<&'static str>,
    /// Why an update of these attributes is made, in the type's own words (a node
    /// step says what makes it run again); by default an update gives no reasons.
    pub update_reasons: Option<UpdateReasons>,
    /// The attribute a read sets false when the object is there but not well (a
    /// start step's service that fails its health check). An update for it alone,
    /// or the replacement of an object a failed change tainted, is a failed check
    /// (`Change::unhealthy`): the controller waits for several in a row before it
    /// acts, and replaces the object's node after repeated ones.
    pub health: Option<&'static str>,
}

impl ResourceSchema {
    pub fn new(type_name: &'static str, attributes: Vec<AttributeSchema>) -> Self {
        ResourceSchema {
            type_name,
            attributes,
            failed_update_taints: false,
            tainted_reason: None,
            update_reasons: None,
            health: None,
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

pub use crate::config::body::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Workspace,
    Cluster,
}

/// A cluster as its own provider lowered it, for a provider that adds resources to
/// every cluster (`Provider::layer`: the `tik` provider's sessions, containers and
/// runtime steps on each node).
pub struct LayerRequest<'a> {
    /// The cluster's own name (its `name`, or its label).
    pub cluster: &'a str,
    /// Its address in the configuration (`cluster.etl`, `module.team.cluster.etl`).
    pub address: &'a Address,
    /// The evaluated block, and which of its parts read a sensitive value.
    pub config: &'a Map,
    pub marks: &'a Marks,
    /// What the cluster's provider made of it: each resource's path and config.
    pub resources: Vec<(&'a Address, &'a Map)>,
    /// Where the block is written, for diagnostics that point into it.
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub body: &'a Body,
    /// How messages name the block: `cluster "etl"`.
    pub what: &'a str,
}

/// A workspace or cluster block that could not be evaluated (something it needs
/// failed, or its own attributes did): what a provider can still check of it.
pub struct BlockCheck<'a> {
    pub kind: BlockKind,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub body: &'a Body,
    /// How messages name the block: `cluster "etl"`.
    pub what: &'a str,
}

/// What a layer adds to a cluster.
#[derive(Debug, Default)]
pub struct Layer {
    pub resources: Vec<ResourceSpec>,
    /// Values the cluster's object shows at `path` (`runtime.spark.endpoint.ui`),
    /// completed by `Provider::fill_value` once the cluster's resources exist.
    pub values: Vec<(Vec<String>, Value)>,
    /// Which of those values are sensitive, from the object's root.
    pub marks: Marks,
}

/// A workspace or cluster block to lower into resources.
#[derive(Debug, Clone)]
pub struct ExpandRequest<'a> {
    pub kind: BlockKind,
    pub name: &'a str,
    /// The evaluated block; for a cluster, `workspace` holds the workspace's value.
    pub config: &'a Map,
}

/// What a runtime said of its cluster's work, for the controller.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The record asked (`cluster.etl.scaling["spark"]`).
    pub source: Address,
    /// How many more workers its work wants; or why it could not tell (a command
    /// that failed, printed something else, or ran too long).
    pub more: Result<u64, String>,
    /// The workers with nothing to do, by address; `None` where it cannot tell.
    pub idle: Option<Result<Vec<Address>, String>>,
}

impl Demand {
    /// The cluster a runtime's scaling record is in: `cluster.etl` for
    /// `cluster.etl.scaling["spark"]`.
    pub fn cluster_of(record: &Address) -> Address {
        Address(record.0[..record.0.len().saturating_sub(2)].to_vec())
    }
}

/// Why a block cannot be lowered into resources, and where: `path` names the
/// attribute at fault from the block down (`["network", "cidr"]`,
/// `["workers", "default", "min"]`), so the error points at its value; an empty
/// path points at the block.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandError {
    pub path: Vec<String>,
    pub message: String,
}

impl ExpandError {
    pub fn at(path: &[&str], message: impl Into<String>) -> Self {
        ExpandError {
            path: path.iter().map(|p| p.to_string()).collect(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for ExpandError {
    fn from(message: String) -> Self {
        ExpandError {
            path: Vec::new(),
            message,
        }
    }
}

impl From<&str> for ExpandError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// One resource of an expansion. `path` is relative to the block's address
/// (`node.worker["default"][2]` under `cluster.etl`).
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    pub path: Address,
    pub type_name: String,
    pub config: Map,
    /// Other resources of the same expansion this one needs first.
    pub depends_on: Vec<Address>,
    /// Attributes that hold secrets: plans show them as "(sensitive value)".
    pub sensitive: Vec<String>,
    /// Attributes that take a sibling's attribute once the sibling exists.
    pub refs: Vec<SiblingRef>,
}

/// `attribute` is set to `sibling`'s `sibling_attribute` (a subnet's `network_id` from the
/// network's `id`): unknown in a plan until the sibling exists, filled in before the change runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SiblingRef {
    pub attribute: String,
    pub sibling: Address,
    pub sibling_attribute: String,
}

impl ResourceSpec {
    pub fn new(path: Address, type_name: &str, config: Map) -> Self {
        ResourceSpec {
            path,
            type_name: type_name.to_string(),
            config,
            depends_on: Vec::new(),
            refs: Vec::new(),
            sensitive: Vec::new(),
        }
    }

    /// Orders this resource after `sibling`.
    pub fn after(mut self, sibling: &Address) -> Self {
        if !self.depends_on.contains(sibling) {
            self.depends_on.push(sibling.clone());
        }
        self
    }

    /// Sets `attribute` from `sibling`'s `sibling_attribute`, and orders it after the sibling.
    pub fn with_ref(mut self, attribute: &str, sibling: &Address, sibling_attribute: &str) -> Self {
        self.refs.push(SiblingRef {
            attribute: attribute.to_string(),
            sibling: sibling.clone(),
            sibling_attribute: sibling_attribute.to_string(),
        });
        self.after(sibling)
    }
}

/// The key a provider sets (to `true`) in what it reads back for an object that
/// exists only in part: a node whose setup was cut short, a key pair whose private key
/// was never recorded, a NAT gateway gone but for the address it held. The engine
/// takes such an object into state tainted, so the plan replaces it where the
/// configuration still wants it and deletes it (and what it holds) where not; the key
/// itself is never recorded.
pub const HALF_MADE: &str = "tik:half_made";

/// A resource as recorded, for a provider to look up.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub address: Address,
    pub attributes: Map,
    /// Its create was interrupted: it may exist, or not, or (a step) may not have run
    /// to its end.
    pub pending: bool,
    /// The state's lineage, which a provider tagged the object with: what finds a
    /// pending object again, matched on its address by the provider itself.
    pub lineage: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// One change for a provider to make.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub address: Address,
    pub type_name: String,
    pub operation: Operation,
    /// What state recorded; `None` for a create.
    pub prior: Option<Map>,
    /// The wanted attributes, every one known; for a delete, the prior ones.
    pub planned: Map,
    /// The state lineage, for providers that tag what they create.
    pub lineage: String,
    /// Where a change that takes a while says what it is waiting for.
    pub progress: Progress,
}

/// What a change in flight is doing now ("waiting for SSH on 10.0.1.5:22: connection
/// refused"): the provider notes it, apply reports it while the change runs.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Option<String>>>);

impl Progress {
    pub fn note(&self, text: impl Into<String>) {
        if let Ok(mut now) = self.0.lock() {
            *now = Some(text.into());
        }
    }

    pub fn current(&self) -> Option<String> {
        self.0.lock().ok().and_then(|now| now.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    /// The API's own code where it has one (`InvalidParameterValue`).
    pub code: Option<String>,
    pub message: String,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError {
            code: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;

    /// The resource types this provider offers, for `resource` blocks and expansions.
    fn resource_types(&self) -> Vec<ResourceSchema>;

    /// What this provider's workspace or cluster blocks hold beyond the shared parts
    /// (`provider`, `name`, `workspace`, `head`, `workers` with `min` and `max`,
    /// `runtime`, `container`, `ssh`). Anything else is an error with did-you-mean.
    fn block_schema(&self, _kind: BlockKind) -> Schema {
        Schema::default()
    }

    /// Lowers a workspace or cluster block into resources.
    fn expand(&self, request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError>;

    /// Reads what this provider needs from the project in `root` (the `tik`
    /// provider: its runtimes), once per load, before any block is expanded. Files
    /// it reads go into `sources`, so that diagnostics point into them and the
    /// configuration's hash covers them.
    fn load(&self, _root: &Path, _sources: &mut Sources) -> Diagnostics {
        Diagnostics::default()
    }

    /// The mistakes this provider can tell in a block without its values (a
    /// misspelt name of what it adds), for a block that could not be evaluated:
    /// so that one run names every mistake. Where the block evaluates, `expand`
    /// and `layer` report them instead.
    fn check_block(&self, _block: &BlockCheck<'_>) -> Diagnostics {
        Diagnostics::default()
    }

    /// Adds resources of this provider to a cluster another provider has lowered;
    /// `None` where it adds nothing.
    fn layer(&self, _request: &LayerRequest<'_>) -> Result<Option<Layer>, Diagnostics> {
        Ok(None)
    }

    /// A value of this provider's `Layer` completed with what the cluster's
    /// resources hold now: its head's attributes and every node's, in order.
    fn fill_value(&self, value: &Value, _head: Option<&Map>, _nodes: &[Option<&Map>]) -> Value {
        value.clone()
    }

    /// Reads every listed resource of one type in as few calls as the API allows.
    /// The answer is parallel to `items`: `None` where the object no longer exists.
    async fn read(
        &self,
        type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError>;

    /// Makes one change and returns the resource's attributes afterwards (empty for a delete).
    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError>;

    /// Whether changes of this type live in state alone (`tik_data`): they call no API
    /// and run no command, so `--parallelism`, which spares what they would call, does
    /// not count them.
    fn in_state_only(&self, _type_name: &str) -> bool {
        false
    }

    /// Whether deleting this resource, as its attributes stand, leaves the object in
    /// the world and only forgets it (a bucket kept on destroy): the plan says it
    /// will be kept, not destroyed.
    fn keeps_on_delete(&self, _type_name: &str, _attributes: &Map) -> bool {
        false
    }

    /// Called before the reads of one refresh, which may then share calls between types.
    async fn begin_refresh(&self) {}

    /// For the controller: how busy the clusters of `resources` (what state records
    /// within the watched clusters) say they are, one answer per record of this
    /// provider that can tell (a runtime's `scaling` block). None by default.
    async fn demand(&self, _resources: &[ResourceState]) -> Vec<Demand> {
        Vec::new()
    }

    /// Objects tagged with this state's `lineage` that are not among `known` (the state's
    /// resources of this provider): orphans, such as resources removed from state by hand.
    async fn discover(
        &self,
        _lineage: &str,
        _known: &[ReadRequest],
    ) -> Result<Vec<Orphan>, ProviderError> {
        Ok(Vec::new())
    }
}

/// An object that carries tik's tags but that the state does not record.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub address: Address,
    pub type_name: String,
    pub attributes: Map,
}

/// The providers wired into this run, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
    schemas: BTreeMap<String, (String, ResourceSchema)>,
}

impl Providers {
    pub fn new() -> Self {
        let mut p = Providers::default();
        p.add(Arc::new(crate::builtin::DataProvider));
        p
    }

    pub fn add(&mut self, provider: Arc<dyn Provider>) {
        for schema in provider.resource_types() {
            self.schemas.insert(
                schema.type_name.to_string(),
                (provider.name().to_string(), schema),
            );
        }
        self.by_name.insert(provider.name().to_string(), provider);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Every provider, in name order.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    /// Lets every provider read what it needs from the project (`Provider::load`).
    pub fn load(&self, root: &Path, sources: &mut Sources) -> Diagnostics {
        let mut diags = Diagnostics::default();
        for p in self.by_name.values() {
            diags.0.extend(p.load(root, sources).0);
        }
        diags
    }

    /// The provider name and schema of a resource type.
    pub fn schema(&self, type_name: &str) -> Option<(&str, &ResourceSchema)> {
        self.schemas.get(type_name).map(|(p, s)| (p.as_str(), s))
    }

    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }
}

/// Attributes a value has for an address that was never created: computed ones unknown,
/// or copies of the attribute they copy.
pub fn planned_attributes(schema: &ResourceSchema, config: &Map) -> Map {
    let mut out = config.clone();
    for a in schema.attributes.iter().filter(|a| a.computed) {
        if !out.contains_key(a.name) {
            let value = a.copies.map_or(Value::Unknown, |src| {
                config.get(src).cloned().unwrap_or(Value::Null)
            });
            out.insert(a.name.to_string(), value);
        }
    }
    out
}
