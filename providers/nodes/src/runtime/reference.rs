//! What a runtime offers, as data: its params (type, default, allowed values,
//! description), its services (where they run, the ports they open, their steps)
//! and its endpoints. `tik runtimes` and `docs/runtimes.md` are made from it, so the
//! reference is the definitions themselves.

use super::{RuntimeDef, SERVICE_STEPS};
use hcl_edit::expr::Expression;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRef {
    pub name: String,
    pub description: String,
    /// Shipped in the binary, or the project's `runtimes/NAME/` (which replaces a
    /// shipped one of the same name).
    pub shipped: bool,
    pub requires: Vec<String>,
    pub after: Vec<String>,
    /// The workers install after the head, from what it downloaded.
    pub download_once: bool,
    /// Its `scaling` block tells the controller how busy the cluster is.
    pub scales: bool,
    pub params: Vec<ParamRef>,
    pub services: Vec<ServiceRef>,
    /// Each endpoint's name and the expression it is made of.
    pub endpoints: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef {
    pub name: String,
    pub ty: Option<String>,
    /// As written in the definition; `None` when the cluster must give it.
    pub default: Option<String>,
    pub allowed: Vec<String>,
    pub description: String,
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub name: String,
    /// `head`, `workers` or `all`, as written.
    pub on: String,
    /// Each port as written, with the param's default where it is one
    /// (`master_port (7077)`).
    pub ports: Vec<String>,
    /// The steps and commands it declares, in the order they run.
    pub steps: Vec<&'static str>,
}

/// One line of an expression as written.
fn text(expr: &Expression) -> String {
    let t = expr.to_string();
    let t = t.trim();
    match t.lines().count() {
        0 | 1 => t.to_string(),
        _ => format!("{} ...", t.lines().next().unwrap_or_default().trim()),
    }
}

/// The runtimes a user may name, as `tik runtimes` lists them: all but tik's own
/// (`_controller`, which `controller { on = "head" }` asks for).
pub fn listed<'d>(defs: impl IntoIterator<Item = &'d RuntimeDef>) -> Vec<RuntimeRef> {
    defs.into_iter()
        .map(RuntimeRef::of)
        .filter(|r| !(r.shipped && r.name.starts_with('_')))
        .collect()
}

impl RuntimeRef {
    pub fn of(def: &RuntimeDef) -> RuntimeRef {
        let default_of = |name: &str| -> Option<String> {
            def.params.get(name).and_then(|d| d.as_ref()).map(text)
        };
        let params = def
            .params
            .iter()
            .map(|(name, default)| {
                let info = def.param_info.get(name).cloned().unwrap_or_default();
                ParamRef {
                    name: name.clone(),
                    ty: info.ty.map(|t| t.to_string()),
                    default: default.as_ref().map(text),
                    allowed: info.allowed.iter().map(|v| v.to_string()).collect(),
                    description: info.description.unwrap_or_default(),
                    sensitive: def.sensitive.contains(name),
                }
            })
            .collect();
        let services = def
            .services
            .iter()
            .map(|s| {
                let on = s
                    .body
                    .get_attribute("on")
                    .map(|a| text(&a.value).trim_matches('"').to_string())
                    .unwrap_or_else(|| "all".into());
                let ports = match s.body.get_attribute("ports").map(|a| &a.value) {
                    Some(Expression::Array(items)) => items
                        .iter()
                        .map(|e| {
                            let t = text(e);
                            match t
                                .strip_prefix("param.")
                                .and_then(|p| default_of(p).map(|d| (p, d)))
                            {
                                Some((p, d)) => format!("{p} ({d})"),
                                None => t,
                            }
                        })
                        .collect(),
                    Some(other) => vec![text(other)],
                    None => Vec::new(),
                };
                let steps = SERVICE_STEPS
                    .iter()
                    .copied()
                    .filter(|k| s.body.get_attribute(k).is_some())
                    .collect();
                ServiceRef {
                    name: s.name.clone(),
                    on,
                    ports,
                    steps,
                }
            })
            .collect();
        RuntimeRef {
            name: def.name.clone(),
            description: def.description.clone().unwrap_or_default(),
            shipped: def.embedded.is_some(),
            requires: def.requires.clone(),
            after: def.after.clone(),
            download_once: def.download_once,
            scales: def.scaling.is_some(),
            params,
            services,
            endpoints: def
                .endpoints
                .iter()
                .map(|(k, e)| (k.clone(), text(e)))
                .collect(),
        }
    }
}
