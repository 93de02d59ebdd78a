//! `--target`: what a targeted plan covers.

use super::*;

/// What a plan with `--target` covers.
pub(crate) struct Included {
    targets: Vec<Address>,
    /// The targeted objects and everything they depend on, each with the targets
    /// that reach it.
    nodes: HashMap<petgraph::graph::NodeIndex, Vec<usize>>,
    /// Repeated resource blocks whose targets name some of their instances
    /// (`tik_data.d["a"]`), and that nothing else included reads: those targets.
    instances: HashMap<petgraph::graph::NodeIndex, Vec<Address>>,
}

impl Included {
    pub fn contains(&self, i: &petgraph::graph::NodeIndex) -> bool {
        self.nodes.contains_key(i)
    }

    /// Whether the plan covers an instance of an included node: one in a module
    /// instance that a target reaching the node is in or calls (not another
    /// instance of a repeated module than the one targeted), and of a resource
    /// block whose targets name instances, one of those.
    pub fn covers(&self, i: petgraph::graph::NodeIndex, address: &Address) -> bool {
        let reached = self.nodes.get(&i).is_some_and(|ts| {
            ts.iter()
                .any(|&t| address.same_module_instance(&self.targets[t]))
        });
        reached
            && self
                .instances
                .get(&i)
                .is_none_or(|targets| targets.iter().any(|t| address.within(t)))
    }
}

/// With targets: the nodes of the targeted objects and everything they depend on;
/// of a resource block, only the instances targeted when nothing included reads the
/// others. A cluster is covered whole: its nodes' steps depend on one another.
pub(crate) fn included_nodes(
    walk: &Walk<'_>,
    config: &Config,
    order: &[petgraph::graph::NodeIndex],
    targets: &[Address],
) -> Option<Included> {
    if targets.is_empty() {
        return None;
    }
    // Nodes are blocks: a target in a module instance names the block as its
    // configuration has it (`module.team.cluster.etl`).
    let blocks: Vec<Address> = targets.iter().map(Address::unkeyed_modules).collect();
    let mut nodes: HashMap<petgraph::graph::NodeIndex, Vec<usize>> = HashMap::new();
    let mut targeted = Vec::new();
    for (t, block) in blocks.iter().enumerate() {
        let mut stack: Vec<_> = order
            .iter()
            .copied()
            .filter(|&i| {
                walk.graph
                    .object_address(config, i)
                    .is_some_and(|a| a.starts_with(block) || block.starts_with(&a))
            })
            .collect();
        targeted.extend(stack.iter().copied());
        while let Some(i) = stack.pop() {
            let reached = nodes.entry(i).or_default();
            if !reached.contains(&t) {
                reached.push(t);
                stack.extend(walk.graph.dependencies(i));
            }
        }
    }
    targeted.sort();
    targeted.dedup();
    let mut instances = HashMap::new();
    for i in targeted {
        let is_resource = matches!(
            walk.graph.vertex(i).key,
            crate::graph::Key::Object(ObjectKind::Resource(_), _)
        );
        let Some(a) = walk.graph.object_address(config, i) else {
            continue;
        };
        let whole = blocks.iter().any(|t| a.starts_with(t));
        let read = walk.graph.dependents(i).any(|d| nodes.contains_key(&d));
        if is_resource && !whole && !read {
            let some: Vec<Address> = targets
                .iter()
                .zip(&blocks)
                .filter(|(_, b)| b.starts_with(&a))
                .map(|(t, _)| t.clone())
                .collect();
            instances.insert(i, some);
        }
    }
    Some(Included {
        targets: targets.to_vec(),
        nodes,
        instances,
    })
}
