//! Values of the tik language: what expressions evaluate to and what state records.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An evaluated value. `Unknown` stands for a value that is only known after apply
/// (a computed attribute of an object not yet created); it is never written to state.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Object(IndexMap<String, Value>),
    Unknown,
}

pub type Map = IndexMap<String, Value>;

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Unknown => "unknown",
        }
    }

    /// The type as a sentence names it: "a list", "an object", "null".
    pub fn a_type(&self) -> String {
        match self {
            Value::Null | Value::Unknown => self.type_name().to_string(),
            Value::Object(_) => "an object".into(),
            other => format!("a {}", other.type_name()),
        }
    }

    /// True when lists and objects nest deeper than `limit` levels. Stops looking at
    /// `limit`, so it costs at most the part of the value above that depth.
    pub fn deeper_than(&self, limit: usize) -> bool {
        match self {
            Value::List(_) | Value::Object(_) if limit == 0 => true,
            Value::List(items) => items.iter().any(|v| v.deeper_than(limit - 1)),
            Value::Object(map) => map.values().any(|v| v.deeper_than(limit - 1)),
            _ => false,
        }
    }

    /// True when the value or anything inside it is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::has_unknown),
            Value::Object(map) => map.values().any(Value::has_unknown),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Looks up `key` in an object; `None` for any other value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|m| m.get(key))
    }

    /// The string form used by interpolation and `tostring`: only primitives have one.
    pub fn to_template_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(format_number(*n)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Integers print without a fraction, as users write them.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Value::from_json(&serde_json::Value::deserialize(d)?))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}

/// Renders a value as HCL source: what plan output and `tik output` show.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hcl(self, f, 0, &mut Hide::default())
    }
}

/// A value shown as HCL with some parts hidden: `(sensitive value)` in their place.
pub struct Hiding<'a> {
    pub value: &'a Value,
    /// The hidden parts' paths: object keys, list indices as text.
    pub parts: &'a [Vec<String>],
}

impl fmt::Display for Hiding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hide = Hide {
            parts: self.parts,
            path: Vec::new(),
        };
        write_hcl(self.value, f, 0, &mut hide)
    }
}

/// Where `write_hcl` is in the value, and which parts it hides.
#[derive(Default)]
struct Hide<'a> {
    parts: &'a [Vec<String>],
    path: Vec<String>,
}

impl Hide<'_> {
    fn here(&self) -> bool {
        self.parts.contains(&self.path)
    }
}

impl Value {
    /// The value with the parts at `parts` (object keys, list indices as text)
    /// replaced by `with`.
    pub fn redacted(&self, parts: &[Vec<String>], with: &Value) -> Value {
        fn walk(v: &Value, parts: &[Vec<String>], path: &mut Vec<String>, with: &Value) -> Value {
            if parts.contains(path) {
                return with.clone();
            }
            if !parts.iter().any(|p| p.starts_with(path)) {
                return v.clone();
            }
            let mut at = |k: String, x: &Value| {
                path.push(k);
                let out = walk(x, parts, path, with);
                path.pop();
                out
            };
            match v {
                Value::List(items) => Value::List(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| at(i.to_string(), x))
                        .collect(),
                ),
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, x)| (k.clone(), at(k.clone(), x)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        walk(self, parts, &mut Vec::new(), with)
    }
}

fn write_hcl(v: &Value, f: &mut fmt::Formatter<'_>, indent: usize, hide: &mut Hide) -> fmt::Result {
    if !hide.parts.is_empty() && hide.here() {
        return f.write_str("(sensitive value)");
    }
    match v {
        Value::Null => f.write_str("null"),
        Value::Unknown => f.write_str("(known after apply)"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Number(n) => f.write_str(&format_number(*n)),
        Value::String(s) => write!(f, "{}", quote(s)),
        Value::List(items) if items.is_empty() => f.write_str("[]"),
        Value::List(items) => {
            f.write_str("[\n")?;
            for (i, item) in items.iter().enumerate() {
                write!(f, "{:w$}", "", w = indent + 2)?;
                hide.path.push(i.to_string());
                write_hcl(item, f, indent + 2, hide)?;
                hide.path.pop();
                f.write_str(",\n")?;
            }
            write!(f, "{:w$}]", "", w = indent)
        }
        Value::Object(map) if map.is_empty() => f.write_str("{}"),
        Value::Object(map) => {
            f.write_str("{\n")?;
            let width = map.keys().map(|k| key_repr(k).len()).max().unwrap_or(0);
            for (k, item) in map {
                write!(
                    f,
                    "{:w$}{:kw$} = ",
                    "",
                    key_repr(k),
                    w = indent + 2,
                    kw = width
                )?;
                hide.path.push(k.clone());
                write_hcl(item, f, indent + 2, hide)?;
                hide.path.pop();
                f.write_str("\n")?;
            }
            write!(f, "{:w$}}}", "", w = indent)
        }
    }
}

/// An object key as HCL accepts it: bare when it is an identifier, quoted otherwise.
pub fn key_repr(k: &str) -> String {
    let mut chars = k.chars();
    let ident = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ident {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A string as an HCL quoted literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push('$'),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_string_holds_no_character_that_steers_a_terminal() {
        // ESC, DEL and the C1 CSI, which terminals act on, as HCL escapes.
        assert_eq!(
            quote("a\u{1b}[31m\u{7f}\u{9b}2J\tb\u{e9}"),
            "\"a\\u001b[31m\\u007f\\u009b2J\\tb\u{e9}\""
        );
    }

    #[test]
    fn numbers_round_trip_through_json_as_integers() {
        let v = Value::Number(3.0);
        assert_eq!(v.to_json().to_string(), "3");
        assert_eq!(Value::from_json(&v.to_json()), v);
        assert_eq!(Value::Number(2.5).to_string(), "2.5");
    }

    #[test]
    fn sensitive_parts_are_hidden_and_the_rest_shown() {
        let v = Value::from_json(&serde_json::json!({
            "ip": "10.0.0.1",
            "conn": { "key": "k", "port": 22 },
            "list": ["a", "s3cret"],
        }));
        let parts = vec![
            vec!["conn".to_string(), "key".to_string()],
            vec!["list".to_string(), "1".to_string()],
            vec!["missing".to_string(), "x".to_string()],
        ];
        let text = Hiding {
            value: &v,
            parts: &parts,
        }
        .to_string();
        assert_eq!(
            text,
            "{\n  ip   = \"10.0.0.1\"\n  conn = {\n    key  = (sensitive value)\n    port = 22\n  }\n  list = [\n    \"a\",\n    (sensitive value),\n  ]\n}"
        );
        let json = v.redacted(&parts, &Value::from("(sensitive)")).to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "ip": "10.0.0.1",
                "conn": { "key": "(sensitive)", "port": 22 },
                "list": ["a", "(sensitive)"],
            })
        );
        let whole = vec![Vec::new()];
        assert_eq!(v.redacted(&whole, &Value::Null), Value::Null);
        assert_eq!(v.redacted(&[], &Value::Null), v);
    }

    #[test]
    fn display_is_hcl() {
        let mut m = Map::new();
        m.insert("a".into(), Value::from("x\"y"));
        m.insert("long key".into(), Value::List(vec![Value::Bool(true)]));
        let text = Value::Object(m).to_string();
        assert_eq!(
            text,
            "{\n  a          = \"x\\\"y\"\n  \"long key\" = [\n    true,\n  ]\n}"
        );
    }

    #[test]
    fn unknown_is_found_deep_inside() {
        let v = Value::List(vec![Value::Null, Value::List(vec![Value::Unknown])]);
        assert!(v.has_unknown());
        assert!(!Value::List(vec![]).has_unknown());
    }
}
