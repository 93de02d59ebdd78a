//! The expression evaluator: HCL expressions (with their spans) to [`Value`]s.
//!
//! Names are looked up in a [`Scope`] by reference, so a lookup costs the length of the
//! traversal, not the size of the scope. Unknown values flow through every operation.

mod functions;
mod marks;

use crate::value::{format_number, Map, Value};
use hcl_edit::expr::{
    BinaryOperator, Expression, ForExpr, FuncCall, ObjectKey, Traversal, TraversalOperator,
    UnaryOperator,
};
use hcl_edit::template::{Directive, Element, Strip, Template};
use hcl_edit::Span;
use std::ops::Range;
use std::path::Path;

pub use functions::{cidrsubnet, FUNCTION_NAMES};
pub use marks::Marks;

/// What names an expression can see.
pub trait Scope {
    /// The value of a root name (`var`, `local`, `tik_data`, ...), if it is defined here.
    fn root(&self, name: &str) -> Option<&Value>;
}

/// A scope made of a plain map, for tests and small evaluations.
impl Scope for Map {
    fn root(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub message: String,
    pub span: Option<Range<usize>>,
    pub help: Option<String>,
}

impl EvalError {
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        EvalError {
            message: message.into(),
            span,
            help: None,
        }
    }
    fn help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

type Result<T> = std::result::Result<T, EvalError>;

/// An evaluation: the scope, the directory `file()` reads relative to, and the names bound
/// by enclosing `for` expressions.
pub struct Evaluator<'a> {
    scope: &'a dyn Scope,
    pub base_dir: &'a Path,
    /// Files embedded in the binary (a shipped runtime's scripts), by path relative to
    /// `base_dir`: `file()` and `templatefile()` read these instead of the disk.
    pub embedded: Option<&'a std::collections::BTreeMap<String, String>>,
    /// Names bound by `for`, with the marks of their values.
    bound: Vec<(String, Value, Option<&'a Marks>)>,
    /// Where the scope's values are sensitive, by root name.
    marks: Option<&'a Marks>,
    /// Something sensitive was read since `take_touched` last asked.
    touched: bool,
    /// The indent of a `<<-` heredoc being evaluated: the parser removes it from the
    /// template's top-level text only, so text inside directives loses it here.
    dedent: Option<usize>,
    /// `tik validate` without every variable: a dynamic block repeated by a value
    /// known only later is checked once instead of refused.
    pub validating: bool,
}

impl<'a> Evaluator<'a> {
    pub fn new(scope: &'a dyn Scope, base_dir: &'a Path) -> Self {
        Evaluator {
            scope,
            base_dir,
            embedded: None,
            bound: Vec::new(),
            marks: None,
            touched: false,
            dedent: None,
            validating: false,
        }
    }

    /// Binds `name` to `value` until `unbind`, above the scope: a repeated block's
    /// `count` or `each`, a dynamic block's iterator.
    pub fn bind(&mut self, name: &str, value: Value) {
        self.bound.push((name.to_string(), value, None));
    }

    /// Ends the latest `bind`.
    pub fn unbind(&mut self) {
        self.bound.pop();
    }

    /// Follows `marks` (by root name) as it reads the scope.
    pub fn with_marks(mut self, marks: &'a Marks) -> Self {
        self.marks = Some(marks);
        self
    }

    /// Whether anything evaluated since the last call read a sensitive value. A read
    /// is sensitive when the part read holds a marked part; a value computed from one
    /// (a condition on it too) is as sensitive as what it read.
    pub fn take_touched(&mut self) -> bool {
        std::mem::take(&mut self.touched)
    }

    /// A failed validation rule's message: `expr`'s text, or a note in its place
    /// where it reads a sensitive value (an error message is printed as it is).
    pub fn eval_message(&mut self, expr: &Expression) -> Result<String> {
        self.touched = false;
        let msg = self.eval(expr)?;
        Ok(if self.take_touched() {
            "(the rule's message names a sensitive value, so it is not shown)".into()
        } else {
            msg.to_template_string().unwrap_or_else(|| msg.to_string())
        })
    }

    /// Evaluates `expr` and says where its value is sensitive: where what it names is,
    /// when it only names something (`cluster.etl`, `var.tags`), else as a whole when
    /// it read anything sensitive. Resets `take_touched`.
    pub fn eval_with_marks(&mut self, expr: &Expression) -> Result<(Value, Marks)> {
        self.touched = false;
        let (value, marks) = self.eval_marked(expr)?;
        let marks = match (self.take_touched(), marks) {
            (true, _) => Marks::whole(),
            (false, m) => m.cloned().unwrap_or_default(),
        };
        Ok((value, marks))
    }

    fn touch(&mut self, marks: Option<&Marks>) {
        if marks.is_some() {
            self.touched = true;
        }
    }

    /// Evaluates an expression that reads a name, a traversal or a parenthesised one,
    /// without counting the read: its marks come back for the caller to follow. Any
    /// other expression is evaluated as usual.
    fn eval_marked(&mut self, expr: &Expression) -> Result<(Value, Option<&'a Marks>)> {
        match expr {
            Expression::Variable(v) => self.variable(v.as_str(), expr.span()),
            Expression::Traversal(t) => self.traversal(t),
            Expression::Parenthesis(p) => self.eval_marked(p.inner()),
            _ => Ok((self.eval(expr)?, None)),
        }
    }

    pub fn eval(&mut self, expr: &Expression) -> Result<Value> {
        let span = expr.span();
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(f64::NAN))),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.eval(item)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(obj) => {
                let mut out = Map::with_capacity(obj.len());
                for (key, value) in obj.iter() {
                    let key = match key {
                        ObjectKey::Ident(id) => id.as_str().to_string(),
                        ObjectKey::Expression(e) => match self.eval(e)? {
                            Value::Unknown => return Ok(Value::Unknown),
                            v => v.to_template_string().ok_or_else(|| {
                                EvalError::new(
                                    format!("an object key must be a string, not {}", v.a_type()),
                                    e.span(),
                                )
                            })?,
                        },
                    };
                    out.insert(key, self.eval(value.expr())?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => {
                let saved = std::mem::replace(&mut self.dedent, h.indent());
                let result = self.template(&h.template);
                self.dedent = saved;
                result
            }
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(_) | Expression::Traversal(_) => {
                let (value, marks) = self.eval_marked(expr)?;
                self.touch(marks);
                Ok(value)
            }
            Expression::Conditional(c) => match self.eval(&c.cond_expr)? {
                Value::Unknown => Ok(Value::Unknown),
                cond => {
                    if to_bool(&cond).ok_or_else(|| {
                        EvalError::new(
                            format!("the condition must be a bool, not {}", cond.a_type()),
                            c.cond_expr.span(),
                        )
                    })? {
                        self.eval(&c.true_expr)
                    } else {
                        self.eval(&c.false_expr)
                    }
                }
            },
            Expression::FuncCall(call) => self.call(call, span),
            Expression::UnaryOp(op) => {
                let v = self.eval(&op.expr)?;
                match (op.operator.value(), v) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOperator::Neg, v) => to_number(&v)
                        .map(|n| Value::Number(-n))
                        .ok_or_else(|| type_error("number", &v, op.expr.span())),
                    (UnaryOperator::Not, v) => to_bool(&v)
                        .map(|b| Value::Bool(!b))
                        .ok_or_else(|| type_error("bool", &v, op.expr.span())),
                }
            }
            Expression::BinaryOp(op) => {
                let operator = *op.operator.value();
                let lhs = self.eval(&op.lhs_expr)?;
                // && and || short-circuit as users expect from `a != null && a.x`.
                match (operator, to_bool(&lhs)) {
                    (BinaryOperator::And, Some(false)) => return Ok(Value::Bool(false)),
                    (BinaryOperator::Or, Some(true)) => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let rhs = self.eval(&op.rhs_expr)?;
                binary(operator, lhs, rhs, &op.lhs_expr, &op.rhs_expr)
            }
            Expression::ForExpr(f) => self.for_expr(f),
        }
    }

    fn variable(
        &self,
        name: &str,
        span: Option<Range<usize>>,
    ) -> Result<(Value, Option<&'a Marks>)> {
        if let Some((_, v, marks)) = self.bound.iter().rev().find(|(n, ..)| n == name) {
            return Ok((v.clone(), *marks));
        }
        match self.scope.root(name) {
            Some(v) => Ok((v.clone(), self.marks.and_then(|m| m.child(name)))),
            None => Err(EvalError::new(format!("unknown name \"{name}\""), span)),
        }
    }

    fn traversal(&mut self, t: &Traversal) -> Result<(Value, Option<&'a Marks>)> {
        // Walk a scope root by reference as far as attribute and index steps go: one
        // instance of a counted resource (`tik_data.a[count.index]`) is read without a
        // copy of all of them.
        if let Expression::Variable(root) = &t.expr {
            let name = root.as_str();
            let scope: &'a dyn Scope = self.scope;
            if !self.bound.iter().any(|(n, ..)| n == name) {
                if let Some(mut current) = scope.root(name) {
                    let mut marks = self.marks.and_then(|m| m.child(name));
                    let mut used = 0;
                    for op in &t.operators {
                        let (next, key) = match op.value() {
                            TraversalOperator::GetAttr(attr) => (
                                get_attr_ref(current, attr.as_str(), attr.span())?,
                                attr.as_str().to_string(),
                            ),
                            TraversalOperator::LegacyIndex(i) => (
                                index_ref(current, *i.value() as usize, op.span())?,
                                i.value().to_string(),
                            ),
                            TraversalOperator::Index(e) => {
                                let key = self.eval(e)?;
                                match key.to_template_string() {
                                    Some(text) => (index_value_ref(current, &key, e.span())?, text),
                                    // Known only later: the rest goes the copying way.
                                    None => (None, String::new()),
                                }
                            }
                            _ => (None, String::new()),
                        };
                        match next {
                            Some(v) => current = v,
                            None => break,
                        }
                        marks = marks.and_then(|m| m.child(&key));
                        used += 1;
                    }
                    return self.apply_operators(current.clone(), marks, &t.operators[used..]);
                }
            }
        }
        let (base, marks) = self.eval_marked(&t.expr)?;
        self.apply_operators(base, marks, &t.operators)
    }

    /// Applies traversal steps to a value whose marks are `marks`: the value reached,
    /// and its marks. A splat's items are read as the splat reads them.
    fn apply_operators(
        &mut self,
        mut current: Value,
        mut marks: Option<&'a Marks>,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> Result<(Value, Option<&'a Marks>)> {
        for (i, op) in ops.iter().enumerate() {
            if current == Value::Unknown {
                return Ok((Value::Unknown, marks));
            }
            current = match op.value() {
                TraversalOperator::GetAttr(attr) => {
                    marks = marks.and_then(|m| m.child(attr.as_str()));
                    match get_attr_ref(&current, attr.as_str(), attr.span())? {
                        Some(v) => v.clone(),
                        None => return Ok((Value::Unknown, marks)),
                    }
                }
                TraversalOperator::LegacyIndex(idx) => {
                    marks = marks.and_then(|m| m.child(&idx.value().to_string()));
                    match index_ref(&current, *idx.value() as usize, op.span())? {
                        Some(v) => v.clone(),
                        None => return Ok((Value::Unknown, marks)),
                    }
                }
                TraversalOperator::Index(e) => {
                    let key = self.eval(e)?;
                    // An index known only after apply could be any part.
                    if let Some(k) = key.to_template_string() {
                        marks = marks.and_then(|m| m.child(&k));
                    }
                    index_value(&current, &key, e.span())?
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    // A value that is not a list splats as a list of itself.
                    let items: Vec<(Value, Option<&'a Marks>)> = match current {
                        Value::Null => Vec::new(),
                        Value::List(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(n, v)| (v, marks.and_then(|m| m.child(&n.to_string()))))
                            .collect(),
                        other => vec![(other, marks)],
                    };
                    let rest = &ops[i + 1..];
                    let mut out = Vec::with_capacity(items.len());
                    for (item, item_marks) in items {
                        let (v, m) = self.apply_operators(item, item_marks, rest)?;
                        self.touch(m);
                        out.push(v);
                    }
                    return Ok((Value::List(out), None));
                }
            };
        }
        Ok((current, marks))
    }

    fn call(&mut self, call: &FuncCall, span: Option<Range<usize>>) -> Result<Value> {
        let name = call.name.name.as_str();
        if call.name.is_namespaced() {
            return Err(EvalError::new(
                format!(
                    "unknown function \"{}::{name}\"",
                    call.name
                        .namespace
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join("::")
                ),
                call.name.name.span(),
            ));
        }
        match name {
            "try" => {
                let mut last = None;
                for arg in call.args.iter() {
                    match self.eval(arg) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    EvalError::new("try needs at least one argument", span.clone())
                }))
            }
            "can" => {
                if call.args.len() != 1 {
                    return Err(EvalError::new("can takes exactly one argument", span));
                }
                let arg = call.args.iter().next().map(|a| self.eval(a));
                Ok(match arg {
                    Some(Ok(Value::Unknown)) => Value::Unknown,
                    Some(Ok(_)) => Value::Bool(true),
                    _ => Value::Bool(false),
                })
            }
            _ => {
                if !FUNCTION_NAMES.contains(&name) {
                    return Err(EvalError::new(
                        format!("unknown function \"{name}\""),
                        call.name.name.span(),
                    )
                    .help(crate::diag::did_you_mean(
                        name,
                        FUNCTION_NAMES.iter().copied(),
                    )));
                }
                let mut args = Vec::with_capacity(call.args.len());
                for arg in call.args.iter() {
                    args.push(self.eval(arg)?);
                }
                if call.args.expand_final() {
                    match args.pop() {
                        Some(Value::List(rest)) => args.extend(rest),
                        Some(Value::Unknown) => return Ok(Value::Unknown),
                        _ => {
                            return Err(EvalError::new(
                                "the last argument before ... must be a list",
                                span,
                            ))
                        }
                    }
                }
                if args.iter().any(Value::has_unknown) {
                    return Ok(Value::Unknown);
                }
                functions::call(self, name, args)
                    .map_err(|m| EvalError::new(format!("{name}: {m}"), span))
            }
        }
    }

    /// The key and value of each item a `for` goes over, each with its marks; `None`
    /// when the collection is known only after apply. Going over a collection reads
    /// only its keys: an item's value counts as read where the body reads it.
    #[allow(clippy::type_complexity)]
    fn for_items(
        &mut self,
        collection: &Expression,
    ) -> Result<Option<Vec<(Value, Value, Option<&'a Marks>, Option<&'a Marks>)>>> {
        let (value, marks) = self.eval_marked(collection)?;
        // The keys of a collection sensitive as a whole are sensitive too.
        let key_marks = marks.filter(|m| m.is_whole());
        Ok(Some(match value {
            Value::Unknown => return Ok(None),
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let m = marks.and_then(|m| m.child(&i.to_string()));
                    (Value::Number(i as f64), v, key_marks, m)
                })
                .collect(),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let m = marks.and_then(|m| m.child(&k));
                    (Value::String(k), v, key_marks, m)
                })
                .collect(),
            other => {
                return Err(EvalError::new(
                    format!(
                        "a for expression needs a list or an object, not {}",
                        other.a_type()
                    ),
                    collection.span(),
                ))
            }
        }))
    }

    fn for_expr(&mut self, f: &ForExpr) -> Result<Value> {
        let Some(pairs) = self.for_items(&f.intro.collection_expr)? else {
            return Ok(Value::Unknown);
        };
        let key_var = f.intro.key_var.as_ref().map(|k| k.as_str().to_string());
        let value_var = f.intro.value_var.as_str().to_string();
        let mut list = Vec::new();
        let mut map: Map = Map::new();
        for (k, v, key_marks, marks) in pairs {
            let mark = self.bound.len();
            if let Some(kv) = &key_var {
                self.bound.push((kv.clone(), k, key_marks));
            }
            self.bound.push((value_var.clone(), v, marks));
            let result = self.for_item(f, &mut list, &mut map);
            self.bound.truncate(mark);
            if result? {
                return Ok(Value::Unknown);
            }
        }
        Ok(if f.key_expr.is_some() {
            Value::Object(map)
        } else {
            Value::List(list)
        })
    }

    /// One item of a for expression; true when the result can only be unknown.
    fn for_item(&mut self, f: &ForExpr, list: &mut Vec<Value>, map: &mut Map) -> Result<bool> {
        if let Some(cond) = &f.cond {
            match self.eval(&cond.expr)? {
                Value::Unknown => return Ok(true),
                v => match to_bool(&v) {
                    Some(true) => {}
                    Some(false) => return Ok(false),
                    None => return Err(type_error("bool", &v, cond.expr.span())),
                },
            }
        }
        let value = self.eval(&f.value_expr)?;
        match &f.key_expr {
            None => list.push(value),
            Some(key_expr) => {
                let key = match self.eval(key_expr)? {
                    Value::Unknown => return Ok(true),
                    k => k
                        .to_template_string()
                        .ok_or_else(|| type_error("string", &k, key_expr.span()))?,
                };
                if f.grouping {
                    if let Value::List(group) =
                        map.entry(key).or_insert_with(|| Value::List(Vec::new()))
                    {
                        group.push(value);
                    }
                } else if map.contains_key(&key) {
                    return Err(EvalError::new(
                        format!("duplicate key \"{key}\" in a for expression"),
                        key_expr.span(),
                    )
                    .help(Some(
                        "add ... after the value to group values by key".into(),
                    )));
                } else {
                    map.insert(key, value);
                }
            }
        }
        Ok(false)
    }

    /// Evaluates a template; `Unknown` if any interpolation is unknown.
    pub fn template(&mut self, template: &Template) -> Result<Value> {
        // A template of exactly one interpolation keeps the value's type, as in HCL.
        if let Some(Element::Interpolation(i)) = template.as_single_element() {
            return self.eval(&i.expr);
        }
        let mut out = String::new();
        let mut unknown = false;
        let mut strip_next = false;
        self.render(template, &mut out, &mut unknown, &mut strip_next, false)?;
        Ok(if unknown {
            Value::Unknown
        } else {
            Value::String(out)
        })
    }

    fn render(
        &mut self,
        template: &Template,
        out: &mut String,
        unknown: &mut bool,
        strip_next: &mut bool,
        nested: bool,
    ) -> Result<()> {
        for element in template.iter() {
            match element {
                Element::Literal(lit) => {
                    let dedented;
                    let mut text: &str = lit.value();
                    if let (true, Some(n)) = (nested, self.dedent) {
                        dedented = dedent_lines(text, n);
                        text = &dedented;
                    }
                    if std::mem::take(strip_next) {
                        out.push_str(text.trim_start());
                    } else {
                        out.push_str(text);
                    }
                }
                Element::Interpolation(i) => {
                    strip(out, i.strip, strip_next);
                    match self.eval(&i.expr)? {
                        Value::Unknown => *unknown = true,
                        v => match v.to_template_string() {
                            Some(s) => out.push_str(&s),
                            None if v.has_unknown() => *unknown = true,
                            None => {
                                return Err(EvalError::new(
                                    format!("cannot interpolate {} into a string", v.a_type()),
                                    i.expr.span(),
                                )
                                .help(Some(
                                    "use jsonencode() or join() to turn it into a string".into(),
                                )))
                            }
                        },
                    }
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        strip(out, ifd.if_expr.strip, strip_next);
                        let cond = self.eval(&ifd.if_expr.cond_expr)?;
                        match cond {
                            Value::Unknown => *unknown = true,
                            v => {
                                let b = to_bool(&v).ok_or_else(|| {
                                    type_error("bool", &v, ifd.if_expr.cond_expr.span())
                                })?;
                                if b {
                                    self.render(
                                        &ifd.if_expr.template,
                                        out,
                                        unknown,
                                        strip_next,
                                        true,
                                    )?;
                                    if let Some(e) = &ifd.else_expr {
                                        strip(out, e.strip, &mut false);
                                    }
                                } else if let Some(e) = &ifd.else_expr {
                                    strip(out, e.strip, strip_next);
                                    self.render(&e.template, out, unknown, strip_next, true)?;
                                }
                            }
                        }
                        strip(out, ifd.endif_expr.strip, strip_next);
                    }
                    Directive::For(fd) => {
                        strip(out, fd.for_expr.strip, strip_next);
                        let pairs = match self.for_items(&fd.for_expr.collection_expr)? {
                            Some(pairs) => pairs,
                            None => {
                                *unknown = true;
                                Vec::new()
                            }
                        };
                        let body_strip = matches!(fd.for_expr.strip, Strip::End | Strip::Both);
                        let end_strip = fd.endfor_expr.strip;
                        for (k, v, key_marks, marks) in pairs {
                            let mark = self.bound.len();
                            if let Some(kv) = &fd.for_expr.key_var {
                                self.bound.push((kv.as_str().to_string(), k, key_marks));
                            }
                            let var = fd.for_expr.value_var.as_str().to_string();
                            self.bound.push((var, v, marks));
                            // Each iteration's text is stripped as the markers around the body say.
                            *strip_next = body_strip;
                            let r =
                                self.render(&fd.for_expr.template, out, unknown, strip_next, true);
                            self.bound.truncate(mark);
                            r?;
                            if matches!(end_strip, Strip::Start | Strip::Both) {
                                let trimmed = out.trim_end().len();
                                out.truncate(trimmed);
                            }
                        }
                        *strip_next = matches!(end_strip, Strip::End | Strip::Both);
                    }
                },
            }
        }
        Ok(())
    }
}

/// Removes up to `n` leading spaces from each line after the first.
fn dedent_lines(text: &str, n: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            let spaces = line.len() - line.trim_start_matches(' ').len();
            out.push_str(&line[spaces.min(n)..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

fn strip(out: &mut String, s: Strip, strip_next: &mut bool) {
    if matches!(s, Strip::Start | Strip::Both) {
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
    }
    *strip_next = matches!(s, Strip::End | Strip::Both);
}

fn get_attr_ref<'v>(
    v: &'v Value,
    attr: &str,
    span: Option<Range<usize>>,
) -> Result<Option<&'v Value>> {
    match v {
        Value::Object(map) => match map.get(attr) {
            Some(v) => Ok(Some(v)),
            None => Err(
                EvalError::new(format!("this object has no attribute \"{attr}\""), span).help(
                    crate::diag::did_you_mean(attr, map.keys().map(String::as_str)),
                ),
            ),
        },
        Value::Unknown => Ok(None),
        Value::Null => Err(EvalError::new(
            format!("cannot read \"{attr}\" of null"),
            span,
        )),
        other => Err(EvalError::new(
            format!("cannot read attribute \"{attr}\" of {}", other.a_type()),
            span,
        )),
    }
}

fn index_ref(v: &Value, i: usize, span: Option<Range<usize>>) -> Result<Option<&Value>> {
    match v {
        Value::List(items) => items.get(i).map(Some).ok_or_else(|| {
            EvalError::new(
                format!("index {i} is out of range for a list of {}", items.len()),
                span,
            )
        }),
        Value::Unknown => Ok(None),
        other => Err(EvalError::new(
            format!("cannot index {}", other.a_type()),
            span,
        )),
    }
}

fn index_value(v: &Value, key: &Value, span: Option<Range<usize>>) -> Result<Value> {
    Ok(index_value_ref(v, key, span)?
        .cloned()
        .unwrap_or(Value::Unknown))
}

/// `v[key]` by reference; `None` where it is known only after apply.
fn index_value_ref<'v>(
    v: &'v Value,
    key: &Value,
    span: Option<Range<usize>>,
) -> Result<Option<&'v Value>> {
    match (v, key) {
        (Value::Unknown, _) | (_, Value::Unknown) => Ok(None),
        (Value::List(_), k) => {
            let n = to_number(k)
                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                .ok_or_else(|| {
                    EvalError::new(
                        "a list index must be a whole number that is not negative",
                        span.clone(),
                    )
                })?;
            index_ref(v, n as usize, span)
        }
        (Value::Object(map), k) => {
            let k = k
                .to_template_string()
                .ok_or_else(|| type_error("string", k, span.clone()))?;
            map.get(&k).map(Some).ok_or_else(|| {
                EvalError::new(format!("this object has no key \"{k}\""), span).help(
                    crate::diag::did_you_mean(&k, map.keys().map(String::as_str)),
                )
            })
        }
        (other, _) => Err(EvalError::new(
            format!("cannot index {}", other.a_type()),
            span,
        )),
    }
}

fn binary(
    op: BinaryOperator,
    lhs: Value,
    rhs: Value,
    le: &Expression,
    re: &Expression,
) -> Result<Value> {
    use BinaryOperator::*;
    match op {
        Eq => {
            return Ok(if lhs.has_unknown() || rhs.has_unknown() {
                Value::Unknown
            } else {
                Value::Bool(lhs == rhs)
            })
        }
        NotEq => {
            return Ok(if lhs.has_unknown() || rhs.has_unknown() {
                Value::Unknown
            } else {
                Value::Bool(lhs != rhs)
            })
        }
        _ => {}
    }
    if lhs == Value::Unknown || rhs == Value::Unknown {
        return Ok(Value::Unknown);
    }
    match op {
        And | Or => {
            let a = to_bool(&lhs).ok_or_else(|| type_error("bool", &lhs, le.span()))?;
            let b = to_bool(&rhs).ok_or_else(|| type_error("bool", &rhs, re.span()))?;
            Ok(Value::Bool(if op == And { a && b } else { a || b }))
        }
        _ => {
            let a = to_number(&lhs).ok_or_else(|| type_error("number", &lhs, le.span()))?;
            let b = to_number(&rhs).ok_or_else(|| type_error("number", &rhs, re.span()))?;
            Ok(match op {
                Plus => Value::Number(a + b),
                Minus => Value::Number(a - b),
                Mul => Value::Number(a * b),
                Div if b == 0.0 => return Err(EvalError::new("division by zero", re.span())),
                Div => Value::Number(a / b),
                Mod if b == 0.0 => return Err(EvalError::new("modulo by zero", re.span())),
                Mod => Value::Number(a % b),
                Less => Value::Bool(a < b),
                LessEq => Value::Bool(a <= b),
                Greater => Value::Bool(a > b),
                GreaterEq => Value::Bool(a >= b),
                Eq | NotEq | And | Or => unreachable!("handled above"),
            })
        }
    }
}

fn type_error(expected: &str, got: &Value, span: Option<Range<usize>>) -> EvalError {
    EvalError::new(format!("expected a {expected}, got {}", got.a_type()), span)
}

/// HCL's safe conversions: "3" is a number, "true" a bool.
pub fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

pub fn to_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(format_number(*n)),
        other => other.to_template_string(),
    }
}

#[cfg(test)]
mod tests;
