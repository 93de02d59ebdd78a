//! The order of deletes: a resource before what it depends on, linear in records.

use super::*;

/// The order among resources being deleted, from their recorded dependencies: a
/// resource goes before what it depends on. A dependency names one resource, or a
/// configuration object (`tik_data.a` with count, `cluster.etl`) and so each resource
/// of it; such a dependency goes through one node for the object, so the graph grows
/// with the records and their dependencies, not with their product.
pub(crate) struct DeleteOrder {
    /// Nodes `0..items` are the resources, in the order given; the rest are objects.
    pub items: usize,
    /// The object each node past `items` stands for.
    pub objects: Vec<Address>,
    /// Per node, the nodes that wait for it.
    pub then: Vec<Vec<usize>>,
    /// Per node, how many nodes it waits for.
    pub waits: Vec<usize>,
}

pub(crate) fn delete_order(items: &[(&Address, &[Address])]) -> DeleteOrder {
    let n = items.len();
    let exact: HashMap<&Address, usize> = items
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (*a, i))
        .collect();
    let mut members: HashMap<Address, Vec<usize>> = HashMap::new();
    for (i, (a, _)) in items.iter().enumerate() {
        members.entry(a.object()).or_default().push(i);
    }
    let mut order = DeleteOrder {
        items: n,
        objects: Vec::new(),
        then: vec![Vec::new(); n],
        waits: vec![0; n],
    };
    let mut node_of: HashMap<&Address, usize> = HashMap::new();
    for (i, (a, deps)) in items.iter().enumerate() {
        let own = a.object();
        for d in deps.iter() {
            // A record never needs its own object: nothing to order.
            if *d == own {
                continue;
            }
            let node = match (exact.get(d), members.get_key_value(d)) {
                (Some(&j), _) => j,
                (None, Some((object, of))) => *node_of.entry(object).or_insert_with(|| {
                    let g = order.then.len();
                    order.objects.push(object.clone());
                    order.then.push(of.clone());
                    order.waits.push(0);
                    for &x in of {
                        order.waits[x] += 1;
                    }
                    g
                }),
                (None, None) => continue,
            };
            order.then[i].push(node);
            order.waits[node] += 1;
        }
    }
    order
}

/// Orders deletes so that a resource goes before the resources it depends on.
pub fn order_deletes<'a>(items: &[&'a ResourceState]) -> Vec<&'a ResourceState> {
    let records: Vec<(&Address, &[Address])> = items
        .iter()
        .map(|r| (&r.address, r.dependencies.as_slice()))
        .collect();
    let DeleteOrder {
        items: n,
        then,
        waits,
        ..
    } = delete_order(&records);
    let mut kahn = crate::order::Kahn::fifo();
    for w in waits {
        kahn.add(w);
    }
    let mut out = Vec::with_capacity(n);
    while let Some(i) = kahn.pop() {
        if i < n {
            out.push(items[i]);
        }
        kahn.release(then[i].iter().copied());
    }
    // A cycle in recorded dependencies cannot come from tik; keep such entries, last.
    if out.len() < n {
        let done: HashSet<&Address> = out.iter().map(|r| &r.address).collect();
        let rest: Vec<&ResourceState> = items
            .iter()
            .filter(|r| !done.contains(&r.address))
            .copied()
            .collect();
        out.extend(rest);
    }
    out
}
