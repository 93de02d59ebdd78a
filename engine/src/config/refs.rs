//! Finds the references in an expression: the edges of the graph.

use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Body, Structure};
use hcl_edit::template::{Directive, Element, Template};
use hcl_edit::Span;
use std::ops::Range;

/// `var.region`, `tik_data.a.id`, `cluster.etl`: a root name and the attribute names after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub root: String,
    pub attrs: Vec<String>,
    pub span: Option<Range<usize>>,
}

pub fn in_body(body: &Body, skip: &[&str], out: &mut Vec<Reference>) {
    in_body_bound(body, skip, &mut Vec::new(), out)
}

/// `in_body` with names bound around it: the iterators of enclosing dynamic blocks.
fn in_body_bound(body: &Body, skip: &[&str], bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    for s in body.iter() {
        match s {
            Structure::Attribute(a) if !skip.contains(&a.key.as_str()) => {
                in_expr(&a.value, bound, out)
            }
            Structure::Attribute(_) => {}
            Structure::Block(b) if b.ident.as_str() == "dynamic" => in_dynamic(b, bound, out),
            Structure::Block(b) if !skip.contains(&b.ident.as_str()) => {
                in_body_bound(&b.body, &[], bound, out)
            }
            Structure::Block(_) => {}
        }
    }
}

/// A dynamic block: its `for_each` is read outside it; its `labels` and `content`
/// with its iterator bound (named by `iterator`, else by the kind of block it makes).
fn in_dynamic(b: &hcl_edit::structure::Block, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    let iterator = b
        .body
        .attributes()
        .find(|a| a.key.as_str() == "iterator")
        .and_then(|a| match &a.value {
            Expression::Variable(v) => Some(v.as_str().to_string()),
            _ => None,
        })
        .or_else(|| b.labels.first().map(|l| l.as_str().to_string()));
    for a in b.body.attributes() {
        if a.key.as_str() == "for_each" {
            in_expr(&a.value, bound, out);
        }
    }
    let mark = bound.len();
    bound.extend(iterator);
    for s in b.body.iter() {
        match s {
            Structure::Attribute(a) if a.key.as_str() == "labels" => in_expr(&a.value, bound, out),
            Structure::Block(c) => in_body_bound(&c.body, &[], bound, out),
            Structure::Attribute(_) => {}
        }
    }
    bound.truncate(mark);
}

pub fn in_expr(expr: &Expression, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    match expr {
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_) => {}
        Expression::Array(items) => items.iter().for_each(|e| in_expr(e, bound, out)),
        Expression::Object(obj) => {
            for (k, v) in obj.iter() {
                if let ObjectKey::Expression(k) = k {
                    // A bare name as a key is a string; only parenthesised keys are expressions.
                    if !matches!(k, Expression::Variable(_)) {
                        in_expr(k, bound, out);
                    }
                }
                in_expr(v.expr(), bound, out);
            }
        }
        Expression::StringTemplate(t) => in_template(t, bound, out),
        Expression::HeredocTemplate(h) => in_template(&h.template, bound, out),
        Expression::Parenthesis(p) => in_expr(p.inner(), bound, out),
        Expression::Variable(v) => {
            if !bound.iter().any(|b| b == v.as_str()) {
                out.push(Reference {
                    root: v.as_str().to_string(),
                    attrs: Vec::new(),
                    span: v.span(),
                });
            }
        }
        Expression::Conditional(c) => {
            in_expr(&c.cond_expr, bound, out);
            in_expr(&c.true_expr, bound, out);
            in_expr(&c.false_expr, bound, out);
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|a| in_expr(a, bound, out)),
        Expression::Traversal(t) => {
            match &t.expr {
                Expression::Variable(v) if !bound.iter().any(|b| b == v.as_str()) => {
                    let attrs: Vec<String> = t
                        .operators
                        .iter()
                        .map_while(|op| match op.value() {
                            TraversalOperator::GetAttr(a) => Some(a.as_str().to_string()),
                            _ => None,
                        })
                        .take(2)
                        .collect();
                    let end = t
                        .operators
                        .get(attrs.len().max(1) - 1)
                        .and_then(|o| o.span())
                        .map(|s| s.end);
                    let span = match (v.span(), end) {
                        (Some(s), Some(e)) if !attrs.is_empty() => Some(s.start..e),
                        (s, _) => s,
                    };
                    out.push(Reference {
                        root: v.as_str().to_string(),
                        attrs,
                        span,
                    });
                }
                other => in_expr(other, bound, out),
            }
            for op in &t.operators {
                if let TraversalOperator::Index(e) = op.value() {
                    in_expr(e, bound, out);
                }
            }
        }
        Expression::UnaryOp(u) => in_expr(&u.expr, bound, out),
        Expression::BinaryOp(b) => {
            in_expr(&b.lhs_expr, bound, out);
            in_expr(&b.rhs_expr, bound, out);
        }
        Expression::ForExpr(f) => {
            in_expr(&f.intro.collection_expr, bound, out);
            let mark = bound.len();
            if let Some(k) = &f.intro.key_var {
                bound.push(k.as_str().to_string());
            }
            bound.push(f.intro.value_var.as_str().to_string());
            if let Some(k) = &f.key_expr {
                in_expr(k, bound, out);
            }
            in_expr(&f.value_expr, bound, out);
            if let Some(c) = &f.cond {
                in_expr(&c.expr, bound, out);
            }
            bound.truncate(mark);
        }
    }
}

fn in_template(t: &Template, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    for el in t.iter() {
        match el {
            Element::Literal(_) => {}
            Element::Interpolation(i) => in_expr(&i.expr, bound, out),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(i) => {
                    in_expr(&i.if_expr.cond_expr, bound, out);
                    in_template(&i.if_expr.template, bound, out);
                    if let Some(e) = &i.else_expr {
                        in_template(&e.template, bound, out);
                    }
                }
                Directive::For(f) => {
                    in_expr(&f.for_expr.collection_expr, bound, out);
                    let mark = bound.len();
                    if let Some(k) = &f.for_expr.key_var {
                        bound.push(k.as_str().to_string());
                    }
                    bound.push(f.for_expr.value_var.as_str().to_string());
                    in_template(&f.for_expr.template, bound, out);
                    bound.truncate(mark);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_roots_and_skips_for_variables() {
        let e = hcl_edit::parser::parse_expr(
            r#"[for x in var.list : "${x.a}-${local.p}" if tik_data.b.id != null]"#,
        )
        .unwrap();
        let mut out = Vec::new();
        in_expr(&e, &mut Vec::new(), &mut out);
        let names: Vec<String> = out
            .iter()
            .map(|r| format!("{}.{}", r.root, r.attrs.join(".")))
            .collect();
        assert_eq!(names, ["var.list", "local.p", "tik_data.b.id"]);
    }
}
