//! The nodes of clusters as state records them, with their sessions and steps: what
//! `tik status`, `tik exec` and `tik ssh` work on. Nothing here reads configuration:
//! these commands act on what exists, as the last apply left it.

use crate::steps::{Health, Runner};
use std::collections::HashMap;
use std::sync::Arc;
use tik_engine::addr::{Address, Segment};
use tik_engine::state::{State, Status};
use tik_engine::value::{Map, Value};

/// One node of a cluster.
#[derive(Debug, Clone)]
pub struct Node {
    /// The cluster as the user names it: `etl`, or `module.net.cluster.etl` inside a module.
    pub cluster: String,
    /// The node's name (`head`, `worker-default-0`).
    pub name: String,
    pub address: Address,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    /// How to reach it, from its session if it has one, else from the node.
    pub connection: Option<Value>,
    /// The host key its session recorded at first contact.
    pub host_key: Option<String>,
    /// For a node without a public address: the head it is reached through (its
    /// connection) and the host key the head's session recorded.
    pub jump: Option<Value>,
    pub jump_host_key: Option<String>,
    /// The provider gave it no public address: it is reached through the head.
    behind_head: bool,
    /// The container its services run in (engine, name, id, image), if the cluster
    /// has one.
    pub container: Option<Value>,
    pub steps: Vec<Step>,
}

/// One recorded step of a node.
#[derive(Debug, Clone)]
pub struct Step {
    pub address: Address,
    pub runtime: String,
    pub service: String,
    /// install, configure or start.
    pub step: String,
    pub outcome: Outcome,
    /// The attributes the step ran with: its health check among them.
    pub attributes: Map,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end.
    Done,
    /// It failed; the next apply runs it again.
    Failed,
    /// It was started and tik was stopped before it ended.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl Step {
    /// The health check of a started service.
    pub fn health(&self) -> Option<&str> {
        (self.step == "start")
            .then(|| self.attributes.get("health").and_then(Value::as_str))
            .flatten()
    }
}

impl Node {
    /// What a step or command on this node is given: how to reach it and who it is.
    pub fn target_attributes(&self) -> Map {
        let mut m = Map::new();
        if let Some(c) = &self.connection {
            m.insert("connection".into(), c.clone());
        }
        if let Some(k) = &self.host_key {
            m.insert("host_key".into(), Value::String(k.clone()));
        }
        if let Some(j) = &self.jump {
            m.insert("jump".into(), j.clone());
        }
        if let Some(k) = &self.jump_host_key {
            m.insert("jump_host_key".into(), Value::String(k.clone()));
        }
        if let Some(c) = &self.container {
            m.insert("container".into(), c.clone());
        }
        m.insert("cluster".into(), Value::String(self.cluster.clone()));
        m.insert("node_name".into(), Value::String(self.name.clone()));
        let rel = self.address.0[self.cluster_len()..].to_vec();
        m.insert("node".into(), Value::String(Address(rel).to_string()));
        if let Some(ip) = &self.private_ip {
            m.insert("node_ip".into(), Value::String(ip.clone()));
        }
        if let Some(ip) = &self.public_ip {
            m.insert("node_public_ip".into(), Value::String(ip.clone()));
        }
        m
    }

    /// Whether it is its cluster's head (`cluster.etl.node.head`).
    fn is_head(&self) -> bool {
        self.address.0.get(self.cluster_len() + 1) == Some(&Segment::Name("head".into()))
    }

    /// How many segments of the address name the cluster (`cluster.etl`).
    fn cluster_len(&self) -> usize {
        node_start(&self.address).unwrap_or(0)
    }

    /// The names a user may pick this node by: its name and its address in the cluster.
    pub fn matches(&self, wanted: &str) -> bool {
        let rel = Address(self.address.0[self.cluster_len() + 1..].to_vec()).to_string();
        wanted == self.name || wanted == rel || wanted == format!("node.{rel}")
    }
}

/// Where `node` starts in a node's address (`cluster.etl.node.head`): the index of
/// the `node` segment, if the address is a cluster node's.
fn node_start(address: &Address) -> Option<usize> {
    let s = &address.0;
    // ... cluster NAME node NAME [key|index]*
    let mut end = s.len();
    while end > 0 && matches!(s[end - 1], Segment::Key(_) | Segment::Index(_)) {
        end -= 1;
    }
    if end < 4 {
        return None;
    }
    let name = |i: usize, want: Option<&str>| match &s[i] {
        Segment::Name(n) => want.is_none_or(|w| w == n),
        _ => false,
    };
    (name(end - 4, Some("cluster"))
        && name(end - 3, None)
        && name(end - 2, Some("node"))
        && name(end - 1, None))
    .then_some(end - 2)
}

fn cluster_label(address: &Address, node_at: usize) -> String {
    // Root clusters go by their name; those in modules by their whole address.
    if node_at == 2 {
        match &address.0[1] {
            Segment::Name(n) => n.clone(),
            _ => String::new(),
        }
    } else {
        Address(address.0[..node_at].to_vec()).to_string()
    }
}

fn text(attrs: &Map, key: &str) -> Option<String> {
    attrs.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The nodes state records, in state's order, with their sessions and steps; only
/// those of `cluster` if it is given.
pub fn from_state(state: &State, cluster: Option<&str>) -> Result<Vec<Node>, NotFound> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: HashMap<&Address, usize> = HashMap::new();
    for (address, r) in &state.resources {
        let Some(at) = node_start(address) else {
            continue;
        };
        let label = cluster_label(address, at);
        if cluster.is_some_and(|c| c != label && c != Address(address.0[..at].to_vec()).to_string())
        {
            continue;
        }
        let name = text(&r.attributes, "name").unwrap_or_else(|| {
            Address(address.0[at + 1..].to_vec())
                .to_string()
                .replace(['[', ']', '"'], "")
        });
        index.insert(address, nodes.len());
        nodes.push(Node {
            cluster: label,
            name,
            address: address.clone(),
            private_ip: text(&r.attributes, "private_ip"),
            public_ip: text(&r.attributes, "public_ip"),
            connection: r.attributes.get("connection").cloned(),
            host_key: None,
            jump: None,
            jump_host_key: None,
            behind_head: r.attributes.get("public_address") == Some(&Value::Bool(false)),
            container: None,
            steps: Vec::new(),
        });
    }
    if nodes.is_empty() {
        return Err(not_found(state, cluster));
    }
    // Sessions are the node's address and `session`, containers its address and
    // `container`; steps its address and
    // `runtime R service S STEP`.
    for (address, r) in &state.resources {
        let segs = &address.0;
        if r.type_name == crate::runtime::SESSION_TYPE && segs.len() > 1 {
            if let Some(&i) = index.get(&Address(segs[..segs.len() - 1].to_vec())) {
                if let Some(c) = r.attributes.get("connection") {
                    nodes[i].connection = Some(c.clone());
                }
                nodes[i].host_key = text(&r.attributes, "host_key");
                nodes[i].jump = r.attributes.get("jump").cloned();
                nodes[i].jump_host_key = text(&r.attributes, "jump_host_key");
            }
        } else if r.type_name == crate::runtime::CONTAINER_TYPE && segs.len() > 1 {
            if let Some(&i) = index.get(&Address(segs[..segs.len() - 1].to_vec())) {
                nodes[i].container = r.attributes.get("container").cloned();
            }
        } else if r.type_name == crate::runtime::STEP_TYPE && segs.len() > 5 {
            if let Some(&i) = index.get(&Address(segs[..segs.len() - 5].to_vec())) {
                nodes[i].steps.push(Step {
                    address: address.clone(),
                    runtime: text(&r.attributes, "runtime").unwrap_or_default(),
                    service: text(&r.attributes, "service").unwrap_or_default(),
                    step: text(&r.attributes, "step").unwrap_or_default(),
                    outcome: match r.status {
                        Status::Ready => Outcome::Done,
                        Status::Tainted => Outcome::Failed,
                        Status::Pending => Outcome::Interrupted,
                    },
                    attributes: r.attributes.clone(),
                });
            }
        }
    }
    // A node behind the head whose session did not record the way (a cluster without
    // runtimes has no sessions) is reached through its cluster's head all the same.
    let heads: HashMap<String, (Option<Value>, Option<String>)> = nodes
        .iter()
        .filter(|n| n.is_head())
        .map(|n| {
            (
                n.cluster.clone(),
                (n.connection.clone(), n.host_key.clone()),
            )
        })
        .collect();
    for n in nodes
        .iter_mut()
        .filter(|n| n.behind_head && n.jump.is_none())
    {
        if let Some((connection, key)) = heads.get(&n.cluster) {
            n.jump = connection.clone();
            n.jump_host_key = key.clone();
        }
    }
    // A head first, then the rest in address order; steps in the order they run.
    nodes.sort_by(|a, b| {
        (a.cluster.as_str(), a.name != "head", &a.address).cmp(&(
            b.cluster.as_str(),
            b.name != "head",
            &b.address,
        ))
    });
    for n in &mut nodes {
        let mut services: Vec<(String, String)> = Vec::new();
        for s in &n.steps {
            let key = (s.runtime.clone(), s.service.clone());
            if !services.contains(&key) {
                services.push(key);
            }
        }
        let rank = |step: &str| match step {
            "install" => 0,
            "configure" => 1,
            "start" => 2,
            _ => 3,
        };
        n.steps.sort_by_key(|s| {
            (
                services
                    .iter()
                    .position(|k| k.0 == s.runtime && k.1 == s.service),
                rank(&s.step),
            )
        });
    }
    Ok(nodes)
}

/// What one runtime of a cluster said its endpoints were at the apply that made them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The cluster as `Node::cluster` names it.
    pub cluster: String,
    pub runtime: String,
    /// By name: the value with its addresses filled in (unknown where the apply that
    /// would have filled it in did not get there), or `None` for a sensitive one.
    pub values: Vec<(String, Option<Value>)>,
}

/// The endpoints state records for each cluster's runtimes (of `cluster` only, if it
/// is given), in state's order.
pub fn endpoints_from_state(state: &State, cluster: Option<&str>) -> Vec<Endpoints> {
    let mut out = Vec::new();
    for (address, r) in &state.resources {
        let s = &address.0;
        if r.type_name != crate::runtime::ENDPOINTS_TYPE || s.len() < 4 {
            continue;
        }
        // ... cluster NAME endpoints["runtime"]
        let at = s.len() - 2;
        let label = cluster_label(address, at);
        if cluster.is_some_and(|c| c != label && c != Address(s[..at].to_vec()).to_string()) {
            continue;
        }
        let mut values: Vec<(String, Option<Value>)> = match r.attributes.get("values") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            _ => match r.attributes.get("endpoints") {
                Some(Value::Object(m)) => m
                    .keys()
                    .map(|k| (k.clone(), Some(Value::Unknown)))
                    .collect(),
                _ => Vec::new(),
            },
        };
        if let Some(Value::List(hidden)) = r.attributes.get("sensitive") {
            values.extend(
                hidden
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|k| (k.to_string(), None)),
            );
        }
        out.push(Endpoints {
            cluster: label,
            runtime: text(&r.attributes, "runtime").unwrap_or_default(),
            values,
        });
    }
    out
}

/// A service on a node, as `tik status` shows it.
#[derive(Debug, Clone)]
pub struct Service {
    pub runtime: String,
    pub service: String,
    pub state: ServiceState,
    /// Its start step: what `tik apply --replace` restarts it by.
    pub start: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Its start step ran, and its health check answered now.
    Checked(Health),
    /// It started and has no health check.
    NoCheck,
    /// Its start step has not run to the end.
    NotStarted,
}

impl Service {
    pub fn is_well(&self) -> bool {
        matches!(
            self.state,
            ServiceState::Checked(Health::Healthy) | ServiceState::NoCheck
        )
    }
}

/// The services of each node, their health checked now, all nodes at once.
pub async fn services(runner: &Arc<Runner>, nodes: &[Node]) -> Vec<Vec<Service>> {
    let mut checks = Vec::new();
    let mut result: Vec<Vec<Service>> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut list: Vec<Service> = Vec::new();
        for s in &n.steps {
            if list
                .iter()
                .any(|x| x.runtime == s.runtime && x.service == s.service)
            {
                continue;
            }
            let start = n
                .steps
                .iter()
                .find(|t| t.runtime == s.runtime && t.service == s.service && t.step == "start");
            let state = match start {
                Some(t) if t.outcome == Outcome::Done => match t.health() {
                    Some(h) => {
                        checks.push(((i, list.len()), (t.attributes.clone(), h.to_string())));
                        ServiceState::NotStarted
                    }
                    None => ServiceState::NoCheck,
                },
                _ => ServiceState::NotStarted,
            };
            list.push(Service {
                runtime: s.runtime.clone(),
                service: s.service.clone(),
                state,
                start: start.map(|t| t.address.clone()),
            });
        }
        result.push(list);
    }
    let (places, work): (Vec<_>, Vec<_>) = checks.into_iter().unzip();
    for ((i, j), health) in places.into_iter().zip(runner.check_all(work).await) {
        result[i][j].state = ServiceState::Checked(health);
    }
    result
}

/// Whether every recorded step ran to the end and every service is healthy.
pub fn all_well(nodes: &[Node], services: &[Vec<Service>]) -> bool {
    nodes
        .iter()
        .all(|n| n.steps.iter().all(|s| s.outcome == Outcome::Done))
        && services.iter().flatten().all(Service::is_well)
}

/// Picks a node by name (`worker-default-0`) or by its address in the cluster
/// (`worker["default"][0]`).
pub fn pick<'n>(nodes: &'n [Node], wanted: &str) -> Result<&'n Node, NotFound> {
    nodes.iter().find(|n| n.matches(wanted)).ok_or_else(|| {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        NotFound {
            message: format!(
                "the cluster {} has no node \"{wanted}\"",
                nodes.first().map(|n| n.cluster.as_str()).unwrap_or("?")
            ),
            help: Some(
                tik_engine::diag::did_you_mean(wanted, names.iter().copied())
                    .unwrap_or_else(|| format!("its nodes: {}", names.join(", "))),
            ),
        }
    })
}

/// Nothing in state matched what the user asked for.
#[derive(Debug)]
pub struct NotFound {
    pub message: String,
    pub help: Option<String>,
}

fn not_found(state: &State, cluster: Option<&str>) -> NotFound {
    let mut clusters: Vec<String> = Vec::new();
    for a in state.resources.keys() {
        if let Some(at) = node_start(a) {
            let l = cluster_label(a, at);
            if !clusters.contains(&l) {
                clusters.push(l);
            }
        }
    }
    match cluster {
        Some(c) if !clusters.is_empty() => NotFound {
            message: format!("state records no cluster \"{c}\""),
            help: Some(
                tik_engine::diag::did_you_mean(c, clusters.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("its clusters: {}", clusters.join(", "))),
            ),
        },
        _ => NotFound {
            message: match cluster {
                Some(c) => format!("state records no cluster \"{c}\""),
                None => "state records no cluster nodes".into(),
            },
            help: Some("nodes are recorded by tik apply".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tik_engine::state::ResourceState;

    fn put(state: &mut State, address: &str, type_name: &str, status: Status, attrs: Map) {
        let address = Address::parse(address).unwrap();
        state.resources.insert(
            address.clone(),
            ResourceState {
                address,
                type_name: type_name.into(),
                provider: "test".into(),
                status,
                attributes: attrs,
                sensitive_attributes: Vec::new(),
                dependencies: Vec::new(),
            },
        );
    }

    fn attrs(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    }

    #[test]
    fn nodes_gather_their_sessions_and_steps_in_running_order() {
        let mut s = State::new("l".into());
        let w = "cluster.etl.node.worker[\"default\"][0]";
        put(
            &mut s,
            &format!("{w}.runtime.web.service.server.start"),
            "tik_step",
            Status::Tainted,
            attrs(&[
                ("runtime", "web"),
                ("service", "server"),
                ("step", "start"),
                ("health", "true"),
            ]),
        );
        put(
            &mut s,
            w,
            "local_node",
            Status::Ready,
            attrs(&[("name", "worker-default-0"), ("private_ip", "127.0.0.3")]),
        );
        put(
            &mut s,
            &format!("{w}.runtime.web.service.server.install"),
            "tik_step",
            Status::Ready,
            attrs(&[
                ("runtime", "web"),
                ("service", "server"),
                ("step", "install"),
            ]),
        );
        put(
            &mut s,
            &format!("{w}.session"),
            "tik_session",
            Status::Ready,
            attrs(&[("host_key", "ssh-ed25519 AAAA")]),
        );
        put(
            &mut s,
            "cluster.etl.node.head",
            "local_node",
            Status::Ready,
            attrs(&[("name", "head")]),
        );
        put(
            &mut s,
            "cluster.db.node.head",
            "local_node",
            Status::Ready,
            attrs(&[("name", "head")]),
        );
        put(
            &mut s,
            "module.m.cluster.etl.node.head",
            "local_node",
            Status::Ready,
            attrs(&[("name", "head")]),
        );
        put(&mut s, "tik_data.x", "tik_data", Status::Ready, Map::new());

        let etl = from_state(&s, Some("etl")).unwrap();
        let names: Vec<&str> = etl.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["head", "worker-default-0"]);
        let w = &etl[1];
        assert_eq!(w.host_key.as_deref(), Some("ssh-ed25519 AAAA"));
        let steps: Vec<(&str, Outcome)> = w
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.outcome))
            .collect();
        assert_eq!(
            steps,
            [("install", Outcome::Done), ("start", Outcome::Failed)]
        );
        assert_eq!(w.steps[1].health(), Some("true"));
        assert!(w.matches("worker[\"default\"][0]") && w.matches("worker-default-0"));

        assert_eq!(from_state(&s, None).unwrap().len(), 4);
        assert_eq!(
            from_state(&s, Some("module.m.cluster.etl")).unwrap().len(),
            1
        );
        let e = from_state(&s, Some("etll")).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean \"etl\"?"));
        let e = pick(&etl, "wrker-default-0").unwrap_err();
        assert!(
            e.message.contains("no node \"wrker-default-0\""),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("worker-default-0"));
        assert!(from_state(&State::new("l".into()), None).is_err());
    }
}
