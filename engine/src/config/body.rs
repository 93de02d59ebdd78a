//! Evaluates a block body against a schema: unknown attributes and blocks get
//! "did you mean", missing required attributes point at the block.

use crate::diag::{did_you_mean, Diagnostic, Diagnostics, FileId};
use crate::eval::{EvalError, Evaluator, Marks};
use crate::value::{Map, Value};
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};
use hcl_edit::Span;
use std::ops::Range;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub attributes: Vec<AttrSpec>,
    pub blocks: Vec<BlockSpec>,
    /// Takes any attribute (a runtime's params, checked later against its definition).
    pub open: bool,
}

#[derive(Debug, Clone)]
pub struct AttrSpec {
    pub name: String,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct BlockSpec {
    pub name: String,
    /// A labeled block (`workers "default" {}`) becomes a map from label to body.
    pub labeled: bool,
    pub schema: Schema,
}

impl Schema {
    pub fn open() -> Self {
        Schema {
            open: true,
            ..Schema::default()
        }
    }
    pub fn attr(mut self, name: &str) -> Self {
        self.attributes.push(AttrSpec {
            name: name.into(),
            required: false,
        });
        self
    }
    pub fn required(mut self, name: &str) -> Self {
        self.attributes.push(AttrSpec {
            name: name.into(),
            required: true,
        });
        self
    }
    pub fn block(mut self, name: &str, schema: Schema) -> Self {
        self.blocks.push(BlockSpec {
            name: name.into(),
            labeled: false,
            schema,
        });
        self
    }
    pub fn labeled_block(mut self, name: &str, schema: Schema) -> Self {
        self.blocks.push(BlockSpec {
            name: name.into(),
            labeled: true,
            schema,
        });
        self
    }
}

pub fn eval_error(file: FileId, e: EvalError) -> Diagnostic {
    Diagnostic::new(e.message).at(file, e.span).help_opt(e.help)
}

/// Evaluates an expression that may not reference anything.
pub fn eval_literal(expr: &Expression) -> Result<Value, EvalError> {
    let empty = Map::new();
    Evaluator::new(&empty, Path::new(".")).eval(expr)
}

/// Evaluates `body` into an object; `what` names the block in messages ("cluster \"etl\"").
/// `marks` gets the attributes (`runtime.pg.password`) that read a sensitive value.
pub fn eval_body(
    body: &Body,
    schema: &Schema,
    what: &str,
    file: FileId,
    header: Option<Range<usize>>,
    ev: &mut Evaluator<'_>,
    marks: &mut Marks,
) -> Result<Map, Diagnostics> {
    let mut out = Map::new();
    let mut diags = Diagnostics::default();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                if !schema.open && !schema.attributes.iter().any(|s| s.name == key) {
                    let names = schema.attributes.iter().map(|s| s.name.as_str());
                    let help = did_you_mean(key, names.clone())
                        .or_else(|| {
                            schema
                                .blocks
                                .iter()
                                .any(|b| b.name == key)
                                .then(|| format!("{key} is a block: write {key} {{ ... }}"))
                        })
                        .unwrap_or_else(|| {
                            format!("{what} takes: {}", names.collect::<Vec<_>>().join(", "))
                        });
                    diags.push(
                        Diagnostic::new(format!("unsupported attribute \"{key}\" in {what}"))
                            .at(file, a.key.span())
                            .help(help),
                    );
                    continue;
                }
                if out.contains_key(key) {
                    diags.push(
                        Diagnostic::new(format!("attribute \"{key}\" is set twice in {what}"))
                            .at(file, a.key.span())
                            .help("remove one of them"),
                    );
                    continue;
                }
                match ev.eval_with_marks(&a.value) {
                    Ok((v, m)) => {
                        marks.put(&[key], m);
                        out.insert(key.to_string(), v);
                    }
                    Err(e) => diags.push(eval_error(file, e)),
                }
            }
            Structure::Block(b) => {
                let key = b.ident.as_str();
                let Some(spec) = schema.blocks.iter().find(|s| s.name == key) else {
                    let names = schema.blocks.iter().map(|s| s.name.as_str());
                    let help = did_you_mean(key, names.clone())
                        .or_else(|| {
                            schema
                                .attributes
                                .iter()
                                .any(|a| a.name == key)
                                .then(|| format!("{key} is an attribute: write {key} = ..."))
                        })
                        .unwrap_or_else(|| {
                            format!(
                                "{what} takes these blocks: {}",
                                names.collect::<Vec<_>>().join(", ")
                            )
                        });
                    diags.push(
                        Diagnostic::new(format!("unsupported block \"{key}\" in {what}"))
                            .at(file, b.ident.span())
                            .help(help),
                    );
                    continue;
                };
                let want = usize::from(spec.labeled);
                if b.labels.len() != want {
                    let example = if spec.labeled {
                        format!("{key} \"name\" {{ ... }}")
                    } else {
                        format!("{key} {{ ... }}")
                    };
                    diags.push(
                        Diagnostic::new(format!(
                            "a {key} block takes {want} label{}",
                            if want == 1 { "" } else { "s" }
                        ))
                        .at(file, b.ident.span())
                        .help(format!("write it as {example}")),
                    );
                    continue;
                }
                let inner_what = match b.labels.first() {
                    Some(l) => format!("{key} \"{}\"", l.as_str()),
                    None => key.to_string(),
                };
                let mut inner = Marks::default();
                let span = b.ident.span();
                let value = match eval_body(
                    &b.body,
                    &spec.schema,
                    &inner_what,
                    file,
                    span,
                    ev,
                    &mut inner,
                ) {
                    Ok(v) => Value::Object(v),
                    Err(d) => {
                        diags.0.extend(d.0);
                        continue;
                    }
                };
                if spec.labeled {
                    let label = b.labels[0].as_str().to_string();
                    marks.put(&[key, label.as_str()], inner);
                    let entry = out
                        .entry(key.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = entry {
                        if m.contains_key(&label) {
                            diags.push(
                                Diagnostic::new(format!("duplicate {inner_what} block"))
                                    .at(file, b.ident.span())
                                    .help("each block needs a label of its own"),
                            );
                        } else {
                            m.insert(label, value);
                        }
                    }
                } else if out.contains_key(key) {
                    diags.push(
                        Diagnostic::new(format!("only one {key} block is allowed in {what}"))
                            .at(file, b.ident.span()),
                    );
                } else {
                    marks.put(&[key], inner);
                    out.insert(key.to_string(), value);
                }
            }
        }
    }
    for spec in schema.attributes.iter().filter(|s| s.required) {
        if !out.contains_key(&spec.name) {
            diags.push(
                Diagnostic::new(format!("{what} needs the attribute \"{}\"", spec.name))
                    .at(file, header.clone())
                    .help(format!("add {} = ...", spec.name)),
            );
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// What a workspace block may hold, whatever its provider.
pub fn workspace_schema() -> Schema {
    Schema::default()
        .required("provider")
        .attr("region")
        .attr("endpoint")
        .attr("transport")
        .attr("tags")
        .block(
            "network",
            Schema::default()
                .attr("cidr")
                .attr("mode")
                .attr("allowed_ssh")
                .attr("vpc_id")
                .attr("peer_vpc_id")
                .attr("availability_zones"),
        )
        .block(
            "iam",
            Schema::default()
                .attr("head_statements")
                .attr("worker_statements"),
        )
        .block(
            "storage",
            Schema::default()
                .attr("managed")
                .attr("bucket")
                .attr("keep_on_destroy"),
        )
}

/// What a cluster block may hold, whatever its provider.
pub fn cluster_schema() -> Schema {
    let node = Schema::default()
        .attr("instance_type")
        .attr("disk_gb")
        .attr("image")
        .attr("labels");
    Schema::default()
        .required("workspace")
        .attr("tags")
        .block(
            "ssh",
            Schema::default()
                .attr("user")
                .attr("port")
                .attr("public_key")
                .attr("private_key_file")
                .attr("use_internal_ips")
                .attr("wait"),
        )
        .block("head", node.clone())
        .labeled_block(
            "workers",
            node.attr("min")
                .attr("max")
                .attr("spot")
                .attr("spot_fallback"),
        )
        .block(
            "container",
            Schema::default()
                .attr("image")
                .attr("engine")
                .attr("options"),
        )
        .labeled_block("runtime", Schema::open())
}
