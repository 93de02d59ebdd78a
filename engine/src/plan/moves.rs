//! Moves: `moved` blocks, and the moves a block gaining or losing `count` implies.

use super::*;

/// The module instances state holds resources in, by their module as the
/// configuration names it: `module.team` holds `module.team["ml"]`, ..., and
/// `module.m` holds `module.m` where its call is not repeated.
pub(super) fn held_instances(state: &State) -> HashMap<Address, BTreeSet<Address>> {
    let mut held: HashMap<Address, BTreeSet<Address>> = HashMap::new();
    for a in state.resources.keys() {
        for (call, _) in a.module_path() {
            if let Some(at) = a.module_instance(&call) {
                held.entry(call).or_default().insert(at);
            }
        }
    }
    held
}

/// The instances of `module` (as the configuration names it) among those `held`;
/// the root is one instance.
pub(super) fn instances_of(
    held: &HashMap<Address, BTreeSet<Address>>,
    module: &Address,
) -> Vec<Address> {
    if module.0.is_empty() {
        return vec![Address::new()];
    }
    held.get(module)
        .map(|at| at.iter().cloned().collect())
        .unwrap_or_default()
}

/// The `moved` blocks of every module, with absolute addresses, checked against the
/// configuration: `to` is something it has, `from` something it no longer has (or
/// another instance of the same block), and both are the same kind of thing.
pub fn explicit_moves(config: &Config) -> Result<Vec<MovedBlock>, Diagnostics> {
    let mut objects: HashSet<Address> = HashSet::new();
    // Whether each module's call is repeated: its instances have keys.
    let mut repeated: HashMap<Address, bool> = HashMap::new();
    for m in &config.modules {
        objects.insert(m.prefix.clone());
        for o in &m.objects {
            objects.insert(m.object_address(&o.kind, &o.name));
        }
        for c in m.calls.values() {
            repeated.insert(config.modules[c.child].prefix.clone(), c.repeat.is_some());
        }
    }
    // The first module call an address (relative to the module `at`) names
    // otherwise than the configuration has it: with a key where the call is not
    // repeated, or without where it is.
    let misnamed_call = |at: &Address, a: &Address| -> Option<(Address, bool)> {
        a.module_path()
            .into_iter()
            .map(|(call, keyed)| {
                let call = at.join(&call);
                (repeated.get(&call).copied().unwrap_or(keyed), call, keyed)
            })
            .find(|(wanted, _, keyed)| wanted != keyed)
            .map(|(wanted, call, _)| (call, wanted))
    };
    // What kind of thing an address names: a resource type, cluster, workspace or module.
    let kind = |a: &Address| -> String {
        let object = a.object();
        match object.0.get(object.0.len().saturating_sub(2)) {
            Some(crate::addr::Segment::Name(k)) => k.clone(),
            _ => String::new(),
        }
    };
    let mut moves = Vec::new();
    let mut diags = Diagnostics::default();
    for m in &config.modules {
        for mv in &m.moved {
            let (from, to) = (m.prefix.join(&mv.from), m.prefix.join(&mv.to));
            // The blocks, as the configuration names them.
            let from_block = from.object().unkeyed_modules();
            let to_block = to.object().unkeyed_modules();
            let at_to = |d: Diagnostic| d.at(mv.file, mv.to_span.clone());
            let at_from = |d: Diagnostic| d.at(mv.file, mv.from_span.clone());
            let nested = from.starts_with(&to) || to.starts_with(&from);
            if from == to || (nested && from_block != to_block) {
                diags.push(at_to(
                    Diagnostic::new(format!("{from} cannot move to {to}: one holds the other"))
                        .help(
                            "a moved block renames: give from the old address and to the new one",
                        ),
                ));
            } else if kind(&from_block) != kind(&to_block) {
                diags.push(at_to(Diagnostic::new(format!(
                    "{from} is a {}, {to} a {}: a move keeps the kind",
                    kind(&from_block),
                    kind(&to_block)
                )).help("to replace one kind of resource with another, remove the moved block: the plan destroys the old and creates the new")));
            } else if !objects.contains(&to_block) {
                let names: Vec<String> = objects.iter().map(Address::to_string).collect();
                diags.push(at_to(
                    Diagnostic::new(format!("{to} is not in the configuration")).help(
                        crate::diag::did_you_mean(
                            &to.object().to_string(),
                            names.iter().map(String::as_str),
                        )
                        .unwrap_or_else(|| {
                            "to names the new address: a block the configuration has".into()
                        }),
                    ),
                ));
            } else if let Some((call, wanted)) = misnamed_call(&m.prefix, &mv.to) {
                let (message, help) = if wanted {
                    (
                        format!("{to} names no instance of {call}, which has count or for_each"),
                        format!("name one of its instances, as {call}[\"KEY\"] or {call}[0]"),
                    )
                } else {
                    (
                        format!("{to} has a key for {call}, which has no count or for_each"),
                        format!("write {call} without a key"),
                    )
                };
                diags.push(at_to(Diagnostic::new(message).help(help)));
            } else if from_block != to_block
                && objects.contains(&from_block)
                && misnamed_call(&m.prefix, &mv.from).is_none()
            {
                diags.push(at_from(Diagnostic::new(format!(
                    "{} is still in the configuration",
                    from.object()
                )).help("from names the old address, which no block has any more; remove or rename that block")));
            } else {
                moves.push(MovedBlock {
                    module: m.prefix.clone(),
                    from: mv.from.clone(),
                    to: mv.to.clone(),
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(moves)
    } else {
        Err(diags)
    }
}

/// The moves a configuration implies, as Terraform's: a resource recorded at
/// `TYPE.NAME` whose block now has `count` is `TYPE.NAME[0]`, and one at
/// `TYPE.NAME[0]` whose block has lost it is `TYPE.NAME`; when the new address is
/// free in state.
pub fn implied_moves(config: &Config, state: &State) -> Vec<Move> {
    let held = held_instances(state);
    let holds_module = |at: &Address| {
        held.get(&at.unkeyed_modules())
            .is_some_and(|instances| instances.contains(at))
    };
    let mut moves = Vec::new();
    for m in &config.modules {
        for at in instances_of(&held, &m.prefix) {
            for o in &m.objects {
                if !matches!(o.kind, ObjectKind::Resource(_)) {
                    continue;
                }
                let one = at.clone().name(o.kind.root()).name(&o.name);
                let holds = |a: &Address| state.resources.contains_key(a);
                if let Some(mv) = count_move(one, o.repeat.as_ref(), holds) {
                    moves.push(mv);
                }
            }
            for c in m.calls.values() {
                let one = at.clone().name("module").name(&c.name);
                if let Some(mv) = count_move(one, c.repeat.as_ref(), holds_module) {
                    moves.push(mv);
                }
            }
        }
    }
    moves
}

/// The move that a block's gaining or losing `count` implies: from `X` to `X[0]`
/// or back, when state holds the one and not the other.
pub(super) fn count_move(
    one: Address,
    repeat: Option<&Repeat>,
    held: impl Fn(&Address) -> bool,
) -> Option<Move> {
    let first = one.clone().index(0);
    let (from, to) = match repeat {
        Some(Repeat::Count(_)) => (one, first),
        None => (first, one),
        Some(Repeat::ForEach(_)) => return None,
    };
    (held(&from) && !held(&to)).then_some(Move { from, to })
}
