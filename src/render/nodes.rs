//! A plan as a reviewer reads it: each node with its session, container and steps
//! as one entry (`+ node "worker-default-3"` and `spark worker: install, configure,
//! start`), a step's attributes only where they change, and a diff shown once
//! however many nodes it applies to. `--verbose` and `--json` show every resource
//! in full.

use super::{attribute_lines, change, Shown, Style};
use std::collections::HashMap;
use std::fmt::Write as _;
use tik_engine::addr::Address;
use tik_engine::plan::{Action, Change, Plan};
use tik_engine::value::{Map, Value};
use tik_nodes::runtime::{
    endpoints_shown, node_of, step_changes, step_runs, CONTAINER_TYPE, ENDPOINTS_TYPE, SESSION_TYPE,
};

/// One entry of the plan: a change of its own, or a node with what runs on it.
pub(super) enum Entry<'a> {
    Change(&'a Change),
    Node(NodeGroup<'a>),
}

/// A node's changes: its own (none when only what runs on it changes), and its
/// session's, container's and steps', in the plan's order.
pub(super) struct NodeGroup<'a> {
    address: Address,
    node: Option<&'a Change>,
    members: Vec<&'a Change>,
}

/// The plan's changes with each node's gathered under it, at the place of the first.
pub(super) fn entries(plan: &Plan) -> Vec<Entry<'_>> {
    let member_of = |c: &Change| node_of(&c.type_name, &c.address);
    let nodes: std::collections::HashSet<Address> =
        plan.changes.iter().filter_map(member_of).collect();
    let mut at: HashMap<Address, usize> = HashMap::new();
    let mut out: Vec<Entry<'_>> = Vec::new();
    for c in &plan.changes {
        let key = match member_of(c) {
            Some(node) => node,
            None if nodes.contains(&c.address) => c.address.clone(),
            None => {
                out.push(Entry::Change(c));
                continue;
            }
        };
        let i = *at.entry(key.clone()).or_insert_with(|| {
            out.push(Entry::Node(NodeGroup {
                address: key.clone(),
                node: None,
                members: Vec::new(),
            }));
            out.len() - 1
        });
        if let Entry::Node(group) = &mut out[i] {
            if c.address == group.address {
                group.node = Some(c);
            } else {
                group.members.push(c);
            }
        }
    }
    out
}

/// What happens to a step, as one word after its name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StepFate {
    Runs,
    RunsAgain,
    RecordOnly,
    Undone,
}

fn fate(c: &Change) -> StepFate {
    let empty = Map::new();
    let changed = || {
        step_changes(
            c.before.as_ref().unwrap_or(&empty),
            c.after.as_ref().unwrap_or(&empty),
        )
    };
    match c.action {
        Action::Create => StepFate::Runs,
        Action::Delete => StepFate::Undone,
        Action::Update if !step_runs(&changed()) => StepFate::RecordOnly,
        _ => StepFate::RunsAgain,
    }
}

fn text_attr<'c>(c: &'c Change, key: &str) -> Option<&'c str> {
    c.after
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| c.before.as_ref().and_then(|b| b.get(key)))
        .and_then(Value::as_str)
}

/// What the plan counts of nodes: beside the resource counts, what users count.
#[derive(Default)]
pub(super) struct NodeCounts {
    add: usize,
    change: usize,
    replace: usize,
    destroy: usize,
    steps_run: usize,
    steps_again: usize,
    steps_undone: usize,
}

impl NodeCounts {
    pub(super) fn of(entries: &[Entry<'_>]) -> NodeCounts {
        let mut n = NodeCounts::default();
        for e in entries {
            let Entry::Node(g) = e else { continue };
            match g.node.map(|c| c.action) {
                Some(Action::Create) => n.add += 1,
                Some(Action::Replace) => n.replace += 1,
                Some(Action::Delete) => n.destroy += 1,
                _ => n.change += 1,
            }
            for m in g.members.iter().filter(|m| is_step(m)) {
                match fate(m) {
                    StepFate::Runs => n.steps_run += 1,
                    StepFate::RunsAgain => n.steps_again += 1,
                    StepFate::Undone => n.steps_undone += 1,
                    StepFate::RecordOnly => {}
                }
            }
        }
        n
    }

    /// `Nodes: 1 to add (3 steps to run).`, or nothing when no node changes.
    pub(super) fn line(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.add, "to add"),
            (self.change, "to change"),
            (self.replace, "to replace"),
            (self.destroy, "to destroy"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            return None;
        }
        let steps: Vec<String> = [
            (self.steps_run, "to run"),
            (self.steps_again, "to run again"),
            (self.steps_undone, "to undo"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} step{} {what}", if *n == 1 { "" } else { "s" }))
        .collect();
        let steps = if steps.is_empty() {
            String::new()
        } else {
            format!(" ({})", steps.join(", "))
        };
        Some(format!("Nodes: {}{steps}.", parts.join(", ")))
    }
}

fn is_step(c: &Change) -> bool {
    c.type_name == tik_nodes::runtime::STEP_TYPE
}

/// The changes of attributes already shown for one step, by their text: the same
/// change on the next node is named, not shown again.
#[derive(Default)]
pub(super) struct ShownDiffs {
    by_text: HashMap<String, String>,
}

impl<'a> NodeGroup<'a> {
    pub(super) fn render(&self, s: Style, seen: &mut Shown<'a>, diffs: &mut ShownDiffs) -> String {
        let mut out = String::new();
        let verb = match self.node.map(|c| c.action) {
            Some(Action::Create) => "will be created".to_string(),
            Some(Action::Delete) => "will be destroyed".to_string(),
            Some(Action::Replace) => "must be replaced".to_string(),
            Some(Action::Update) => "will be updated in place".to_string(),
            _ => "is unchanged; what runs on it changes".to_string(),
        };
        let _ = writeln!(out, "  {} {verb}", s.bold(&format!("# {}", self.address)));
        if let Some(c) = self.node.filter(|c| c.action == Action::Delete) {
            for r in &c.reasons {
                let _ = writeln!(out, "  # ({r})");
            }
        }
        match self.node {
            Some(c) if matches!(c.action, Action::Update | Action::Replace) => {
                // What changes on the node itself is shown in full: it is short, and
                // it is what forces a replacement.
                let full = change(c, s, seen);
                out.push_str(full.split_once('\n').map_or("", |(_, rest)| rest));
            }
            Some(c) => {
                let name = text_attr(c, "name")
                    .map(|n| format!(" {n:?}"))
                    .unwrap_or_default();
                let size = text_attr(c, "instance_type")
                    .map(|t| format!(", instance_type = {t:?}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{} node{name} ({}{size})",
                    s.symbol(c.action),
                    c.type_name
                );
            }
            None => {}
        }
        for m in self.members.iter().filter(|m| !is_step(m)) {
            let what = match m.type_name.as_str() {
                SESSION_TYPE => "session",
                CONTAINER_TYPE => "container",
                other => other,
            };
            // What goes with its node goes for the node's reason, given above.
            let note = if m.action == Action::Delete {
                String::new()
            } else {
                member_note(m)
            };
            let _ = writeln!(out, "    {} {what}{note}", s.symbol(m.action));
            if m.action == Action::Update || m.action == Action::Replace {
                self.changed_attributes(what, m, s, seen, diffs, &mut out);
            }
        }
        self.render_steps(s, seen, diffs, &mut out);
        out
    }

    /// The steps by service: one line for those that run as written, and each one
    /// that runs again with why and what changed.
    fn render_steps(
        &self,
        s: Style,
        seen: &mut Shown<'a>,
        diffs: &mut ShownDiffs,
        out: &mut String,
    ) {
        let steps: Vec<&&Change> = self.members.iter().filter(|m| is_step(m)).collect();
        let mut i = 0;
        while i < steps.len() {
            let first = steps[i];
            let service = (text_attr(first, "runtime"), text_attr(first, "service"));
            let kind = fate(first);
            let mut names = Vec::new();
            let mut j = i;
            while j < steps.len()
                && (
                    text_attr(steps[j], "runtime"),
                    text_attr(steps[j], "service"),
                ) == service
                && fate(steps[j]) == kind
                && (kind == StepFate::Runs || kind == StepFate::Undone || j == i)
            {
                names.push(text_attr(steps[j], "step").unwrap_or("?"));
                j += 1;
            }
            let label = match service {
                (Some(r), Some(v)) => format!("{r} {v}"),
                (Some(r), None) => r.to_string(),
                _ => "step".to_string(),
            };
            let what = match kind {
                StepFate::Runs => String::new(),
                StepFate::Undone => " (undone)".to_string(),
                StepFate::RecordOnly => " (its record is updated; nothing runs)".to_string(),
                StepFate::RunsAgain => format!(" will run again{}", member_note(first)),
            };
            let _ = writeln!(
                out,
                "    {} {label}: {}{what}",
                s.symbol(first.action),
                names.join(", ")
            );
            if kind == StepFate::RunsAgain {
                self.changed_attributes(&label, first, s, seen, diffs, out);
            }
            i = j;
        }
    }

    /// A member's changed attributes, four columns in; the same change of the same
    /// member seen on an earlier node is named instead. A step that runs again only
    /// because an earlier one of its service does shows no attributes: its reason
    /// says it all.
    fn changed_attributes(
        &self,
        label: &str,
        c: &'a Change,
        s: Style,
        seen: &mut Shown<'a>,
        diffs: &mut ShownDiffs,
        out: &mut String,
    ) {
        let empty = Map::new();
        let changed = step_changes(
            c.before.as_ref().unwrap_or(&empty),
            c.after.as_ref().unwrap_or(&empty),
        );
        if changed == ["after_hash"] {
            return;
        }
        let lines = attribute_lines(c, s, seen, false);
        let key = format!("{label}\n{lines}");
        if let Some(first) = diffs.by_text.get(&key) {
            let _ = writeln!(out, "          # (the same changes as on {first})");
            return;
        }
        diffs.by_text.insert(key, self.address.to_string());
        for line in lines.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
}

/// Why a member changes, from the plan's reasons: ` (its script changed)`.
fn member_note(c: &Change) -> String {
    if c.reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", c.reasons.join("; "))
    }
}

/// A runtime's recorded endpoints, as one short entry: what `tik status` will list,
/// each endpoint that comes or changes on a line of its own.
pub(super) fn endpoints_change(c: &Change, s: Style) -> Option<String> {
    if c.type_name != ENDPOINTS_TYPE {
        return None;
    }
    let runtime = c
        .after
        .as_ref()
        .or(c.before.as_ref())
        .and_then(|a| a.get("runtime"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let verb = match c.action {
        Action::Create => "are recorded",
        Action::Update | Action::Replace => "change",
        Action::Delete => "are forgotten",
        Action::NoOp => "are unchanged",
    };
    let mut out = format!(
        "  {} {runtime}'s endpoints {verb} (tik status lists them)\n",
        s.bold(&format!("# {}:", c.address))
    );
    let (before, after) = (
        c.before.as_ref().map(endpoints_shown).unwrap_or_default(),
        c.after.as_ref().map(endpoints_shown).unwrap_or_default(),
    );
    if c.action == Action::Delete {
        return Some(out);
    }
    for (name, value) in &after {
        match before.get(name) {
            None => {
                let _ = writeln!(
                    out,
                    "{} {name} = {}",
                    s.symbol(Action::Create),
                    super::shown(value, false)
                );
            }
            Some(old) if old != value => {
                let _ = writeln!(
                    out,
                    "{} {name} = {} -> {}",
                    s.symbol(Action::Update),
                    super::shown(old, false),
                    super::shown(value, false)
                );
            }
            Some(_) => {}
        }
    }
    for name in before.keys().filter(|k| !after.contains_key(*k)) {
        let _ = writeln!(out, "{} {name}", s.symbol(Action::Delete));
    }
    Some(out)
}
