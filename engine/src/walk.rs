//! Evaluation of the object graph, one node at a time, in dependency order.
//! Plan and apply both drive a `Walk`: plan with planned values, apply with real ones.

use crate::addr::{Address, Segment};
use crate::config::body::{self, eval_error, Schema};
use crate::config::{Config, Lifecycle, ObjectKind, Repeat};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, FileId, Location};
use crate::eval::{Evaluator, Marks};
use crate::graph::{Graph, Key};
use crate::provider::{
    BlockCheck, BlockKind, ExpandRequest, LayerRequest, Providers, ResourceSpec, SiblingRef,
};
use crate::state::{OutputState, Sizes};
use crate::value::{Map, Value};
use indexmap::IndexMap;
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::rc::Rc;

/// A value given for a root variable.
#[derive(Debug, Clone)]
pub enum InputValue {
    /// Text from `--var` or `TIK_VAR_*`: a string variable takes it as it is, any other
    /// type parses it as an HCL expression.
    Raw {
        text: String,
        source: String,
    },
    Value(Value),
}

#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub values: IndexMap<String, InputValue>,
    /// For `tik validate`: a required variable without a value is unknown, not an error.
    pub missing_unknown: bool,
    /// The pool sizes state records (`tik scale`): a cluster's expansion gets each,
    /// within the pool's `min` and `max`.
    pub sizes: Sizes,
}

/// A setting at fault: the path of its attribute from the block down
/// (`["workers", "default", "idle_timeout"]`), and why.
pub type Fault = (Vec<String>, String);

/// A worker pool as the walk found it: its bounds and the size its cluster was
/// expanded with (the recorded one within `min`..`max`, else `min`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub cluster: Address,
    pub pool: String,
    pub min: u64,
    pub max: u64,
    pub size: u64,
    /// What state records for it, before the bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u64>,
    /// Seconds a worker may have nothing to do before the controller removes it:
    /// set, the pool scales on demand (its runtimes' `scaling` commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
}

impl Pool {
    /// The pools of a cluster's evaluated block with their sizes, and the block as
    /// its provider expands it: a pool with a recorded size gets `size`. A pool whose
    /// bounds are not whole numbers is left to its provider, which says why.
    fn of_cluster(
        cluster: &Address,
        config: &Map,
        sizes: &Sizes,
    ) -> Result<(Vec<Pool>, Option<Map>), Fault> {
        let Some(Value::Object(pools)) = config.get("workers") else {
            return Ok((Vec::new(), None));
        };
        let whole = |v: Option<&Value>| match v {
            Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= 1e15 => {
                Some(*n as u64)
            }
            _ => None,
        };
        let recorded = sizes.get(cluster);
        let mut found = Vec::new();
        let mut sized = pools.clone();
        for (name, settings) in pools {
            let Some(min) = whole(settings.get("min")) else {
                continue;
            };
            let max = match settings.get("max") {
                None | Some(Value::Null) => Some(min),
                v => whole(v),
            };
            let Some(max) = max.filter(|&m| m >= min) else {
                continue;
            };
            let asked = recorded.and_then(|r| r.get(name)).copied();
            let size = asked.map_or(min, |n| n.clamp(min, max));
            let idle_timeout = match settings.get("idle_timeout") {
                None | Some(Value::Null) | Some(Value::Unknown) => None,
                Some(Value::Number(n)) if n.fract() == 0.0 && *n >= 1.0 && *n <= 86_400.0 => {
                    Some(*n as u64)
                }
                Some(other) => {
                    return Err((
                        vec!["workers".into(), name.clone(), "idle_timeout".into()],
                        format!(
                            "workers \"{name}\" idle_timeout must be a whole number of seconds from 1 to 86400, got {other}"
                        ),
                    ))
                }
            };
            if asked.is_some() {
                if let Some(Value::Object(s)) = sized.get_mut(name) {
                    s.insert("size".into(), Value::Number(size as f64));
                }
            }
            found.push(Pool {
                cluster: cluster.clone(),
                pool: name.clone(),
                min,
                max,
                size,
                recorded: asked,
                idle_timeout,
            });
        }
        let expanded = found.iter().any(|p| p.recorded.is_some()).then(|| {
            let mut c = config.clone();
            c.insert("workers".into(), Value::Object(sized));
            c
        });
        Ok((found, expanded))
    }
}

/// One resource a configuration object wants.
#[derive(Debug, Clone)]
pub struct Instance {
    pub address: Address,
    /// Relative to the object (`node.head` in `cluster.etl.node.head`); empty for a resource block.
    pub rel: Address,
    pub type_name: String,
    pub provider: String,
    pub config: Map,
    /// Other instances of the same object that come first.
    pub intra_deps: Vec<Address>,
    /// What this one depends on, as state records it: the objects it reads
    /// (`tik_data.a`, `cluster.etl`: each of their resources) and the resources of
    /// its own object that come first.
    pub dependencies: Vec<Address>,
    pub sensitive: Vec<String>,
    pub lifecycle: Lifecycle,
    /// Attributes taken from siblings, with absolute sibling addresses.
    pub refs: Vec<SiblingRef>,
}

impl Instance {
    /// Fills the attributes taken from siblings, from what is known of them: unknown
    /// where a sibling is not created yet.
    pub fn resolve_refs(&mut self, siblings: &HashMap<Address, Map>) {
        resolve_refs(&mut self.config, &self.refs, siblings);
    }
}

pub fn resolve_refs(config: &mut Map, refs: &[SiblingRef], siblings: &HashMap<Address, Map>) {
    for r in refs {
        let value = siblings
            .get(&r.sibling)
            .and_then(|attrs| attrs.get(&r.sibling_attribute))
            .cloned()
            .unwrap_or(Value::Unknown);
        config.insert(r.attribute.clone(), value);
    }
}

/// A configuration object evaluated in every instance of its module: the resources
/// it wants.
#[derive(Debug, Clone)]
pub struct ObjectEval {
    pub node: NodeIndex,
    pub kind: ObjectKind,
    pub instances: Vec<Instance>,
    /// One per instance of the module: what `finish_object` makes its value from.
    parts: Vec<Part>,
}

/// A workspace, cluster or resource block in one module instance, as it is evaluated.
struct Block<'c> {
    def: &'c crate::config::ObjectDef,
    address: Address,
    /// What the block reads, as state records it.
    dependencies: Vec<Address>,
    /// Its name with the module instance's suffix, before a `name` attribute.
    own_name: String,
}

/// What evaluating a block made: its instances and what its value is made from.
struct Made {
    address: Address,
    own_name: String,
    config: Map,
    instances: Vec<Instance>,
    layered: Vec<(String, Vec<String>, Value)>,
    marks: Marks,
    shape: Shape,
}

impl ObjectEval {
    /// Lets go of what the object's value is made from, once it is made: an apply
    /// of many objects would otherwise keep every instance's configuration.
    pub fn release(&mut self) {
        self.instances = Vec::new();
        self.parts = Vec::new();
    }
}

/// An object in one instance of its module (`module.team["ml"].cluster.etl`).
#[derive(Debug, Clone)]
struct Part {
    /// The module instance.
    inst: usize,
    address: Address,
    /// The name its provider gave it: the block's, with the module instance's suffix.
    name: String,
    config: Map,
    /// Values layers add to a cluster (its runtimes' endpoints): the layer's
    /// provider, the path in the object, and the value before its nodes are known.
    layered: Vec<(String, Vec<String>, Value)>,
    /// How what references the object sees its instances.
    shape: Shape,
    /// Its instances in `ObjectEval::instances`.
    instances: Range<usize>,
}

/// A repeated block's `count` or `each`, as one of its instances sees it.
type Bound = (&'static str, Value);

/// One instance of a module: the root, a called module, or one of a repeated call's
/// (`module.team["ml"]`). Each has its own scope.
#[derive(Debug, Clone)]
struct ModuleInstance {
    module: usize,
    /// `module.team["ml"]`: the prefix of every address in it.
    prefix: Address,
    /// The instance of the calling module.
    parent: Option<usize>,
    /// The instances of the modules it calls.
    children: Vec<usize>,
    /// The call's `count` or `each` for this instance, for its arguments.
    bound: Option<Bound>,
    /// What its workspaces' and clusters' names end with, so that each instance's
    /// are its own: `-ml` in `module.team["ml"]`, empty where nothing is repeated.
    suffix: String,
    /// Repeated by a value known only after apply (`tik validate`): it stands for
    /// every instance, and its call's value is unknown.
    unknown: bool,
}

/// The value a resource block gives what references it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One resource: its attributes (a workspace or cluster: its block, with its
    /// resources at their paths).
    One,
    /// `count`: a list of the instances' attributes, by index.
    List,
    /// `for_each`: an object of the instances' attributes, by key.
    Map,
    /// Repeated by a value known only after apply (`tik validate` without variables).
    Unknown,
}

/// The most instances one `count` or `for_each` makes: a typo such as `count = 1e9`
/// is an error, not an hour of evaluation.
pub const MAX_INSTANCES: usize = 100_000;

pub struct Walk<'c> {
    pub config: &'c Config,
    pub providers: &'c Providers,
    pub graph: Graph,
    inputs: Inputs,
    /// The module instances known so far: the root first, then each call's as its
    /// node is evaluated.
    insts: Vec<ModuleInstance>,
    /// Per module, its instances.
    of_module: Vec<Vec<usize>>,
    /// Per module instance: its scope, its outputs, where its scope holds sensitive
    /// values (by root name: `var`, `cluster`), and its sensitive outputs.
    scopes: Vec<Map>,
    outputs: Vec<Map>,
    marks: Vec<Marks>,
    output_marks: Vec<Marks>,
    /// The module that calls each module, and the call's name.
    callers: Vec<Option<(usize, String)>>,
    /// `path.root` and `path.cwd`.
    paths: (String, String),
    /// The objects behind each node in each module instance, for the dependencies
    /// recorded in state.
    resources: HashMap<(NodeIndex, usize), Rc<Vec<Address>>>,
    /// The names workspaces and clusters have taken, by what they must be unique in
    /// (a provider's workspaces, a workspace's clusters), and who took each.
    names: HashMap<String, Address>,
    pub root_variables: Map,
    pub root_outputs: IndexMap<String, OutputState>,
    /// Every cluster's worker pools, in the order the walk expanded them.
    pub pools: Vec<Pool>,
    /// Every cluster's controller settings.
    pub controls: Vec<crate::controller::Control>,
}

impl<'c> Walk<'c> {
    pub fn new(
        config: &'c Config,
        providers: &'c Providers,
        inputs: Inputs,
    ) -> Result<Walk<'c>, Diagnostics> {
        let graph = Graph::build(config, providers)?;
        let root_dir = config.modules[0].dir.display().to_string();
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut callers = vec![None; config.modules.len()];
        for (mi, m) in config.modules.iter().enumerate() {
            for c in m.calls.values() {
                callers[c.child] = Some((mi, c.name.clone()));
            }
        }
        let mut diags = Diagnostics::default();
        for name in inputs.values.keys() {
            if !config.modules[0].variables.contains_key(name) {
                let source = match &inputs.values[name] {
                    InputValue::Raw { source, .. } => source.clone(),
                    InputValue::Value(_) => "a variables file".into(),
                };
                if source.starts_with("TIK_VAR_") {
                    continue; // the environment may hold variables for other configurations
                }
                diags.push(
                    Diagnostic::new(format!(
                        "{source} sets \"{name}\", but no variable \"{name}\" is declared"
                    ))
                    .help_opt(did_you_mean(
                        name,
                        config.modules[0].variables.keys().map(String::as_str),
                    ))
                    .help_opt(Some(format!(
                        "declare it with variable \"{name}\" {{}} or remove it"
                    ))),
                );
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let mut walk = Walk {
            config,
            providers,
            graph,
            inputs,
            insts: Vec::new(),
            of_module: vec![Vec::new(); config.modules.len()],
            scopes: Vec::new(),
            outputs: Vec::new(),
            marks: Vec::new(),
            output_marks: Vec::new(),
            callers,
            paths: (root_dir, cwd),
            resources: HashMap::new(),
            names: HashMap::new(),
            root_variables: Map::new(),
            root_outputs: IndexMap::new(),
            pools: Vec::new(),
            controls: Vec::new(),
        };
        walk.add_instance(ModuleInstance {
            module: 0,
            prefix: Address::new(),
            parent: None,
            children: Vec::new(),
            bound: None,
            suffix: String::new(),
            unknown: false,
        });
        Ok(walk)
    }

    /// Adds a module instance with an empty scope (but for `path`).
    fn add_instance(&mut self, inst: ModuleInstance) -> usize {
        let k = self.insts.len();
        let dir = self.dir(inst.module).display().to_string();
        let path: Map = [
            ("module".to_string(), Value::String(dir)),
            ("root".to_string(), Value::String(self.paths.0.clone())),
            ("cwd".to_string(), Value::String(self.paths.1.clone())),
        ]
        .into_iter()
        .collect();
        self.scopes.push(
            [("path".to_string(), Value::Object(path))]
                .into_iter()
                .collect(),
        );
        self.outputs.push(Map::new());
        self.marks.push(Marks::default());
        self.output_marks.push(Marks::default());
        self.of_module[inst.module].push(k);
        if let Some(p) = inst.parent {
            self.insts[p].children.push(k);
        }
        self.insts.push(inst);
        k
    }

    fn dir(&self, module: usize) -> PathBuf {
        self.config.modules[module].dir.clone()
    }

    fn insert(&mut self, k: usize, root: &str, name: &str, value: Value) {
        let entry = self.scopes[k]
            .entry(root.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(name.to_string(), value);
        }
    }

    /// Evaluates an expression in a module instance's scope, with a repeated block's
    /// `count` or `each` bound: its value, and where it is sensitive.
    fn eval_in(
        &self,
        k: usize,
        expr: &hcl_edit::expr::Expression,
        file: crate::diag::FileId,
        bound: Option<&Bound>,
    ) -> Result<(Value, Marks), Diagnostics> {
        let dir = self.dir(self.insts[k].module);
        let mut ev = Evaluator::new(&self.scopes[k], &dir).with_marks(&self.marks[k]);
        if let Some((name, value)) = bound {
            ev.bind(name, value.clone());
        }
        ev.eval_with_marks(expr)
            .map_err(|e| eval_error(file, e).into())
    }

    /// The instances of module `module` that instance `k` sees: itself, its caller,
    /// or its calls' instances.
    fn related(&self, module: usize, k: usize) -> Vec<usize> {
        let inst = &self.insts[k];
        if inst.module == module {
            return vec![k];
        }
        if let Some(p) = inst.parent.filter(|&p| self.insts[p].module == module) {
            return vec![p];
        }
        inst.children
            .iter()
            .copied()
            .filter(|&c| self.insts[c].module == module)
            .collect()
    }

    /// Union of the objects behind the dependencies of `i` in module instance `k`.
    fn dependency_resources(&self, i: NodeIndex, k: usize) -> Vec<Address> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for d in self.graph.dependencies(i) {
            for dk in self.related(self.graph.vertex(d).module, k) {
                for a in self
                    .resources
                    .get(&(d, dk))
                    .into_iter()
                    .flat_map(|r| r.iter())
                {
                    if seen.insert(a) {
                        out.push(a.clone());
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Evaluates one node, in each instance of its module. Value nodes are done at
    /// once; objects return their instances, and are done when `finish_object` gets
    /// the instances' attributes.
    pub fn eval_node(&mut self, i: NodeIndex) -> Result<Option<ObjectEval>, Diagnostics> {
        let node = self.graph.vertex(i).clone();
        let insts = self.of_module[node.module].clone();
        let mut object = match &node.key {
            Key::Object(kind, _) => Some(ObjectEval {
                node: i,
                kind: kind.clone(),
                instances: Vec::new(),
                parts: Vec::new(),
            }),
            _ => None,
        };
        for k in insts {
            let done = match (&node.key, &mut object) {
                (Key::Object(kind, name), Some(object)) => {
                    self.eval_object(i, k, kind.clone(), name.clone(), object)
                }
                (key, _) => self.eval_value(i, k, key),
            };
            done.map_err(|mut d| {
                if self.insts[k]
                    .prefix
                    .0
                    .iter()
                    .any(|s| !matches!(s, Segment::Name(_)))
                {
                    for d in &mut d.0 {
                        *d = d.clone().note(format!("in {}", self.insts[k].prefix), None);
                    }
                }
                d
            })?;
        }
        Ok(object)
    }

    /// Evaluates a value node in module instance `k`.
    fn eval_value(&mut self, i: NodeIndex, k: usize, key: &Key) -> Result<(), Diagnostics> {
        let m = self.insts[k].module;
        let module = &self.config.modules[m];
        self.resources
            .insert((i, k), Rc::new(self.dependency_resources(i, k)));
        match key {
            Key::Var(name) => {
                let (value, mut marks) = self.eval_variable(k, name)?;
                let var = &module.variables[name];
                check_depth(&value, var.file, &var.span)?;
                if var.sensitive {
                    marks = Marks::whole();
                }
                self.marks[k].put(&["var", name.as_str()], marks);
                if k == 0 {
                    self.root_variables.insert(name.clone(), value.clone());
                }
                self.insert(k, "var", name, value);
            }
            Key::Local(name) => {
                let local = &module.locals[name];
                let (value, marks) = self.eval_in(k, &local.expr, local.file, None)?;
                check_depth(&value, local.file, &local.span)?;
                self.marks[k].put(&["local", name.as_str()], marks);
                self.insert(k, "local", name, value);
            }
            Key::Output(name) => {
                let out = &module.outputs[name];
                let (value, mut marks) = self.eval_in(k, &out.value, out.file, None)?;
                check_depth(&value, out.file, &out.span)?;
                if out.sensitive {
                    marks = Marks::whole();
                }
                // Shown with its sensitive parts hidden, or hidden as a whole.
                let sensitive = marks.is_whole();
                let sensitive_parts = if sensitive { vec![] } else { marks.paths() };
                self.output_marks[k].put(&[name.as_str()], marks);
                if k == 0 {
                    self.root_outputs.insert(
                        name.clone(),
                        OutputState {
                            value: value.clone(),
                            sensitive,
                            sensitive_parts,
                        },
                    );
                }
                self.outputs[k].insert(name.clone(), value);
            }
            Key::ModuleOutputs(name) => {
                let call = &module.calls[name];
                let (value, marks) = self.module_value(k, call);
                self.marks[k].put(&["module", name.as_str()], marks);
                self.insert(k, "module", name, value);
            }
            Key::Call(name) => self.eval_call(k, &module.calls[name])?,
            Key::Object(..) => {}
        }
        Ok(())
    }

    /// `module.NAME` in instance `k`: the outputs of the call's instance, or a list
    /// (`count`) or an object (`for_each`) of its instances' outputs.
    fn module_value(&self, k: usize, call: &crate::config::ModuleCall) -> (Value, Marks) {
        let children: Vec<usize> = self.related(call.child, k);
        let one = |c: usize| Value::Object(self.outputs[c].clone());
        if call.repeat.is_none() {
            return match children.first() {
                Some(&c) => (one(c), self.output_marks[c].clone()),
                None => (Value::Object(Map::new()), Marks::default()),
            };
        }
        if children.iter().any(|&c| self.insts[c].unknown) {
            return (Value::Unknown, Marks::default());
        }
        let mut marks = Marks::default();
        let mut items = Vec::new();
        let mut map = Map::new();
        for (n, &c) in children.iter().enumerate() {
            match self.insts[c].prefix.0.last() {
                Some(Segment::Key(key)) => {
                    marks.put(&[key.as_str()], self.output_marks[c].clone());
                    map.insert(key.clone(), one(c));
                }
                _ => {
                    marks.put(&[n.to_string()], self.output_marks[c].clone());
                    items.push(one(c));
                }
            }
        }
        match call.repeat {
            Some(Repeat::ForEach(_)) => (Value::Object(map), marks),
            _ => (Value::List(items), marks),
        }
    }

    /// The instances a module call makes in instance `k` of the calling module.
    fn eval_call(&mut self, k: usize, call: &crate::config::ModuleCall) -> Result<(), Diagnostics> {
        let prefix = self.insts[k].prefix.clone().name("module").name(&call.name);
        let parent_suffix = self.insts[k].suffix.clone();
        let mut each: Vec<(Option<Segment>, Option<Bound>)> = Vec::new();
        let mut unknown = false;
        match &call.repeat {
            None => each.push((None, None)),
            Some(repeat) => match self.repetition(k, call.file, repeat)? {
                Some(list) => {
                    each = list
                        .into_iter()
                        .map(|(at, v)| (Some(at), Some((repeat.root(), v))))
                        .collect()
                }
                None => {
                    // Known only after apply: check the module once, as any instance.
                    unknown = true;
                    each.push((None, Some((repeat.root(), Value::Unknown))));
                }
            },
        }
        let mut suffixes: HashMap<String, String> = HashMap::new();
        for (at, bound) in each {
            let mut suffix = parent_suffix.clone();
            let mut prefix = prefix.clone();
            if let Some(at) = at {
                let part = name_part(&at);
                if let Some(other) = suffixes.insert(part.clone(), segment_key(&at)) {
                    use hcl_edit::Span;
                    let expr = call.repeat.as_ref().map(Repeat::expr);
                    return Err(Diagnostic::new(format!(
                        "the keys \"{other}\" and \"{}\" of module \"{}\" both make names ending in \"-{part}\"",
                        segment_key(&at),
                        call.name
                    ))
                    .at(call.file, expr.and_then(|e| e.span()))
                    .help("each instance's workspaces and clusters take its key, in lower case with other characters as -, as their names' end: make the keys differ in letters or digits")
                    .into());
                }
                suffix = format!("{suffix}-{part}");
                prefix.0.push(at);
            }
            self.add_instance(ModuleInstance {
                module: call.child,
                prefix,
                parent: Some(k),
                children: Vec::new(),
                bound,
                suffix,
                unknown,
            });
        }
        Ok(())
    }

    /// A variable's value in module instance `k`, and where the value its caller passed
    /// it is sensitive.
    fn eval_variable(&self, k: usize, name: &str) -> Result<(Value, Marks), Diagnostics> {
        let m = self.insts[k].module;
        let module = &self.config.modules[m];
        let var = &module.variables[name];
        let mut passed = Marks::default();
        // Where the value was written, for an error in its type: a module call's
        // argument, the default, or (None) the command line or environment.
        let mut written_at: Option<(FileId, Option<Range<usize>>)> = None;
        let mut given_by: Option<&str> = None;
        let raw = match (&self.callers[m], self.insts[k].parent) {
            (Some((parent, call)), Some(pk)) => {
                let call = &self.config.modules[*parent].calls[call];
                match call.args.get(name) {
                    Some(attr) => {
                        let bound = self.insts[k].bound.as_ref();
                        let (v, marks) = self.eval_in(pk, &attr.value, call.file, bound)?;
                        passed = marks;
                        written_at = Some((call.file, hcl_edit::Span::span(&attr.value)));
                        Some(v)
                    }
                    None => None,
                }
            }
            _ => match self.inputs.values.get(name) {
                Some(InputValue::Value(v)) => Some(v.clone()),
                Some(InputValue::Raw { text, .. }) if var.ty.takes_raw_text() => {
                    Some(Value::String(text.clone()))
                }
                Some(InputValue::Raw { text, source }) => {
                    let bad = |why: String| {
                        Diagnostic::new(format!(
                            "{source}: the value of \"{name}\" is not valid: {why}"
                        ))
                        .help(format!("variable \"{name}\" has type {}", var.ty))
                    };
                    let expr = hcl_edit::parser::parse_expr(text)
                        .map_err(|e| bad(e.message().to_string()))?;
                    given_by = Some(source.as_str());
                    Some(body::eval_literal(&expr).map_err(|e| bad(e.message))?)
                }
                None => None,
            },
        };
        let value = match (raw, &var.default) {
            (Some(v), _) => v,
            (None, Some(default)) => {
                written_at = Some((var.file, hcl_edit::Span::span(default)));
                body::eval_literal(default).map_err(|e| eval_error(var.file, e))?
            }
            (None, None) if self.inputs.missing_unknown => {
                return Ok((Value::Unknown, Marks::default()))
            }
            (None, None) => {
                let help = match &self.callers[m] {
                    Some((_, call)) => format!("add {name} = ... to module \"{call}\""),
                    None => format!("set it with --var {name}=..., in a --var-file, or as TIK_VAR_{name}; or give it a default"),
                };
                return Err(Diagnostic::new(format!(
                    "no value for the required variable \"{name}\""
                ))
                .at(var.file, var.span.clone())
                .help(help)
                .into());
            }
        };
        let value = var.ty.convert(value).map_err(|e| {
            let from = given_by.map(|s| format!("{s}: ")).unwrap_or_default();
            // The type error quotes the value: not a sensitive one.
            let e = if var.sensitive || !passed.is_empty() {
                format!(
                    "it is not a {} (the value is sensitive, so it is not shown)",
                    var.ty
                )
            } else {
                e
            };
            let d = Diagnostic::new(format!("{from}invalid value for variable \"{name}\": {e}"));
            let declared = var.span.clone().map(|span| Location {
                file: var.file,
                span,
            });
            match written_at {
                Some((file, span @ Some(_))) => d.at(file, span).note("the variable", declared),
                _ => d.at(var.file, var.span.clone()),
            }
            .help(format!("the variable's type is {}", var.ty))
        })?;
        let mut marks = Marks::default();
        if var.sensitive {
            marks.mark(&["var", name]);
        } else {
            marks.put(&["var", name], passed.clone());
        }
        for v in &var.validations {
            let mut scope = Map::new();
            scope.insert(
                "var".into(),
                Value::Object([(name.to_string(), value.clone())].into_iter().collect()),
            );
            let dir = self.dir(m);
            let mut ev = Evaluator::new(&scope, &dir).with_marks(&marks);
            let ok = ev.eval(&v.condition).map_err(|e| eval_error(var.file, e))?;
            if ok == Value::Bool(false) {
                let msg = ev
                    .eval_message(&v.error_message)
                    .map_err(|e| eval_error(var.file, e))?;
                use hcl_edit::Span;
                return Err(Diagnostic::new(format!(
                    "invalid value for variable \"{name}\": {msg}"
                ))
                .at(var.file, v.condition.span())
                .help("this validation rule failed; change the value")
                .into());
            }
            if !matches!(ok, Value::Bool(true) | Value::Unknown) {
                use hcl_edit::Span;
                return Err(
                    Diagnostic::new("a validation condition must be true or false")
                        .at(var.file, v.condition.span())
                        .into(),
                );
            }
        }
        Ok((value, passed))
    }

    /// Evaluates an object in module instance `k`, adding its resources to `object`.
    fn eval_object(
        &mut self,
        i: NodeIndex,
        k: usize,
        kind: ObjectKind,
        name: String,
        object: &mut ObjectEval,
    ) -> Result<(), Diagnostics> {
        let config = self.config;
        let def = self
            .graph
            .vertex(i)
            .object
            .and_then(|oi| config.modules[self.insts[k].module].objects.get(oi))
            .ok_or_else(|| {
                Diagnostics::from(Diagnostic::new(format!("internal: object {name} vanished")))
            })?;
        let block = Block {
            def,
            address: self.insts[k].prefix.clone().name(kind.root()).name(&name),
            dependencies: self.dependency_resources(i, k),
            // The name its provider makes the names of its resources from.
            own_name: format!("{name}{}", self.insts[k].suffix),
        };
        let made = match &kind {
            ObjectKind::Resource(type_name) => self.eval_resources(k, &block, type_name, &name)?,
            ObjectKind::Workspace => self.eval_expanded(k, block, BlockKind::Workspace, &name)?,
            ObjectKind::Cluster => self.eval_expanded(k, block, BlockKind::Cluster, &name)?,
        };
        self.record_object(i, k, &kind, &name, made, object);
        Ok(())
    }

    /// A resource block's instances: one, or one per index or key of its `count`
    /// or `for_each`.
    fn eval_resources(
        &mut self,
        k: usize,
        block: &Block<'_>,
        type_name: &str,
        name: &str,
    ) -> Result<Made, Diagnostics> {
        let def = block.def;
        let (provider, schema) = self.providers.schema(type_name).ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::new(format!("unknown resource type \"{type_name}\""))
                    .at(def.file, def.span.clone()),
            )
        })?;
        let mut body_schema = Schema::default();
        for a in schema.attributes.iter().filter(|a| !a.computed) {
            body_schema = if a.required {
                body_schema.required(a.name)
            } else {
                body_schema.attr(a.name)
            };
        }
        let what = format!("resource \"{type_name}\" \"{name}\"");
        let mut shape = Shape::One;
        let each: Vec<(Address, Option<Bound>)> = match &def.repeat {
            None => vec![(Address::new(), None)],
            Some(repeat) => match self.repetition(k, def.file, repeat)? {
                Some(each) => {
                    shape = match repeat {
                        Repeat::Count(_) => Shape::List,
                        Repeat::ForEach(_) => Shape::Map,
                    };
                    each.into_iter()
                        .map(|(at, v)| (Address(vec![at]), Some((repeat.root(), v))))
                        .collect()
                }
                None => {
                    // Known only after apply: check the block once, as any instance.
                    shape = Shape::Unknown;
                    let bound = Some((repeat.root(), Value::Unknown));
                    self.eval_block(k, def, &body_schema, &what, bound)?;
                    Vec::new()
                }
            },
        };
        let mut instances = Vec::new();
        for (rel, bound) in each {
            let at = block.address.join(&rel);
            let (config, config_marks) = self
                .eval_block(k, def, &body_schema, &what, bound)
                .map_err(|mut d| {
                    if !rel.0.is_empty() {
                        for d in &mut d.0 {
                            *d = d.clone().note(format!("in {at}"), None);
                        }
                    }
                    d
                })?;
            let read_sensitive = config_marks.keys().map(str::to_string).collect();
            let sensitive = with_schema_sensitive(schema, read_sensitive);
            instances.push(Instance {
                address: at,
                rel,
                type_name: type_name.to_string(),
                provider: provider.to_string(),
                config,
                intra_deps: Vec::new(),
                dependencies: block.dependencies.clone(),
                sensitive,
                lifecycle: def.lifecycle.clone(),
                refs: Vec::new(),
            });
        }
        Ok(Made {
            address: block.address.clone(),
            own_name: block.own_name.clone(),
            config: Map::new(),
            instances,
            layered: Vec::new(),
            marks: Marks::default(),
            shape,
        })
    }

    /// A workspace or cluster block, expanded by its provider into resources (and,
    /// for a cluster, what other providers layer onto it), in dependency order.
    fn eval_expanded(
        &mut self,
        k: usize,
        block: Block<'_>,
        block_kind: BlockKind,
        name: &str,
    ) -> Result<Made, Diagnostics> {
        let def = block.def;
        let what = match block_kind {
            BlockKind::Workspace => format!("workspace \"{name}\""),
            BlockKind::Cluster => format!("cluster \"{name}\""),
        };
        let schema = self.block_schema(k, def, block_kind);
        let (config, config_marks) =
            self.eval_block(k, def, &schema, &what, None)
                .map_err(|mut d| {
                    // What the providers can tell without its values is named too.
                    d.0.extend(self.provider_checks(def, block_kind, &what).0);
                    d
                })?;
        let provider_name = match block_kind {
            BlockKind::Workspace => config.get("provider"),
            BlockKind::Cluster => config.get("workspace").and_then(|w| w.get("provider")),
        }
        .and_then(Value::as_str)
        .map(str::to_string);
        let Some(provider_name) = provider_name else {
            let msg = match block_kind {
                BlockKind::Workspace => "provider must be a string such as \"local\"",
                BlockKind::Cluster => {
                    "workspace must refer to a workspace block, as in workspace = workspace.NAME"
                }
            };
            return Err(Diagnostic::new(format!("{what}: {msg}"))
                .at(def.file, def.span.clone())
                .into());
        };
        let own_name = self.claim_name(
            &block.address,
            def,
            &what,
            &config,
            block.own_name.clone(),
            &provider_name,
        )?;
        let provider = self.provider(&provider_name, &what, def)?;
        let mut sized = None;
        if block_kind == BlockKind::Cluster {
            let at = |(path, message): Fault| {
                let span = body::span_of(&def.body, &path).or(def.span.clone());
                Diagnostics::from(Diagnostic::new(format!("{what}: {message}")).at(def.file, span))
            };
            let (pools, with_sizes) =
                Pool::of_cluster(&block.address, &config, &self.inputs.sizes).map_err(at)?;
            self.pools.extend(pools);
            sized = with_sizes;
            let control =
                crate::controller::Control::of_cluster(&block.address, &config).map_err(at)?;
            self.controls.push(control);
        }
        let specs = provider
            .expand(&ExpandRequest {
                kind: block_kind,
                name: &own_name,
                config: sized.as_ref().unwrap_or(&config),
            })
            .map_err(|e| {
                let span = body::span_of(&def.body, &e.path).or(def.span.clone());
                Diagnostics::from(
                    Diagnostic::new(format!("{what}: {}", e.message)).at(def.file, span),
                )
            })?;
        let mut specs: Vec<(ResourceSpec, String)> = specs
            .into_iter()
            .map(|s| (s, provider_name.clone()))
            .collect();
        mark_copies(&mut specs, &config, &config_marks);
        let mut marks = Marks::default();
        let mut layered = Vec::new();
        if block_kind == BlockKind::Cluster {
            // Other providers add to the cluster what they run on its nodes.
            let mut added = Vec::new();
            for layer in self.providers.all() {
                let request = LayerRequest {
                    cluster: &own_name,
                    address: &block.address,
                    config: &config,
                    marks: &config_marks,
                    resources: specs.iter().map(|(s, _)| (&s.path, &s.config)).collect(),
                    file: def.file,
                    span: def.span.clone(),
                    body: &def.body,
                    what: &what,
                };
                if let Some(l) = layer.layer(&request)? {
                    added.push((layer.name().to_string(), l));
                }
            }
            for (name, l) in added {
                specs.extend(l.resources.into_iter().map(|s| (s, name.clone())));
                layered.extend(l.values.into_iter().map(|(p, v)| (name.clone(), p, v)));
                marks.merge(l.marks);
            }
        }
        marks.merge(config_marks);
        mark_sensitive(&mut specs, |t| self.providers.schema(t).map(|(_, s)| s));
        let instances = self.expanded_instances(&block, specs, &what, &provider_name)?;
        Ok(Made {
            address: block.address,
            own_name,
            config,
            instances,
            layered,
            marks,
            shape: Shape::One,
        })
    }

    /// The provider a workspace or cluster names, or an error with the close name.
    fn provider(
        &self,
        provider_name: &str,
        what: &str,
        def: &crate::config::ObjectDef,
    ) -> Result<&'c std::sync::Arc<dyn crate::provider::Provider>, Diagnostics> {
        let providers: &'c Providers = self.providers;
        providers.get(provider_name).ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::new(format!("{what}: unknown provider \"{provider_name}\""))
                    .at(def.file, def.span.clone())
                    .help(
                        did_you_mean(provider_name, providers.names()).unwrap_or_else(|| {
                            format!(
                                "the providers in this tik are: {}",
                                providers
                                    .names()
                                    .filter(|n| *n != "tik")
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }),
                    ),
            )
        })
    }

    /// An expansion's resources as instances at their addresses, each after the
    /// siblings it needs and recording them and what the block reads.
    fn expanded_instances(
        &self,
        block: &Block<'_>,
        specs: Vec<(ResourceSpec, String)>,
        what: &str,
        provider_name: &str,
    ) -> Result<Vec<Instance>, Diagnostics> {
        let address = &block.address;
        let mut instances = Vec::with_capacity(specs.len());
        for (spec, provider_name) in specs {
            let schema_ok = self
                .providers
                .schema(&spec.type_name)
                .is_some_and(|(p, _)| p == provider_name);
            if !schema_ok {
                return Err(Diagnostic::new(format!(
                    "internal: provider {provider_name} expanded {what} into unknown type {}",
                    spec.type_name
                ))
                .into());
            }
            let refs = spec
                .refs
                .iter()
                .map(|r| SiblingRef {
                    sibling: address.join(&r.sibling),
                    ..r.clone()
                })
                .collect();
            instances.push(Instance {
                address: address.join(&spec.path),
                intra_deps: spec.depends_on.iter().map(|d| address.join(d)).collect(),
                refs,
                rel: spec.path,
                type_name: spec.type_name,
                provider: provider_name.clone(),
                config: spec.config,
                dependencies: block.dependencies.clone(),
                sensitive: spec.sensitive,
                lifecycle: block.def.lifecycle.clone(),
            });
        }
        let mut instances = order_siblings(instances).map_err(|msg| {
            Diagnostics::from(Diagnostic::new(format!(
                "internal: provider {provider_name} expanded {what} badly: {msg}"
            )))
        })?;
        for inst in &mut instances {
            let mut deps = inst.intra_deps.clone();
            deps.extend(inst.dependencies.iter().cloned());
            deps.sort();
            deps.dedup();
            inst.dependencies = deps;
        }
        Ok(instances)
    }

    /// Records an evaluated object: in the module instance's scope marks, and as a
    /// part of its `ObjectEval`.
    fn record_object(
        &mut self,
        i: NodeIndex,
        k: usize,
        kind: &ObjectKind,
        name: &str,
        made: Made,
        object: &mut ObjectEval,
    ) {
        let Made {
            address,
            own_name,
            config,
            instances,
            layered,
            mut marks,
            shape,
        } = made;
        // What depends on the object records the object, not each of its resources:
        // `tik_data.b[*]` reading `tik_data.a[count.index]` records one address each.
        self.resources
            .insert((i, k), Rc::new(vec![address.clone()]));
        // What reads the object reads its instances' sensitive attributes where its value
        // holds them (`node.head.connection`), as `finish_object` puts them there.
        for inst in &instances {
            let mut path: Vec<String> = inst.rel.0.iter().map(segment_key).collect();
            for a in &inst.sensitive {
                path.push(a.clone());
                marks.mark(&path);
                path.pop();
            }
        }
        self.marks[k].put(&[kind.root(), name], marks);
        let start = object.instances.len();
        object.instances.extend(instances);
        object.parts.push(Part {
            inst: k,
            address,
            name: own_name,
            config,
            layered,
            shape,
            instances: start..object.instances.len(),
        });
    }

    /// The name a workspace or cluster goes by in its provider: its `name`, or the
    /// block's with its module instance's suffix. Two workspaces of one provider, or
    /// two clusters of one workspace, cannot share one: their resources would be the
    /// same.
    fn claim_name(
        &mut self,
        address: &Address,
        def: &crate::config::ObjectDef,
        what: &str,
        config: &Map,
        default: String,
        provider: &str,
    ) -> Result<String, Diagnostics> {
        use hcl_edit::Span;
        let at = def
            .body
            .get_attribute("name")
            .and_then(|a| a.value.span())
            .or_else(|| def.span.clone());
        let name = match config.get("name") {
            None | Some(Value::Null) => default,
            Some(Value::Unknown) if self.inputs.missing_unknown => default,
            Some(Value::String(n)) if valid_name(n) => n.clone(),
            Some(other) => {
                let shown = match other {
                    Value::Unknown => "a value known only after apply".to_string(),
                    Value::String(_) => other.to_string(),
                    other => other.a_type(),
                };
                return Err(Diagnostic::new(format!(
                    "{what}: name must be 1 to 63 letters, digits, - or _, starting with a letter or digit, not {shown}"
                ))
                .at(def.file, at)
                .help("its resources are named after it: write name = \"etl-${var.team}\" or leave it out to take the block's")
                .into());
            }
        };
        let taken = match def.kind {
            ObjectKind::Workspace => format!("the {provider} workspace \"{name}\""),
            _ => match config.get("workspace").and_then(|w| w.get("name")) {
                Some(Value::String(w)) => format!("the cluster \"{name}\" of workspace \"{w}\""),
                _ => return Ok(name),
            },
        };
        if let Some(first) = self.names.get(&taken) {
            return Err(Diagnostic::new(format!(
                "{first} and {address} are both {taken}: they would be the same resources"
            ))
            .at(def.file, at)
            .help("give one a name of its own: name = \"...\" in its block, from a variable of its module")
            .into());
        }
        self.names.insert(taken, address.clone());
        Ok(name)
    }

    /// The instances a repeated resource block makes: each one's place (`[0]`,
    /// `["web"]`) and the value of its `count` or `each`; `None` when it is known
    /// only after apply, which only `tik validate` accepts.
    fn repetition(
        &self,
        k: usize,
        file: FileId,
        repeat: &Repeat,
    ) -> Result<Option<Vec<(Segment, Value)>>, Diagnostics> {
        use hcl_edit::Span;
        let (meta, expr) = match repeat {
            Repeat::Count(e) => ("count", e),
            Repeat::ForEach(e) => ("for_each", e),
        };
        let (value, marks) = self.eval_in(k, expr, file, None)?;
        let err = |msg: String, help: &str| -> Diagnostics {
            Diagnostic::new(msg).at(file, expr.span()).help(help).into()
        };
        if !marks.is_empty() {
            return Err(err(
                format!("{meta} reads a sensitive value"),
                "its keys name the instances in every plan and in state; repeat over what is not secret (the names), and read the secret inside the block",
            ));
        }
        let unknown = match (&value, repeat) {
            (Value::Unknown, _) => true,
            // A map's keys are known even where its values are not.
            (Value::List(items), Repeat::ForEach(_)) => items.contains(&Value::Unknown),
            _ => false,
        };
        if unknown {
            if self.inputs.missing_unknown {
                return Ok(None);
            }
            return Err(err(
                format!("{meta} is known only after apply"),
                "the instances must be known to plan them: take it from variables and locals, or create what it reads first with tik apply --target ADDR",
            ));
        }
        let too_many = |n: usize| {
            err(
                format!("{meta} makes {n} instances; the most is {MAX_INSTANCES}"),
                "check the value; split the resources over several blocks if you need this many",
            )
        };
        let object = |pairs: [(&str, Value); 2]| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        match repeat {
            Repeat::Count(_) => {
                let n = crate::eval::to_number(&value)
                    .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                    .ok_or_else(|| {
                        let not = match &value {
                            Value::Number(n) => crate::value::format_number(*n),
                            other => other.a_type(),
                        };
                        err(
                            format!("count must be a whole number, 0 or more, not {not}"),
                            "write count = 3, or count = length(var.names)",
                        )
                    })?;
                if n > MAX_INSTANCES as f64 {
                    return Err(too_many(n as usize));
                }
                Ok(Some(
                    (0..n as u64)
                        .map(|i| {
                            let index = Value::Object(
                                [("index".to_string(), Value::Number(i as f64))]
                                    .into_iter()
                                    .collect(),
                            );
                            (Segment::Index(i), index)
                        })
                        .collect(),
                ))
            }
            Repeat::ForEach(_) => {
                let pairs: Vec<(String, Value)> = match value {
                    Value::Object(map) => map.into_iter().collect(),
                    Value::List(items) => {
                        let mut seen = HashSet::new();
                        let mut keys = Vec::with_capacity(items.len());
                        for (n, item) in items.into_iter().enumerate() {
                            let Value::String(k) = item else {
                                return Err(err(
                                    format!("for_each takes a map or a set of strings; item {n} is {}", item.a_type()),
                                    "turn the items into strings: toset([for x in LIST : tostring(x)])",
                                ));
                            };
                            if !seen.insert(k.clone()) {
                                return Err(err(
                                    format!(
                                        "for_each lists \"{k}\" twice: each key names one instance"
                                    ),
                                    "drop the duplicates with toset(...)",
                                ));
                            }
                            keys.push((k.clone(), Value::String(k)));
                        }
                        keys
                    }
                    other => {
                        return Err(err(
                            format!(
                                "for_each takes a map or a set of strings, not {}",
                                other.a_type()
                            ),
                            "write for_each = toset([\"a\", \"b\"]) or for_each = { a = 1, b = 2 }",
                        ))
                    }
                };
                if pairs.len() > MAX_INSTANCES {
                    return Err(too_many(pairs.len()));
                }
                Ok(Some(
                    pairs
                        .into_iter()
                        .map(|(k, v)| {
                            let each = object([("key", Value::String(k.clone())), ("value", v)]);
                            (Segment::Key(k), each)
                        })
                        .collect(),
                ))
            }
        }
    }

    /// What providers can tell wrong in a workspace or cluster block without its
    /// values (`Provider::check_block`).
    fn provider_checks(
        &self,
        def: &crate::config::ObjectDef,
        kind: BlockKind,
        what: &str,
    ) -> Diagnostics {
        let check = BlockCheck {
            kind,
            file: def.file,
            span: def.span.clone(),
            body: &def.body,
            what,
        };
        let mut diags = Diagnostics::default();
        for p in self.providers.names().filter_map(|n| self.providers.get(n)) {
            diags.0.extend(p.check_block(&check).0);
        }
        diags
    }

    /// The mistakes of a workspace or cluster block that is not evaluated because
    /// something it reads failed: the names its schema and providers do not take.
    /// Its other errors would only echo the first failure; these are its own.
    pub fn check_unevaluated(&self, i: NodeIndex) -> Diagnostics {
        let vertex = self.graph.vertex(i);
        let Key::Object(kind, name) = &vertex.key else {
            return Diagnostics::default();
        };
        let block_kind = match kind {
            ObjectKind::Workspace => BlockKind::Workspace,
            ObjectKind::Cluster => BlockKind::Cluster,
            ObjectKind::Resource(_) => return Diagnostics::default(),
        };
        let module = &self.config.modules[vertex.module];
        let Some(def) = vertex.object.and_then(|o| module.objects.get(o)) else {
            return Diagnostics::default();
        };
        let Some(&k) = self.of_module[vertex.module].first() else {
            return Diagnostics::default();
        };
        let what = match block_kind {
            BlockKind::Workspace => format!("workspace \"{name}\""),
            BlockKind::Cluster => format!("cluster \"{name}\""),
        };
        let schema = self.block_schema(k, def, block_kind);
        let mut diags = body::check_names(&def.body, &schema, &what, def.file);
        diags
            .0
            .extend(self.provider_checks(def, block_kind, &what).0);
        diags
    }

    /// The schema of a workspace or cluster block: the shared parts and its
    /// provider's. The provider is read first (a workspace's `provider`, a
    /// cluster's workspace's); where it is not known yet, every provider's parts
    /// are taken, and the error about the provider follows the evaluation.
    fn block_schema(&self, k: usize, def: &crate::config::ObjectDef, kind: BlockKind) -> Schema {
        let (key, path): (&str, &[&str]) = match kind {
            BlockKind::Workspace => ("provider", &[]),
            BlockKind::Cluster => ("workspace", &["provider"]),
        };
        let named = def
            .body
            .get_attribute(key)
            .and_then(|a| {
                let dir = self.dir(self.insts[k].module);
                Evaluator::new(&self.scopes[k], &dir)
                    .with_marks(&self.marks[k])
                    .eval(&a.value)
                    .ok()
            })
            .and_then(|v| {
                let mut v = &v;
                for p in path {
                    v = v.get(p)?;
                }
                v.as_str().map(str::to_string)
            });
        let shared = body::shared_schema(kind);
        match named.as_deref().and_then(|n| self.providers.get(n)) {
            Some(p) => shared.merge(p.block_schema(kind)),
            None => self
                .providers
                .names()
                .filter_map(|n| self.providers.get(n))
                .fold(shared, |s, p| s.merge(p.block_schema(kind))),
        }
    }

    /// Evaluates an object's block against its schema; `what` names it in errors.
    /// `bound` is the `count` or `each` of a repeated block's instance.
    fn eval_block(
        &self,
        k: usize,
        def: &crate::config::ObjectDef,
        schema: &Schema,
        what: &str,
        bound: Option<Bound>,
    ) -> Result<(Map, Marks), Diagnostics> {
        let dir = self.dir(self.insts[k].module);
        let mut ev = Evaluator::new(&self.scopes[k], &dir).with_marks(&self.marks[k]);
        ev.validating = self.inputs.missing_unknown;
        if let Some((name, value)) = bound {
            ev.bind(name, value);
        }
        let mut marks = Marks::default();
        let (file, span) = (def.file, def.span.clone());
        let config = body::eval_body(&def.body, schema, what, file, span, &mut ev, &mut marks)?;
        for v in config.values() {
            check_depth(v, def.file, &def.span)?;
        }
        Ok((config, marks))
    }

    /// Makes an object's value visible to what references it, in each instance of
    /// its module, from its instances' attributes.
    pub fn finish_object(&mut self, object: &ObjectEval, attributes: &HashMap<Address, Map>) {
        let name = match &self.graph.vertex(object.node).key {
            Key::Object(_, n) => n.clone(),
            _ => return,
        };
        for part in &object.parts {
            let value = part_value(self.providers, object, part, attributes);
            self.insert(part.inst, object.kind.root(), &name, value);
        }
    }
}

/// An object's value in one module instance.
fn part_value(
    providers: &Providers,
    object: &ObjectEval,
    part: &Part,
    attributes: &HashMap<Address, Map>,
) -> Value {
    let instances = &object.instances[part.instances.clone()];
    let attrs_of =
        |inst: &Instance| Value::Object(attributes.get(&inst.address).cloned().unwrap_or_default());
    match (&object.kind, part.shape) {
        (_, Shape::Unknown) => Value::Unknown,
        (_, Shape::List) => Value::List(instances.iter().map(attrs_of).collect()),
        (_, Shape::Map) => Value::Object(
            instances
                .iter()
                .filter_map(|inst| match inst.rel.0.last() {
                    Some(Segment::Key(k)) => Some((k.clone(), attrs_of(inst))),
                    _ => None,
                })
                .collect(),
        ),
        (ObjectKind::Resource(_), Shape::One) => {
            Value::Object(attributes.get(&part.address).cloned().unwrap_or_default())
        }
        _ => {
            let mut config = part.config.clone();
            config.insert("name".into(), Value::String(part.name.clone()));
            let mut base = Value::Object(config);
            for inst in instances {
                if let Some(attrs) = attributes.get(&inst.address) {
                    insert_path(&mut base, &inst.rel.0, Value::Object(attrs.clone()));
                }
            }
            if !part.layered.is_empty() {
                // The cluster's nodes, as its own provider made them (not a layer).
                let layers: HashSet<&String> = part.layered.iter().map(|(l, _, _)| l).collect();
                let mut nodes: Vec<&Instance> = instances
                    .iter()
                    .filter(|x| !layers.contains(&x.provider))
                    .filter(|x| x.rel.0.first() == Some(&Segment::Name("node".into())))
                    .collect();
                nodes.sort_by(|a, b| a.rel.cmp(&b.rel));
                let head = nodes
                    .iter()
                    .find(|x| x.rel.0.get(1) == Some(&Segment::Name("head".into())))
                    .and_then(|x| attributes.get(&x.address));
                let all: Vec<Option<&Map>> =
                    nodes.iter().map(|x| attributes.get(&x.address)).collect();
                for (layer, path, value) in &part.layered {
                    let path: Vec<Segment> =
                        path.iter().map(|p| Segment::Name(p.clone())).collect();
                    let filled = providers
                        .get(layer)
                        .map_or_else(|| value.clone(), |p| p.fill_value(value, head, &all));
                    insert_path(&mut base, &path, filled);
                }
            }
            base
        }
    }
}

/// Whether a workspace's or cluster's own name is one its providers take: 1 to 63
/// letters, digits, `-` and `_`, the first a letter or digit.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a module instance's key adds to its workspaces' and clusters' names: the
/// key in lower case, with each character but letters and digits as `-`.
fn name_part(at: &Segment) -> String {
    segment_key(at)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Orders an expansion so every instance comes after the siblings it needs (Kahn).
fn order_siblings(instances: Vec<Instance>) -> Result<Vec<Instance>, String> {
    let index: HashMap<&Address, usize> = instances
        .iter()
        .enumerate()
        .map(|(i, x)| (&x.address, i))
        .collect();
    let mut kahn = crate::order::Kahn::fifo();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); instances.len()];
    for (i, inst) in instances.iter().enumerate() {
        for d in &inst.intra_deps {
            let &j = index
                .get(d)
                .ok_or_else(|| format!("{} needs {d}, which it did not produce", inst.address))?;
            dependents[j].push(i);
        }
        kahn.add(inst.intra_deps.len());
    }
    let mut queue = Vec::with_capacity(instances.len());
    while let Some(i) = kahn.pop() {
        queue.push(i);
        kahn.release(dependents[i].iter().copied());
    }
    if queue.len() < instances.len() {
        return Err("its resources depend on each other in a cycle".into());
    }
    let mut slots: Vec<Option<Instance>> = instances.into_iter().map(Some).collect();
    Ok(queue.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// How deep lists and objects may nest: deep enough for any real configuration, shallow
/// enough that printing and storing a value can never exhaust the stack.
pub const MAX_VALUE_DEPTH: usize = 256;

fn check_depth(
    value: &Value,
    file: crate::diag::FileId,
    span: &Option<std::ops::Range<usize>>,
) -> Result<(), Diagnostics> {
    if value.deeper_than(MAX_VALUE_DEPTH) {
        return Err(Diagnostic::new(format!(
            "this value nests lists and objects more than {MAX_VALUE_DEPTH} levels deep"
        ))
        .at(file, span.clone())
        .help("flatten the structure")
        .into());
    }
    Ok(())
}

/// Puts `value` at a relative address inside an object: `node.worker["a"][1]` becomes
/// `.node.worker.a[1]`.
fn insert_path(target: &mut Value, path: &[Segment], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return;
    };
    match first {
        Segment::Name(k) | Segment::Key(k) => {
            if !matches!(target, Value::Object(_)) {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(m) = target {
                insert_path(m.entry(k.clone()).or_insert(Value::Null), rest, value);
            }
        }
        Segment::Index(i) => {
            if !matches!(target, Value::List(_)) {
                *target = Value::List(Vec::new());
            }
            if let Value::List(items) = target {
                let i = *i as usize;
                if items.len() <= i {
                    items.resize(i + 1, Value::Null);
                }
                insert_path(&mut items[i], rest, value);
            }
        }
    }
}

/// The key a relative address's segment is under in its object's value, as
/// `insert_path` puts it there.
fn segment_key(segment: &Segment) -> String {
    match segment {
        Segment::Name(k) | Segment::Key(k) => k.clone(),
        Segment::Index(i) => i.to_string(),
    }
}

/// Marks the attributes of a provider's resources that hold a sensitive part of the
/// block they came from: a provider copies values out of the block, and a copy is as
/// sensitive as its source. Copies are found by content: an attribute holding a
/// sensitive string of the block (or a string that contains one) is sensitive.
fn mark_copies(specs: &mut [(ResourceSpec, String)], config: &Map, marks: &Marks) {
    if marks.is_empty() {
        return;
    }
    let mut secrets = Vec::new();
    for k in marks.keys() {
        if let (Some(v), Some(m)) = (config.get(k), marks.child(k)) {
            sensitive_strings(v, m, &mut secrets);
        }
    }
    if secrets.is_empty() {
        return;
    }
    for (spec, _) in specs.iter_mut() {
        for (name, value) in &spec.config {
            if !spec.sensitive.contains(name) && holds_any(value, &secrets) {
                spec.sensitive.push(name.clone());
            }
        }
    }
}

/// The strings in `value` where `marks` says it is sensitive.
fn sensitive_strings<'v>(value: &'v Value, marks: &Marks, out: &mut Vec<&'v str>) {
    match value {
        Value::String(s) if marks.is_whole() && !s.is_empty() => out.push(s),
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                if let Some(m) = marks.child(&i.to_string()) {
                    sensitive_strings(v, m, out);
                }
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(m) = marks.child(k) {
                    sensitive_strings(v, m, out);
                }
            }
        }
        _ => {}
    }
}

fn holds_any(value: &Value, secrets: &[&str]) -> bool {
    match value {
        Value::String(s) => secrets.iter().any(|x| s.contains(x)),
        Value::List(items) => items.iter().any(|v| holds_any(v, secrets)),
        Value::Object(map) => map.values().any(|v| holds_any(v, secrets)),
        _ => false,
    }
}

/// `sensitive` with what the type's schema calls sensitive, and the computed
/// attributes that copy a sensitive one (a copy is as sensitive as its source).
fn with_schema_sensitive(
    schema: &crate::provider::ResourceSchema,
    mut sensitive: Vec<String>,
) -> Vec<String> {
    for a in schema.attributes.iter().filter(|a| a.sensitive) {
        if !sensitive.iter().any(|s| s == a.name) {
            sensitive.push(a.name.to_string());
        }
    }
    let copies: Vec<String> = schema
        .attributes
        .iter()
        .filter(|a| {
            a.copies
                .is_some_and(|src| sensitive.iter().any(|s| s == src))
        })
        .map(|a| a.name.to_string())
        .collect();
    sensitive.extend(copies);
    sensitive
}

/// Marks what in an expansion holds a secret: what each type's schema calls
/// sensitive, and the attributes that take a sibling's sensitive attribute (a
/// step's copy of a node's `connection` that carries a private key), through
/// chains of such copies.
fn mark_sensitive<'s>(
    specs: &mut [(ResourceSpec, String)],
    schema: impl Fn(&str) -> Option<&'s crate::provider::ResourceSchema>,
) {
    for (spec, _) in specs.iter_mut() {
        if let Some(s) = schema(&spec.type_name) {
            spec.sensitive = with_schema_sensitive(s, std::mem::take(&mut spec.sensitive));
        }
    }
    let index: HashMap<Address, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.path.clone(), i))
        .collect();
    // Whether (spec, attribute) is sensitive, memoised; refs are acyclic, as
    // `order_siblings` requires, and a visit in progress counts as not sensitive.
    fn visit(
        specs: &[(ResourceSpec, String)],
        index: &HashMap<Address, usize>,
        memo: &mut HashMap<(usize, String), bool>,
        i: usize,
        attribute: &str,
    ) -> bool {
        if let Some(known) = memo.get(&(i, attribute.to_string())) {
            return *known;
        }
        memo.insert((i, attribute.to_string()), false);
        let spec = &specs[i].0;
        let hit = spec.sensitive.iter().any(|s| s == attribute)
            || spec
                .refs
                .iter()
                .filter(|r| r.attribute == attribute)
                .filter_map(|r| index.get(&r.sibling).map(|&j| (j, &r.sibling_attribute)))
                .any(|(j, a)| visit(specs, index, memo, j, a));
        memo.insert((i, attribute.to_string()), hit);
        hit
    }
    let mut memo = HashMap::new();
    let mut marks = Vec::new();
    for (i, (spec, _)) in specs.iter().enumerate() {
        for r in &spec.refs {
            if !spec.sensitive.contains(&r.attribute)
                && visit(specs, &index, &mut memo, i, &r.attribute)
            {
                marks.push((i, r.attribute.clone()));
            }
        }
    }
    for (i, name) in marks {
        if !specs[i].0.sensitive.contains(&name) {
            specs[i].0.sensitive.push(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{AttributeSchema, ResourceSchema};

    #[test]
    fn a_recorded_size_sizes_its_pool_within_the_bounds() {
        let etl = Address::new().name("cluster").name("etl");
        let pool = |min: Value, max: Option<f64>| {
            let mut m = Map::new();
            m.insert("min".into(), min);
            if let Some(max) = max {
                m.insert("max".into(), Value::Number(max));
            }
            Value::Object(m)
        };
        let mut pools = Map::new();
        pools.insert("a".into(), pool(Value::Number(1.0), Some(4.0)));
        pools.insert("b".into(), pool(Value::Number(2.0), None));
        pools.insert("c".into(), pool(Value::Unknown, Some(3.0)));
        pools.insert("d".into(), pool(Value::Number(1.5), Some(3.0)));
        let mut config = Map::new();
        config.insert("workers".into(), Value::Object(pools));
        // Nothing recorded: each pool at its min, the block as it was.
        let (found, sized) = Pool::of_cluster(&etl, &config, &Sizes::new()).unwrap();
        let sizes: Vec<(&str, u64, u64)> = found
            .iter()
            .map(|p| (p.pool.as_str(), p.size, p.max))
            .collect();
        assert_eq!(sizes, [("a", 1, 4), ("b", 2, 2)]);
        assert!(sized.is_none());
        // Recorded sizes, one above max: within the bounds, and given to the block.
        let mut recorded = Sizes::new();
        recorded.insert(
            etl.clone(),
            [
                ("a".to_string(), 9),
                ("b".to_string(), 2),
                ("c".to_string(), 2),
            ]
            .into_iter()
            .collect(),
        );
        let (found, sized) = Pool::of_cluster(&etl, &config, &recorded).unwrap();
        assert_eq!((found[0].size, found[0].recorded), (4, Some(9)));
        assert_eq!((found[1].size, found[1].recorded), (2, Some(2)));
        let sized = sized.unwrap();
        let size_of = |pool: &str| {
            sized["workers"]
                .get(pool)
                .and_then(|p| p.get("size"))
                .cloned()
        };
        assert_eq!(size_of("a"), Some(Value::Number(4.0)));
        // A pool whose bounds are not whole numbers is its provider's to report.
        assert_eq!(size_of("c"), None);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_copy_of_a_secret_is_secret_through_chains_of_copies() {
        let node = Address::new().name("node");
        let session = Address::new().name("session");
        let step = Address::new().name("step");
        let spec = |path: &Address, t: &str, refs: &[(&str, &Address, &str)]| {
            let mut s = ResourceSpec::new(path.clone(), t, Map::new());
            for (attribute, sibling, sibling_attribute) in refs {
                s.refs.push(SiblingRef {
                    attribute: attribute.to_string(),
                    sibling: (*sibling).clone(),
                    sibling_attribute: sibling_attribute.to_string(),
                });
            }
            (s, "p".to_string())
        };
        let mut specs = vec![
            spec(
                &step,
                "step",
                &[("via", &session, "conn"), ("ip", &node, "ip")],
            ),
            spec(&session, "session", &[("conn", &node, "connection")]),
            spec(&node, "node", &[]),
        ];
        let node_schema = ResourceSchema::new(
            "node",
            vec![
                AttributeSchema {
                    sensitive: true,
                    ..AttributeSchema::computed("connection")
                },
                AttributeSchema::computed("ip"),
            ],
        );
        mark_sensitive(&mut specs, |t| (t == "node").then_some(&node_schema));
        let marked: Vec<&Vec<String>> = specs.iter().map(|(s, _)| &s.sensitive).collect();
        assert_eq!(
            marked[0],
            &vec!["via".to_string()],
            "not its copy of the ip"
        );
        assert_eq!(marked[1], &vec!["conn".to_string()]);
        assert_eq!(marked[2], &vec!["connection".to_string()]);
    }
}
