//! The graph of configuration objects (variables, locals, outputs, module outputs,
//! resources, workspaces, clusters) with an edge per reference. Only direct edges are
//! stored; ordering and cycle detection are linear in nodes + edges.

use crate::addr::Address;
use crate::config::refs::{self, Reference};
use crate::config::{Config, ObjectKind};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, FileId, Location};
use crate::provider::Providers;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::HashMap;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Var(String),
    Local(String),
    Output(String),
    /// `module.NAME` in the calling module: the called module's outputs.
    ModuleOutputs(String),
    Object(ObjectKind, String),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub module: usize,
    pub key: Key,
    pub file: FileId,
    pub span: Option<Range<usize>>,
}

/// Where a reference is written: the weight of an edge.
#[derive(Debug, Clone)]
pub struct RefSite {
    pub file: FileId,
    pub span: Option<Range<usize>>,
}

pub struct Graph {
    pub graph: DiGraph<Node, RefSite>,
    index: HashMap<(usize, Key), NodeIndex>,
}

impl Graph {
    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.graph[i]
    }

    pub fn find(&self, module: usize, key: &Key) -> Option<NodeIndex> {
        self.index.get(&(module, key.clone())).copied()
    }

    /// The nodes this one references.
    pub fn dependencies(&self, i: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(i, Direction::Incoming)
    }

    pub fn dependents(&self, i: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(i, Direction::Outgoing)
    }

    /// How a node is named to users: `var.region`, `module.net.local.x`, `cluster.etl`.
    pub fn display(&self, config: &Config, i: NodeIndex) -> String {
        let n = &self.graph[i];
        let prefix = &config.modules[n.module].prefix;
        let own = match &n.key {
            Key::Var(v) => format!("var.{v}"),
            Key::Local(l) => format!("local.{l}"),
            Key::Output(o) => format!("output.{o}"),
            Key::ModuleOutputs(m) => format!("module.{m}"),
            Key::Object(kind, name) => format!("{}.{name}", kind.root()),
        };
        if prefix.0.is_empty() {
            own
        } else {
            format!("{prefix}.{own}")
        }
    }

    /// The address of an object node (`module.m.cluster.etl`).
    pub fn object_address(&self, config: &Config, i: NodeIndex) -> Option<Address> {
        let n = &self.graph[i];
        match &n.key {
            Key::Object(kind, name) => Some(
                config.modules[n.module]
                    .prefix
                    .clone()
                    .name(kind.root())
                    .name(name),
            ),
            _ => None,
        }
    }

    /// Nodes in dependency order (Kahn), or the diagnostics of a cycle.
    pub fn topo_order(&self, config: &Config) -> Result<Vec<NodeIndex>, Diagnostics> {
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| self.dependencies(NodeIndex::new(i)).count())
            .collect();
        let mut queue: Vec<NodeIndex> = (0..n)
            .filter(|&i| indegree[i] == 0)
            .map(NodeIndex::new)
            .collect();
        let mut order = Vec::with_capacity(n);
        let mut head = 0;
        while head < queue.len() {
            let i = queue[head];
            head += 1;
            order.push(i);
            for d in self.dependents(i) {
                indegree[d.index()] -= 1;
                if indegree[d.index()] == 0 {
                    queue.push(d);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        Err(self.cycle_diagnostic(config, &indegree).into())
    }

    /// Finds one cycle among the nodes Kahn could not order, and names every reference in it.
    fn cycle_diagnostic(&self, config: &Config, indegree: &[usize]) -> Diagnostic {
        let stuck = |i: NodeIndex| indegree[i.index()] > 0;
        // Walk backwards along dependencies that are stuck too: every stuck node has one,
        // so the walk must come back to a node it has seen.
        let mut seen: HashMap<NodeIndex, usize> = HashMap::new();
        let mut path: Vec<NodeIndex> = Vec::new();
        let mut cur = (0..self.graph.node_count())
            .map(NodeIndex::new)
            .find(|&i| stuck(i));
        while let Some(i) = cur {
            if let Some(&pos) = seen.get(&i) {
                path.drain(..pos);
                break;
            }
            seen.insert(i, path.len());
            path.push(i);
            cur = self.dependencies(i).find(|&d| stuck(d));
        }
        path.reverse();
        // Shown as "a -> b": a refers to b.
        let names: Vec<String> = path
            .iter()
            .rev()
            .map(|&i| self.display(config, i))
            .collect();
        let mut d = Diagnostic::new(format!(
            "dependency cycle (each refers to the next): {} -> {}",
            names.join(" -> "),
            names.first().cloned().unwrap_or_default()
        ));
        for (k, &i) in path.iter().enumerate() {
            let next = path[(k + 1) % path.len()];
            if let Some(e) = self.graph.find_edge(i, next) {
                let site = &self.graph[e];
                d = d.note(
                    format!(
                        "{} refers to {} here",
                        self.display(config, next),
                        self.display(config, i)
                    ),
                    site.span.clone().map(|span| Location {
                        file: site.file,
                        span,
                    }),
                );
            }
        }
        d.help("break the cycle: one of these references must go, or read the value from somewhere else")
    }

    pub fn build(config: &Config, providers: &Providers) -> Result<Graph, Diagnostics> {
        let mut g = Graph {
            graph: DiGraph::new(),
            index: HashMap::new(),
        };
        let mut diags = Diagnostics::default();
        for (mi, m) in config.modules.iter().enumerate() {
            for v in m.variables.values() {
                g.add(mi, Key::Var(v.name.clone()), v.file, v.span.clone());
            }
            for l in m.locals.values() {
                g.add(mi, Key::Local(l.name.clone()), l.file, l.span.clone());
            }
            for o in m.outputs.values() {
                g.add(mi, Key::Output(o.name.clone()), o.file, o.span.clone());
            }
            for c in m.calls.values() {
                g.add(
                    mi,
                    Key::ModuleOutputs(c.name.clone()),
                    c.file,
                    c.span.clone(),
                );
            }
            for o in &m.objects {
                if let ObjectKind::Resource(t) = &o.kind {
                    if providers.schema(t).is_none() {
                        diags.push(
                            Diagnostic::new(format!("unknown resource type \"{t}\""))
                                .at(o.file, o.span.clone())
                                .help(did_you_mean(t, providers.type_names()).unwrap_or_else(
                                    || {
                                        format!(
                                            "the resource types here are: {}",
                                            providers.type_names().collect::<Vec<_>>().join(", ")
                                        )
                                    },
                                )),
                        );
                    }
                }
                g.add(
                    mi,
                    Key::Object(o.kind.clone(), o.name.clone()),
                    o.file,
                    o.span.clone(),
                );
            }
        }
        for (mi, m) in config.modules.iter().enumerate() {
            let mut edges: Vec<(NodeIndex, usize, FileId, Vec<Reference>)> = Vec::new();
            let collect = |e: &hcl_edit::expr::Expression| {
                let mut out = Vec::new();
                refs::in_expr(e, &mut Vec::new(), &mut out);
                out
            };
            for l in m.locals.values() {
                edges.push((
                    g.index[&(mi, Key::Local(l.name.clone()))],
                    mi,
                    l.file,
                    collect(&l.expr),
                ));
            }
            for o in m.outputs.values() {
                let mut r = collect(&o.value);
                o.depends_on.iter().for_each(|e| r.extend(collect(e)));
                edges.push((g.index[&(mi, Key::Output(o.name.clone()))], mi, o.file, r));
            }
            for o in &m.objects {
                let mut r = Vec::new();
                refs::in_body(&o.body, &[], &mut r);
                o.depends_on.iter().for_each(|e| r.extend(collect(e)));
                edges.push((
                    g.index[&(mi, Key::Object(o.kind.clone(), o.name.clone()))],
                    mi,
                    o.file,
                    r,
                ));
            }
            for c in m.calls.values() {
                let child = &config.modules[c.child];
                // The module's outputs depend on each output of the child.
                let to = g.index[&(mi, Key::ModuleOutputs(c.name.clone()))];
                for o in child.outputs.values() {
                    let from = g.index[&(c.child, Key::Output(o.name.clone()))];
                    g.graph.add_edge(
                        from,
                        to,
                        RefSite {
                            file: o.file,
                            span: o.span.clone(),
                        },
                    );
                }
                // Each argument is the value of a child variable, evaluated here.
                for (name, attr) in &c.args {
                    use hcl_edit::Span;
                    match g.index.get(&(c.child, Key::Var(name.clone()))) {
                        Some(&var) => {
                            let mut r = collect(&attr.value);
                            c.depends_on.iter().for_each(|e| r.extend(collect(e)));
                            edges.push((var, mi, c.file, r));
                        }
                        None => diags.push(
                            Diagnostic::new(format!(
                                "module \"{}\" has no variable \"{name}\"",
                                c.name
                            ))
                            .at(c.file, attr.key.span())
                            .help(
                                did_you_mean(name, child.variables.keys().map(String::as_str))
                                    .unwrap_or_else(|| {
                                        format!(
                                            "its variables are: {}",
                                            child
                                                .variables
                                                .keys()
                                                .cloned()
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    }),
                            ),
                        ),
                    }
                }
            }
            for (to, module, file, references) in edges {
                for r in references {
                    match g.resolve(config, module, &r) {
                        Ok(Some(from)) => {
                            if g.graph.find_edge(from, to).is_none() {
                                g.graph.add_edge(
                                    from,
                                    to,
                                    RefSite {
                                        file,
                                        span: r.span.clone(),
                                    },
                                );
                            }
                        }
                        Ok(None) => {}
                        Err(msg) => diags.push(
                            Diagnostic::new(msg.0)
                                .at(file, r.span.clone())
                                .help_opt(msg.1),
                        ),
                    }
                }
            }
        }
        if diags.is_empty() {
            Ok(g)
        } else {
            Err(diags)
        }
    }

    fn add(&mut self, module: usize, key: Key, file: FileId, span: Option<Range<usize>>) {
        let i = self.graph.add_node(Node {
            module,
            key: key.clone(),
            file,
            span,
        });
        self.index.insert((module, key), i);
    }

    /// The node a reference points at; `None` for names that are not nodes (`path`).
    pub(crate) fn resolve(
        &self,
        config: &Config,
        module: usize,
        r: &Reference,
    ) -> Result<Option<NodeIndex>, (String, Option<String>)> {
        let m = &config.modules[module];
        let attr = r.attrs.first().cloned();
        let need_attr = |what: &str| {
            (
                format!("\"{}\" alone is not a value", r.root),
                Some(format!("write {}.{what}", r.root)),
            )
        };
        let lookup = |key: Key,
                      kind: &str,
                      names: Vec<&str>|
         -> Result<Option<NodeIndex>, (String, Option<String>)> {
            match self.index.get(&(module, key.clone())) {
                Some(i) => Ok(Some(*i)),
                None => {
                    let name = match &key {
                        Key::Var(n)
                        | Key::Local(n)
                        | Key::ModuleOutputs(n)
                        | Key::Output(n)
                        | Key::Object(_, n) => n.clone(),
                    };
                    Err((
                        format!("reference to undeclared {kind} \"{}.{name}\"", r.root),
                        did_you_mean(&name, names.iter().copied()).or_else(|| {
                            Some(format!(
                                "declare it, or check the spelling of {}.{name}",
                                r.root
                            ))
                        }),
                    ))
                }
            }
        };
        match r.root.as_str() {
            "var" => {
                let a = attr.ok_or_else(|| need_attr("NAME"))?;
                lookup(
                    Key::Var(a),
                    "variable",
                    m.variables.keys().map(String::as_str).collect(),
                )
            }
            "local" => {
                let a = attr.ok_or_else(|| need_attr("NAME"))?;
                lookup(
                    Key::Local(a),
                    "local value",
                    m.locals.keys().map(String::as_str).collect(),
                )
            }
            "module" => {
                let a = attr.ok_or_else(|| need_attr("NAME.OUTPUT"))?;
                lookup(
                    Key::ModuleOutputs(a),
                    "module",
                    m.calls.keys().map(String::as_str).collect(),
                )
            }
            "path" => Ok(None),
            "workspace" | "cluster" => {
                let a = attr.ok_or_else(|| need_attr("NAME"))?;
                let kind = if r.root == "workspace" {
                    ObjectKind::Workspace
                } else {
                    ObjectKind::Cluster
                };
                let names = m
                    .objects
                    .iter()
                    .filter(|o| o.kind == kind)
                    .map(|o| o.name.as_str())
                    .collect();
                lookup(Key::Object(kind, a), &r.root, names)
            }
            root if m.objects.iter().any(|o| o.kind.root() == root) => {
                let a = attr.ok_or_else(|| need_attr("NAME"))?;
                let kind = ObjectKind::Resource(root.to_string());
                let names = m
                    .objects
                    .iter()
                    .filter(|o| o.kind == kind)
                    .map(|o| o.name.as_str())
                    .collect();
                lookup(Key::Object(kind, a), "resource", names)
            }
            root => {
                let mut roots: Vec<&str> =
                    vec!["var", "local", "module", "path", "workspace", "cluster"];
                roots.extend(m.objects.iter().map(|o| o.kind.root()));
                let help = did_you_mean(root, roots.iter().copied()).or_else(|| {
                    (root.contains('_'))
                        .then(|| format!("there is no resource of type {root} in this module"))
                });
                Err((format!("unknown name \"{root}\""), help.or_else(|| Some("references start with var., local., module., workspace., cluster. or a resource type".into()))))
            }
        }
    }

    /// Graphviz DOT text of the graph, for `tik graph`.
    pub fn to_dot(&self, config: &Config) -> String {
        let mut out = String::from("digraph tik {\n  rankdir = \"RL\";\n  node [shape = box];\n");
        for i in self.graph.node_indices() {
            out.push_str(&format!("  \"{}\";\n", self.display(config, i)));
        }
        for e in self.graph.edge_indices() {
            if let Some((a, b)) = self.graph.edge_endpoints(e) {
                out.push_str(&format!(
                    "  \"{}\" -> \"{}\";\n",
                    self.display(config, b),
                    self.display(config, a)
                ));
            }
        }
        out.push_str("}\n");
        out
    }
}
