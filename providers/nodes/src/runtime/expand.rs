//! A cluster's runtimes as node steps: sessions and containers per node, then per
//! runtime its params (checked against its definition and rules), its services'
//! steps on each node, chained in order, and its endpoints.

use super::*;

/// A cluster's runtimes as node steps: per node, a session, then for each runtime in
/// order and each of its services on that node, install, configure and start.
/// `config_marks` says where the cluster's block read sensitive values: a param
/// given one is as sensitive as one declared so, and so is what is made from it.
pub fn expand(
    defs: &IndexMap<String, RuntimeDef>,
    cluster: &str,
    (config, config_marks): (&Map, &Marks),
    nodes: &[NodeRef],
    site: &Site<'_>,
) -> Result<Expansion, Diagnostics> {
    let asked: IndexMap<String, Map> = match config.get("runtime") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_object().cloned().unwrap_or_default()))
            .collect(),
        _ => IndexMap::new(),
    };
    let mut out = Expansion::default();
    if asked.is_empty() {
        return Ok(out);
    }
    let order = order(defs, &asked.keys().cloned().collect::<Vec<_>>(), site)?;
    let Some(head) = nodes.iter().find(|n| n.head) else {
        return Ok(out);
    };
    let value = cluster_scope(cluster, nodes);
    let wait = ssh_wait(config, site)?;
    let on = Cluster {
        name: cluster,
        nodes,
        head,
        value,
        container: container_of(config, site)?,
    };
    // The last step on each node so far: the next runtime's steps come after it.
    let mut last = sessions(&on, wait.as_ref(), &mut out.specs);
    let mut diags = Diagnostics::default();
    let mut ports = Ports::default();
    // The head serves what it downloaded to the other nodes (see _lib/tik.sh), for
    // the runtimes that download once.
    let serves = order
        .iter()
        .any(|r| defs.get(r).is_some_and(|d| d.download_once));
    if let Some(hi) = nodes.iter().position(|n| n.head).filter(|_| serves) {
        ports
            .taken
            .insert((hi, CACHE_PORT), (CACHE_OWNER.into(), String::new()));
    }
    for name in &order {
        let rt = Runtime {
            defs,
            def: &defs[name],
            name,
        };
        // Each runtime's params and rules are checked, so that one plan names every
        // wrong one; once any is wrong, no steps are made.
        let failed_before = !diags.is_empty();
        let given = asked.get(name).cloned().unwrap_or_default();
        let Some(params) = params(&rt, &given, site, &mut diags) else {
            continue;
        };
        let param_marks = param_marks(&rt, &params, config_marks.at(&["runtime", name.as_str()]));
        let mut scope_marks = Marks::default();
        scope_marks.put(&["param"], param_marks.clone());
        scope_marks.put(&["runtime"], out.endpoint_marks.clone());
        let mut scope = Map::from_iter([
            ("param".to_string(), Value::Object(params.clone())),
            ("cluster".to_string(), on.value.clone()),
            ("runtime".to_string(), earlier_endpoints(&out)),
        ]);
        let checked = Checked {
            given: &given,
            param_marks: &param_marks,
            failed_before,
        };
        validate(&rt, &scope, &scope_marks, &checked, site, &mut diags);
        if !diags.is_empty() {
            continue;
        }
        let mut env: Map = params
            .iter()
            .map(|(k, v)| {
                let text = v
                    .to_template_string()
                    .unwrap_or_else(|| v.to_json().to_string());
                (env_name(k), Value::String(text))
            })
            .collect();
        // The head keeps and serves what it downloads; the others take it (_lib/tik.sh).
        if rt.def.download_once {
            env.insert("TIK_DOWNLOAD_ONCE".into(), Value::from("1"));
        }
        let made = Made {
            env: &env,
            param_marks: &param_marks,
            site,
        };
        let node_steps = steps(
            &rt,
            &on,
            &mut scope,
            &scope_marks,
            &made,
            &mut ports,
            &mut diags,
        );
        out.specs
            .extend(chain(node_steps, nodes, &mut last, rt.def.download_once));
        if rt.def.scaling.is_some() {
            scope.insert("node".to_string(), node_scope(head_index(nodes), nodes));
            out.specs
                .extend(scaling(&rt, &on, &scope, &scope_marks, &made, &mut diags));
        }
        // Endpoints are the cluster's, not a node's.
        scope.shift_remove("node");
        endpoints(&rt, &on, &scope, &scope_marks, &mut out, &mut diags);
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// The cluster the runtimes run on.
struct Cluster<'a> {
    name: &'a str,
    nodes: &'a [NodeRef],
    head: &'a NodeRef,
    /// `cluster` in a runtime's scope.
    value: Value,
    /// The cluster's `container` block, when its services run in one.
    container: Option<Map>,
}

/// One runtime of the cluster, by name.
struct Runtime<'a> {
    defs: &'a IndexMap<String, RuntimeDef>,
    def: &'a RuntimeDef,
    name: &'a str,
}

/// What a runtime's params were given, and which are sensitive.
struct Checked<'a> {
    given: &'a Map,
    param_marks: &'a Marks,
    /// An earlier runtime failed: a rule that cannot be evaluated may lack its
    /// endpoints, and that error is the one to fix.
    failed_before: bool,
}

/// What a runtime's steps are made with: its params as `TIK_PARAM_*` variables.
struct Made<'a> {
    env: &'a Map,
    param_marks: &'a Marks,
    /// The cluster's block, for errors.
    site: &'a Site<'a>,
}

impl Made<'_> {
    /// The params the commands `texts` name, as their environment (only those: a
    /// change of another param reruns nothing), and whether one of them holds a
    /// secret.
    fn named_in(&self, texts: &[&str]) -> (Map, bool) {
        let used = |k: &str| texts.iter().any(|t| t.contains(k));
        let env = self
            .env
            .iter()
            .filter(|(k, _)| used(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let secret = self.param_marks.keys().any(|p| used(&env_name(p)));
        (env, secret)
    }
}

/// A session per node, and its container where the cluster has one; returns the
/// last of them on each node, which its first step comes after.
fn sessions(
    on: &Cluster<'_>,
    wait: Option<&Value>,
    specs: &mut Vec<ResourceSpec>,
) -> HashMap<Address, Address> {
    let mut last = HashMap::new();
    for n in on.nodes {
        let session = n.rel.clone().name("session");
        let mut session_config =
            Map::from_iter([("node".to_string(), Value::from(n.rel.to_string()))]);
        if let Some(w) = wait {
            session_config.insert("wait".into(), w.clone());
        }
        let mut spec = ResourceSpec::new(session.clone(), SESSION_TYPE, session_config);
        spec.depends_on.push(n.rel.clone());
        node_refs(&mut spec, n, on.head, None);
        specs.push(spec);
        last.insert(n.rel.clone(), session.clone());
        if let Some(c) = &on.container {
            // The node's container, where its steps run: after the session, before them.
            let at = n.rel.clone().name("container");
            let mut config = c.clone();
            config.insert("node".into(), Value::from(n.rel.to_string()));
            config.insert("node_name".into(), Value::from(n.name.as_str()));
            config.insert("cluster".into(), Value::from(on.name));
            let mut spec = ResourceSpec::new(at.clone(), CONTAINER_TYPE, config);
            spec.depends_on.push(session.clone());
            node_refs(&mut spec, n, on.head, Some(&session));
            specs.push(spec);
            last.insert(n.rel.clone(), at);
        }
    }
    last
}

/// A runtime's params: every given one must exist, every one without a default
/// must be given. `None` (with the reasons in `diags`) when one is wrong.
fn params(rt: &Runtime<'_>, given: &Map, site: &Site<'_>, diags: &mut Diagnostics) -> Option<Map> {
    let (name, def) = (rt.name, rt.def);
    let mine = diags.0.len();
    let mut params = Map::new();
    for (k, v) in given {
        if let Some(d) = unknown_param(name, def, k, site) {
            diags.push(d);
            continue;
        }
        let info = def.param_info.get(k).cloned().unwrap_or_default();
        match check_param_value(k, &info, v.clone()) {
            Ok(v) => {
                params.insert(k.clone(), v);
            }
            Err(message) => diags.push(bad_param_value(name, k, &info, v, message, site)),
        }
    }
    for (k, default) in &def.params {
        if params.contains_key(k) {
            continue;
        }
        match default {
            Some(expr) => match eval_literal(expr) {
                Ok(v) => {
                    params.insert(k.clone(), v);
                }
                Err(e) => diags.push(eval_error(def.file, e)),
            },
            None => diags.push(site.at_runtime(
                name,
                Diagnostic::new(format!("runtime \"{name}\" needs param \"{k}\"")).help(format!(
                    "set it in the cluster: runtime \"{name}\" {{ {k} = ... }}"
                )),
            )),
        }
    }
    (diags.0.len() == mine).then_some(params)
}

/// The error for a param `k` the runtime does not declare, at the param.
pub(crate) fn unknown_param(
    name: &str,
    def: &RuntimeDef,
    k: &str,
    site: &Site<'_>,
) -> Option<Diagnostic> {
    if def.params.contains_key(k) {
        return None;
    }
    let d = Diagnostic::new(format!("runtime \"{name}\" has no param \"{k}\""));
    let at = site
        .runtime_block(name)
        .and_then(|b| b.body.attributes().find(|a| a.key.as_str() == k))
        .map(|a| a.key.span());
    let d = match at {
        Some(span) => d.at(site.file, span),
        None => site.at_runtime(name, d),
    };
    Some(d.help(
        did_you_mean(k, def.params.keys().map(String::as_str)).unwrap_or_else(|| {
            if def.params.is_empty() {
                format!("runtime \"{name}\" takes no params")
            } else {
                format!(
                    "runtime \"{name}\" takes: {}",
                    def.params.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        }),
    ))
}

/// The error for a param value its declaration refuses, at the value: with the
/// allowed value it is closest to.
fn bad_param_value(
    name: &str,
    k: &str,
    info: &ParamInfo,
    v: &Value,
    message: String,
    site: &Site<'_>,
) -> Diagnostic {
    let d = site.at_param(
        name,
        k,
        Diagnostic::new(format!("runtime \"{name}\": param {message}")),
    );
    let allowed: Vec<&str> = info.allowed.iter().filter_map(Value::as_str).collect();
    let help = v
        .as_str()
        .and_then(|text| did_you_mean(text, allowed.iter().copied()))
        .unwrap_or_else(|| format!("tik runtimes show {name} lists its params"));
    d.help(help)
}

/// What can be told wrong in a cluster block's runtimes without evaluating it: a
/// runtime that does not exist, a param it does not take. Checked where the
/// cluster cannot be evaluated, so that one run still names these.
pub fn check_names(defs: &IndexMap<String, RuntimeDef>, site: &Site<'_>) -> Diagnostics {
    let blocks: Vec<&hcl_edit::structure::Block> = site
        .body
        .blocks()
        .filter(|b| b.ident.as_str() == "runtime")
        .collect();
    let names: Vec<String> = blocks
        .iter()
        .filter_map(|b| b.labels.first().map(|l| l.as_str().to_string()))
        .collect();
    let mut diags = Diagnostics::default();
    if let Err(d) = order(defs, &names, site) {
        diags.0.extend(d.0);
    }
    for b in blocks {
        let Some(name) = b.labels.first().map(|l| l.as_str()) else {
            continue;
        };
        let Some(def) = defs.get(name) else { continue };
        for a in b.body.attributes() {
            diags
                .0
                .extend(unknown_param(name, def, a.key.as_str(), site));
        }
    }
    diags
}

/// The params that are sensitive: given a sensitive value, or declared so.
fn param_marks(rt: &Runtime<'_>, params: &Map, given_marks: Option<&Marks>) -> Marks {
    let mut marks = Marks::default();
    for p in params.keys() {
        let given = given_marks.and_then(|m| m.child(p)).is_some();
        if given || rt.def.sensitive.contains(p) {
            marks.mark(&[p]);
        }
    }
    marks
}

/// The endpoints of the runtimes before this one in order (what it requires or
/// comes after): `runtime.zookeeper.endpoint.connect`, addresses as shell variables.
fn earlier_endpoints(out: &Expansion) -> Value {
    let mut endpoints: IndexMap<&str, Map> = IndexMap::new();
    for (r, ep, v) in &out.endpoints {
        endpoints
            .entry(r.as_str())
            .or_default()
            .insert(ep.clone(), v.clone());
    }
    Value::Object(
        endpoints
            .into_iter()
            .map(|(r, eps)| {
                let entry = Map::from_iter([("endpoint".to_string(), Value::Object(eps))]);
                (r.to_string(), Value::Object(entry))
            })
            .collect(),
    )
}

/// Checks a runtime's `validation` rules for its params; a value a rule refuses
/// is reported at the value the user gave.
fn validate(
    rt: &Runtime<'_>,
    scope: &Map,
    scope_marks: &Marks,
    checked: &Checked<'_>,
    site: &Site<'_>,
    diags: &mut Diagnostics,
) {
    let (name, def) = (rt.name, rt.def);
    for (k, rule) in &def.validations {
        let mut ev = Evaluator::new(scope, &def.dir).with_marks(scope_marks);
        ev.embedded = def.embedded.as_ref();
        let verdict = ev.eval(&rule.condition).and_then(|ok| match ok {
            Value::Bool(false) => ev.eval_message(&rule.error_message).map(Some),
            Value::Bool(true) | Value::Unknown => Ok(None),
            other => Err(EvalError::new(
                format!(
                    "a validation condition must be true or false, got {}",
                    other.to_json()
                ),
                rule.condition.span(),
            )),
        });
        // The user's value for `k` is what to change: the message, and the rule's place.
        let refused = |what: String, rule_at: Option<Range<usize>>| {
            site.at_param(
                name,
                k,
                Diagnostic::new(format!(
                    "invalid value for param \"{k}\" of runtime \"{name}\": {what}"
                )),
            )
            .note(
                "the runtime's rule",
                rule_at.map(|span| Location {
                    file: def.file,
                    span,
                }),
            )
            .help(format!(
                "change {k} in the cluster's runtime \"{name}\" block"
            ))
        };
        match verdict {
            Ok(None) => {}
            Ok(Some(msg)) => diags.push(refused(msg, rule.condition.span())),
            // A given value the rule cannot take (a string where it compares
            // numbers): the user's value is what to change.
            Err(e) if checked.given.contains_key(k) => {
                let what = if checked.param_marks.child(k).is_some() {
                    "the rule cannot take this value (sensitive, so not shown)".to_string()
                } else {
                    format!("the rule cannot take this value: {}", e.message)
                };
                diags.push(refused(what, e.span.or_else(|| rule.condition.span())));
            }
            Err(_) if checked.failed_before => {}
            Err(e) => diags.push(scope_error(rt.defs, def, e)),
        }
    }
}

/// The ports the services on each node open, by who opens them: two that open the
/// same port on one node cannot both start, and the plan says so.
#[derive(Default)]
struct Ports {
    taken: HashMap<(usize, u64), (String, String)>,
    told: std::collections::HashSet<(u64, String, String)>,
}

impl Ports {
    /// Takes the ports a service declares on node `ni`; a port another service
    /// there took is an error, once per pair of services.
    fn take(
        &mut self,
        (ni, node): (usize, &NodeRef),
        (rt, service): (&str, &str),
        declared: Option<&Value>,
        site: &Site<'_>,
        diags: &mut Diagnostics,
    ) {
        let Some(Value::List(list)) = declared else {
            return;
        };
        for p in list.iter().filter_map(Value::as_f64) {
            if p < 0.0 || p.fract() != 0.0 {
                continue;
            }
            let port = p as u64;
            let me = (rt.to_string(), service.to_string());
            match self.taken.get(&(ni, port)) {
                None => {
                    self.taken.insert((ni, port), me);
                }
                Some(first) if first == &me => {}
                Some((other_rt, other_service)) => {
                    let pair = (
                        port,
                        format!("{other_rt}.{other_service}"),
                        format!("{rt}.{service}"),
                    );
                    if !self.told.insert(pair) {
                        continue;
                    }
                    let first = if other_rt == CACHE_OWNER {
                        "tik's download cache (what the head downloaded, for the other nodes)"
                            .to_string()
                    } else {
                        format!("runtime \"{other_rt}\" (service {other_service})")
                    };
                    let d = Diagnostic::new(format!(
                        "{}: port {port} is opened twice on {}: by {first} and runtime \"{rt}\" (service {service})",
                        site.what,
                        node.name
                    ))
                    .help(format!(
                        "give one of them another port: tik runtimes show {rt} names its port params"
                    ));
                    diags.push(site.at_runtime(rt, d));
                }
            }
        }
    }
}

/// Each node's steps of one runtime, in the order its services' steps run there:
/// (step name, spec) per node index.
type NodeSteps = Vec<(usize, Vec<(String, ResourceSpec)>)>;

/// The runtime's steps on every node: for each service that runs there (its `on`),
/// its install, configure and start steps. `scope` gets each node's `node`.
fn steps(
    rt: &Runtime<'_>,
    on: &Cluster<'_>,
    scope: &mut Map,
    scope_marks: &Marks,
    made: &Made<'_>,
    ports: &mut Ports,
    diags: &mut Diagnostics,
) -> NodeSteps {
    let def = rt.def;
    let mut node_steps: NodeSteps = Vec::new();
    let mut bad_on: std::collections::HashSet<&str> = Default::default();
    for (ni, n) in on.nodes.iter().enumerate() {
        // The runtime's scope, with this node's `node`.
        scope.insert("node".to_string(), node_scope(ni, on.nodes));
        let mut steps = Vec::new();
        for service in &def.services {
            let mut ev = Evaluator::new(scope, &def.dir).with_marks(scope_marks);
            ev.embedded = def.embedded.as_ref();
            let mut attrs = Map::new();
            // The attributes whose text holds a sensitive value (a script that
            // interpolates a sensitive param).
            let mut secret_attrs: Vec<&str> = Vec::new();
            for a in service.body.attributes() {
                match ev.eval(&a.value) {
                    Ok(v) => {
                        if ev.take_touched() {
                            secret_attrs.push(a.key.as_str());
                        }
                        attrs.insert(a.key.as_str().to_string(), v);
                    }
                    Err(e) => diags.push(scope_error(rt.defs, def, e)),
                }
            }
            match runs_here(rt, service, &attrs, n) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(d) => {
                    // Once per service, at its `on`, though it is wrong on every node.
                    if bad_on.insert(service.name.as_str()) {
                        diags.push(d);
                    }
                    continue;
                }
            }
            ports.take(
                (ni, n),
                (rt.name, &service.name),
                attrs.get("ports"),
                made.site,
                diags,
            );
            let service_steps = ServiceSteps {
                service,
                attrs: &attrs,
                secret_attrs: &secret_attrs,
            };
            steps.extend(service_steps.specs(rt, on, n, made));
        }
        node_steps.push((ni, steps));
    }
    node_steps
}

/// Whether a service runs on node `n`: its `on` is a role (`head`, `workers`,
/// `all`) or a condition on the node (`node.index < param.servers`).
fn runs_here(
    rt: &Runtime<'_>,
    service: &ServiceDef,
    attrs: &Map,
    n: &NodeRef,
) -> Result<bool, Diagnostic> {
    let other = match attrs.get("on") {
        None => return Ok(true),
        Some(Value::Bool(b)) => return Ok(*b),
        Some(Value::String(on)) if on == "head" => return Ok(n.head),
        Some(Value::String(on)) if on == "workers" => return Ok(!n.head),
        Some(Value::String(on)) if on == "all" => return Ok(true),
        Some(other) => other,
    };
    let shown = match other {
        Value::String(s) => format!("\"{s}\" is not a role"),
        Value::Unknown => {
            "a value known only after apply: which nodes run it must be known when planning"
                .to_string()
        }
        v => format!("{} is neither a role nor true or false", v.to_json()),
    };
    let at = service
        .body
        .get_attribute("on")
        .and_then(|a| a.value.span())
        .or_else(|| service.span.clone());
    Err(Diagnostic::new(format!(
        "service \"{}\" of runtime \"{}\": on = {shown}",
        service.name, rt.name
    ))
    .at(rt.def.file, at)
    .help("write on = \"head\", \"workers\" or \"all\", or a condition on the node such as node.index < 3"))
}

/// One service as it runs on a node: its evaluated attributes.
struct ServiceSteps<'a> {
    service: &'a ServiceDef,
    attrs: &'a Map,
    /// The attributes whose text holds a sensitive value.
    secret_attrs: &'a [&'a str],
}

impl ServiceSteps<'_> {
    fn text(&self, k: &str) -> Option<String> {
        self.attrs.get(k).and_then(|v| v.to_template_string())
    }

    /// The service's install, configure and start steps on node `n` (those it has).
    fn specs(
        &self,
        rt: &Runtime<'_>,
        on: &Cluster<'_>,
        n: &NodeRef,
        made: &Made<'_>,
    ) -> Vec<(String, ResourceSpec)> {
        let mut out = Vec::new();
        let mut done: Vec<String> = Vec::new();
        for step in STEPS {
            let Some(script) = self.text(step) else {
                continue;
            };
            let rel = n
                .rel
                .clone()
                .name("runtime")
                .name(rt.name)
                .name("service")
                .name(self.service.name.clone())
                .name(step);
            // Only the params the step's commands name: a change of another param
            // does not rerun it.
            let (stop, health) = if step == "start" {
                (self.text("stop"), self.text("health"))
            } else {
                (None, None)
            };
            let commands: Vec<&str> = [Some(&script), stop.as_ref(), health.as_ref()]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let (step_env, secret_env) = made.named_in(&commands);
            let mut c = Map::from_iter([
                ("node".to_string(), Value::from(n.rel.to_string())),
                ("node_name".to_string(), Value::from(n.name.as_str())),
                ("role".to_string(), Value::from(n.role())),
                ("cluster".to_string(), Value::from(on.name)),
                ("runtime".to_string(), Value::from(rt.name)),
                (
                    "service".to_string(),
                    Value::from(self.service.name.as_str()),
                ),
                ("step".to_string(), Value::from(step)),
                ("script".to_string(), Value::String(script.clone())),
                ("env".to_string(), Value::Object(step_env)),
            ]);
            // What ran before this step on this node: a change there reruns it.
            if !done.is_empty() {
                let refs: Vec<&str> = done.iter().map(String::as_str).collect();
                c.insert("after_hash".into(), Value::String(sha(&refs)));
            }
            if step == "start" {
                for k in ["stop", "health", "health_timeout"] {
                    if let Some(v) = self.attrs.get(k) {
                        c.insert(k.into(), v.clone());
                    }
                }
                if c.contains_key("health") {
                    // Read back as its health: a dead service starts again.
                    c.insert("running".into(), Value::Bool(true));
                }
            }
            done.push(format!("{script}\0{}", c["env"].to_json()));
            let mut spec = ResourceSpec::new(rel, STEP_TYPE, c);
            if secret_env {
                spec.sensitive.push("env".into());
            }
            for (attr, from) in [("script", step), ("stop", "stop"), ("health", "health")] {
                if self.secret_attrs.contains(&from) && spec.config.contains_key(attr) {
                    spec.sensitive.push(attr.into());
                }
            }
            wire(&mut spec, on, n);
            out.push((step.to_string(), spec));
        }
        out
    }
}

/// What a step takes from its nodes when it runs (addresses, its container), and
/// what it comes after: its node's session, and the head.
fn wire(spec: &mut ResourceSpec, on: &Cluster<'_>, n: &NodeRef) {
    let head = on.head;
    let session = n.rel.clone().name("session");
    node_refs(spec, n, head, Some(&session));
    let mut refs = vec![
        ("node_ip", n.rel.clone(), "private_ip"),
        ("node_public_ip", n.rel.clone(), "public_ip"),
        ("head_ip", head.rel.clone(), "private_ip"),
        ("head_public_ip", head.rel.clone(), "public_ip"),
    ];
    if on.container.is_some() {
        refs.push(("container", n.rel.clone().name("container"), "container"));
    }
    let all_text: String = spec.config.values().filter_map(Value::as_str).collect();
    let ips: Vec<(String, Address)> = on
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| all_text.contains(&format!("${{TIK_IP_{i}}}")))
        .map(|(i, m)| (format!("ip_{i}"), m.rel.clone()))
        .collect();
    for (attr, node) in &ips {
        refs.push((attr.as_str(), node.clone(), "private_ip"));
        if *node != n.rel {
            spec.depends_on.push(node.clone());
        }
    }
    for (attribute, sibling, sibling_attribute) in refs {
        spec.refs.push(SiblingRef {
            attribute: attribute.to_string(),
            sibling,
            sibling_attribute: sibling_attribute.to_string(),
        });
    }
    spec.depends_on.push(session);
    if n.rel != head.rel {
        spec.depends_on.push(head.rel.clone());
    }
}

/// Chains each node's steps after what ran there before (`last`), and starts the
/// workers' services after the head's; a runtime that downloads once has the
/// workers install after the head too.
fn chain(
    mut node_steps: NodeSteps,
    nodes: &[NodeRef],
    last: &mut HashMap<Address, Address>,
    download_once: bool,
) -> Vec<ResourceSpec> {
    let (mut head_installs, mut head_starts) = (Vec::new(), Vec::new());
    for (ni, steps) in &mut node_steps {
        let n = &nodes[*ni];
        for (step, spec) in steps.iter_mut() {
            if let Some(prev) = last.get(&n.rel) {
                spec.depends_on.push(prev.clone());
            }
            last.insert(n.rel.clone(), spec.path.clone());
            match step.as_str() {
                "install" if n.head => head_installs.push(spec.path.clone()),
                "start" if n.head => head_starts.push(spec.path.clone()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for (ni, steps) in node_steps {
        for (step, mut spec) in steps {
            match step.as_str() {
                // What the head downloaded, the other nodes take from it.
                "install" if download_once && !nodes[ni].head => {
                    spec.depends_on.extend(head_installs.iter().cloned())
                }
                "start" if !nodes[ni].head => spec.depends_on.extend(head_starts.iter().cloned()),
                _ => {}
            }
            spec.depends_on.sort();
            spec.depends_on.dedup();
            out.push(spec);
        }
    }
    out
}

/// The runtime's endpoints, for the runtimes after it and the cluster's value.
fn endpoints(
    rt: &Runtime<'_>,
    on: &Cluster<'_>,
    scope: &Map,
    scope_marks: &Marks,
    out: &mut Expansion,
    diags: &mut Diagnostics,
) {
    let (name, def) = (rt.name, rt.def);
    let (mut shown, mut hidden) = (Map::new(), Vec::new());
    for (ep, expr) in &def.endpoints {
        let mut ev = Evaluator::new(scope, &def.dir).with_marks(scope_marks);
        ev.embedded = def.embedded.as_ref();
        match ev.eval(expr) {
            Ok(v) => {
                if ev.take_touched() {
                    out.endpoint_marks.mark(&[name, "endpoint", ep.as_str()]);
                    hidden.push(Value::from(ep.as_str()));
                } else {
                    shown.insert(ep.clone(), v.clone());
                }
                out.endpoints.push((name.to_string(), ep.clone(), v))
            }
            Err(e) => diags.push(scope_error(rt.defs, def, e)),
        }
    }
    if !def.endpoints.is_empty() {
        out.specs.push(endpoint_record(name, shown, hidden, on));
    }
}

fn head_index(nodes: &[NodeRef]) -> usize {
    nodes.iter().position(|n| n.head).unwrap_or(0)
}

/// The record of a runtime's `scaling` block (`scaling["spark"]`): its commands,
/// evaluated as a head step's are, with the params they name and what reaches the
/// head, for the controller to run.
fn scaling(
    rt: &Runtime<'_>,
    on: &Cluster<'_>,
    scope: &Map,
    scope_marks: &Marks,
    made: &Made<'_>,
    diags: &mut Diagnostics,
) -> Option<ResourceSpec> {
    let block = rt.def.scaling.as_ref()?;
    let mut ev = Evaluator::new(scope, &rt.def.dir).with_marks(scope_marks);
    ev.embedded = rt.def.embedded.as_ref();
    let mut attrs = Map::new();
    let mut secret = false;
    for a in block.body.attributes() {
        match ev.eval(&a.value) {
            Ok(v) => {
                secret |= ev.take_touched();
                attrs.insert(a.key.as_str().to_string(), v);
            }
            Err(e) => diags.push(scope_error(rt.defs, rt.def, e)),
        }
    }
    let text = |k: &str| attrs.get(k).and_then(|v| v.to_template_string());
    let (Some(demand), idle) = (text("demand"), text("idle")) else {
        return None;
    };
    let timeout = match attrs.get("timeout") {
        None | Some(Value::Null) => 20.0,
        Some(Value::Number(n)) if *n >= 1.0 && *n <= 3600.0 => *n,
        Some(other) => {
            diags.push(
                Diagnostic::new(format!(
                    "runtime \"{}\": scaling timeout must be a number of seconds from 1 to 3600, got {}",
                    rt.name,
                    other.to_json()
                ))
                .at(rt.def.file, block.span.clone()),
            );
            return None;
        }
    };
    let commands: Vec<&str> = std::iter::once(demand.as_str())
        .chain(idle.as_deref())
        .collect();
    let (env, secret_env) = made.named_in(&commands);
    let head = on.head;
    let config = Map::from_iter([
        ("node".to_string(), Value::from(head.rel.to_string())),
        ("node_name".to_string(), Value::from(head.name.as_str())),
        ("role".to_string(), Value::from("head")),
        ("cluster".to_string(), Value::from(on.name)),
        ("runtime".to_string(), Value::from(rt.name)),
        ("demand".to_string(), Value::String(demand.clone())),
        (
            "idle".to_string(),
            idle.clone().map_or(Value::Null, Value::String),
        ),
        ("timeout".to_string(), Value::Number(timeout)),
        ("env".to_string(), Value::Object(env)),
    ]);
    let mut spec = ResourceSpec::new(
        Address::new().name("scaling").key(rt.name.to_string()),
        SCALING_TYPE,
        config,
    );
    let sensitive = secret || secret_env;
    if sensitive {
        spec.sensitive
            .extend(["env".to_string(), "demand".to_string(), "idle".to_string()]);
    }
    wire(&mut spec, on, head);
    Some(spec)
}

/// What `tik status` lists of a runtime's endpoints, recorded once the nodes they
/// name have addresses: the values with placeholders, and what fills them in. A
/// sensitive endpoint is recorded by name only; an output reads its value.
fn endpoint_record(
    runtime: &str,
    shown: Map,
    hidden: Vec<Value>,
    on: &Cluster<'_>,
) -> ResourceSpec {
    let text = Value::Object(shown.clone()).to_json().to_string();
    let config = Map::from_iter([
        ("runtime".to_string(), Value::from(runtime)),
        ("endpoints".to_string(), Value::Object(shown)),
        ("sensitive".to_string(), Value::List(hidden)),
    ]);
    let mut spec = ResourceSpec::new(
        Address::new().name("endpoints").key(runtime.to_string()),
        ENDPOINTS_TYPE,
        config,
    );
    let head = &on.head.rel;
    let uses = |var: &str| text.contains(&format!("${{{var}}}"));
    if uses("TIK_HEAD_IP") {
        spec = spec.with_ref("head_ip", head, "private_ip");
    }
    if uses("TIK_HEAD_PUBLIC_IP") {
        spec = spec.with_ref("head_public_ip", head, "public_ip");
    }
    for (i, n) in on.nodes.iter().enumerate() {
        if uses(&format!("TIK_IP_{i}")) {
            spec = spec.with_ref(&format!("ip_{i}"), &n.rel, "private_ip");
        }
    }
    spec
}
