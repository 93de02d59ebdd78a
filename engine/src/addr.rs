//! Resource addresses: `cluster.etl.node.worker["default"][2]`, `tik_data.a`,
//! `module.net.workspace.dev.dir`. One address names one resource in plans, state and CLI.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Name(String),
    Key(String),
    Index(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub Vec<Segment>);

impl Address {
    pub fn new() -> Self {
        Address(Vec::new())
    }

    pub fn name(mut self, n: impl Into<String>) -> Self {
        self.0.push(Segment::Name(n.into()));
        self
    }

    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(Segment::Key(k.into()));
        self
    }

    pub fn index(mut self, i: u64) -> Self {
        self.0.push(Segment::Index(i));
        self
    }

    pub fn join(&self, rel: &Address) -> Address {
        let mut segs = self.0.clone();
        segs.extend(rel.0.iter().cloned());
        Address(segs)
    }

    /// The address of the configuration object this resource comes from:
    /// `tik_data.a` for `tik_data.a[2]`, `cluster.etl` for `cluster.etl.node.head`,
    /// `module.m.workspace.dev` for `module.m.workspace.dev.vpc`.
    pub fn object(&self) -> Address {
        let mut at = 0;
        while let (Some(Segment::Name(m)), Some(Segment::Name(_))) =
            (self.0.get(at), self.0.get(at + 1))
        {
            if m != "module" {
                break;
            }
            at += 2;
            while matches!(self.0.get(at), Some(Segment::Key(_) | Segment::Index(_))) {
                at += 1;
            }
        }
        Address(self.0[..(at + 2).min(self.0.len())].to_vec())
    }

    pub fn starts_with(&self, prefix: &Address) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Parses the text form; the inverse of `Display`.
    pub fn parse(text: &str) -> Result<Address, String> {
        let bad = |why: &str| format!("\"{text}\" is not a resource address: {why}");
        let mut segs = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut expect_name = true;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                if let Some(r) = r.strip_prefix('"') {
                    let (key, after) =
                        unquote(r).ok_or_else(|| bad("a [\" is not closed by \"]"))?;
                    segs.push(Segment::Key(key));
                    rest = after
                        .strip_prefix(']')
                        .ok_or_else(|| bad("a [\" is not closed by \"]"))?;
                } else {
                    let end = r.find(']').ok_or_else(|| bad("a [ is not closed"))?;
                    let i = r[..end]
                        .trim()
                        .parse()
                        .map_err(|_| bad("an index must be a whole number"))?;
                    segs.push(Segment::Index(i));
                    rest = &r[end + 1..];
                }
                expect_name = false;
            } else {
                if !expect_name {
                    rest = rest
                        .strip_prefix('.')
                        .ok_or_else(|| bad("expected . or ["))?;
                }
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let name = &rest[..end];
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(bad("expected a name"));
                }
                segs.push(Segment::Name(name.to_string()));
                rest = &rest[end..];
                expect_name = false;
            }
        }
        Ok(Address(segs))
    }
}

/// Reads a key written as `Display` writes it (`crate::value::quote`), from after its
/// opening quote: the key, and the text after its closing quote.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut key = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((key, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => key.push('\n'),
                'r' => key.push('\r'),
                't' => key.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    key.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => key.push(other),
            },
            c => key.push(c),
        }
    }
    None
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Name(n) if i == 0 => f.write_str(n)?,
                Segment::Name(n) => write!(f, ".{n}")?,
                Segment::Key(k) => write!(f, "[{}]", crate::value::quote(k))?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Address::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for text in [
            "tik_data.a",
            "cluster.etl.node.worker[\"default\"][2]",
            "module.m.workspace.dev.dir",
            r#"tik_data.d["a \"quoted\" \\ key"]"#,
            r#"tik_data.d["tab\there"]["x"][3]"#,
            r#"tik_data.d["bell\u0007"]"#,
        ] {
            assert_eq!(Address::parse(text).unwrap().to_string(), text);
        }
        let a = Address::new()
            .name("cluster")
            .name("etl")
            .name("node")
            .name("worker")
            .key("default")
            .index(2);
        assert_eq!(
            Address::parse("cluster.etl.node.worker[\"default\"][2]").unwrap(),
            a
        );
    }

    #[test]
    fn an_address_names_its_object() {
        for (text, object) in [
            ("tik_data.a", "tik_data.a"),
            ("tik_data.a[2]", "tik_data.a"),
            ("tik_data.a[\"k\"]", "tik_data.a"),
            ("cluster.etl.node.worker[\"default\"][2]", "cluster.etl"),
            ("module.m.workspace.dev.vpc", "module.m.workspace.dev"),
            (
                "module.a.module.b.tik_data.x[0]",
                "module.a.module.b.tik_data.x",
            ),
            ("module", "module"),
            ("module.m", "module.m"),
        ] {
            assert_eq!(Address::parse(text).unwrap().object().to_string(), object);
        }
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        for text in [
            "",
            "a..b",
            "a[",
            "a[\"x",
            "a[x]",
            "a b",
            ".a",
            "a][",
            "a[\"x\"",
            "a[\"x\\\"]",
            "a[\"\\u12\"]",
            "a[\"\\ud800\"]",
        ] {
            assert!(Address::parse(text).is_err(), "{text}");
        }
    }
}
