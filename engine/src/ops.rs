//! The operations the CLI offers, as functions of configuration, providers and state:
//! gather variables, refresh and plan, detect drift.

use crate::addr::Address;
use crate::config::Config;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::plan::{self, Plan, PlanOptions};
use crate::provider::{Providers, ReadRequest};
use crate::state::{ResourceState, State};
use crate::value::{Map, Value};
use crate::walk::{InputValue, Inputs};
use std::path::Path;

/// Variables from, lowest priority first: `TIK_VAR_*`, `--var-file`s in order, `--var`s in order.
pub fn gather_inputs(
    env: impl IntoIterator<Item = (String, String)>,
    var_files: &[&Path],
    vars: &[String],
) -> Result<Inputs, Diagnostics> {
    let mut inputs = Inputs::default();
    for (k, v) in env {
        if let Some(name) = k.strip_prefix("TIK_VAR_") {
            inputs.values.insert(
                name.to_string(),
                InputValue::Raw {
                    text: v,
                    source: format!("TIK_VAR_{name}"),
                },
            );
        }
    }
    for file in var_files {
        for (k, v) in read_var_file(file)? {
            inputs.values.insert(k, InputValue::Value(v));
        }
    }
    for v in vars {
        let (name, value) = v.split_once('=').ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::new(format!("--var {v} has no =")).help("write --var NAME=VALUE"),
            )
        })?;
        inputs.values.insert(
            name.trim().to_string(),
            InputValue::Raw {
                text: value.to_string(),
                source: format!("--var {name}"),
            },
        );
    }
    Ok(inputs)
}

/// A variables file: HCL attributes (`name = value`), or a JSON object when it ends in .json.
fn read_var_file(path: &Path) -> Result<Map, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::from(Diagnostic::new(format!(
            "cannot read the variables file {}: {e}",
            path.display()
        )))
    })?;
    if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Diagnostics::from(Diagnostic::new(format!(
                "{}: not valid JSON: {e}",
                path.display()
            )))
        })?;
        return match Value::from_json(&json) {
            Value::Object(m) => Ok(m),
            _ => Err(Diagnostic::new(format!(
                "{} must hold a JSON object of variable values",
                path.display()
            ))
            .into()),
        };
    }
    let mut sources = crate::diag::Sources::default();
    let file = sources.add(path.to_path_buf(), text.clone());
    let located = |d: Diagnostic| {
        Diagnostics::from(Diagnostic::new(
            d.render(&sources)
                .trim_end()
                .trim_start_matches("error: ")
                .to_string(),
        ))
    };
    let body = hcl_edit::parser::parse_body(&text).map_err(|e| {
        let off = e.location().offset();
        located(
            Diagnostic::new(format!(
                "syntax error: {}",
                e.message().lines().next().unwrap_or("")
            ))
            .at(file, Some(off..off + 1)),
        )
    })?;
    let mut out = Map::new();
    for s in body.iter() {
        use hcl_edit::Span;
        match s {
            hcl_edit::structure::Structure::Attribute(a) => {
                let v = crate::config::body::eval_literal(&a.value)
                    .map_err(|e| located(Diagnostic::new(e.message).at(file, e.span)))?;
                out.insert(a.key.as_str().to_string(), v);
            }
            hcl_edit::structure::Structure::Block(b) => {
                return Err(located(
                    Diagnostic::new("a variables file holds only name = value lines")
                        .at(file, b.ident.span()),
                ));
            }
        }
    }
    Ok(out)
}

/// State as refresh found the world, with what it found.
pub async fn refreshed(
    state: &State,
    providers: &Providers,
    skip_health: bool,
) -> Result<(State, plan::Refreshed), Diagnostics> {
    let found = plan::refresh(state, providers, skip_health).await?;
    let mut now = state.clone();
    for d in &found.drift {
        // Applied in memory only: a plan writes nothing.
        now.apply_entry(d.entry());
    }
    Ok((now, found))
}

/// Orphans as drift that takes them into state: kept (adopt) or tainted (destroy).
fn orphans_into_state(found: &mut plan::Refreshed, action: plan::OrphanAction, now: &mut State) {
    let status = match action {
        plan::OrphanAction::Report => return,
        plan::OrphanAction::Adopt => crate::state::Status::Ready,
        plan::OrphanAction::Destroy => crate::state::Status::Tainted,
    };
    for o in std::mem::take(&mut found.orphans) {
        let resource = crate::state::ResourceState {
            address: o.address.clone(),
            type_name: o.type_name.clone(),
            provider: o.provider,
            status,
            attributes: o.attributes,
            sensitive_attributes: Vec::new(),
            dependencies: Vec::new(),
        };
        let drift = plan::Drift {
            address: o.address,
            type_name: o.type_name,
            kind: plan::DriftKind::Orphan,
            before: resource.clone(),
            after: Some(resource),
        };
        now.apply_entry(drift.entry());
        found.drift.push(drift);
    }
}

/// Checks the configuration without state or the world (`tik validate`): a plan
/// of an empty state, every input not given taken as unknown.
pub fn validate(config: &Config, providers: &Providers) -> Result<(), Diagnostics> {
    let inputs = Inputs {
        missing_unknown: true,
        ..Inputs::default()
    };
    let empty = State::new(String::new());
    plan::against_refreshed(
        config,
        providers,
        &empty,
        Vec::new(),
        inputs,
        &PlanOptions::default(),
    )
    .map(|_| ())
}

/// The plan of a command: refresh (unless turned off), then plan. The one entry
/// point to planning.
pub async fn make_plan(
    config: &Config,
    providers: &Providers,
    state: &State,
    inputs: Inputs,
    options: &PlanOptions,
    refresh: bool,
) -> Result<Plan, Diagnostics> {
    let (mut now, mut found) = if refresh {
        refreshed(state, providers, options.skip_health).await?
    } else {
        (state.clone(), plan::Refreshed::default())
    };
    orphans_into_state(&mut found, options.orphans, &mut now);
    let mut moves = Vec::new();
    if !options.destroy {
        // The moved blocks in order, each on the state the ones before it left; then
        // what count's arrival or departure implies.
        for block in plan::explicit_moves(config)? {
            // In each instance of its module, as the moves before it left them.
            for m in block.moves(&now) {
                let has_to = now.resources.keys().any(|r| r.starts_with(&m.to));
                match (now.holds_for_move(&m.from, &m.to), has_to) {
                    (false, _) => continue, // moved already, or never there
                    (true, true) => {
                        return Err(Diagnostic::new(format!(
                            "state holds both {} and {}: the moved block cannot tell which to keep",
                            m.from, m.to
                        ))
                        .help(format!("take one out of state (it stays in the world) with tik state rm '{}', or remove the moved block", m.from))
                        .into())
                    }
                    (true, false) => {}
                }
                now.apply_moves(&m.from, &m.to)?;
                moves.push(m);
            }
        }
        for m in plan::implied_moves(config, &now) {
            now.apply_moves(&m.from, &m.to)?;
            moves.push(m);
        }
    }
    let mut plan = plan::against_refreshed(config, providers, &now, found.drift, inputs, options)?;
    plan.orphans = found.orphans;
    plan.moves = moves;
    // The plan applies to the state as recorded; the drift it found is recorded first.
    plan.serial = state.serial.get();
    plan.lineage = state.lineage.clone();
    Ok(plan)
}

/// Takes an object that exists outside tik into state at `address`, which the
/// configuration wants and state does not hold yet. The object's provider reads it by
/// `id`, given what the configuration says of it too (its region, say); what the
/// provider cannot read back is taken from the configuration, as for an adopted
/// orphan. The next plan shows how the object differs from its configuration.
pub async fn import(
    config: &Config,
    providers: &Providers,
    state: &State,
    inputs: Inputs,
    address: &Address,
    id: &str,
) -> Result<ResourceState, Diagnostics> {
    if state.resources.contains_key(address) {
        return Err(Diagnostic::new(format!("{address} is in state already"))
            .help(format!(
                "to import another object there, first take this one out of state (it stays in the world): tik state rm '{address}'"
            ))
            .into());
    }
    if id.trim().is_empty() {
        return Err(Diagnostic::new("the id to import is empty")
            .help("give the object's id as its provider knows it")
            .into());
    }
    let plan = plan::against_refreshed(
        config,
        providers,
        state,
        Vec::new(),
        inputs,
        &PlanOptions::default(),
    )?;
    let creates: Vec<&plan::Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == plan::Action::Create)
        .collect();
    let Some(change) = creates.iter().find(|c| &c.address == address) else {
        let under: Vec<String> = creates
            .iter()
            .filter(|c| c.address.starts_with(address))
            .map(|c| c.address.to_string())
            .collect();
        let d = if under.is_empty() {
            let names: Vec<String> = creates
                .iter()
                .map(|c| &c.address)
                .chain(state.resources.keys())
                .map(Address::to_string)
                .collect();
            Diagnostic::new(format!("the configuration has no object {address}"))
            .help(
                did_you_mean(&address.to_string(), names.iter().map(String::as_str))
                    .unwrap_or_else(|| {
                        "import names an object of the configuration: tik plan lists them as \"will be created\"".to_string()
                    }),
            )
        } else {
            let more = if under.len() > 8 {
                format!(" and {} more", under.len() - 8)
            } else {
                String::new()
            };
            Diagnostic::new(format!(
                "{address} is not one object: it holds {} that tik would create",
                under.len()
            ))
            .help(format!(
                "import one at a time: {}{more}",
                under[..under.len().min(8)].join(", ")
            ))
        };
        return Err(d.into());
    };
    if change.provider == "tik" {
        return Err(Diagnostic::new(format!(
            "{address} is a {}, which tik makes itself: there is nothing to import",
            change.type_name
        ))
        .help("tik apply makes it")
        .into());
    }
    let (Some(provider), Some((_, schema))) = (
        providers.get(&change.provider),
        providers.schema(&change.type_name),
    ) else {
        return Err(Diagnostic::new(format!(
            "no provider offers {}, the type of {address}",
            change.type_name
        ))
        .into());
    };
    let wanted: Map = change
        .after
        .iter()
        .flatten()
        .filter(|(_, v)| !v.has_unknown())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut attributes = wanted.clone();
    attributes.insert("id".into(), Value::String(id.to_string()));
    let request = ReadRequest {
        address: address.clone(),
        attributes,
        pending: false,
        lineage: state.lineage.clone(),
    };
    let found = provider
        .read(&change.type_name, std::slice::from_ref(&request))
        .await
        .map_err(|e| {
            Diagnostics::from(Diagnostic::new(format!(
                "cannot read {} {id} for {address}: {}",
                change.type_name, e.message
            )))
        })?;
    let Some(Some(mut attributes)) = found.into_iter().next() else {
        return Err(Diagnostic::new(format!(
            "no {} with id {id} was found",
            change.type_name
        ))
        .help("check the id, and that it lives where the configuration says (its region, account or workspace)")
        .into());
    };
    // A provider that finds the object by what the configuration says of it (a
    // local workspace by its name) may find another than the one asked for.
    match attributes.get("id").and_then(Value::as_str) {
        Some(other) if other != id => {
            return Err(Diagnostic::new(format!(
                "{address} is {} {other}, not {id}",
                change.type_name
            ))
            .help(format!(
                "this provider finds it by its configuration: import it as tik import '{address}' {other}"
            ))
            .into())
        }
        _ => {}
    }
    plan::fill_unread(&mut attributes, schema, &wanted);
    Ok(ResourceState {
        address: address.clone(),
        type_name: change.type_name.clone(),
        provider: change.provider.clone(),
        status: crate::state::Status::Ready,
        attributes,
        sensitive_attributes: change.sensitive.clone(),
        dependencies: change.dependencies.clone(),
    })
}
