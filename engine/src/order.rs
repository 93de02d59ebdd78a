//! The engine's one topological order: Kahn's algorithm, linear in vertices and
//! edges. The configuration graph, apply's scheduler, the order of deletes, a
//! module's sibling instances and a node's runtimes all order through [`Kahn`];
//! [`sort`] orders a whole petgraph graph at once and, on a cycle, returns one.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Kahn's algorithm step by step, over vertices numbered from 0 as they are added.
/// A vertex becomes ready when the last vertex it waits for is released; the caller
/// takes ready vertices with [`Kahn::pop`] and releases each one's dependents when
/// it is done, so the same structure serves a one-shot sort and a scheduler whose
/// work finishes out of order.
#[derive(Debug)]
pub struct Kahn {
    waits: Vec<usize>,
    ready: Ready,
}

#[derive(Debug)]
enum Ready {
    /// In the order the vertices became ready.
    Fifo(VecDeque<usize>),
    /// The lowest-numbered ready vertex first: ties keep the order of addition.
    Lowest(BinaryHeap<Reverse<usize>>),
}

impl Kahn {
    /// Ready vertices come out in the order they became ready.
    pub fn fifo() -> Kahn {
        Kahn {
            waits: Vec::new(),
            ready: Ready::Fifo(VecDeque::new()),
        }
    }

    /// Ready vertices come out lowest-numbered first.
    pub fn lowest_first() -> Kahn {
        Kahn {
            waits: Vec::new(),
            ready: Ready::Lowest(BinaryHeap::new()),
        }
    }

    /// Adds a vertex that waits for `waits` releases; returns its number. One that
    /// waits for nothing is ready at once.
    pub fn add(&mut self, waits: usize) -> usize {
        let i = self.waits.len();
        self.waits.push(waits);
        if waits == 0 {
            self.push(i);
        }
        i
    }

    /// Adds every vertex of `graph`, each waiting for its incoming edges.
    pub fn of_graph<N, E>(mut self, graph: &DiGraph<N, E>) -> Kahn {
        for i in graph.node_indices() {
            self.add(graph.neighbors_directed(i, Direction::Incoming).count());
        }
        self
    }

    fn push(&mut self, i: usize) {
        match &mut self.ready {
            Ready::Fifo(q) => q.push_back(i),
            Ready::Lowest(h) => h.push(Reverse(i)),
        }
    }

    /// The next ready vertex, without taking it.
    pub fn peek(&self) -> Option<usize> {
        match &self.ready {
            Ready::Fifo(q) => q.front().copied(),
            Ready::Lowest(h) => h.peek().map(|r| r.0),
        }
    }

    /// How many vertices are ready.
    pub fn ready_len(&self) -> usize {
        match &self.ready {
            Ready::Fifo(q) => q.len(),
            Ready::Lowest(h) => h.len(),
        }
    }

    /// Takes the next ready vertex.
    pub fn pop(&mut self) -> Option<usize> {
        match &mut self.ready {
            Ready::Fifo(q) => q.pop_front(),
            Ready::Lowest(h) => h.pop().map(|r| r.0),
        }
    }

    /// One wait of each of `dependents` is over; those with none left become ready.
    pub fn release(&mut self, dependents: impl IntoIterator<Item = usize>) {
        for d in dependents {
            self.waits[d] -= 1;
            if self.waits[d] == 0 {
                self.push(d);
            }
        }
    }

    /// Whether a vertex still waits for something: after a drained sort, exactly the
    /// vertices on or behind a cycle.
    pub fn waiting(&self, i: usize) -> bool {
        self.waits[i] > 0
    }
}

/// Every vertex of `graph` after those its incoming edges come from, ties in the
/// order they became ready; or, when some cannot be ordered, one cycle among them,
/// each vertex followed by one it depends on.
pub fn sort<N, E>(graph: &DiGraph<N, E>) -> Result<Vec<NodeIndex>, Vec<NodeIndex>> {
    let mut kahn = Kahn::fifo().of_graph(graph);
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(i) = kahn.pop() {
        order.push(NodeIndex::new(i));
        kahn.release(
            graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
                .map(|d| d.index()),
        );
    }
    if order.len() == graph.node_count() {
        return Ok(order);
    }
    Err(cycle(graph, |i| kahn.waiting(i.index())))
}

/// One cycle among the `stuck` vertices, each followed by one it depends on. Every
/// stuck vertex depends on a stuck one, so walking back along such dependencies
/// must return to a vertex it has seen.
fn cycle<N, E>(graph: &DiGraph<N, E>, stuck: impl Fn(NodeIndex) -> bool) -> Vec<NodeIndex> {
    let mut seen = std::collections::HashMap::new();
    let mut path = Vec::new();
    let mut cur = graph.node_indices().find(|&i| stuck(i));
    while let Some(i) = cur {
        if let Some(&pos) = seen.get(&i) {
            path.drain(..pos);
            break;
        }
        seen.insert(i, path.len());
        path.push(i);
        cur = graph
            .neighbors_directed(i, Direction::Incoming)
            .find(|&d| stuck(d));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_dependencies_first_and_keeps_ready_order() {
        let mut g: DiGraph<(), ()> = DiGraph::new();
        let n: Vec<NodeIndex> = (0..5).map(|_| g.add_node(())).collect();
        g.add_edge(n[3], n[0], ());
        g.add_edge(n[0], n[1], ());
        g.add_edge(n[4], n[1], ());
        let order: Vec<usize> = sort(&g).unwrap().iter().map(|i| i.index()).collect();
        assert_eq!(order, vec![2, 3, 4, 0, 1]);
    }

    #[test]
    fn names_a_cycle_and_not_what_waits_behind_it() {
        let mut g: DiGraph<(), ()> = DiGraph::new();
        let n: Vec<NodeIndex> = (0..4).map(|_| g.add_node(())).collect();
        g.add_edge(n[0], n[1], ());
        g.add_edge(n[1], n[2], ());
        g.add_edge(n[2], n[1], ());
        g.add_edge(n[2], n[3], ());
        let mut cycle: Vec<usize> = sort(&g).unwrap_err().iter().map(|i| i.index()).collect();
        cycle.sort();
        assert_eq!(cycle, vec![1, 2]);
    }

    #[test]
    fn lowest_first_prefers_the_earliest_ready() {
        // 0 waits for 3; 2 waits for 1: FIFO gives 1 3 2 0, lowest-first 1 2 3 0.
        let mut k = Kahn::lowest_first();
        for w in [1, 0, 1, 0] {
            k.add(w);
        }
        let then: [&[usize]; 4] = [&[], &[2], &[], &[0]];
        let mut out = Vec::new();
        while let Some(i) = k.pop() {
            out.push(i);
            k.release(then[i].iter().copied());
        }
        assert_eq!(out, vec![1, 2, 3, 0]);
    }

    #[test]
    fn a_long_chain_is_linear_and_does_not_recurse() {
        let mut g: DiGraph<(), ()> = DiGraph::new();
        let n: Vec<NodeIndex> = (0..200_000).map(|_| g.add_node(())).collect();
        for w in n.windows(2) {
            g.add_edge(w[1], w[0], ());
        }
        let order = sort(&g).unwrap();
        assert_eq!(order.first(), n.last());
    }
}
