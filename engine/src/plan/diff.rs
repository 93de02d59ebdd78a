//! The change one resource needs: its configuration against what state records.

use super::*;

/// Decides what one instance needs, against what state holds for its address.
pub fn diff(
    inst: &Instance,
    schema: &ResourceSchema,
    prior: Option<&ResourceState>,
    force_replace: bool,
) -> Change {
    let mut change = Change {
        address: inst.address.clone(),
        type_name: inst.type_name.clone(),
        provider: inst.provider.clone(),
        action: Action::NoOp,
        reasons: Vec::new(),
        before: prior.map(|p| p.attributes.clone()),
        after: None,
        sensitive: inst.sensitive.clone(),
        dependencies: inst.dependencies.clone(),
        create_before_destroy: inst.lifecycle.create_before_destroy,
        kept: false,
        unhealthy: false,
    };
    let Some(prior) = prior else {
        change.action = Action::Create;
        change.after = Some(planned_attributes(schema, &inst.config));
        return change;
    };
    let ignored = |name: &str| {
        inst.lifecycle.ignore_all_changes || inst.lifecycle.ignore_changes.iter().any(|i| i == name)
    };
    let mut after = prior.attributes.clone();
    let mut changed: Vec<&str> = Vec::new();
    for a in schema.attributes.iter().filter(|a| !a.computed) {
        let want = inst.config.get(a.name).cloned().unwrap_or(Value::Null);
        // An attribute newer than the record, which the configuration now sets.
        let absent_as = a.absent_as.filter(|_| inst.config.contains_key(a.name));
        let have = prior
            .attributes
            .get(a.name)
            .or(absent_as)
            .cloned()
            .unwrap_or(Value::Null);
        if want.has_unknown() || want != have {
            if ignored(a.name) {
                continue;
            }
            changed.push(a.name);
            after.insert(a.name.to_string(), want);
        }
    }
    if prior.type_name != inst.type_name {
        change.reasons.push(format!(
            "the type changed from {} to {}",
            prior.type_name, inst.type_name
        ));
    } else if prior.status == Status::Tainted {
        change.reasons.push(
            schema
                .tainted_reason
                .unwrap_or("a change to it failed part way (tainted)")
                .into(),
        );
    } else if prior.status == Status::Pending {
        change.reasons.push("its create was interrupted".into());
    } else if force_replace {
        change.reasons.push("--replace asked for it".into());
    }
    for name in &changed {
        if schema.attribute(name).is_some_and(|a| a.force_new) {
            change.reasons.push(format!("{name} forces replacement"));
        }
    }
    // A failed health check, or a step tainted by a failed (re)start: the controller
    // counts these as failed checks of the object before it acts.
    let health_only = schema
        .health
        .is_some_and(|h| changed.iter().all(|c| *c == h));
    let tainted_only = prior.status == Status::Tainted
        && prior.type_name == inst.type_name
        && !force_replace
        && change.reasons.len() == 1;
    if !change.reasons.is_empty() {
        change.unhealthy = health_only && tainted_only;
        change.action = Action::Replace;
        change.after = Some(planned_attributes(schema, &inst.config));
    } else if !changed.is_empty() {
        change.action = Action::Update;
        for a in schema.attributes.iter().filter(|a| a.computed) {
            if let Some(src) = a.copies.filter(|src| changed.contains(src)) {
                let value = after.get(src).cloned().unwrap_or(Value::Null);
                after.insert(a.name.to_string(), value);
            }
        }
        change.after = Some(after);
        change.unhealthy = health_only;
        if let Some(reasons) = schema.update_reasons {
            change.reasons = reasons(&changed);
        }
    } else {
        change.after = Some(prior.attributes.clone());
    }
    change
}

/// The attributes an instance's references see before apply: state's for a no-op,
/// the planned ones (unknown where computed) otherwise.
pub fn planned_value(change: &Change) -> Map {
    change.after.clone().unwrap_or_default()
}

/// Takes what the API cannot report of an object tik did not make (a disk size,
/// say) from its configuration, so that taking it into state (adopting or
/// importing it) does not replace it.
pub(crate) fn fill_unread(read: &mut Map, schema: &ResourceSchema, config: &Map) {
    for a in schema.attributes.iter().filter(|a| !a.computed) {
        if let (false, Some(v)) = (read.contains_key(a.name), config.get(a.name)) {
            read.insert(a.name.to_string(), v.clone());
        }
    }
}
