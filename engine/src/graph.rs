//! The graph of configuration objects (variables, locals, outputs, module outputs,
//! resources, workspaces, clusters) with an edge per reference. Only direct edges are
//! stored; ordering and cycle detection are linear in nodes + edges.

use crate::addr::Address;
use crate::config::refs::{self, Reference};
use crate::config::{Config, ObjectKind, Repeat};
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
    /// The call `module "NAME"` in the calling module: its instances, from its
    /// `count` or `for_each`. Every node of the called module comes after it.
    Call(String),
    Object(ObjectKind, String),
}

#[derive(Debug, Clone)]
pub struct Vertex {
    pub module: usize,
    /// For an object: its index in the module's `objects`.
    pub object: Option<usize>,
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

/// A vertex that refers, its module and file, and its references.
type Edges = (NodeIndex, usize, FileId, Vec<Reference>);

/// The references in an expression.
fn collect(e: &hcl_edit::expr::Expression) -> Vec<Reference> {
    let mut out = Vec::new();
    refs::in_expr(e, &mut Vec::new(), &mut out);
    out
}

pub struct Graph {
    pub graph: DiGraph<Vertex, RefSite>,
    index: HashMap<(usize, Key), NodeIndex>,
    /// Per module, the resource types its blocks use: the roots a reference may start with.
    resource_roots: Vec<std::collections::HashSet<String>>,
}

impl Graph {
    pub fn vertex(&self, i: NodeIndex) -> &Vertex {
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
            Key::Call(m) => format!("module.{m} (its instances)"),
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
            Key::Object(kind, name) => Some(config.modules[n.module].object_address(kind, name)),
            _ => None,
        }
    }

    /// Nodes in dependency order, or the diagnostics of a cycle.
    pub fn topo_order(&self, config: &Config) -> Result<Vec<NodeIndex>, Diagnostics> {
        crate::order::sort(&self.graph).map_err(|cycle| self.cycle_diagnostic(config, cycle).into())
    }

    /// Names every reference of a cycle (each node followed by one it refers to).
    fn cycle_diagnostic(&self, config: &Config, mut path: Vec<NodeIndex>) -> Diagnostic {
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
            resource_roots: Vec::new(),
        };
        let mut diags = Diagnostics::default();
        g.add_vertices(config, providers, &mut diags);
        let mut in_module: Vec<Vec<NodeIndex>> = vec![Vec::new(); config.modules.len()];
        for i in g.graph.node_indices() {
            in_module[g.graph[i].module].push(i);
        }
        for (mi, m) in config.modules.iter().enumerate() {
            let mut edges = g.reference_sites(mi, m, &mut diags);
            for c in m.calls.values() {
                g.call_edges(config, mi, c, &in_module[c.child], &mut edges, &mut diags);
            }
            g.add_references(config, edges, &mut diags);
        }
        if diags.is_empty() {
            Ok(g)
        } else {
            Err(diags)
        }
    }

    /// A vertex per variable, local, output, module call (its outputs and its
    /// instances) and object of every module; an unknown resource type is an error.
    fn add_vertices(&mut self, config: &Config, providers: &Providers, diags: &mut Diagnostics) {
        for (mi, m) in config.modules.iter().enumerate() {
            self.resource_roots.push(
                m.objects
                    .iter()
                    .map(|o| o.kind.root().to_string())
                    .collect(),
            );
            for v in m.variables.values() {
                self.add(mi, Key::Var(v.name.clone()), v.file, v.span.clone());
            }
            for l in m.locals.values() {
                self.add(mi, Key::Local(l.name.clone()), l.file, l.span.clone());
            }
            for o in m.outputs.values() {
                self.add(mi, Key::Output(o.name.clone()), o.file, o.span.clone());
            }
            for c in m.calls.values() {
                self.add(
                    mi,
                    Key::ModuleOutputs(c.name.clone()),
                    c.file,
                    c.span.clone(),
                );
                self.add(mi, Key::Call(c.name.clone()), c.file, c.span.clone());
            }
            for (oi, o) in m.objects.iter().enumerate() {
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
                self.add(
                    mi,
                    Key::Object(o.kind.clone(), o.name.clone()),
                    o.file,
                    o.span.clone(),
                );
                let added = NodeIndex::new(self.graph.node_count() - 1);
                self.graph[added].object = Some(oi);
            }
        }
    }

    /// Where each local, output and object of module `mi` refers to something: the
    /// vertex that refers, and the references.
    fn reference_sites(
        &self,
        mi: usize,
        m: &crate::config::Module,
        diags: &mut Diagnostics,
    ) -> Vec<Edges> {
        let mut edges: Vec<Edges> = Vec::new();
        for l in m.locals.values() {
            edges.push((
                self.index[&(mi, Key::Local(l.name.clone()))],
                mi,
                l.file,
                collect(&l.expr),
            ));
        }
        for o in m.outputs.values() {
            let mut r = collect(&o.value);
            o.depends_on.iter().for_each(|e| r.extend(collect(e)));
            edges.push((
                self.index[&(mi, Key::Output(o.name.clone()))],
                mi,
                o.file,
                r,
            ));
        }
        for o in &m.objects {
            let mut r = Vec::new();
            refs::in_body(&o.body, &[], &mut r);
            if let Some(repeat) = &o.repeat {
                r.retain(|x| !own_repetition(repeat, x, o.file, diags));
                r.extend(collect(repeat.expr()));
            }
            o.depends_on.iter().for_each(|e| r.extend(collect(e)));
            edges.push((
                self.index[&(mi, Key::Object(o.kind.clone(), o.name.clone()))],
                mi,
                o.file,
                r,
            ));
        }
        edges
    }

    /// A module call's edges: its instances before every vertex of the module it
    /// calls (`child`), the child's outputs before `module.NAME`, and the references
    /// of its `count` or `for_each`, `depends_on` and arguments (each the value of
    /// a child variable, evaluated in the calling module).
    fn call_edges(
        &mut self,
        config: &Config,
        mi: usize,
        c: &crate::config::ModuleCall,
        child_vertices: &[NodeIndex],
        edges: &mut Vec<Edges>,
        diags: &mut Diagnostics,
    ) {
        let child = &config.modules[c.child];
        // The call's instances come first: they are what the child's nodes
        // are evaluated for.
        let call = self.index[&(mi, Key::Call(c.name.clone()))];
        let site = RefSite {
            file: c.file,
            span: c.span.clone(),
        };
        for &node in child_vertices {
            self.graph.add_edge(call, node, site.clone());
        }
        let mut r = Vec::new();
        if let Some(repeat) = &c.repeat {
            r.extend(collect(repeat.expr()));
        }
        c.depends_on.iter().for_each(|e| r.extend(collect(e)));
        edges.push((call, mi, c.file, r));
        // The module's outputs depend on each output of the child.
        let to = self.index[&(mi, Key::ModuleOutputs(c.name.clone()))];
        // `module.NAME` is made of the instances, even with no outputs.
        self.graph.add_edge(call, to, site.clone());
        for o in child.outputs.values() {
            let from = self.index[&(c.child, Key::Output(o.name.clone()))];
            self.graph.add_edge(
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
            match self.index.get(&(c.child, Key::Var(name.clone()))) {
                Some(&var) => {
                    let mut r = collect(&attr.value);
                    if let Some(repeat) = &c.repeat {
                        r.retain(|x| !own_repetition(repeat, x, c.file, diags));
                    }
                    c.depends_on.iter().for_each(|e| r.extend(collect(e)));
                    edges.push((var, mi, c.file, r));
                }
                None => diags.push(
                    Diagnostic::new(format!("module \"{}\" has no variable \"{name}\"", c.name))
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

    /// An edge per reference, from what is referred to; a reference to nothing is
    /// an error with the name it may have meant.
    fn add_references(&mut self, config: &Config, edges: Vec<Edges>, diags: &mut Diagnostics) {
        for (to, module, file, references) in edges {
            // What `to` already refers to: one edge each. (`find_edge` scans the
            // edges of `from`, quadratic when many refer to one variable.)
            let mut from_seen: std::collections::HashSet<NodeIndex> = self
                .graph
                .neighbors_directed(to, Direction::Incoming)
                .collect();
            for r in references {
                match self.resolve(config, module, &r) {
                    Ok(Some(from)) => {
                        if from_seen.insert(from) {
                            self.graph.add_edge(
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

    fn add(&mut self, module: usize, key: Key, file: FileId, span: Option<Range<usize>>) {
        let i = self.graph.add_node(Vertex {
            module,
            object: None,
            key: key.clone(),
            file,
            span,
        });
        self.index.insert((module, key), i);
    }

    /// The node a reference points at; `None` for names that are not nodes (`path`).
    /// Costs a hash lookup; the candidates for "did you mean" are gathered only on an error.
    pub(crate) fn resolve(
        &self,
        config: &Config,
        module: usize,
        r: &Reference,
    ) -> Result<Option<NodeIndex>, (String, Option<String>)> {
        let m = &config.modules[module];
        let (key, kind_name) = match r.root.as_str() {
            "path" => return Ok(None),
            "var" => (r.attrs.first().map(|a| Key::Var(a.clone())), "variable"),
            "local" => (
                r.attrs.first().map(|a| Key::Local(a.clone())),
                "local value",
            ),
            "module" => (
                r.attrs.first().map(|a| Key::ModuleOutputs(a.clone())),
                "module",
            ),
            "workspace" => (
                r.attrs
                    .first()
                    .map(|a| Key::Object(ObjectKind::Workspace, a.clone())),
                "workspace",
            ),
            "cluster" => (
                r.attrs
                    .first()
                    .map(|a| Key::Object(ObjectKind::Cluster, a.clone())),
                "cluster",
            ),
            root @ ("count" | "each") => {
                let meta = if root == "count" { "count" } else { "for_each" };
                let what = match r.attrs.first() {
                    Some(a) => format!("{root}.{a}"),
                    None => root.to_string(),
                };
                return Err((
                    format!("{what} is known only in a resource or module block that sets {meta}"),
                    Some(format!("add {meta} = ... to the block to repeat it, or take the value from elsewhere")),
                ));
            }
            root if self.resource_roots[module].contains(root) => (
                r.attrs
                    .first()
                    .map(|a| Key::Object(ObjectKind::Resource(root.to_string()), a.clone())),
                "resource",
            ),
            root => {
                let mut roots: Vec<&str> =
                    vec!["var", "local", "module", "path", "workspace", "cluster"];
                roots.extend(self.resource_roots[module].iter().map(String::as_str));
                let help = did_you_mean(root, roots.iter().copied())
                    .or_else(|| root.contains('_').then(|| format!("there is no resource of type {root} in this module")))
                    .unwrap_or_else(|| "references start with var., local., module., workspace., cluster. or a resource type".into());
                return Err((format!("unknown name \"{root}\""), Some(help)));
            }
        };
        let Some(key) = key else {
            return Err((
                format!("\"{}\" alone is not a value", r.root),
                Some(format!("write {}.NAME", r.root)),
            ));
        };
        if let Some(i) = self.index.get(&(module, key.clone())) {
            return Ok(Some(*i));
        }
        let (name, names): (&String, Vec<&str>) = match &key {
            Key::Var(n) => (n, m.variables.keys().map(String::as_str).collect()),
            Key::Local(n) => (n, m.locals.keys().map(String::as_str).collect()),
            Key::ModuleOutputs(n) | Key::Call(n) => {
                (n, m.calls.keys().map(String::as_str).collect())
            }
            Key::Output(n) => (n, m.outputs.keys().map(String::as_str).collect()),
            Key::Object(kind, n) => (
                n,
                m.objects
                    .iter()
                    .filter(|o| &o.kind == kind)
                    .map(|o| o.name.as_str())
                    .collect(),
            ),
        };
        let help = did_you_mean(name, names.iter().copied())
            .unwrap_or_else(|| format!("declare it, or check the spelling of {}.{name}", r.root));
        Err((
            format!("reference to undeclared {kind_name} \"{}.{name}\"", r.root),
            Some(help),
        ))
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

/// Whether a reference in a repeated block reads the block's own `count.index` or
/// `each.key`: those are no node. Any other attribute of them is an error, reported.
fn own_repetition(repeat: &Repeat, r: &Reference, file: FileId, diags: &mut Diagnostics) -> bool {
    if r.root != repeat.root() {
        return false;
    }
    let attr = r.attrs.first().map(String::as_str);
    if attr.is_some_and(|a| repeat.attributes().contains(&a)) {
        return true;
    }
    let list = repeat
        .attributes()
        .iter()
        .map(|a| format!("{}.{a}", repeat.root()));
    let help = attr
        .and_then(|a| did_you_mean(a, repeat.attributes().iter().copied()))
        .unwrap_or_else(|| format!("write {}", list.collect::<Vec<_>>().join(" or ")));
    diags.push(
        Diagnostic::new(format!(
            "{} has no {}",
            repeat.root(),
            attr.map_or("value of its own".to_string(), |a| format!(
                "attribute \"{a}\""
            ))
        ))
        .at(file, r.span.clone())
        .help(help),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(text: &str) -> (Config, Graph) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tik.hcl"), text).unwrap();
        let config = Config::load(dir.path()).map_err(|(_, d)| d).unwrap();
        let graph = Graph::build(&config, &Providers::new()).unwrap();
        (config, graph)
    }

    #[test]
    fn one_edge_per_referrer_however_often_it_refers() {
        let mut text = String::from("variable \"p\" { default = \"x\" }\n");
        for i in 0..50 {
            text.push_str(&format!(
                "resource \"tik_data\" \"r{i}\" {{\n  input = \"${{var.p}}-${{var.p}}\"\n  triggers_replace = var.p\n}}\n"
            ));
        }
        let (config, g) = graph_of(&text);
        let var = g.find(0, &Key::Var("p".into())).unwrap();
        assert_eq!(g.dependents(var).count(), 50);
        assert_eq!(g.graph.edge_count(), 50);
        assert_eq!(g.topo_order(&config).unwrap().first(), Some(&var));
    }

    #[test]
    fn a_cycle_names_each_reference_in_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tik.hcl"),
            "locals {\n  a = local.b\n  b = local.a\n  c = 1\n}\n",
        )
        .unwrap();
        let config = Config::load(dir.path()).map_err(|(_, d)| d).unwrap();
        let g = Graph::build(&config, &Providers::new()).unwrap();
        let d = g.topo_order(&config).unwrap_err();
        let text = d.render(&config.sources);
        assert!(text.contains("dependency cycle"), "{text}");
        assert!(
            text.contains("local.a") && text.contains("local.b"),
            "{text}"
        );
        assert!(!text.contains("local.c"), "{text}");
    }
}
