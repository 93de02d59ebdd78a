//! Runtimes: their definitions (shipped in the binary, or in the project's
//! `runtimes/<name>/`), and their expansion into node steps on a cluster's nodes.
//!
//! A node's and the cluster's addresses reach a runtime's scripts as shell variables
//! (`node.private_ip` is `${TIK_NODE_IP}`), filled in when the step runs. So a script
//! is the same text before and after its nodes exist, and a plan can show its diff;
//! the values themselves are attributes of the step, and a change of them reruns it.

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};
use hcl_edit::Span;
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use tik_engine::addr::{Address, Segment};
use tik_engine::config::body::{eval_error, eval_literal};
use tik_engine::config::{validation, Validation};
use tik_engine::diag::{did_you_mean, Diagnostic, Diagnostics, FileId, Location, Sources};
use tik_engine::eval::{EvalError, Evaluator, Marks};
use tik_engine::provider::{ResourceSpec, SiblingRef};
use tik_engine::value::{Map, Value};

include!(concat!(env!("OUT_DIR"), "/runtimes.rs"));

mod expand;
mod reference;
pub use expand::{check_names, expand};
pub use reference::{listed, ParamRef, RuntimeRef, ServiceRef};

/// The type of a node step, and of the per-node session the steps run through.
pub const STEP_TYPE: &str = "tik_step";
pub const SESSION_TYPE: &str = "tik_session";
/// The type of a node's container, when the cluster runs its services in one.
pub const CONTAINER_TYPE: &str = "tik_container";
/// The port on which a cluster's head serves what its steps downloaded, for the other
/// nodes to take from it rather than from upstream (`tik_cache_serve` in
/// `_lib/tik.sh`, which names the same port), on the head's private address.
pub const CACHE_PORT: u64 = 7799;
/// Who holds `CACHE_PORT` in the port check: no runtime, whose names are never empty.
const CACHE_OWNER: &str = "";
/// The type of what a cluster's runtime says its endpoints are, recorded by the apply
/// that made them, for `tik status` to list: `cluster.etl.endpoints["spark"]`.
pub const ENDPOINTS_TYPE: &str = "tik_endpoints";
/// A runtime's `scaling` commands with what runs them on the head: kept in state
/// for the controller, which asks them how busy the cluster is.
pub const SCALING_TYPE: &str = "tik_scaling";

/// Whether a resource of this type is one of the node steps tik itself runs.
pub fn is_node_step(type_name: &str) -> bool {
    [STEP_TYPE, SESSION_TYPE, CONTAINER_TYPE].contains(&type_name)
}

/// The node a step, session or container is on: its address without the part the
/// node layer adds (`.session`, `.container`, `.runtime.R.service.S.STEP`). A plan
/// shows them with their node.
pub fn node_of(type_name: &str, address: &Address) -> Option<Address> {
    let segments = &address.0;
    let n = segments.len();
    let named =
        |i: usize, what: &str| matches!(segments.get(i), Some(Segment::Name(s)) if s == what);
    let keep = match type_name {
        SESSION_TYPE if n >= 1 && named(n - 1, "session") => n - 1,
        CONTAINER_TYPE if n >= 1 && named(n - 1, "container") => n - 1,
        STEP_TYPE if n >= 5 && named(n - 5, "runtime") && named(n - 3, "service") => n - 5,
        _ => return None,
    };
    Some(Address(segments[..keep].to_vec()))
}

#[derive(Debug)]
pub struct RuntimeDef {
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub dir: PathBuf,
    /// The files of a runtime shipped in the binary; `None` for one on disk.
    pub embedded: Option<BTreeMap<String, String>>,
    pub after: Vec<String>,
    pub requires: Vec<String>,
    pub params: IndexMap<String, Option<Expression>>,
    /// What each param declares of itself, for checks at plan time and for
    /// `tik runtimes show`: its type, the values it allows, its description.
    pub param_info: IndexMap<String, ParamInfo>,
    /// What the runtime is, in one line.
    pub description: Option<String>,
    /// `download_once = true`: the other nodes' install steps run after the head's,
    /// so that they take what the head downloaded from its cache (`_lib/tik.sh`).
    pub download_once: bool,
    /// Params declared `sensitive = true`: a step given one hides its env in plans.
    pub sensitive: Vec<String>,
    /// The params' rules, checked with `param` and `cluster` in scope.
    pub validations: Vec<(String, Validation)>,
    pub services: Vec<ServiceDef>,
    pub endpoints: IndexMap<String, Expression>,
    /// Its `scaling` block: commands on the head that tell the controller how busy
    /// the cluster is (`demand`: how many more workers its work wants; `idle`: the
    /// addresses of the workers with nothing to do), each within `timeout`.
    pub scaling: Option<ServiceDef>,
}

/// What a `scaling` block takes.
const SCALING_ATTRS: [&str; 3] = ["demand", "idle", "timeout"];

/// A param's declared type (`type = number`), allowed values (`allowed =
/// ["archive", "pip"]`) and description.
#[derive(Debug, Default, Clone)]
pub struct ParamInfo {
    pub ty: Option<tik_engine::config::types::Type>,
    pub allowed: Vec<Value>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct ServiceDef {
    pub name: String,
    pub span: Option<Range<usize>>,
    pub body: Body,
}

/// What a `param` block takes.
const PARAM_ATTRS: [&str; 5] = ["default", "type", "allowed", "description", "sensitive"];

/// A param's value as its declaration allows it: converted to its type (`"3"` to
/// 3 for a number), and one of its allowed values; or why not. Values known only
/// after apply pass.
pub fn check_param_value(name: &str, info: &ParamInfo, v: Value) -> Result<Value, String> {
    if v == Value::Unknown {
        return Ok(v);
    }
    let v = match &info.ty {
        Some(t) => {
            let shown = v.to_string();
            t.convert(v)
                .map_err(|_| format!("\"{name}\" takes a {t}, not {shown}"))?
        }
        None => v,
    };
    if info.allowed.is_empty() || info.allowed.contains(&v) {
        return Ok(v);
    }
    let list: Vec<String> = info.allowed.iter().map(Value::to_string).collect();
    Err(format!(
        "\"{name}\" takes one of {}, not {v}",
        list.join(", ")
    ))
}

/// The steps of a service, in the order they run.
const STEPS: [&str; 3] = ["install", "configure", "start"];
/// What a service may declare to run, in the order a reader meets them.
const SERVICE_STEPS: [&str; 5] = ["install", "configure", "start", "stop", "health"];
const SERVICE_ATTRS: [&str; 8] = [
    "on",
    "ports",
    "install",
    "configure",
    "start",
    "stop",
    "health",
    "health_timeout",
];

/// The directory of scripts that runtimes share, beside them.
const LIB: &str = "_lib";

/// Every runtime this project can use: the shipped ones, then the project's own
/// `runtimes/<name>/runtime.tik.hcl`, which replace a shipped one of the same name.
pub fn load_all(root: &Path, sources: &mut Sources) -> (IndexMap<String, RuntimeDef>, Diagnostics) {
    let mut defs = IndexMap::new();
    let mut diags = Diagnostics::default();
    let mut shipped: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (runtime, file, text) in EMBEDDED_RUNTIMES {
        shipped
            .entry(runtime)
            .or_default()
            .insert(file.to_string(), text.to_string());
    }
    // `modules/runtimes/_lib/` is not a runtime: its scripts are every shipped
    // runtime's `../_lib/...` (`file("../_lib/tik.sh")`).
    let lib = shipped.remove(LIB).unwrap_or_default();
    for (name, mut files) in shipped {
        for (f, text) in &lib {
            files.insert(format!("../{LIB}/{f}"), text.clone());
        }
        let dir = PathBuf::from(format!("<tik>/runtimes/{name}"));
        let Some(text) = files.get("runtime.tik.hcl").cloned() else {
            continue;
        };
        let file = sources.add(dir.join("runtime.tik.hcl"), text);
        match parse(name, file, &dir, sources) {
            Ok(mut def) => {
                def.embedded = Some(files);
                defs.insert(name.to_string(), def);
            }
            Err(d) => diags.0.extend(d.0),
        }
    }
    let own = root.join("runtimes");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&own)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir() && !d.ends_with(LIB)) {
        let path = dir.join("runtime.tik.hcl");
        let Ok(text) = std::fs::read_to_string(&path) else {
            diags.push(Diagnostic::new(format!(
                "{} has no readable runtime.tik.hcl",
                dir.display()
            )));
            continue;
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let file = sources.add(path, text);
        match parse(&name, file, &dir, sources) {
            Ok(def) => {
                defs.insert(name, def);
            }
            Err(d) => diags.0.extend(d.0),
        }
    }
    (defs, diags)
}

fn parse(
    name: &str,
    file: FileId,
    dir: &Path,
    sources: &Sources,
) -> Result<RuntimeDef, Diagnostics> {
    let block = runtime_block(name, file, &sources.get(file).text)?;
    let mut def = RuntimeDef {
        name: name.to_string(),
        file,
        span: block.ident.span(),
        dir: dir.to_path_buf(),
        embedded: None,
        after: Vec::new(),
        requires: Vec::new(),
        params: IndexMap::new(),
        param_info: IndexMap::new(),
        description: None,
        download_once: false,
        validations: Vec::new(),
        sensitive: Vec::new(),
        services: Vec::new(),
        endpoints: IndexMap::new(),
        scaling: None,
    };
    let mut diags = Diagnostics::default();
    for s in block.body.into_iter() {
        match s {
            Structure::Attribute(a) => match a.key.as_str() {
                "after" => match runtime_names(file, &a) {
                    Ok(v) => def.after = v,
                    Err(d) => diags.push(d),
                },
                "requires" => match runtime_names(file, &a) {
                    Ok(v) => def.requires = v,
                    Err(d) => diags.push(d),
                },
                "description" => match eval_literal(&a.value) {
                    Ok(Value::String(text)) => def.description = Some(text),
                    _ => diags.push(
                        Diagnostic::new(format!("runtime \"{name}\": description takes a string"))
                            .at(file, a.value.span()),
                    ),
                },
                "download_once" => match eval_literal(&a.value) {
                    Ok(Value::Bool(b)) => def.download_once = b,
                    _ => diags.push(
                        Diagnostic::new(format!("runtime \"{name}\": download_once takes true or false"))
                            .at(file, a.value.span())
                            .help("true: the workers install after the head, from what it downloaded"),
                    ),
                },
                other => diags.push(
                    Diagnostic::new(format!("unsupported attribute \"{other}\" in runtime \"{name}\""))
                        .at(file, a.key.span())
                        .help(
                            did_you_mean(other, ["after", "requires", "description", "download_once"])
                                .unwrap_or_else(|| "a runtime takes after, requires, description, download_once and param, service and endpoint blocks".into()),
                        ),
                ),
            },
            Structure::Block(b) if b.ident.as_str() == "scaling" => {
                def.set_scaling(&b, &mut diags)
            }
            Structure::Block(b) => {
                let kind = b.ident.as_str().to_string();
                let Some(label) = b.labels.first().map(|l| l.as_str().to_string()) else {
                    diags.push(
                        Diagnostic::new(format!("a {kind} block takes a name"))
                            .at(file, b.ident.span())
                            .help(format!("write it as {kind} \"name\" {{ ... }}")),
                    );
                    continue;
                };
                match kind.as_str() {
                    "param" => def.add_param(label, &b, &mut diags),
                    "service" => def.add_service(label, &b, &mut diags),
                    "endpoint" => match b.body.attributes().find(|a| a.key.as_str() == "value") {
                        Some(a) => {
                            def.endpoints.insert(label, a.value.clone());
                        }
                        None => diags.push(
                            Diagnostic::new(format!("endpoint \"{label}\" has no value"))
                                .at(file, b.ident.span())
                                .help("write value = \"...\" inside it"),
                        ),
                    },
                    other => diags.push(
                        Diagnostic::new(format!("unsupported block \"{other}\" in runtime \"{name}\""))
                            .at(file, b.ident.span())
                            .help(
                                did_you_mean(other, ["param", "service", "endpoint", "scaling"])
                                    .unwrap_or_else(|| "a runtime takes param, service, endpoint and scaling blocks".into()),
                            ),
                    ),
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(def)
    } else {
        Err(diags)
    }
}

/// The one `runtime "NAME"` block of a definition file, named after its directory.
fn runtime_block(
    name: &str,
    file: FileId,
    text: &str,
) -> Result<hcl_edit::structure::Block, Diagnostics> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        let off = e.location().offset();
        Diagnostics::from(
            Diagnostic::new(format!(
                "syntax error: {}",
                e.message().lines().next().unwrap_or_default()
            ))
            .at(file, Some(off..off + 1)),
        )
    })?;
    let mut runtime = None;
    for s in body.into_iter() {
        match s {
            Structure::Block(b) if b.ident.as_str() == "runtime" && b.labels.len() == 1 => {
                if b.labels[0].as_str() != name {
                    return Err(Diagnostic::new(format!(
                        "the runtime in directory {name} is named \"{}\"",
                        b.labels[0].as_str()
                    ))
                    .at(file, b.ident.span())
                    .help(format!("name it runtime \"{name}\", after its directory"))
                    .into());
                }
                runtime = Some(b);
            }
            Structure::Block(b) => {
                return Err(Diagnostic::new(format!(
                    "unexpected block \"{}\" in a runtime definition",
                    b.ident.as_str()
                ))
                .at(file, b.ident.span())
                .help(format!(
                    "a runtime file holds one block: runtime \"{name}\" {{ ... }}"
                ))
                .into())
            }
            Structure::Attribute(a) => {
                return Err(Diagnostic::new(format!(
                    "unexpected attribute \"{}\" in a runtime definition",
                    a.key.as_str()
                ))
                .at(file, a.key.span())
                .help(format!(
                    "a runtime file holds one block: runtime \"{name}\" {{ ... }}"
                ))
                .into())
            }
        }
    }
    let Some(block) = runtime else {
        return Err(Diagnostic::new(format!("no runtime \"{name}\" block"))
            .at(file, Some(0..0))
            .help(format!("write runtime \"{name}\" {{ ... }}"))
            .into());
    };
    Ok(block)
}

/// `after` and `requires`: a list of runtime names.
fn runtime_names(
    file: FileId,
    a: &hcl_edit::structure::Attribute,
) -> Result<Vec<String>, Diagnostic> {
    let v = eval_literal(&a.value).map_err(|e| eval_error(file, e))?;
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>(),
        _ => None,
    }
    .ok_or_else(|| {
        Diagnostic::new(format!(
            "{} must be a list of runtime names",
            a.key.as_str()
        ))
        .at(file, a.value.span())
        .help("write it as [\"hdfs\", \"zookeeper\"]")
    })
}

impl RuntimeDef {
    /// A `param "NAME"` block: its default, whether it is sensitive, its rules.
    fn add_param(
        &mut self,
        label: String,
        b: &hcl_edit::structure::Block,
        diags: &mut Diagnostics,
    ) {
        let file = self.file;
        let mut default = None;
        let mut info = ParamInfo::default();
        for a in b.body.attributes() {
            match a.key.as_str() {
                "default" => default = Some(a.value.clone()),
                "type" => match tik_engine::config::types::Type::parse(&a.value) {
                    Ok(t) => info.ty = Some(t),
                    Err((message, span)) => diags.push(
                        Diagnostic::new(format!("param \"{label}\": {message}")).at(file, span),
                    ),
                },
                "allowed" => match eval_literal(&a.value) {
                    Ok(Value::List(values)) if !values.is_empty() => info.allowed = values,
                    _ => diags.push(
                        Diagnostic::new(format!(
                            "param \"{label}\": allowed takes a list of the values it allows"
                        ))
                        .at(file, a.value.span())
                        .help("write allowed = [\"archive\", \"pip\"]"),
                    ),
                },
                "description" => match eval_literal(&a.value) {
                    Ok(Value::String(text)) => info.description = Some(text),
                    _ => diags.push(
                        Diagnostic::new(format!("param \"{label}\": description takes a string"))
                            .at(file, a.value.span()),
                    ),
                },
                "sensitive" => match eval_literal(&a.value) {
                    Ok(Value::Bool(true)) => self.sensitive.push(label.clone()),
                    Ok(Value::Bool(false)) => {}
                    _ => diags.push(
                        Diagnostic::new(format!(
                            "param \"{label}\": sensitive takes true or false"
                        ))
                        .at(file, a.key.span()),
                    ),
                },
                other => diags.push(
                    Diagnostic::new(format!(
                        "unsupported attribute \"{other}\" in param \"{label}\""
                    ))
                    .at(file, a.key.span())
                    .help(
                        did_you_mean(other, PARAM_ATTRS).unwrap_or_else(|| {
                            "a param takes default, type, allowed, description and sensitive, and validation blocks".into()
                        }),
                    ),
                ),
            }
        }
        for inner in b.body.blocks() {
            let checked = if inner.ident.as_str() == "validation" {
                validation(inner, file)
            } else {
                Err(Diagnostic::new(format!(
                    "unsupported block \"{}\" in param \"{label}\"",
                    inner.ident.as_str()
                ))
                .at(file, inner.ident.span())
                .help(
                    "a param takes validation { condition = ..., error_message = \"...\" } blocks",
                ))
            };
            match checked {
                Ok(v) => self.validations.push((label.clone(), v)),
                Err(d) => diags.push(d),
            }
        }
        // A default the param's own type or list refuses is the definition's mistake.
        if let (Some(expr), true) = (&default, info.ty.is_some() || !info.allowed.is_empty()) {
            if let Ok(v) = eval_literal(expr) {
                if let Err(message) = check_param_value(&label, &info, v) {
                    diags.push(
                        Diagnostic::new(format!(
                            "the default does not fit its declaration: param {message}"
                        ))
                        .at(file, expr.span()),
                    );
                }
            }
        }
        self.param_info.insert(label.clone(), info);
        self.params.insert(label, default);
    }

    /// A `service "NAME"` block, kept to be evaluated on each node.
    fn set_scaling(&mut self, b: &hcl_edit::structure::Block, diags: &mut Diagnostics) {
        let file = self.file;
        let here = |d: Diagnostic| d.at(file, b.ident.span());
        if self.scaling.is_some() {
            diags.push(
                here(Diagnostic::new(format!(
                    "runtime \"{}\" has two scaling blocks",
                    self.name
                )))
                .help("keep one"),
            );
            return;
        }
        for a in b.body.attributes() {
            let key = a.key.as_str();
            if !SCALING_ATTRS.contains(&key) {
                diags.push(
                    Diagnostic::new(format!("unsupported attribute \"{key}\" in scaling"))
                        .at(file, a.key.span())
                        .help(did_you_mean(key, SCALING_ATTRS).unwrap_or_else(|| {
                            format!("a scaling block takes: {}", SCALING_ATTRS.join(", "))
                        })),
                );
            }
        }
        if b.body.get_attribute("demand").is_none() {
            diags.push(here(Diagnostic::new(format!(
                "the scaling block of runtime \"{}\" has no demand",
                self.name
            )))
            .help("demand = a command on the head printing how many more workers the work wants (0 when none)"));
        }
        self.scaling = Some(ServiceDef {
            name: "scaling".into(),
            span: b.ident.span(),
            body: b.body.clone(),
        });
    }

    fn add_service(
        &mut self,
        label: String,
        b: &hcl_edit::structure::Block,
        diags: &mut Diagnostics,
    ) {
        let file = self.file;
        for a in b.body.attributes() {
            let key = a.key.as_str();
            if !SERVICE_ATTRS.contains(&key) {
                diags.push(
                    Diagnostic::new(format!(
                        "unsupported attribute \"{key}\" in service \"{label}\""
                    ))
                    .at(file, a.key.span())
                    .help(did_you_mean(key, SERVICE_ATTRS).unwrap_or_else(|| {
                        format!("a service takes: {}", SERVICE_ATTRS.join(", "))
                    })),
                );
            }
        }
        self.services.push(ServiceDef {
            name: label,
            span: b.ident.span(),
            body: b.body.clone(),
        });
    }
}

/// A node of a cluster as the provider expanded it.
pub struct NodeRef {
    /// Relative to the cluster: `node.head`, `node.worker["default"][2]`.
    pub rel: Address,
    pub name: String,
    pub head: bool,
    /// Reached through the head: the provider gave it no public address
    /// (`public_address = false` in its configuration).
    pub behind_head: bool,
}

impl NodeRef {
    /// `head` or `worker`, as runtimes and steps name it.
    pub fn role(&self) -> &'static str {
        if self.head {
            "head"
        } else {
            "worker"
        }
    }
}

/// The nodes among an expansion's resources (their paths and configurations):
/// everything at `node.*`.
pub fn nodes_of<'a>(specs: impl IntoIterator<Item = (&'a Address, &'a Map)>) -> Vec<NodeRef> {
    let mut nodes: Vec<NodeRef> = specs
        .into_iter()
        .filter(|(p, _)| p.0.first() == Some(&Segment::Name("node".into())))
        .map(|(p, config)| {
            let head = p.0.get(1) == Some(&Segment::Name("head".into()));
            NodeRef {
                rel: p.clone(),
                name: config
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| p.to_string(), str::to_string),
                head,
                behind_head: !head && config.get("public_address") == Some(&Value::Bool(false)),
            }
        })
        .collect();
    // By address, as `fill_endpoint`'s callers list them: `TIK_IP_<i>` is the same node.
    nodes.sort_by(|a, b| a.rel.cmp(&b.rel));
    nodes
}

/// What a cluster's runtimes add to its expansion: steps, and the endpoints' values
/// (with placeholders for the addresses, see `fill_endpoints`).
#[derive(Debug, Default, Clone)]
pub struct Expansion {
    pub specs: Vec<ResourceSpec>,
    pub endpoints: Vec<(String, String, Value)>,
    /// The endpoints whose value reads a sensitive value (`<runtime>.endpoint.<name>`).
    pub endpoint_marks: Marks,
}

/// Where the cluster's block asks for runtimes, for errors that point at it.
pub struct Site<'a> {
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub body: &'a Body,
    pub what: &'a str,
}

impl Site<'_> {
    fn runtime_block(&self, name: &str) -> Option<&hcl_edit::structure::Block> {
        self.body.blocks().find(|b| {
            b.ident.as_str() == "runtime" && b.labels.first().map(|l| l.as_str()) == Some(name)
        })
    }

    /// At `attr` of the cluster's `block` (`container { engine = ... }`), or as near
    /// to it as the cluster's block allows.
    fn at_setting(&self, block: &str, attr: &str, d: Diagnostic) -> Diagnostic {
        let b = self.body.blocks().find(|b| b.ident.as_str() == block);
        let span = match b {
            Some(b) => b
                .body
                .attributes()
                .find(|a| a.key.as_str() == attr)
                .and_then(|a| a.value.span().or_else(|| a.key.span()))
                .or_else(|| b.ident.span()),
            None => self.span.clone(),
        };
        d.at(self.file, span)
    }

    /// At the value the cluster gives a runtime's param, or at the runtime's block
    /// when the param has its default.
    fn at_param(&self, name: &str, param: &str, d: Diagnostic) -> Diagnostic {
        let given = self
            .runtime_block(name)
            .and_then(|b| b.body.attributes().find(|a| a.key.as_str() == param))
            .and_then(|a| a.value.span().or_else(|| a.key.span()));
        match given {
            Some(span) => d.at(self.file, Some(span)),
            None => self.at_runtime(name, d),
        }
    }

    fn at_runtime(&self, name: &str, d: Diagnostic) -> Diagnostic {
        match self.runtime_block(name) {
            Some(b) => d.at(self.file, b.ident.span()),
            None => d.at(self.file, self.span.clone()),
        }
    }
}

/// The runtimes a cluster runs, in order: those it names, plus what they require,
/// sorted so that each comes after what it requires and what it is `after`.
pub fn order(
    defs: &IndexMap<String, RuntimeDef>,
    asked: &[String],
    site: &Site<'_>,
) -> Result<Vec<String>, Diagnostics> {
    let mut chosen: Vec<String> = Vec::new();
    let mut queue: Vec<(String, Option<String>)> =
        asked.iter().map(|n| (n.clone(), None)).collect();
    while let Some((name, by)) = queue.pop() {
        if chosen.contains(&name) {
            continue;
        }
        let Some(def) = defs.get(&name) else {
            let d = Diagnostic::new(match &by {
                None => format!("{}: unknown runtime \"{name}\"", site.what),
                Some(b) => format!(
                    "{}: runtime \"{b}\" requires \"{name}\", which does not exist",
                    site.what
                ),
            })
            .help(
                did_you_mean(
                    &name,
                    defs.keys()
                        .map(String::as_str)
                        .filter(|k| !k.starts_with('_')),
                )
                .unwrap_or_else(|| {
                    format!(
                        "the runtimes are: {} (or add runtimes/{name}/runtime.tik.hcl)",
                        defs.keys()
                            .filter(|k| !k.starts_with('_'))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            );
            return Err(site.at_runtime(by.as_deref().unwrap_or(&name), d).into());
        };
        chosen.push(name.clone());
        for r in &def.requires {
            queue.push((r.clone(), Some(name.clone())));
        }
    }
    // Kahn over the chosen runtimes; ties keep the order they were named in.
    let rank = |n: &String| asked.iter().position(|a| a == n).unwrap_or(usize::MAX);
    chosen.sort_by_key(rank);
    let before = |n: &String| -> Vec<String> {
        let d = &defs[n];
        d.after
            .iter()
            .chain(d.requires.iter())
            .filter(|x| chosen.contains(x))
            .cloned()
            .collect()
    };
    let number: HashMap<&String, usize> = chosen.iter().enumerate().map(|(i, n)| (n, i)).collect();
    let mut then: Vec<Vec<usize>> = vec![Vec::new(); chosen.len()];
    let mut kahn = tik_engine::order::Kahn::lowest_first();
    for (i, n) in chosen.iter().enumerate() {
        let mut waits: Vec<usize> = before(n).iter().map(|b| number[b]).collect();
        waits.sort_unstable();
        waits.dedup();
        for &w in &waits {
            then[w].push(i);
        }
        kahn.add(waits.len());
    }
    let mut done: Vec<String> = Vec::with_capacity(chosen.len());
    while let Some(i) = kahn.pop() {
        done.push(chosen[i].clone());
        kahn.release(then[i].iter().copied());
    }
    if done.len() < chosen.len() {
        let cycle = (0..chosen.len())
            .filter(|&i| kahn.waiting(i))
            .map(|i| format!("{} after {}", chosen[i], before(&chosen[i]).join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Diagnostic::new(format!(
            "{}: the runtimes' order has a cycle: {cycle}",
            site.what
        ))
        .at(site.file, site.span.clone())
        .help("remove one of these after or requires entries")
        .into());
    }
    Ok(done)
}

fn env_name(param: &str) -> String {
    format!(
        "TIK_PARAM_{}",
        param
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>()
    )
}

/// An evaluation error in a runtime's service, rule or endpoint; one that names
/// another runtime it cannot see says how to see it.
fn scope_error(defs: &IndexMap<String, RuntimeDef>, def: &RuntimeDef, e: EvalError) -> Diagnostic {
    let missing = e
        .message
        .strip_prefix("this object has no attribute \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|r| e.help.is_none() && defs.contains_key(*r))
        .map(str::to_string);
    let d = eval_error(def.file, e);
    match missing {
        Some(r) => d.help(format!(
            "runtime \"{}\" sees the endpoints of the runtimes before it on the cluster: add requires = [\"{r}\"] to it (or after = [\"{r}\"], where the cluster asks for {r} itself)",
            def.name
        )),
        None => d,
    }
}

fn placeholder(var: &str) -> Value {
    Value::String(format!("${{{var}}}"))
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `node` value a runtime sees: names known, addresses as the shell variables
/// the step sets.
fn node_scope(index: usize, nodes: &[NodeRef]) -> Value {
    let node = &nodes[index];
    Value::Object(Map::from_iter([
        ("name".to_string(), Value::from(node.name.as_str())),
        ("role".to_string(), Value::from(node.role())),
        ("index".to_string(), Value::Number(index as f64)),
        ("private_ip".to_string(), placeholder("TIK_NODE_IP")),
        ("public_ip".to_string(), placeholder("TIK_NODE_PUBLIC_IP")),
        ("home".to_string(), placeholder("TIK_HOME")),
    ]))
}

/// The `cluster` value a runtime sees, the same on every node: made once per
/// expansion, since it lists every node.
fn cluster_scope(cluster: &str, nodes: &[NodeRef]) -> Value {
    let head = Value::Object(Map::from_iter([
        ("private_ip".to_string(), placeholder("TIK_HEAD_IP")),
        ("public_ip".to_string(), placeholder("TIK_HEAD_PUBLIC_IP")),
    ]));
    let all: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Value::Object(Map::from_iter([
                ("name".to_string(), Value::from(n.name.as_str())),
                ("role".to_string(), Value::from(n.role())),
                (
                    "private_ip".to_string(),
                    placeholder(&format!("TIK_IP_{i}")),
                ),
            ]))
        })
        .collect();
    Value::Object(Map::from_iter([
        ("name".to_string(), Value::from(cluster)),
        ("head".to_string(), head),
        ("nodes".to_string(), Value::List(all)),
        (
            "worker_count".to_string(),
            Value::Number(nodes.iter().filter(|n| !n.head).count() as f64),
        ),
    ]))
}

/// How to reach a node, taken from it when the change runs: its connection and id,
/// the host key its session recorded, and for a node behind the head the head's
/// connection and the host key the head's session recorded.
fn node_refs(spec: &mut ResourceSpec, n: &NodeRef, head: &NodeRef, session: Option<&Address>) {
    let mut refs = vec![
        ("connection", n.rel.clone(), "connection"),
        ("node_id", n.rel.clone(), "id"),
    ];
    if let Some(s) = session {
        refs.push(("host_key", s.clone(), "host_key"));
    }
    if n.behind_head {
        let head_session = head.rel.clone().name("session");
        refs.push(("jump", head.rel.clone(), "connection"));
        refs.push(("jump_host_key", head_session.clone(), "host_key"));
        spec.depends_on.push(head_session);
    }
    for (attribute, sibling, sibling_attribute) in refs {
        spec.refs.push(SiblingRef {
            attribute: attribute.into(),
            sibling,
            sibling_attribute: sibling_attribute.into(),
        });
    }
}

/// How long a node's session waits for SSH, from the cluster's `ssh { wait = S }`.
fn ssh_wait(config: &Map, site: &Site<'_>) -> Result<Option<Value>, Diagnostics> {
    match config.get("ssh").and_then(|s| s.get("wait")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if *n > 0.0 && *n <= 86_400.0 => Ok(Some(Value::Number(*n))),
        Some(Value::Unknown) => Ok(Some(Value::Unknown)),
        Some(other) => Err(site
            .at_setting(
                "ssh",
                "wait",
                Diagnostic::new(format!(
                    "ssh.wait must be a number of seconds from 1 to 86400, got {other}"
                )),
            )
            .help("write the time a new node may take to answer SSH, e.g. wait = 600 (the default)")
            .into()),
    }
}

/// The cluster's `container { image, engine, options }`, checked: what a node's
/// container is made from.
fn container_of(config: &Map, site: &Site<'_>) -> Result<Option<Map>, Diagnostics> {
    let Some(c) = config.get("container") else {
        return Ok(None);
    };
    let c = c.as_object().cloned().unwrap_or_default();
    let bad = |attr: &str, message: String, help: &str| -> Diagnostics {
        site.at_setting("container", attr, Diagnostic::new(message))
            .help(help.to_string())
            .into()
    };
    let image = match c.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => Value::String(s.clone()),
        Some(Value::Unknown) => Value::Unknown,
        None | Some(Value::Null) => {
            return Err(bad(
                "image",
                "the container block needs an image".into(),
                "write container { image = \"docker.io/library/ubuntu:24.04\" }: the image every node's services run in",
            ))
        }
        Some(other) => {
            return Err(bad(
                "image",
                format!("container.image must be an image name, got {other}"),
                "write the image as a string, e.g. \"docker.io/library/ubuntu:24.04\"",
            ))
        }
    };
    let engine = match c.get("engine") {
        None | Some(Value::Null) => Value::from("docker"),
        Some(Value::String(e)) if e == "docker" || e == "podman" => Value::String(e.clone()),
        Some(Value::Unknown) => Value::Unknown,
        Some(other) => {
            let shown = other
                .to_template_string()
                .unwrap_or_else(|| other.to_json().to_string());
            let mut d = Diagnostic::new(format!(
                "container.engine must be \"docker\" or \"podman\", got \"{shown}\""
            ));
            d = site.at_setting("container", "engine", d);
            return Err(d
                .help(
                    did_you_mean(&shown, ["docker", "podman"])
                        .unwrap_or_else(|| "tik runs containers with docker or podman".into()),
                )
                .into());
        }
    };
    let options = match c.get("options") {
        None | Some(Value::Null) => Value::List(Vec::new()),
        Some(Value::List(items)) if items.iter().all(|i| matches!(i, Value::String(_))) => {
            Value::List(items.clone())
        }
        Some(Value::Unknown) => Value::Unknown,
        Some(other) => {
            return Err(bad(
                "options",
                format!("container.options must be a list of strings, got {other}"),
                "write the extra arguments of `run` one per string, e.g. [\"--ulimit\", \"nofile=65536:65536\"]",
            ))
        }
    };
    Ok(Some(Map::from_iter([
        ("image".to_string(), image),
        ("engine".to_string(), engine),
        ("options".to_string(), options),
    ])))
}

/// How a step or container reaches its node: a change there alone is recorded and
/// runs nothing, since what the node holds and runs is the same (a node's own host
/// key is not among them: another one may mean another machine).
pub const WAY_IN: [&str; 3] = ["connection", "jump", "jump_host_key"];

/// Whether a step (or a node's container) whose attributes `changed` has anything to
/// run, or only its record to update.
pub fn step_runs(changed: &[&str]) -> bool {
    changed.iter().any(|c| !WAY_IN.contains(c))
}

/// The attributes of a node step's record that differ between `before` and `after`
/// (what it computed itself aside): what decides whether it runs.
pub fn step_changes<'m>(before: &'m Map, after: &'m Map) -> Vec<&'m str> {
    let mut out: Vec<&str> = after
        .iter()
        .filter(|(k, v)| k.as_str() != "hash" && before.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    out.extend(
        before
            .keys()
            .filter(|k| k.as_str() != "hash" && !after.contains_key(k.as_str()))
            .map(String::as_str),
    );
    out
}

/// Why a step runs again, from the attributes that changed: shown in the plan.
pub fn rerun_reasons(changed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in changed {
        let why = match *name {
            "script" => "its script changed",
            "env" => "a param it uses changed",
            "after_hash" => "an earlier step of its service changed",
            "stop" | "health" | "health_timeout" => "its stop or health command changed",
            "node_id" => "its node is new",
            "connection" | "jump" | "jump_host_key" => "the way to reach its node changed",
            "host_key" => {
                "its node's session is new: it runs again only if the node shows another host key"
            }
            "container" => "its node's container is new",
            "put" => "what it copies to the node changed",
            "running" => {
                "its service is not running: its health check failed when tik read the nodes"
            }
            "node_ip" | "node_public_ip" | "head_ip" | "head_public_ip" => {
                "a node address it uses changed"
            }
            n if n.starts_with("ip_") => "a node address it uses changed",
            _ => continue,
        };
        if !out.iter().any(|o: &String| o == why) {
            out.push(why.to_string());
        }
    }
    out
}

/// A runtime's recorded endpoints (`ENDPOINTS_TYPE`) as the nodes' addresses make them:
/// the addresses come in as `head_ip`, `head_public_ip` and `ip_<i>`, set from the
/// nodes when the change runs. Adds `values`, the endpoints with addresses filled in.
pub fn fill_recorded_endpoints(mut attrs: Map) -> Map {
    let text = |k: &str| attrs.get(k).cloned().unwrap_or(Value::Null);
    let head = Map::from_iter([
        ("private_ip".to_string(), text("head_ip")),
        ("public_ip".to_string(), text("head_public_ip")),
    ]);
    let count = attrs
        .keys()
        .filter_map(|k| k.strip_prefix("ip_")?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0);
    let nodes: Vec<Map> = (0..count)
        .map(|i| Map::from_iter([("private_ip".to_string(), text(&format!("ip_{i}")))]))
        .collect();
    let nodes: Vec<Option<&Map>> = nodes.iter().map(Some).collect();
    let values = match attrs.get("endpoints") {
        Some(e) => fill_endpoint(e, Some(&head), &nodes),
        None => Value::Object(Map::new()),
    };
    attrs.insert("values".into(), values);
    attrs
}

/// A runtime's recorded endpoints as a plan shows them, by name: each address filled
/// in where the record knows it, and named where it is known only after apply
/// (`http://(the head's address):8080/`); a sensitive one is left out.
pub fn endpoints_shown(attrs: &Map) -> Map {
    fn show(v: &Value, attrs: &Map) -> Value {
        match v {
            Value::String(s) => {
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(at) = rest.find("${TIK_") {
                    let Some(len) = rest[at..].find('}') else {
                        break;
                    };
                    let var = &rest[at + 2..at + len];
                    let (attr, name) = match var {
                        "TIK_HEAD_IP" => ("head_ip".to_string(), "the head's address".to_string()),
                        "TIK_HEAD_PUBLIC_IP" => (
                            "head_public_ip".to_string(),
                            "the head's public address".to_string(),
                        ),
                        v => match v.strip_prefix("TIK_IP_") {
                            Some(i) => (format!("ip_{i}"), format!("node {i}'s address")),
                            None => (String::new(), v.to_string()),
                        },
                    };
                    out.push_str(&rest[..at]);
                    match attrs.get(&attr).and_then(Value::as_str) {
                        Some(ip) => out.push_str(ip),
                        None => out.push_str(&format!("({name})")),
                    }
                    rest = &rest[at + len + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            Value::List(l) => Value::List(l.iter().map(|v| show(v, attrs)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), show(v, attrs))).collect())
            }
            other => other.clone(),
        }
    }
    match attrs.get("endpoints") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), show(v, attrs))).collect(),
        _ => Map::new(),
    }
}

/// An endpoint's value with the addresses filled in from the nodes' attributes;
/// unknown while a node it names has no address yet.
pub fn fill_endpoint(value: &Value, head: Option<&Map>, nodes: &[Option<&Map>]) -> Value {
    match value {
        Value::String(s) => {
            let mut text = s.clone();
            let mut subs: Vec<(String, Option<&Value>)> = vec![
                ("TIK_HEAD_IP".into(), head.and_then(|h| h.get("private_ip"))),
                (
                    "TIK_HEAD_PUBLIC_IP".into(),
                    head.and_then(|h| h.get("public_ip")),
                ),
            ];
            for (i, n) in nodes.iter().enumerate() {
                subs.push((format!("TIK_IP_{i}"), n.and_then(|m| m.get("private_ip"))));
            }
            for (var, v) in subs {
                let token = format!("${{{var}}}");
                if !text.contains(&token) {
                    continue;
                }
                match v.and_then(Value::as_str) {
                    Some(ip) => text = text.replace(&token, ip),
                    None => return Value::Unknown,
                }
            }
            Value::String(text)
        }
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|v| fill_endpoint(v, head, nodes))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fill_endpoint(v, head, nodes)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_shell_names() {
        assert_eq!(env_name("spark.version"), "TIK_PARAM_SPARK_VERSION");
        assert_eq!(env_name("port"), "TIK_PARAM_PORT");
    }

    #[test]
    fn endpoints_fill_in_addresses_or_stay_unknown() {
        let v = Value::from("http://${TIK_HEAD_IP}:8080");
        let head: Map = Map::from_iter([("private_ip".to_string(), Value::from("10.0.0.5"))]);
        assert_eq!(
            fill_endpoint(&v, Some(&head), &[]),
            Value::from("http://10.0.0.5:8080")
        );
        assert_eq!(fill_endpoint(&v, None, &[]), Value::Unknown);
    }

    /// What `tik status` lists: the recorded endpoints with the addresses the
    /// change was given; a plan names those not known yet.
    #[test]
    fn recorded_endpoints_take_the_addresses_they_name() {
        let endpoints = Value::Object(Map::from_iter([
            ("ui".to_string(), Value::from("http://${TIK_HEAD_IP}:8080/")),
            (
                "all".to_string(),
                Value::from("${TIK_IP_0}:2181,${TIK_IP_1}:2181"),
            ),
        ]));
        let mut attrs = Map::from_iter([
            ("endpoints".to_string(), endpoints),
            ("head_ip".to_string(), Value::from("10.0.0.5")),
        ]);
        let shown = endpoints_shown(&attrs);
        assert_eq!(shown["ui"], Value::from("http://10.0.0.5:8080/"));
        assert_eq!(
            shown["all"],
            Value::from("(node 0's address):2181,(node 1's address):2181")
        );
        attrs.insert("ip_0".into(), Value::from("10.0.0.5"));
        attrs.insert("ip_1".into(), Value::from("10.0.1.7"));
        let filled = fill_recorded_endpoints(attrs);
        assert_eq!(
            filled["values"],
            Value::Object(Map::from_iter([
                ("ui".to_string(), Value::from("http://10.0.0.5:8080/")),
                (
                    "all".to_string(),
                    Value::from("10.0.0.5:2181,10.0.1.7:2181")
                ),
            ]))
        );
        // A node with no address (its apply did not end): unknown, not a wrong text.
        let filled = fill_recorded_endpoints(Map::from_iter([(
            "endpoints".to_string(),
            Value::Object(Map::from_iter([(
                "ui".to_string(),
                Value::from("http://${TIK_HEAD_IP}/"),
            )])),
        )]));
        assert_eq!(
            filled["values"],
            Value::Object(Map::from_iter([("ui".to_string(), Value::Unknown)]))
        );
    }
}
