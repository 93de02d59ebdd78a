//! Where a value holds something sensitive: a tree of paths (attribute names, object
//! keys, list indices as text), each ending at a part that is sensitive as a whole.
//!
//! A scope's marks mirror its values: `var.password` marked whole, a cluster marked at
//! `node.head.connection` and `runtime.postgres.password`. The evaluator follows them
//! as it reads, so `cluster.db.node.head.private_ip` reads nothing sensitive while
//! `cluster.db.node.head` does.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    whole: bool,
    /// Only parts that hold something sensitive: a child is never empty.
    children: BTreeMap<String, Marks>,
}

impl Marks {
    /// Marks for a value that is sensitive as a whole.
    pub fn whole() -> Self {
        Marks {
            whole: true,
            children: BTreeMap::new(),
        }
    }

    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Nothing in the value is sensitive.
    pub fn is_empty(&self) -> bool {
        !self.whole && self.children.is_empty()
    }

    /// The marks of a part, if it holds anything sensitive: every part of a whole is whole.
    pub fn child(&self, key: &str) -> Option<&Marks> {
        if self.whole {
            Some(self)
        } else {
            self.children.get(key)
        }
    }

    /// The marks at a path, if anything there is sensitive.
    pub fn at<S: AsRef<str>>(&self, path: &[S]) -> Option<&Marks> {
        path.iter().try_fold(self, |m, k| m.child(k.as_ref()))
    }

    /// The parts directly below that hold something sensitive (none when whole).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.children.keys().map(String::as_str)
    }

    /// Marks the part at `path` (the value itself when empty) sensitive as a whole.
    pub fn mark<S: AsRef<str>>(&mut self, path: &[S]) {
        self.put(path, Marks::whole());
    }

    /// Adds `marks` for the part at `path`.
    pub fn put<S: AsRef<str>>(&mut self, path: &[S], marks: Marks) {
        if marks.is_empty() || self.whole {
            return;
        }
        match path.split_first() {
            None => self.merge(marks),
            Some((first, rest)) => self
                .children
                .entry(first.as_ref().to_string())
                .or_default()
                .put(rest, marks),
        }
    }

    /// The paths of the parts sensitive as a whole (one empty path when the value is).
    pub fn paths(&self) -> Vec<Vec<String>> {
        if self.whole {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for (k, m) in &self.children {
            for mut p in m.paths() {
                p.insert(0, k.clone());
                out.push(p);
            }
        }
        out
    }

    /// Both sets of marks.
    pub fn merge(&mut self, other: Marks) {
        if self.whole {
            return;
        }
        if other.whole {
            *self = other;
            return;
        }
        for (k, m) in other.children {
            self.put(&[k], m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_of_a_whole_is_whole_and_clean_parts_have_no_marks() {
        let mut m = Marks::default();
        assert!(m.is_empty());
        m.mark(&["node", "head", "connection"]);
        m.put(&["runtime", "pg"], Marks::default());
        assert_eq!(m.keys().collect::<Vec<_>>(), ["node"]);
        assert!(m.at(&["node", "head"]).is_some());
        assert!(m.at(&["node", "head", "private_ip"]).is_none());
        let c = m.at(&["node", "head", "connection", "key"]).unwrap();
        assert!(c.is_whole());
        // A whole swallows the marks below it, and marks below a whole add nothing.
        m.mark(&["node"]);
        assert!(m.child("node").unwrap().is_whole());
        m.mark(&["node", "worker"]);
        assert_eq!(m.child("node"), Some(&Marks::whole()));
        let mut other = Marks::default();
        other.mark(&["x"]);
        m.merge(other);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["node", "x"]);
        assert_eq!(m.paths(), [vec!["node".to_string()], vec!["x".to_string()]]);
        let mut deep = Marks::default();
        deep.mark(&["runtime", "pg", "password"]);
        deep.mark(&["node", "head", "connection"]);
        assert_eq!(
            deep.paths(),
            [
                ["node", "head", "connection"].map(String::from).to_vec(),
                ["runtime", "pg", "password"].map(String::from).to_vec()
            ]
        );
        assert_eq!(Marks::whole().paths(), [Vec::<String>::new()]);
        assert!(Marks::default().paths().is_empty());
    }
}
