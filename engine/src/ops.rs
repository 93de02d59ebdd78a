//! The operations the CLI offers, as functions of configuration, providers and state:
//! gather variables, refresh and plan, detect drift.

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::{self, Plan, PlanOptions};
use crate::provider::Providers;
use crate::state::State;
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
) -> Result<(State, plan::Refreshed), Diagnostics> {
    let found = plan::refresh(state, providers).await?;
    let mut now = state.clone();
    for d in &found.drift {
        // Applied in memory only: a plan writes nothing.
        now.apply_entry(&d.entry());
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
        now.apply_entry(&drift.entry());
        found.drift.push(drift);
    }
}

/// Refresh (unless turned off), then plan.
pub async fn make_plan(
    config: &Config,
    providers: &Providers,
    state: &State,
    inputs: Inputs,
    options: &PlanOptions,
    refresh: bool,
) -> Result<Plan, Diagnostics> {
    let (mut now, mut found) = if refresh {
        refreshed(state, providers).await?
    } else {
        (state.clone(), plan::Refreshed::default())
    };
    orphans_into_state(&mut found, options.orphans, &mut now);
    let mut plan = plan::plan(config, providers, &now, found.drift, inputs, options)?;
    plan.orphans = found.orphans;
    // The plan applies to the state as recorded; the drift it found is recorded first.
    plan.serial = state.serial.get();
    plan.lineage = state.lineage.clone();
    Ok(plan)
}
