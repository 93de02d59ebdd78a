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
    /// `module.m.workspace.dev` for `module.m.workspace.dev.network`.
    pub fn object(&self) -> Address {
        let at = self.module_calls().last().map_or(0, |c| c.end);
        Address(self.0[..(at + 2).min(self.0.len())].to_vec())
    }

    /// The module calls it goes through, from the root: `module.team["ml"].module.db`
    /// goes through `team` (key `"ml"`) and `db`.
    fn module_calls(&self) -> Vec<ModuleCall<'_>> {
        let mut calls = Vec::new();
        let mut at = 0;
        while let (Some(Segment::Name(m)), Some(Segment::Name(name))) =
            (self.0.get(at), self.0.get(at + 1))
        {
            if m != "module" {
                break;
            }
            at += 2;
            let key = match self.0.get(at) {
                Some(k @ (Segment::Key(_) | Segment::Index(_))) => {
                    at += 1;
                    Some(k)
                }
                _ => None,
            };
            calls.push(ModuleCall { name, key, end: at });
        }
        calls
    }

    /// The module calls it goes through, each named as the configuration names its
    /// module (`module.team`, then `module.team.module.db`), and whether the address
    /// gives it a key.
    pub fn module_path(&self) -> Vec<(Address, bool)> {
        let mut at = Address::new();
        self.module_calls()
            .iter()
            .map(|c| {
                at = at.clone().name("module").name(c.name.as_str());
                (at.clone(), c.key.is_some())
            })
            .collect()
    }

    /// The instance of `module` (named as the configuration names it: `module.team`)
    /// this address is in, if it is in one: `module.team["ml"]`.
    pub fn module_instance(&self, module: &Address) -> Option<Address> {
        let calls = self.module_calls();
        let n = module.0.len() / 2;
        let last = calls.get(n.checked_sub(1)?)?;
        let unkeyed = calls[..n].iter().fold(Address::new(), |a, c| {
            a.name("module").name(c.name.as_str())
        });
        (unkeyed == *module).then(|| Address(self.0[..last.end].to_vec()))
    }

    /// The address with module calls' keys left out, as the configuration names the
    /// block: `module.team.cluster.etl` for `module.team["ml"].cluster.etl`.
    pub fn unkeyed_modules(&self) -> Address {
        let calls = self.module_calls();
        let mut out = Address::new();
        for c in &calls {
            out = out.name("module").name(c.name.as_str());
        }
        let rest = calls.last().map_or(0, |c| c.end);
        out.0.extend(self.0[rest..].iter().cloned());
        out
    }

    /// Whether `target` names this address or what holds it. A target may leave out
    /// a module call's key: `module.team` holds the resources of each instance.
    pub fn within(&self, target: &Address) -> bool {
        let calls = self.module_calls();
        let mut at = 0;
        let mut t = target.0.as_slice();
        for c in &calls {
            for seg in &self.0[at..c.end] {
                match t.split_first() {
                    None => return true,
                    Some((first, rest)) if first == seg => t = rest,
                    // The target leaves out the call's key.
                    Some(_) if Some(seg) == c.key => {}
                    Some(_) => return false,
                }
            }
            at = c.end;
        }
        self.0[at..].starts_with(t)
    }

    /// Whether two addresses may be in one module instance: wherever both go through
    /// the same module call, they name the same key of it, or one names none.
    pub fn same_module_instance(&self, other: &Address) -> bool {
        for (a, b) in self.module_calls().iter().zip(other.module_calls().iter()) {
            if a.name != b.name {
                return true;
            }
            if let (Some(x), Some(y)) = (a.key, b.key) {
                if x != y {
                    return false;
                }
            }
        }
        true
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

/// One module call in an address: its name, its key, and where it ends.
struct ModuleCall<'a> {
    name: &'a String,
    key: Option<&'a Segment>,
    end: usize,
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
            ("module.m.workspace.dev.network", "module.m.workspace.dev"),
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

    #[test]
    fn module_instances_in_addresses() {
        let a = |t: &str| Address::parse(t).unwrap();
        let node = a(r#"module.team["ml"].module.db[0].cluster.c.node.head"#);
        assert_eq!(
            node.unkeyed_modules(),
            a("module.team.module.db.cluster.c.node.head")
        );
        assert_eq!(
            node.object(),
            a(r#"module.team["ml"].module.db[0].cluster.c"#)
        );
        assert_eq!(
            node.module_instance(&a("module.team")),
            Some(a(r#"module.team["ml"]"#))
        );
        assert_eq!(
            node.module_instance(&a("module.team.module.db")),
            Some(a(r#"module.team["ml"].module.db[0]"#))
        );
        assert_eq!(node.module_instance(&a("module.db")), None);
        assert_eq!(
            node.module_path(),
            [(a("module.team"), true), (a("module.team.module.db"), true)]
        );
        // A target may leave out a call's key, never name another one.
        for (target, within) in [
            ("module.team", true),
            (r#"module.team["ml"]"#, true),
            (r#"module.team["bi"]"#, false),
            ("module.team.module.db.cluster.c", true),
            (r#"module.team["ml"].module.db[1]"#, false),
            (r#"module.team.module.db[0].cluster.c.node"#, true),
            ("module.teams", false),
            ("cluster.c", false),
        ] {
            assert_eq!(node.within(&a(target)), within, "{target}");
        }
        // Where two addresses go through one call, they are in one instance of it
        // when their keys agree or one has none.
        for (other, same) in [
            (r#"module.team["ml"].tik_data.x"#, true),
            (r#"module.team["bi"].tik_data.x"#, false),
            ("module.team.tik_data.x", true),
            ("tik_data.x", true),
            ("module.net[0].tik_data.x", true),
            (r#"module.team["ml"].module.db[1]"#, false),
        ] {
            assert_eq!(node.same_module_instance(&a(other)), same, "{other}");
        }
    }
}
