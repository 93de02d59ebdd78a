//! Configuration: every `*.tik.hcl` file of a directory, and the modules it calls,
//! decoded into blocks that keep their expressions and spans for evaluation.

pub mod body;
pub mod refs;
pub mod remote;
pub mod types;

use crate::addr::Address;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, FileId, Location, Sources};
use crate::value::Value;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block, Body, Structure};
use hcl_edit::visit_mut::VisitMut;
use hcl_edit::Span;
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use types::Type;

/// How deep modules may call modules before tik calls it a mistake.
const MAX_MODULE_DEPTH: usize = 32;

#[derive(Debug)]
pub struct Config {
    pub sources: Sources,
    /// The root module first; each module call points at its child here.
    pub modules: Vec<Module>,
    pub backend: Option<BackendConfig>,
    pub encryption: Option<EncryptionConfig>,
    /// A hash of every file read: a saved plan is stale when it changes.
    pub hash: String,
}

/// `tik { encryption { ... } }`: state is encrypted at rest. What its settings mean
/// (a key in an environment variable, a key service's key) is the binary's to say.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    pub settings: IndexMap<String, Value>,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub kind: String,
    pub settings: IndexMap<String, Value>,
    pub location: Location,
}

#[derive(Debug, Default)]
pub struct Module {
    pub dir: PathBuf,
    /// `module.a.module.b`: the prefix of every address in this module.
    pub prefix: Address,
    pub variables: IndexMap<String, Variable>,
    pub locals: IndexMap<String, Local>,
    pub outputs: IndexMap<String, Output>,
    pub calls: IndexMap<String, ModuleCall>,
    pub objects: Vec<ObjectDef>,
    /// `moved` blocks, in the order written.
    pub moved: Vec<Moved>,
}

impl Module {
    /// The address of this module's object of `kind` named `name`: `tik_data.a`,
    /// `module.net.cluster.etl`.
    pub fn object_address(&self, kind: &ObjectKind, name: &str) -> Address {
        self.prefix.clone().name(kind.root()).name(name)
    }
}

/// `moved { from = tik_data.old  to = tik_data.new }`: what state holds at `from`
/// (relative to the module) is the object the configuration now has at `to`.
#[derive(Debug)]
pub struct Moved {
    pub from: Address,
    pub to: Address,
    pub file: FileId,
    pub from_span: Option<Range<usize>>,
    pub to_span: Option<Range<usize>>,
}

#[derive(Debug)]
pub struct Variable {
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub ty: Type,
    pub default: Option<Expression>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub validations: Vec<Validation>,
}

#[derive(Debug)]
pub struct Validation {
    pub condition: Expression,
    pub error_message: Expression,
}

/// A `validation { condition, error_message }` block (of a variable or a runtime's param).
pub fn validation(b: &Block, file: FileId) -> Result<Validation, Diagnostic> {
    if let Some(extra) = b
        .body
        .attributes()
        .find(|a| !matches!(a.key.as_str(), "condition" | "error_message"))
    {
        return Err(unknown_attr(
            extra,
            file,
            "a validation block",
            &["condition", "error_message"],
        ));
    }
    match (
        b.body.get_attribute("condition"),
        b.body.get_attribute("error_message"),
    ) {
        (Some(c), Some(m)) => Ok(Validation {
            condition: c.value.clone(),
            error_message: m.value.clone(),
        }),
        _ => Err(
            Diagnostic::new("a validation block needs both condition and error_message")
                .at(file, b.ident.span())
                .help("validation { condition = ..., error_message = \"...\" }"),
        ),
    }
}

#[derive(Debug)]
pub struct Local {
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub expr: Expression,
}

#[derive(Debug)]
pub struct Output {
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub value: Expression,
    pub description: Option<String>,
    pub sensitive: bool,
    pub depends_on: Vec<Expression>,
}

#[derive(Debug)]
pub struct ModuleCall {
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub args: IndexMap<String, Attribute>,
    pub depends_on: Vec<Expression>,
    pub child: usize,
    /// `count` or `for_each`: one instance of the module per index or key
    /// (`module.team["ml"]`), each with its own arguments.
    pub repeat: Option<Repeat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Resource(String),
    Workspace,
    Cluster,
}

impl ObjectKind {
    /// The root name that references it: `workspace`, `cluster` or the resource type.
    pub fn root(&self) -> &str {
        match self {
            ObjectKind::Resource(t) => t,
            ObjectKind::Workspace => "workspace",
            ObjectKind::Cluster => "cluster",
        }
    }
}

#[derive(Debug)]
pub struct ObjectDef {
    pub kind: ObjectKind,
    pub name: String,
    pub file: FileId,
    pub span: Option<Range<usize>>,
    pub body: Body,
    pub depends_on: Vec<Expression>,
    pub lifecycle: Lifecycle,
    /// `count` or `for_each`: one resource per index or key.
    pub repeat: Option<Repeat>,
}

/// How a resource block is repeated, as Terraform's meta-arguments do it.
#[derive(Debug, Clone)]
pub enum Repeat {
    /// `count = N`: instances `TYPE.NAME[0]` to `[N-1]`, each with `count.index`.
    Count(Expression),
    /// `for_each = MAP or SET`: instances `TYPE.NAME["key"]`, each with `each.key`
    /// and `each.value`.
    ForEach(Expression),
}

impl Repeat {
    /// The name its blocks read it by: `count` or `each`.
    pub fn root(&self) -> &'static str {
        match self {
            Repeat::Count(_) => "count",
            Repeat::ForEach(_) => "each",
        }
    }

    /// The attributes that name read: `count.index`, `each.key`, `each.value`.
    pub fn attributes(&self) -> &'static [&'static str] {
        match self {
            Repeat::Count(_) => &["index"],
            Repeat::ForEach(_) => &["key", "value"],
        }
    }

    pub fn expr(&self) -> &Expression {
        match self {
            Repeat::Count(e) | Repeat::ForEach(e) => e,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    pub ignore_all_changes: bool,
    pub ignore_changes: Vec<String>,
}

impl Config {
    /// Loads the root module in `dir` and every module it calls; git sources are
    /// read from what `tik init` fetched into `.tik/modules/`.
    pub fn load(dir: &Path) -> Result<Config, (Sources, Diagnostics)> {
        Config::load_fetching(
            dir,
            remote::Fetch::Never,
            &crate::provider::Providers::new(),
        )
        .map(|(c, _)| c)
    }

    /// Loads like `load`, fetching git sources as `fetch` says, and lets each of
    /// `providers` read what it needs from the project (`Provider::load`); returns
    /// what it fetched too.
    pub fn load_fetching(
        dir: &Path,
        fetch: remote::Fetch,
        providers: &crate::provider::Providers,
    ) -> Result<(Config, Vec<remote::Fetched>), (Sources, Diagnostics)> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut loader = Loader {
            sources: Sources::default(),
            modules: Vec::new(),
            diags: Diagnostics::default(),
            backend: None,
            encryption: None,
            store: remote::Store::new(dir.join(".tik").join("modules"), fetch),
            declared: HashMap::new(),
        };
        loader.load_module(&dir, Address::new(), &mut Vec::new(), None);
        let provider_diags = providers.load(&dir, &mut loader.sources);
        loader.diags.0.extend(provider_diags.0);
        if !loader.diags.is_empty() {
            return Err((loader.sources, loader.diags));
        }
        // By paths within the project: the same files elsewhere (a head's copy of what
        // apply ran) hash the same.
        let mut hasher = Sha256::new();
        for f in loader.sources.iter() {
            let path = f.path.strip_prefix(&dir).unwrap_or(&f.path);
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(f.text.as_bytes());
            hasher.update([0]);
        }
        let hash = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Held for the whole command: without the room left for more.
        for m in &mut loader.modules {
            m.objects.shrink_to_fit();
        }
        let config = Config {
            sources: loader.sources,
            modules: loader.modules,
            backend: loader.backend,
            encryption: loader.encryption,
            hash,
        };
        Ok((config, loader.store.fetched))
    }
}

struct Loader {
    sources: Sources,
    modules: Vec<Module>,
    diags: Diagnostics,
    backend: Option<BackendConfig>,
    encryption: Option<EncryptionConfig>,
    store: remote::Store,
    /// Each module's objects by kind and name, to find a duplicate block in
    /// constant time: a scan per block made loading quadratic in the blocks.
    declared: HashMap<(usize, ObjectKind, String), usize>,
}

/// Reads `*.tik.hcl` files of a directory, in name order.
fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".tik.hcl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The attributes of a block of settings (`backend`, `encryption`), which must be
/// literal values: they are read before anything else is evaluated.
fn literal_settings(
    block: &Block,
    file: FileId,
    what: &str,
    within: &str,
) -> Result<IndexMap<String, Value>, Diagnostic> {
    let mut settings = IndexMap::new();
    for s in block.body.iter() {
        match s {
            Structure::Attribute(a) => {
                let v = body::eval_literal(&a.value).map_err(|e| {
                    Diagnostic::new(format!(
                        "{what} settings must be literal values: {}",
                        e.message
                    ))
                    .at(file, e.span.or(a.value.span()))
                })?;
                settings.insert(a.key.as_str().to_string(), v);
            }
            Structure::Block(inner) => return Err(unknown_block(inner, file, within, &[])),
        }
    }
    Ok(settings)
}

fn str_attr(a: &Attribute, file: FileId) -> Result<String, Diagnostic> {
    a.value.as_str().map(str::to_string).ok_or_else(|| {
        Diagnostic::new(format!(
            "\"{}\" must be a literal string here",
            a.key.as_str()
        ))
        .at(file, a.value.span())
        .help("write it in double quotes, without references")
    })
}

fn bool_attr(a: &Attribute, file: FileId) -> Result<bool, Diagnostic> {
    a.value.as_bool().ok_or_else(|| {
        Diagnostic::new(format!("\"{}\" must be true or false", a.key.as_str()))
            .at(file, a.value.span())
    })
}

fn unknown_attr(a: &Attribute, file: FileId, within: &str, allowed: &[&str]) -> Diagnostic {
    Diagnostic::new(format!(
        "unsupported attribute \"{}\" in {within}",
        a.key.as_str()
    ))
    .at(file, a.key.span())
    .help(
        did_you_mean(a.key.as_str(), allowed.iter().copied())
            .unwrap_or_else(|| format!("{within} takes: {}", allowed.join(", "))),
    )
}

fn unknown_block(b: &Block, file: FileId, within: &str, allowed: &[&str]) -> Diagnostic {
    Diagnostic::new(format!(
        "unsupported block \"{}\" in {within}",
        b.ident.as_str()
    ))
    .at(file, b.ident.span())
    .help(
        did_you_mean(b.ident.as_str(), allowed.iter().copied()).unwrap_or_else(|| {
            if allowed.is_empty() {
                format!("{within} takes no blocks")
            } else {
                format!("{within} takes these blocks: {}", allowed.join(", "))
            }
        }),
    )
}

fn labels(b: &Block, n: usize, file: FileId, what: &str) -> Result<Vec<String>, Diagnostic> {
    if b.labels.len() != n {
        return Err(Diagnostic::new(format!(
            "a {} block takes {n} label{}, found {}",
            b.ident.as_str(),
            if n == 1 { "" } else { "s" },
            b.labels.len()
        ))
        .at(file, b.ident.span())
        .help(format!("write it as {what}")));
    }
    Ok(b.labels.iter().map(|l| l.as_str().to_string()).collect())
}

fn list_exprs(a: &Attribute, file: FileId) -> Result<Vec<Expression>, Diagnostic> {
    match &a.value {
        Expression::Array(items) => Ok(items.iter().cloned().collect()),
        other => Err(
            Diagnostic::new(format!("\"{}\" must be a list", a.key.as_str()))
                .at(file, other.span())
                .help("write it as [a.b, c.d]"),
        ),
    }
}

const TOP_BLOCKS: &[&str] = &[
    "tik",
    "variable",
    "locals",
    "output",
    "module",
    "resource",
    "workspace",
    "cluster",
    "moved",
];

impl Loader {
    fn load_module(
        &mut self,
        dir: &Path,
        prefix: Address,
        chain: &mut Vec<PathBuf>,
        call_site: Option<Location>,
    ) -> usize {
        let index = self.modules.len();
        self.modules.push(Module {
            dir: dir.to_path_buf(),
            prefix: prefix.clone(),
            ..Module::default()
        });
        let files = match config_files(dir) {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                let mut d = Diagnostic::new(format!("no *.tik.hcl files in {}", dir.display()))
                    .help("configuration files end in .tik.hcl; run tik in the directory that holds them, or pass -C DIR");
                d.location = call_site;
                self.diags.push(d);
                return index;
            }
            Err(e) => {
                let mut d =
                    Diagnostic::new(format!("cannot read the directory {}: {e}", dir.display()));
                d.location = call_site;
                self.diags.push(d);
                return index;
            }
        };
        chain.push(dir.to_path_buf());
        for path in files {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.diags.push(Diagnostic::new(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                    continue;
                }
            };
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    let file = self.sources.add(path.clone(), lossy);
                    self.diags.push(
                        Diagnostic::new(format!("{} is not valid UTF-8", path.display()))
                            .at(file, Some(at..at + 1))
                            .help("save the file as UTF-8"),
                    );
                    continue;
                }
            };
            let file = self.sources.add(path.clone(), text);
            let parsed = hcl_edit::parser::parse_body(&self.sources.get(file).text);
            match parsed {
                Ok(mut body) => {
                    Compact.visit_body_mut(&mut body);
                    self.decode_file(index, file, body, chain)
                }
                Err(e) => {
                    let off = e.location().offset();
                    let msg = e.message().to_string();
                    self.diags.push(
                        Diagnostic::new(format!("syntax error: {}", first_line(&msg)))
                            .at(file, Some(off..off + 1))
                            .help(syntax_help(&msg)),
                    );
                }
            }
        }
        chain.pop();
        index
    }

    fn decode_file(&mut self, module: usize, file: FileId, body: Body, chain: &mut Vec<PathBuf>) {
        for structure in body.into_iter() {
            let block = match structure {
                Structure::Attribute(a) => {
                    self.diags.push(
                        Diagnostic::new(format!(
                            "unexpected attribute \"{}\" at the top level",
                            a.key.as_str()
                        ))
                        .at(file, a.key.span())
                        .help("put it inside a block, such as locals { ... }"),
                    );
                    continue;
                }
                Structure::Block(b) => b,
            };
            let result = match block.ident.as_str() {
                "tik" => self.decode_tik(module, file, &block),
                "variable" => self.decode_variable(module, file, &block),
                "locals" => self.decode_locals(module, file, &block),
                "output" => self.decode_output(module, file, &block),
                "module" => self.decode_module(module, file, &block, chain),
                "resource" | "workspace" | "cluster" => self.decode_object(module, file, block),
                "moved" => self.decode_moved(module, file, &block),
                _ => Err(unknown_block(
                    &block,
                    file,
                    "a configuration file",
                    TOP_BLOCKS,
                )),
            };
            if let Err(d) = result {
                self.diags.push(d);
            }
        }
    }

    fn duplicate(
        &self,
        what: &str,
        name: &str,
        file: FileId,
        span: Option<Range<usize>>,
        first: Location,
    ) -> Diagnostic {
        Diagnostic::new(format!("duplicate {what} \"{name}\""))
            .at(file, span)
            .note("first defined here", Some(first))
            .help(format!(
                "each {what} needs a name of its own; rename or remove one"
            ))
    }

    fn decode_tik(&mut self, module: usize, file: FileId, block: &Block) -> Result<(), Diagnostic> {
        labels(block, 0, file, "tik { ... }")?;
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) if a.key.as_str() == "required_version" => {
                    let req = str_attr(a, file)?;
                    check_version(&req).map_err(|m| Diagnostic::new(m).at(file, a.value.span()))?;
                }
                Structure::Attribute(a) => {
                    return Err(unknown_attr(
                        a,
                        file,
                        "the tik block",
                        &["required_version"],
                    ))
                }
                Structure::Block(b) if b.ident.as_str() == "backend" => {
                    if module != 0 {
                        return Err(Diagnostic::new(
                            "a backend can only be set in the root module",
                        )
                        .at(file, b.ident.span()));
                    }
                    let kind = labels(b, 1, file, "backend \"local\" { ... }")?.remove(0);
                    let settings = literal_settings(b, file, "backend", "a backend block")?;
                    self.backend = Some(BackendConfig {
                        kind,
                        settings,
                        location: Location {
                            file,
                            span: b.ident.span().unwrap_or(0..0),
                        },
                    });
                }
                Structure::Block(b) if b.ident.as_str() == "encryption" => {
                    if module != 0 {
                        return Err(Diagnostic::new(
                            "state encryption can only be set in the root module",
                        )
                        .at(file, b.ident.span()));
                    }
                    labels(b, 0, file, "encryption { key_env = \"TIK_STATE_KEY\" }")?;
                    let settings = literal_settings(b, file, "encryption", "the encryption block")?;
                    let location = Location {
                        file,
                        span: b.ident.span().unwrap_or(0..0),
                    };
                    self.encryption = Some(EncryptionConfig { settings, location });
                }
                Structure::Block(b) => {
                    return Err(unknown_block(
                        b,
                        file,
                        "the tik block",
                        &["backend", "encryption"],
                    ))
                }
            }
        }
        Ok(())
    }

    fn decode_variable(
        &mut self,
        module: usize,
        file: FileId,
        block: &Block,
    ) -> Result<(), Diagnostic> {
        let name = labels(block, 1, file, "variable \"name\" { ... }")?.remove(0);
        if matches!(
            name.as_str(),
            "source" | "count" | "for_each" | "depends_on"
        ) {
            return Err(Diagnostic::new(format!(
                "\"{name}\" cannot name a variable: a module block uses {name} for itself"
            ))
            .at(file, block.labels.first().and_then(|l| l.span()))
            .help(format!(
                "give it another name, such as \"{name}_value\"; a caller could not pass it"
            )));
        }
        let mut v = Variable {
            name: name.clone(),
            file,
            span: block.ident.span(),
            ty: Type::Any,
            default: None,
            description: None,
            sensitive: false,
            validations: Vec::new(),
        };
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) => match a.key.as_str() {
                    "type" => {
                        v.ty = Type::parse(&a.value)
                            .map_err(|(m, span)| Diagnostic::new(m).at(file, span))?
                    }
                    "default" => v.default = Some(a.value.clone()),
                    "description" => v.description = Some(str_attr(a, file)?),
                    "sensitive" => v.sensitive = bool_attr(a, file)?,
                    "nullable" => {
                        bool_attr(a, file)?;
                    }
                    _ => {
                        return Err(unknown_attr(
                            a,
                            file,
                            "a variable block",
                            &["type", "default", "description", "sensitive", "nullable"],
                        ))
                    }
                },
                Structure::Block(b) if b.ident.as_str() == "validation" => {
                    v.validations.push(validation(b, file)?);
                }
                Structure::Block(b) => {
                    return Err(unknown_block(b, file, "a variable block", &["validation"]))
                }
            }
        }
        let m = &mut self.modules[module];
        if let Some(first) = m.variables.get(&name) {
            let first = Location {
                file: first.file,
                span: first.span.clone().unwrap_or(0..0),
            };
            return Err(self.duplicate("variable", &name, file, block.ident.span(), first));
        }
        m.variables.insert(name, v);
        Ok(())
    }

    fn decode_locals(
        &mut self,
        module: usize,
        file: FileId,
        block: &Block,
    ) -> Result<(), Diagnostic> {
        labels(block, 0, file, "locals { ... }")?;
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str().to_string();
                    if let Some(first) = self.modules[module].locals.get(&name) {
                        let first = Location {
                            file: first.file,
                            span: first.span.clone().unwrap_or(0..0),
                        };
                        return Err(self.duplicate(
                            "local value",
                            &name,
                            file,
                            a.key.span(),
                            first,
                        ));
                    }
                    self.modules[module].locals.insert(
                        name.clone(),
                        Local {
                            name,
                            file,
                            span: a.key.span(),
                            expr: a.value.clone(),
                        },
                    );
                }
                Structure::Block(b) => return Err(unknown_block(b, file, "a locals block", &[])),
            }
        }
        Ok(())
    }

    fn decode_output(
        &mut self,
        module: usize,
        file: FileId,
        block: &Block,
    ) -> Result<(), Diagnostic> {
        let name = labels(block, 1, file, "output \"name\" { value = ... }")?.remove(0);
        let mut value = None;
        let mut out = Output {
            name: name.clone(),
            file,
            span: block.ident.span(),
            value: Expression::null(),
            description: None,
            sensitive: false,
            depends_on: Vec::new(),
        };
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) => match a.key.as_str() {
                    "value" => value = Some(a.value.clone()),
                    "description" => out.description = Some(str_attr(a, file)?),
                    "sensitive" => out.sensitive = bool_attr(a, file)?,
                    "depends_on" => out.depends_on = list_exprs(a, file)?,
                    _ => {
                        return Err(unknown_attr(
                            a,
                            file,
                            "an output block",
                            &["value", "description", "sensitive", "depends_on"],
                        ))
                    }
                },
                Structure::Block(b) => return Err(unknown_block(b, file, "an output block", &[])),
            }
        }
        out.value = value.ok_or_else(|| {
            Diagnostic::new(format!("output \"{name}\" has no value"))
                .at(file, block.ident.span())
                .help("add value = <expression>")
        })?;
        if let Some(first) = self.modules[module].outputs.get(&name) {
            let first = Location {
                file: first.file,
                span: first.span.clone().unwrap_or(0..0),
            };
            return Err(self.duplicate("output", &name, file, block.ident.span(), first));
        }
        self.modules[module].outputs.insert(name, out);
        Ok(())
    }

    fn decode_module(
        &mut self,
        module: usize,
        file: FileId,
        block: &Block,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), Diagnostic> {
        let name = labels(block, 1, file, "module \"name\" { source = \"./dir\" }")?.remove(0);
        if let Some(first) = self.modules[module].calls.get(&name) {
            let first = Location {
                file: first.file,
                span: first.span.clone().unwrap_or(0..0),
            };
            return Err(self.duplicate("module", &name, file, block.ident.span(), first));
        }
        let mut block = block.clone();
        let repeat = decode_repeat(&mut block, None, file)?;
        let mut source = None;
        let mut args = IndexMap::new();
        let mut depends_on = Vec::new();
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) if a.key.as_str() == "source" => {
                    source = Some((str_attr(a, file)?, a.value.span()))
                }
                Structure::Attribute(a) if a.key.as_str() == "depends_on" => {
                    depends_on = list_exprs(a, file)?
                }
                Structure::Attribute(a) => {
                    args.insert(a.key.as_str().to_string(), a.clone());
                }
                Structure::Block(b) => return Err(unknown_block(b, file, "a module block", &[])),
            }
        }
        let (source, source_span) = source.ok_or_else(|| {
            Diagnostic::new(format!("module \"{name}\" has no source"))
                .at(file, block.ident.span())
                .help("add source = \"./path/to/module\"")
        })?;
        let refused = |p: remote::Problem| {
            Diagnostic::new(p.message)
                .at(file, source_span.clone())
                .help(p.help)
        };
        let dir = match remote::Source::parse(&source).map_err(refused)? {
            remote::Source::Local(path) => self.modules[module].dir.join(path),
            remote::Source::Git(git) => self.store.dir(&git).map_err(refused)?,
        };
        let dir = dir.canonicalize().map_err(|e| {
            Diagnostic::new(format!(
                "module source {} cannot be read: {e}",
                dir.display()
            ))
            .at(file, source_span.clone())
        })?;
        if chain.contains(&dir) || chain.len() >= MAX_MODULE_DEPTH {
            return Err(Diagnostic::new(format!(
                "module \"{name}\" calls itself through {}",
                dir.display()
            ))
            .at(file, source_span)
            .help("a module cannot include itself, directly or through other modules"));
        }
        let prefix = self.modules[module]
            .prefix
            .clone()
            .name("module")
            .name(&name);
        let site = Location {
            file,
            span: source_span.unwrap_or(0..0),
        };
        let child = self.load_module(&dir, prefix, chain, Some(site));
        self.modules[module].calls.insert(
            name.clone(),
            ModuleCall {
                name,
                file,
                span: block.ident.span(),
                args,
                depends_on,
                child,
                repeat,
            },
        );
        Ok(())
    }

    fn decode_moved(
        &mut self,
        module: usize,
        file: FileId,
        block: &Block,
    ) -> Result<(), Diagnostic> {
        let example = "moved {\n  from = tik_data.old\n  to   = tik_data.new\n}";
        if let Some(l) = block.labels.first() {
            return Err(Diagnostic::new("a moved block takes no label")
                .at(file, l.span())
                .help(format!("write it as {example}")));
        }
        let (mut from, mut to) = (None, None);
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) if matches!(a.key.as_str(), "from" | "to") => {
                    let address = expr_address(&a.value).map_err(|why| {
                        Diagnostic::new(format!("{} must be an address: {why}", a.key.as_str()))
                            .at(file, a.value.span())
                            .help("write a resource, cluster, workspace or module as you would reference it: tik_data.old, cluster.etl, module.net, tik_data.a[0]")
                    })?;
                    let slot = if a.key.as_str() == "from" {
                        &mut from
                    } else {
                        &mut to
                    };
                    *slot = Some((address, a.value.span()));
                }
                Structure::Attribute(a) => {
                    return Err(unknown_attr(a, file, "a moved block", &["from", "to"]))
                }
                Structure::Block(b) => return Err(unknown_block(b, file, "a moved block", &[])),
            }
        }
        let missing = |what: &str| {
            Diagnostic::new(format!("a moved block needs {what}"))
                .at(file, block.ident.span())
                .help(format!("write it as {example}"))
        };
        let (from, from_span) = from.ok_or_else(|| missing("from"))?;
        let (to, to_span) = to.ok_or_else(|| missing("to"))?;
        self.modules[module].moved.push(Moved {
            from,
            to,
            file,
            from_span,
            to_span,
        });
        Ok(())
    }

    fn decode_object(
        &mut self,
        module: usize,
        file: FileId,
        mut block: Block,
    ) -> Result<(), Diagnostic> {
        let (kind, name) = match block.ident.as_str() {
            "resource" => {
                let mut l = labels(&block, 2, file, "resource \"type\" \"name\" { ... }")?;
                let name = l.pop().unwrap_or_default();
                (ObjectKind::Resource(l.pop().unwrap_or_default()), name)
            }
            "workspace" => (
                ObjectKind::Workspace,
                labels(
                    &block,
                    1,
                    file,
                    "workspace \"name\" { provider = \"local\" }",
                )?
                .remove(0),
            ),
            _ => (
                ObjectKind::Cluster,
                labels(
                    &block,
                    1,
                    file,
                    "cluster \"name\" { workspace = workspace.NAME }",
                )?
                .remove(0),
            ),
        };
        if let ObjectKind::Resource(t) = &kind {
            if !t.contains('_') || t.starts_with('_') {
                return Err(Diagnostic::new(format!("\"{t}\" is not a resource type"))
                    .at(file, block.labels.first().and_then(|l| l.span()))
                    .help("resource types are named PROVIDER_KIND, like tik_data or local_file"));
            }
        }
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(Diagnostic::new(format!("\"{name}\" is not a valid name"))
                .at(file, block.labels.last().and_then(|l| l.span()))
                .help("names start with a letter or _ and hold letters, digits, _ and -"));
        }
        if let Some(&first) = self.declared.get(&(module, kind.clone(), name.clone())) {
            let first = &self.modules[module].objects[first];
            let first = Location {
                file: first.file,
                span: first.span.clone().unwrap_or(0..0),
            };
            return Err(self.duplicate(
                &format!("{} block", block.ident.as_str()),
                &name,
                file,
                block.ident.span(),
                first,
            ));
        }
        let mut depends_on = Vec::new();
        if let Some(a) = block.body.remove_attribute("depends_on") {
            depends_on = list_exprs(&a, file)?;
        }
        let mut lifecycle = Lifecycle::default();
        let lifecycles = block.body.remove_blocks("lifecycle");
        if lifecycles.len() > 1 {
            return Err(Diagnostic::new("only one lifecycle block is allowed")
                .at(file, lifecycles[1].ident.span()));
        }
        if let Some(lc) = lifecycles.first() {
            lifecycle = decode_lifecycle(lc, file)?;
        }
        let repeat = decode_repeat(&mut block, Some(&kind), file)?;
        let span = block.ident.span();
        let index = self.modules[module].objects.len();
        self.declared
            .insert((module, kind.clone(), name.clone()), index);
        self.modules[module].objects.push(ObjectDef {
            kind,
            name,
            file,
            span,
            body: block.body,
            depends_on,
            lifecycle,
            repeat,
        });
        Ok(())
    }
}

/// The address an expression names, as a reference writes it: `tik_data.a`,
/// `tik_data.a[0]`, `tik_data.a["k"]`, `module.net`, `cluster.etl`.
fn expr_address(expr: &Expression) -> Result<Address, String> {
    use hcl_edit::expr::TraversalOperator;
    let (root, ops) = match expr {
        Expression::Variable(v) => (v.as_str(), &[][..]),
        Expression::Traversal(t) => match &t.expr {
            Expression::Variable(v) => (v.as_str(), t.operators.as_slice()),
            _ => return Err("it does not start with a name".into()),
        },
        _ => return Err("it is not a reference".into()),
    };
    let mut address = Address::new().name(root);
    for op in ops {
        address = match op.value() {
            TraversalOperator::GetAttr(a) => address.name(a.as_str()),
            TraversalOperator::LegacyIndex(i) => address.index(*i.value()),
            TraversalOperator::Index(Expression::Number(n)) => match n.value().as_u64() {
                Some(i) => address.index(i),
                None => return Err("an index is a whole number".into()),
            },
            TraversalOperator::Index(Expression::String(k)) => address.key(k.value().as_str()),
            _ => return Err("an index is a number or a quoted key, written out".into()),
        };
    }
    if address.0.len() < 2 {
        return Err(format!("{root} alone names nothing"));
    }
    Ok(address)
}

/// Takes `count` or `for_each` out of a block: on a resource block or (`kind`
/// `None`) a module block, one of them.
fn decode_repeat(
    block: &mut Block,
    kind: Option<&ObjectKind>,
    file: FileId,
) -> Result<Option<Repeat>, Diagnostic> {
    let count = block.body.remove_attribute("count");
    let for_each = block.body.remove_attribute("for_each");
    if let (Some(_), Some(f)) = (&count, &for_each) {
        return Err(Diagnostic::new("a block takes count or for_each, not both")
            .at(file, f.key.span())
            .help("remove one: count repeats by number, for_each by the keys of a map or set"));
    }
    let (attr, repeat) = match (count, for_each) {
        (Some(c), _) => (c.key, Repeat::Count(c.value)),
        (_, Some(f)) => (f.key, Repeat::ForEach(f.value)),
        (None, None) => return Ok(None),
    };
    if let Some(kind @ (ObjectKind::Cluster | ObjectKind::Workspace)) = kind {
        let help = match kind {
            ObjectKind::Cluster => "a cluster grows by its workers' min and max; for several alike, put the cluster in a module and call it with count or for_each",
            _ => "for several alike, put the workspace in a module and call it with count or for_each",
        };
        return Err(Diagnostic::new(format!(
            "{} repeats resource and module blocks, not a {} block",
            attr.as_str(),
            block.ident.as_str()
        ))
        .at(file, attr.span())
        .help(help));
    }
    Ok(Some(repeat))
}

fn decode_lifecycle(b: &Block, file: FileId) -> Result<Lifecycle, Diagnostic> {
    let mut lc = Lifecycle::default();
    for s in b.body.iter() {
        match s {
            Structure::Attribute(a) => match a.key.as_str() {
                "prevent_destroy" => lc.prevent_destroy = bool_attr(a, file)?,
                "create_before_destroy" => lc.create_before_destroy = bool_attr(a, file)?,
                "ignore_changes" => match &a.value {
                    Expression::Variable(v) if v.as_str() == "all" => lc.ignore_all_changes = true,
                    Expression::String(s) if s.as_str() == "all" => lc.ignore_all_changes = true,
                    Expression::Array(items) => {
                        for item in items.iter() {
                            match item {
                                Expression::Variable(v) => {
                                    lc.ignore_changes.push(v.as_str().to_string())
                                }
                                Expression::String(s) => lc.ignore_changes.push(s.value().clone()),
                                other => return Err(Diagnostic::new(
                                    "ignore_changes lists attribute names",
                                )
                                .at(file, other.span())
                                .help(
                                    "write ignore_changes = [input, tags] or ignore_changes = all",
                                )),
                            }
                        }
                    }
                    other => {
                        return Err(Diagnostic::new(
                            "ignore_changes must be a list of attribute names or all",
                        )
                        .at(file, other.span())
                        .help("write ignore_changes = [input, tags] or ignore_changes = all"))
                    }
                },
                _ => {
                    return Err(unknown_attr(
                        a,
                        file,
                        "a lifecycle block",
                        &["prevent_destroy", "create_before_destroy", "ignore_changes"],
                    ))
                }
            },
            Structure::Block(inner) => {
                return Err(unknown_block(inner, file, "a lifecycle block", &[]))
            }
        }
    }
    Ok(lc)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn syntax_help(msg: &str) -> String {
    if msg.contains("nesting depth") {
        "tik reads at most 64 nested levels; move inner parts into locals".into()
    } else if msg.contains("heredoc") {
        "close the heredoc with its delimiter alone on a line".into()
    } else if msg.contains('}') || msg.contains("block") {
        "check that every { has its } and that each attribute is on its own line".into()
    } else {
        "attributes are written name = value, blocks as name \"label\" { ... }".into()
    }
}

/// Checks `required_version` constraints like ">= 0.1, < 2" against this tik.
pub fn check_version(req: &str) -> Result<(), String> {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.trim()
            .trim_start_matches('v')
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    };
    let ours = parse(env!("CARGO_PKG_VERSION")).unwrap_or_default();
    for part in req.split(',') {
        let part = part.trim();
        let (op, ver) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|v| (*op, v)))
            .unwrap_or(("=", part));
        let want = parse(ver).ok_or_else(|| {
            format!("\"{part}\" is not a version constraint: write it like \">= 0.1\"")
        })?;
        let n = want.len().max(ours.len());
        let pad =
            |v: &[u64]| -> Vec<u64> { (0..n).map(|i| v.get(i).copied().unwrap_or(0)).collect() };
        let (a, b) = (pad(&ours), pad(&want));
        let ok = match op {
            ">=" => a >= b,
            "<=" => a <= b,
            ">" => a > b,
            "<" => a < b,
            "!=" => a != b,
            "~>" => {
                a >= b && a[..want.len().saturating_sub(1)] == b[..want.len().saturating_sub(1)]
            }
            _ => a == b,
        };
        if !ok {
            return Err(format!(
                "this configuration needs tik {req}, but this is tik {}",
                env!("CARGO_PKG_VERSION")
            ));
        }
    }
    Ok(())
}

/// Gives back what the parser's growing lists left unused: a body of one attribute
/// keeps room for one, not four. The configuration is held for the whole of a
/// command, so at tens of thousands of blocks this is a third of its memory.
struct Compact;

impl VisitMut for Compact {
    fn visit_block_mut(&mut self, block: &mut Block) {
        // Rebuilt from its structures at their exact count (the parser has refused
        // a repeated attribute, so none is dropped). Only its layout (the decor `tik
        // fmt` reads from its own parse) is left behind. A long body is left as it
        // is: rebuilding checks each attribute against the others.
        if block.body.len() <= 64 {
            block.body = Body::from_iter(std::mem::take(&mut block.body));
        }
        hcl_edit::visit_mut::visit_block_mut(self, block);
    }

    fn visit_traversal_mut(&mut self, traversal: &mut hcl_edit::expr::Traversal) {
        traversal.operators.shrink_to_fit();
        hcl_edit::visit_mut::visit_traversal_mut(self, traversal);
    }
}
