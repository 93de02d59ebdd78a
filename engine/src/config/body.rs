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

    /// This schema with `other`'s attributes and blocks added; a block both have
    /// takes what either takes.
    pub fn merge(mut self, other: Schema) -> Self {
        self.open |= other.open;
        for a in other.attributes {
            match self.attributes.iter_mut().find(|s| s.name == a.name) {
                Some(s) => s.required |= a.required,
                None => self.attributes.push(a),
            }
        }
        for b in other.blocks {
            match self.blocks.iter_mut().find(|s| s.name == b.name) {
                Some(s) => {
                    s.labeled |= b.labeled;
                    s.schema = std::mem::take(&mut s.schema).merge(b.schema);
                }
                None => self.blocks.push(b),
            }
        }
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
    let (mut out, mut diags) = (Map::new(), Diagnostics::default());
    let mut into = Nested {
        out: &mut out,
        marks,
        diags: &mut diags,
        file,
        what,
    };
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                if !schema.open && !schema.attributes.iter().any(|s| s.name == key) {
                    into.diags
                        .push(unsupported(schema, key, false, what, file, a.key.span()));
                    continue;
                }
                if into.out.contains_key(key) {
                    into.diags.push(
                        Diagnostic::new(format!("attribute \"{key}\" is set twice in {what}"))
                            .at(file, a.key.span())
                            .help("remove one of them"),
                    );
                    continue;
                }
                match ev.eval_with_marks(&a.value) {
                    Ok((v, m)) => {
                        into.marks.put(&[key], m);
                        into.out.insert(key.to_string(), v);
                    }
                    Err(e) => into.diags.push(eval_error(file, e)),
                }
            }
            Structure::Block(b) if b.ident.as_str() == "dynamic" => {
                if let Err(d) = dynamic_block(b, schema, &mut into, ev) {
                    into.diags.push(d);
                }
            }
            Structure::Block(b) => {
                let key = b.ident.as_str();
                let Some(spec) = schema.blocks.iter().find(|s| s.name == key) else {
                    into.diags
                        .push(unsupported(schema, key, true, what, file, b.ident.span()));
                    continue;
                };
                let want = usize::from(spec.labeled);
                if b.labels.len() != want {
                    let example = if spec.labeled {
                        format!("{key} \"name\" {{ ... }}")
                    } else {
                        format!("{key} {{ ... }}")
                    };
                    into.diags.push(
                        Diagnostic::new(format!(
                            "a {key} block takes {want} label{}",
                            if want == 1 { "" } else { "s" }
                        ))
                        .at(file, b.ident.span())
                        .help(format!("write it as {example}")),
                    );
                    continue;
                }
                let label = b.labels.first().map(|l| l.as_str().to_string());
                if let Some(bad) = label.as_deref().and_then(|l| bad_label(key, l)) {
                    into.diags.push(bad.at(file, b.ident.span()));
                    continue;
                }
                into.add(spec, label, &b.body, b.ident.span(), ev);
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

/// The names in `body` that `schema` does not take, found without evaluating
/// anything: for a block that cannot be evaluated because something it reads
/// failed, so that its own mistakes are still named. A `dynamic` block's content
/// is left to its evaluation.
pub fn check_names(body: &Body, schema: &Schema, what: &str, file: FileId) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                if !schema.open && !schema.attributes.iter().any(|s| s.name == key) {
                    diags.push(unsupported(schema, key, false, what, file, a.key.span()));
                }
            }
            Structure::Block(b) if b.ident.as_str() == "dynamic" => {}
            Structure::Block(b) => {
                let key = b.ident.as_str();
                let Some(spec) = schema.blocks.iter().find(|s| s.name == key) else {
                    diags.push(unsupported(schema, key, true, what, file, b.ident.span()));
                    continue;
                };
                let inner = match b.labels.first() {
                    Some(l) => format!("{key} \"{}\"", l.as_str()),
                    None => key.to_string(),
                };
                diags
                    .0
                    .extend(check_names(&b.body, &spec.schema, &inner, file).0);
            }
        }
    }
    diags
}

/// Where a body's blocks go as they are evaluated: its object, marks and errors.
struct Nested<'o> {
    out: &'o mut Map,
    marks: &'o mut Marks,
    diags: &'o mut Diagnostics,
    file: FileId,
    /// The block the body belongs to, for messages.
    what: &'o str,
}

impl Nested<'_> {
    /// Evaluates one nested block (written, or made by a dynamic block) and puts it
    /// into the object: under its label when its kind is labeled, else once only.
    fn add(
        &mut self,
        spec: &BlockSpec,
        label: Option<String>,
        body: &Body,
        span: Option<Range<usize>>,
        ev: &mut Evaluator<'_>,
    ) {
        let key = spec.name.as_str();
        let inner_what = match &label {
            Some(l) => format!("{key} \"{l}\""),
            None => key.to_string(),
        };
        let mut inner = Marks::default();
        let value = match eval_body(
            body,
            &spec.schema,
            &inner_what,
            self.file,
            span.clone(),
            ev,
            &mut inner,
        ) {
            Ok(v) => Value::Object(v),
            Err(d) => {
                self.diags.0.extend(d.0);
                return;
            }
        };
        match label {
            Some(label) => {
                self.marks.put(&[key, label.as_str()], inner);
                let entry = self
                    .out
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    if m.contains_key(&label) {
                        self.diags.push(
                            Diagnostic::new(format!("duplicate {inner_what} block"))
                                .at(self.file, span)
                                .help("each block needs a label of its own"),
                        );
                    } else {
                        m.insert(label, value);
                    }
                }
            }
            None if self.out.contains_key(key) => self.diags.push(
                Diagnostic::new(format!("only one {key} block is allowed in {}", self.what))
                    .at(self.file, span),
            ),
            None => {
                self.marks.put(&[key], inner);
                self.out.insert(key.to_string(), value);
            }
        }
    }
}

/// An attribute, or a block when `block`, that `schema` does not take: with the name
/// it may have meant, or the other kind it is, or what the schema takes.
fn unsupported(
    schema: &Schema,
    key: &str,
    block: bool,
    what: &str,
    file: FileId,
    span: Option<Range<usize>>,
) -> Diagnostic {
    let attributes: Vec<&str> = schema.attributes.iter().map(|s| s.name.as_str()).collect();
    let blocks: Vec<&str> = schema.blocks.iter().map(|s| s.name.as_str()).collect();
    let (noun, names, others, other, takes) = if block {
        let hint = format!("{key} is an attribute: write {key} = ...");
        ("block", &blocks, &attributes, hint, "takes these blocks")
    } else {
        let hint = format!("{key} is a block: write {key} {{ ... }}");
        ("attribute", &attributes, &blocks, hint, "takes")
    };
    let help = did_you_mean(key, names.iter().copied())
        .or_else(|| others.contains(&key).then_some(other))
        .unwrap_or_else(|| format!("{what} {takes}: {}", names.join(", ")));
    Diagnostic::new(format!("unsupported {noun} \"{key}\" in {what}"))
        .at(file, span)
        .help(help)
}

/// `dynamic "workers" { for_each = ..., iterator = pool, labels = [...], content { ... } }`:
/// one `workers` block per element of `for_each`, its content evaluated with the
/// iterator (`pool.key`, `pool.value`; the block's kind names it by default) bound.
fn dynamic_block(
    b: &hcl_edit::structure::Block,
    schema: &Schema,
    into: &mut Nested<'_>,
    ev: &mut Evaluator<'_>,
) -> Result<(), Diagnostic> {
    let file = into.file;
    let example = "dynamic \"workers\" {\n  for_each = var.pools\n  labels   = [workers.key]\n  content { min = workers.value }\n}";
    let [kind] = b.labels.as_slice() else {
        return Err(
            Diagnostic::new("a dynamic block takes one label: the kind of block it makes")
                .at(file, b.ident.span())
                .help(format!("write it as {example}")),
        );
    };
    let kind_span = kind.span();
    let kind = kind.as_str();
    let Some(spec) = schema.blocks.iter().find(|s| s.name == kind) else {
        return Err(unsupported(schema, kind, true, into.what, file, kind_span));
    };
    let DynamicParts {
        for_each,
        iterator,
        labels,
        content,
    } = dynamic_parts(b, kind, file, example)?;
    let missing = |what: &str| {
        Diagnostic::new(format!("dynamic \"{kind}\" needs {what}"))
            .at(file, b.ident.span())
            .help(format!("write it as {example}"))
    };
    let for_each = for_each.ok_or_else(|| missing("for_each"))?;
    let content = content.ok_or_else(|| missing("a content block"))?;
    let label_expr = match (labels, spec.labeled) {
        (Some(l), true) => Some(l),
        (None, true) => {
            return Err(missing(&format!(
                "labels: each {kind} block has a name, as in labels = [{}.key]",
                iterator.as_deref().unwrap_or(kind)
            )))
        }
        (Some(l), false) => {
            return Err(Diagnostic::new(format!("a {kind} block has no label"))
                .at(file, l.span())
                .help("remove labels"))
        }
        (None, false) => None,
    };
    let iterator = iterator.unwrap_or_else(|| kind.to_string());
    let (value, marks) = ev
        .eval_with_marks(for_each)
        .map_err(|e| eval_error(file, e))?;
    let refused =
        |msg: String, help: &str| Diagnostic::new(msg).at(file, for_each.span()).help(help);
    if !marks.is_empty() {
        return Err(refused(
            format!("the for_each of dynamic \"{kind}\" reads a sensitive value"),
            "repeat over what is not secret (the names), and read the secret inside content",
        ));
    }
    let items =
        for_each_items(value, kind, ev.validating).map_err(|(msg, help)| refused(msg, help))?;
    for (key, value) in items {
        let mut checking = key == Value::Unknown;
        let each: Map = [("key".to_string(), key), ("value".to_string(), value)]
            .into_iter()
            .collect();
        ev.bind(&iterator, Value::Object(each));
        let label = match label_expr.map(|e| label_of(e, kind, file, ev)).transpose() {
            Ok(l) => l,
            Err(d) => {
                ev.unbind();
                return Err(d);
            }
        };
        let label = label.flatten();
        // A label known only later (validate) leaves nothing to name the block by.
        checking |= spec.labeled && label.is_none();
        if checking {
            // Into an object of its own: the block is only checked.
            let (mut scratch, mut scratch_marks) = (Map::new(), Marks::default());
            let mut check = Nested {
                out: &mut scratch,
                marks: &mut scratch_marks,
                diags: &mut *into.diags,
                file,
                what: into.what,
            };
            let label = spec.labeled.then(|| label.unwrap_or_default());
            check.add(spec, label, &content.body, content.ident.span(), ev);
            // What the blocks hold is known only later.
            into.out.insert(kind.to_string(), Value::Unknown);
        } else {
            into.add(spec, label, &content.body, content.ident.span(), ev);
        }
        ev.unbind();
    }
    Ok(())
}

/// What a `dynamic` block's body says, each part not yet checked for being there.
struct DynamicParts<'b> {
    for_each: Option<&'b Expression>,
    iterator: Option<String>,
    labels: Option<&'b Expression>,
    content: Option<&'b hcl_edit::structure::Block>,
}

/// Reads a `dynamic "kind"` block's body, refusing what it cannot hold.
fn dynamic_parts<'b>(
    b: &'b hcl_edit::structure::Block,
    kind: &str,
    file: FileId,
    example: &str,
) -> Result<DynamicParts<'b>, Diagnostic> {
    let (mut for_each, mut iterator, mut labels, mut content) = (None, None, None, None);
    for s in b.body.iter() {
        match s {
            Structure::Attribute(a) => match a.key.as_str() {
                "for_each" => for_each = Some(&a.value),
                "labels" => labels = Some(&a.value),
                "iterator" => match &a.value {
                    Expression::Variable(v) => iterator = Some(v.as_str().to_string()),
                    other => return Err(Diagnostic::new("iterator is a bare name")
                        .at(file, other.span())
                        .help(
                            "write iterator = pool, then read pool.key and pool.value in content",
                        )),
                },
                other => return Err(Diagnostic::new(format!(
                    "unsupported attribute \"{other}\" in dynamic \"{kind}\""
                ))
                .at(file, a.key.span())
                .help(
                    did_you_mean(other, ["for_each", "iterator", "labels"]).unwrap_or_else(|| {
                        "a dynamic block takes for_each, iterator, labels and one content block"
                            .into()
                    }),
                )),
            },
            Structure::Block(c) if c.ident.as_str() == "content" && content.is_none() => {
                content = Some(c)
            }
            Structure::Block(c) => {
                return Err(Diagnostic::new(format!(
                    "a dynamic block holds one content block, not {}",
                    if c.ident.as_str() == "content" {
                        "two".to_string()
                    } else {
                        format!("a {} block", c.ident.as_str())
                    }
                ))
                .at(file, c.ident.span())
                .help(format!("write it as {example}")))
            }
        }
    }
    Ok(DynamicParts {
        for_each,
        iterator,
        labels,
        content,
    })
}

/// The (key, value) pairs a dynamic block's `for_each` repeats over, or what is wrong
/// with it (message and help). Validate checks an unknown one once, as any element.
fn for_each_items(
    value: Value,
    kind: &str,
    validating: bool,
) -> Result<Vec<(Value, Value)>, (String, &'static str)> {
    Ok(match value {
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (Value::String(k), v))
            .collect(),
        Value::List(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::Number(i as f64), v))
            .collect(),
        Value::Null => Vec::new(),
        Value::Unknown if validating => vec![(Value::Unknown, Value::Unknown)],
        Value::Unknown => {
            return Err((
                format!("the for_each of dynamic \"{kind}\" is known only after apply"),
                "the blocks must be known to plan them: take it from variables and locals",
            ))
        }
        other => {
            return Err((
                format!(
                    "the for_each of dynamic \"{kind}\" takes a map or a list, not {}",
                    other.a_type()
                ),
                "write for_each = var.pools, a map of what each block holds",
            ))
        }
    })
}

/// The label a dynamic block gives one block it makes: the one string of `labels`;
/// `None` (inside `Some`) when it is known only later, which only validate allows.
fn label_of(
    expr: &Expression,
    kind: &str,
    file: FileId,
    ev: &mut Evaluator<'_>,
) -> Result<Option<String>, Diagnostic> {
    let bad = |why: String| {
        Diagnostic::new(format!("the labels of dynamic \"{kind}\" {why}"))
            .at(file, expr.span())
            .help(format!(
                "write labels = [{kind}.key]: one string, the block's name"
            ))
    };
    let named = |label: String| match bad_label(kind, &label) {
        Some(bad) => Err(bad.at(file, expr.span())),
        None => Ok(Some(label)),
    };
    match ev.eval(expr).map_err(|e| eval_error(file, e))? {
        Value::List(items) if items.len() == 1 => match &items[0] {
            Value::String(s) => named(s.clone()),
            Value::Number(n) => named(crate::value::format_number(*n)),
            Value::Unknown if ev.validating => Ok(None),
            Value::Unknown => Err(bad("are known only after apply".into())),
            other => Err(bad(format!("must be strings, not {}", other.a_type()))),
        },
        Value::Unknown if ev.validating => Ok(None),
        Value::Unknown => Err(bad("are known only after apply".into())),
        Value::List(items) => Err(bad(format!(
            "hold {} values; a {kind} block takes one",
            items.len()
        ))),
        other => Err(bad(format!("must be a list, not {}", other.a_type()))),
    }
}

/// Why a block's label is refused, if it is: a label names what the provider makes (a
/// pool's nodes, a runtime's files), so it becomes part of paths and names and takes
/// what names take.
fn bad_label(kind: &str, label: &str) -> Option<Diagnostic> {
    (!crate::walk::valid_name(label)).then(|| {
        Diagnostic::new(format!(
            "the label of {kind} \"{}\" must be 1 to 63 letters, digits, - or _, starting with a letter or digit",
            label.escape_debug()
        ))
        .help(format!(
            "nodes and files are named after it: write {kind} \"default\" {{ ... }}"
        ))
    })
}

/// What a workspace or cluster block holds whatever its provider: the parts the
/// engine and the node steps read. A provider adds its own through
/// `Provider::block_schema`, and the two are merged before the block is evaluated.
pub fn shared_schema(kind: crate::provider::BlockKind) -> Schema {
    match kind {
        crate::provider::BlockKind::Workspace => {
            Schema::default().required("provider").attr("name")
        }
        crate::provider::BlockKind::Cluster => Schema::default()
            .required("workspace")
            .attr("name")
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
            .block("head", Schema::default())
            .labeled_block(
                "workers",
                Schema::default()
                    .attr("min")
                    .attr("max")
                    .attr("idle_timeout"),
            )
            .block(
                "controller",
                Schema::default()
                    .attr("unhealthy_after")
                    .attr("recovery_attempts")
                    .attr("backoff")
                    .attr("interval")
                    .attr("health_interval")
                    .attr("on"),
            )
            .block(
                "container",
                Schema::default()
                    .attr("image")
                    .attr("engine")
                    .attr("options"),
            )
            .labeled_block("runtime", Schema::open()),
    }
}

/// Where `path` (an attribute under nested blocks and their labels, such as
/// `["workers", "default", "min"]`) is written in `body`: the attribute's value, or
/// the innermost of its blocks that is written, or `None` when none is.
pub fn span_of(body: &Body, path: &[String]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    if rest.is_empty() {
        if let Some(a) = body.get_attribute(first) {
            return a.value.span();
        }
    }
    for b in body.blocks().filter(|b| b.ident.as_str() == first.as_str()) {
        let inner = match b.labels.first() {
            Some(label) if rest.first().map(String::as_str) == Some(label.as_str()) => &rest[1..],
            Some(_) => continue,
            None => rest,
        };
        return span_of(&b.body, inner).or_else(|| b.ident.span());
    }
    None
}
