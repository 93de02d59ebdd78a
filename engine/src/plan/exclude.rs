//! Excluded objects (a controller's pool that backs off): kept as they are.

use crate::addr::Address;
use crate::walk::Instance;
use std::collections::HashSet;

/// What a plan with exclusions keeps as it is: the instances within an excluded
/// address, and those that take an attribute from, or come after, a kept instance
/// that does not exist (what they need is not made). Nothing is planned for them,
/// nor deleted within an excluded address; apply keeps them alike.
pub(crate) struct Kept<'e> {
    exclude: &'e [Address],
    missing: HashSet<Address>,
}

impl<'e> Kept<'e> {
    pub fn new(exclude: &'e [Address]) -> Self {
        Kept {
            exclude,
            missing: HashSet::new(),
        }
    }

    /// Whether `address` is within an excluded one.
    pub fn covers(&self, address: &Address) -> bool {
        self.exclude.iter().any(|e| address.within(e))
    }

    /// Whether `inst` is kept as it is (one that does not exist is remembered, for
    /// the instances after it).
    pub fn keeps(&mut self, inst: &Instance, exists: bool) -> bool {
        if self.exclude.is_empty() {
            return false;
        }
        let kept = self.covers(&inst.address)
            || inst.refs.iter().any(|r| self.missing.contains(&r.sibling))
            || inst.intra_deps.iter().any(|d| self.missing.contains(d));
        if kept && !exists {
            self.missing.insert(inst.address.clone());
        }
        kept
    }
}
