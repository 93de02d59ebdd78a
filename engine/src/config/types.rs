//! Variable type constraints: `string`, `list(number)`, `object({ a = string })`, ...

use crate::value::{Map, Value};
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::Span;
use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    Object(Vec<(String, Type, bool)>),
}

impl Type {
    /// Reads a type constraint expression.
    pub fn parse(expr: &Expression) -> Result<Type, (String, Option<Range<usize>>)> {
        let bad = |e: &Expression| {
            (
                "not a type: expected string, number, bool, any, list(T), set(T), map(T), tuple([...]) or object({...})".to_string(),
                e.span(),
            )
        };
        match expr {
            Expression::Variable(v) => match v.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "any" => Ok(Type::Any),
                _ => Err(bad(expr)),
            },
            Expression::FuncCall(call) if call.args.len() == 1 => {
                let arg = call.args.iter().next().ok_or_else(|| bad(expr))?;
                match call.name.name.as_str() {
                    "list" => Ok(Type::List(Box::new(Type::parse(arg)?))),
                    "set" => Ok(Type::Set(Box::new(Type::parse(arg)?))),
                    "map" => Ok(Type::Map(Box::new(Type::parse(arg)?))),
                    "tuple" => match arg {
                        Expression::Array(items) => Ok(Type::Tuple(
                            items.iter().map(Type::parse).collect::<Result<_, _>>()?,
                        )),
                        _ => Err(bad(arg)),
                    },
                    "object" => match arg {
                        Expression::Object(obj) => {
                            let mut attrs = Vec::new();
                            for (k, v) in obj.iter() {
                                let name = match k {
                                    ObjectKey::Ident(i) => i.as_str().to_string(),
                                    ObjectKey::Expression(e) => {
                                        e.as_str().ok_or_else(|| bad(e))?.to_string()
                                    }
                                };
                                let (ty, optional) = match v.expr() {
                                    Expression::FuncCall(c)
                                        if c.name.name.as_str() == "optional" =>
                                    {
                                        let inner =
                                            c.args.iter().next().ok_or_else(|| bad(v.expr()))?;
                                        (Type::parse(inner)?, true)
                                    }
                                    e => (Type::parse(e)?, false),
                                };
                                attrs.push((name, ty, optional));
                            }
                            Ok(Type::Object(attrs))
                        }
                        _ => Err(bad(arg)),
                    },
                    _ => Err(bad(expr)),
                }
            }
            _ => Err(bad(expr)),
        }
    }

    /// Converts a value to this type as HCL does ("3" to 3 for a number), or says why not.
    pub fn convert(&self, v: Value) -> Result<Value, String> {
        if matches!(v, Value::Null | Value::Unknown) {
            return Ok(v);
        }
        match (self, v) {
            (Type::Any, v) => Ok(v),
            (Type::String, v) => crate::eval::to_string(&v)
                .map(Value::String)
                .ok_or_else(|| format!("a string is required, got {}", v.a_type())),
            (Type::Number, v) => crate::eval::to_number(&v)
                .map(Value::Number)
                .ok_or_else(|| format!("a number is required, got {v}")),
            (Type::Bool, v) => crate::eval::to_bool(&v)
                .map(Value::Bool)
                .ok_or_else(|| format!("a bool is required, got {v}")),
            (Type::List(t) | Type::Set(t), Value::List(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| t.convert(item).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            (Type::Tuple(ts), Value::List(items)) if ts.len() == items.len() => ts
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (t, item))| t.convert(item).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            (Type::Map(t), Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| {
                    t.convert(v)
                        .map(|v| (k.clone(), v))
                        .map_err(|e| format!("key \"{k}\": {e}"))
                })
                .collect::<Result<Map, _>>()
                .map(Value::Object),
            (Type::Object(attrs), Value::Object(mut m)) => {
                let mut out = Map::new();
                for (name, t, optional) in attrs {
                    match m.shift_remove(name) {
                        Some(v) => out.insert(
                            name.clone(),
                            t.convert(v)
                                .map_err(|e| format!("attribute \"{name}\": {e}"))?,
                        ),
                        None if *optional => out.insert(name.clone(), Value::Null),
                        None => return Err(format!("attribute \"{name}\" is required")),
                    };
                }
                if let Some(extra) = m.keys().next() {
                    return Err(format!("unexpected attribute \"{extra}\""));
                }
                Ok(Value::Object(out))
            }
            (t, v) => Err(format!("{t} is required, got {}", v.a_type())),
        }
    }

    /// True for types whose CLI value is taken literally rather than parsed as HCL:
    /// strings, and untyped variables, as Terraform users expect of `-var`.
    pub fn takes_raw_text(&self) -> bool {
        matches!(self, Type::String | Type::Any)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => write!(
                f,
                "tuple([{}])",
                ts.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Type::Object(attrs) => write!(
                f,
                "object({{{}}})",
                attrs
                    .iter()
                    .map(|(n, t, _)| format!("{n} = {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Type {
        Type::parse(&hcl_edit::parser::parse_expr(src).unwrap()).unwrap()
    }

    #[test]
    fn converts_like_hcl() {
        assert_eq!(ty("number").convert("3".into()), Ok(Value::Number(3.0)));
        assert_eq!(
            ty("list(string)").convert(Value::List(vec![Value::Number(1.0)])),
            Ok(Value::List(vec!["1".into()]))
        );
        assert!(ty("bool").convert("yes".into()).is_err());
        let obj = ty("object({ a = number, b = optional(string) })");
        let mut m = Map::new();
        m.insert("a".into(), Value::Number(1.0));
        let v = obj.convert(Value::Object(m)).unwrap();
        assert_eq!(v.get("b"), Some(&Value::Null));
        assert!(ty("map(number)")
            .convert("x".into())
            .unwrap_err()
            .contains("map(number) is required"));
    }

    #[test]
    fn rejects_non_types() {
        assert!(Type::parse(&hcl_edit::parser::parse_expr("strng").unwrap()).is_err());
        assert!(Type::parse(&hcl_edit::parser::parse_expr("list(1)").unwrap()).is_err());
    }
}
