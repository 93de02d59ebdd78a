//! Rendering for the terminal: plans, drift, state, apply progress. Colour only when
//! asked for; the engine decides, this file only shows.

use similar::ChangeTag;
use std::fmt::Write as _;
use tik_engine::addr::Address;
use tik_engine::apply::{ApplyEvent, ApplyReport};
use tik_engine::plan::{Action, Change, Drift, DriftKind, Plan};
use tik_engine::state::{ResourceState, State};
use tik_engine::value::{key_repr, Hiding, Map, Value};

pub mod controller;
pub mod live;
mod nodes;
pub mod runtimes;

#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Every resource of a plan in full (`--verbose`), not each node as one entry.
    pub verbose: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn symbol(&self, action: Action) -> String {
        match action {
            Action::Create => self.green("  +"),
            Action::Update => self.yellow("  ~"),
            Action::Replace => format!("{}{}", self.red("-"), self.green("/+")),
            Action::Delete => self.red("  -"),
            Action::NoOp => "   ".into(),
        }
    }
}

fn shown(v: &Value, sensitive: bool) -> String {
    shown_at(v, sensitive, 8)
}

fn shown_at(v: &Value, sensitive: bool, indent: usize) -> String {
    shown_hiding(v, sensitive, &[], indent)
}

/// `v` as HCL, hidden as a whole or at its sensitive parts.
fn shown_hiding(v: &Value, sensitive: bool, parts: &[Vec<String>], indent: usize) -> String {
    if sensitive {
        "(sensitive value)".into()
    } else {
        indent_tail(&Hiding { value: v, parts }.to_string(), indent)
    }
}

/// `v` as JSON, with "(sensitive)" for it or for its sensitive parts.
fn json_hiding(v: &Value, sensitive: bool, parts: &[Vec<String>]) -> serde_json::Value {
    let hidden = Value::from("(sensitive)");
    if sensitive {
        hidden.to_json()
    } else {
        v.redacted(parts, &hidden).to_json()
    }
}

fn indent_tail(text: &str, n: usize) -> String {
    text.replace('\n', &format!("\n{:n$}", ""))
}

/// The lines of a text, without the newline that ends the last.
fn text_lines(text: &str) -> std::str::Split<'_, char> {
    text.strip_suffix('\n').unwrap_or(text).split('\n')
}

/// One line of a text as a heredoc shows it: control characters other than tabs
/// escaped as in a quoted string, so no text can steer the terminal.
fn text_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Multi-line text as a plan's heredoc, its lines at 12 columns.
fn heredoc(text: &str) -> String {
    heredoc_after(None, text_lines(text), 8)
}

/// A heredoc of `lines` at `at` + 4 columns and its end at `at`, after a `note`
/// in place of lines left out.
fn heredoc_after<'t>(
    note: Option<String>,
    lines: impl Iterator<Item = &'t str>,
    at: usize,
) -> String {
    let body = at + 4;
    let mut out = String::from("<<-EOT\n");
    if let Some(note) = note {
        out.push_str(&format!("{:body$}# ({note})\n", ""));
    }
    for line in lines {
        if !line.is_empty() {
            out.push_str(&format!("{:body$}{}", "", text_line(line)));
        }
        out.push('\n');
    }
    out.push_str(&format!("{:at$}EOT", ""));
    out
}

fn lines_of(text: &str) -> String {
    line_count(text_lines(text).count(), "")
}

/// "1 line", "6 unchanged lines".
fn line_count(n: usize, adjective: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {adjective}line{s}")
}

/// Where a plan showed a text: a change's address and attribute.
type Place<'a> = (&'a Address, &'a str);

/// How many texts that begin alike a new text is compared with, to find the
/// longest beginning already shown (a bound, so no plan is quadratic in them).
const PREFIX_CANDIDATES: usize = 32;

/// A beginning shorter than this is shown again rather than referred to.
const PREFIX_MIN_LINES: usize = 10;

/// The texts a plan has shown so far, with where: a step's script is the same on
/// every node it runs on, and is shown once, not once per node; scripts that
/// begin with the same library show it once.
#[derive(Default)]
pub struct Shown<'a> {
    same: std::collections::HashMap<&'a str, Place<'a>>,
    by_first_line: std::collections::HashMap<&'a str, Vec<(&'a str, Place<'a>)>>,
}

/// `place` as a plan names it for a value of `key`: the attribute only if it is
/// another.
fn place_name((address, first_key): Place<'_>, key: &str) -> String {
    if first_key == key {
        address.to_string()
    } else {
        format!("{address}'s {}", key_repr(first_key))
    }
}

impl<'a> Shown<'a> {
    /// `v` as the plan shows a new value of `address`'s `key`: multi-line text as
    /// a heredoc the first time, then as where it was shown; a heredoc whose
    /// first lines were shown before names where, in their place.
    fn value(
        &mut self,
        v: &'a Value,
        sensitive: bool,
        address: &'a Address,
        key: &'a str,
    ) -> String {
        let Some(text) = v.as_str().filter(|t| !sensitive && t.contains('\n')) else {
            return shown(v, sensitive);
        };
        if let Some(first) = self.same.get(text) {
            return format!(
                "(the same {} as in {})",
                lines_of(text),
                place_name(*first, key)
            );
        }
        let place = (address, key);
        self.same.insert(text, place);
        let first_line = text_lines(text).next().unwrap_or("");
        let alike = self.by_first_line.entry(first_line).or_default();
        let total = text_lines(text).count();
        let best = alike
            .iter()
            .rev()
            .take(PREFIX_CANDIDATES)
            .map(|(other, at)| {
                let common = text_lines(text)
                    .zip(text_lines(other))
                    .take_while(|(a, b)| a == b)
                    .count();
                (common, *at)
            })
            .filter(|(common, _)| *common >= PREFIX_MIN_LINES && *common < total)
            .max_by_key(|(common, _)| *common);
        alike.push((text, place));
        match best {
            Some((common, at)) => heredoc_after(
                Some(format!(
                    "the first {} as in {}",
                    line_count(common, ""),
                    place_name(at, key)
                )),
                text_lines(text).skip(common),
                8,
            ),
            None => heredoc(text),
        }
    }
}

/// Unchanged lines a diff shows around each change; the rest are counted.
const CONTEXT_LINES: usize = 3;

/// A diff of `old` and `new`, item by item (by Myers): the changes, `context`
/// unchanged items around each, and `hidden(n)` in place of the `n` unchanged
/// ones left out between and after; `item` shows one item with its tag.
fn grouped_diff(
    old: &[&str],
    new: &[&str],
    context: usize,
    item: impl Fn(ChangeTag, &str) -> String,
    hidden: impl Fn(usize) -> String,
) -> String {
    let ops = similar::capture_diff_slices(similar::Algorithm::Myers, old, new);
    let mut out = String::new();
    let mut shown_to = 0;
    for group in similar::group_diff_ops(ops, context) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        if first.old_range().start > shown_to {
            out.push_str(&hidden(first.old_range().start - shown_to));
        }
        for op in &group {
            for change in op.iter_changes(old, new) {
                out.push_str(&item(change.tag(), change.value()));
            }
        }
        shown_to = last.old_range().end;
    }
    if old.len() > shown_to {
        out.push_str(&hidden(old.len() - shown_to));
    }
    out
}

/// A line diff of two multi-line strings, as a heredoc: the changed lines with
/// three unchanged ones around them, and the count of those left out between.
fn text_diff(old: &str, new: &str, s: Style) -> String {
    let old: Vec<&str> = old.split_inclusive('\n').collect();
    let new: Vec<&str> = new.split_inclusive('\n').collect();
    let item = |tag: ChangeTag, line: &str| {
        let line = text_line(line.trim_end_matches('\n'));
        match tag {
            ChangeTag::Equal if line.is_empty() => "\n".to_string(),
            ChangeTag::Equal => format!("            {line}\n"),
            ChangeTag::Delete => format!("          {} {line}\n", s.red("-")),
            ChangeTag::Insert => format!("          {} {line}\n", s.green("+")),
        }
    };
    let hidden = |n: usize| format!("            # ({} hidden)\n", line_count(n, "unchanged "));
    format!(
        "<<-EOT\n{}        EOT",
        grouped_diff(&old, &new, CONTEXT_LINES, item, hidden)
    )
}

/// A changed value after its `=`, for an attribute whose line starts at column 6:
/// texts as a line diff, objects by the elements that changed, others as
/// `old -> new`.
fn value_change(old: &Value, new: &Value, sensitive: bool, s: Style) -> String {
    match (old, new) {
        _ if sensitive => format!("{} -> {}", shown(old, true), shown(new, true)),
        (Value::String(o), Value::String(n)) if o.contains('\n') && n.contains('\n') => {
            text_diff(o, n, s)
        }
        _ => collection_change(old, new, s, 8),
    }
}

/// A changed value whose closing bracket or brace sits at column `at`: a list or
/// object by what changed in it, anything else whole, before and after.
fn collection_change(old: &Value, new: &Value, s: Style, at: usize) -> String {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => object_diff(o, n, s, at),
        (Value::List(o), Value::List(n)) => list_diff(o, n, s, at),
        _ => format!(
            "{} -> {}",
            shown_at(old, false, at),
            shown_at(new, false, at)
        ),
    }
}

/// A changed list, its closing bracket at column `at`: the elements that went and
/// came, each change with one element around it, and the count of the others.
fn list_diff(old: &[Value], new: &[Value], s: Style, at: usize) -> String {
    let (mark, body) = (at + 2, at + 4);
    let text = |v: &Value| shown_at(v, false, body);
    let (old, new): (Vec<String>, Vec<String>) = (
        old.iter().map(text).collect(),
        new.iter().map(text).collect(),
    );
    let (old, new): (Vec<&str>, Vec<&str>) = (
        old.iter().map(String::as_str).collect(),
        new.iter().map(String::as_str).collect(),
    );
    let item = |tag: ChangeTag, element: &str| match tag {
        ChangeTag::Equal => format!("{:body$}{element},\n", ""),
        ChangeTag::Delete => format!("{:mark$}{} {element},\n", "", s.red("-")),
        ChangeTag::Insert => format!("{:mark$}{} {element},\n", "", s.green("+")),
    };
    format!(
        "[\n{}{:at$}]",
        grouped_diff(&old, &new, 1, item, |n| unchanged_elements(n, body)),
        ""
    )
}

/// The line that stands for `n` unchanged elements, at column `at`.
fn unchanged_elements(n: usize, at: usize) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{:at$}# ({n} unchanged element{plural} hidden)\n", "")
}

/// A changed object, its closing brace at column `at`: the elements that changed,
/// added or went, and the count of the others, as Terraform shows them.
fn object_diff(old: &Map, new: &Map, s: Style, at: usize) -> String {
    let mut keys: Vec<&String> = new.keys().chain(old.keys()).collect();
    keys.sort();
    keys.dedup();
    let total = keys.len();
    keys.retain(|k| old.get(*k) != new.get(*k));
    let width = keys.iter().map(|k| key_repr(k).len()).max().unwrap_or(0);
    let (mark, body) = (at + 2, at + 4);
    let mut out = String::from("{\n");
    for k in &keys {
        let name = format!("{:width$}", key_repr(k));
        let line = match (old.get(*k), new.get(*k)) {
            (Some(Value::Object(o)), Some(Value::Object(n))) => {
                format!("{} {name} = {}", s.yellow("~"), object_diff(o, n, s, body))
            }
            (Some(Value::List(o)), Some(Value::List(n))) => {
                format!("{} {name} = {}", s.yellow("~"), list_diff(o, n, s, body))
            }
            (Some(o), Some(n)) => format!(
                "{} {name} = {} -> {}",
                s.yellow("~"),
                shown_at(o, false, body),
                shown_at(n, false, body)
            ),
            (None, Some(n)) => format!("{} {name} = {}", s.green("+"), shown_at(n, false, body)),
            (Some(o), None) => format!(
                "{} {name} = {} -> null",
                s.red("-"),
                shown_at(o, false, body)
            ),
            (None, None) => continue,
        };
        out.push_str(&format!("{:mark$}{line}\n", ""));
    }
    let same = total - keys.len();
    if same > 0 {
        out.push_str(&unchanged_elements(same, body));
    }
    out.push_str(&format!("{:at$}}}", ""));
    out
}

/// One change as the plan shows it; `seen` holds the texts shown before it.
pub fn change<'a>(c: &'a Change, s: Style, seen: &mut Shown<'a>) -> String {
    let step = c.type_name == tik_nodes::runtime::STEP_TYPE;
    let empty = Map::new();
    let before = c.before.as_ref().unwrap_or(&empty);
    let after = c.after.as_ref().unwrap_or(&empty);
    let runs = || tik_nodes::runtime::step_runs(&tik_nodes::runtime::step_changes(before, after));
    let verb = match c.action {
        Action::Update if step && !runs() => "will have its record updated; nothing runs",
        Action::Create if step => "will run",
        Action::Update if step => "will run again",
        // Undoing a step stops its service; the other steps have nothing to undo.
        Action::Replace if step && before.contains_key("stop") => {
            "will run again (its service stopped first)"
        }
        Action::Replace if step => "will run again",
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete if c.kept => "will be kept: tik forgets it and leaves it in place",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is unchanged",
    };
    let mut out = format!("  {} {}\n", s.bold(&format!("# {}", c.address)), verb);
    for r in &c.reasons {
        out.push_str(&format!("  # ({r})\n"));
    }
    if c.kept {
        // Nothing of it goes: no attribute is shown going.
        let id = before.get("id").map(|v| format!(" {}", shown(v, false)));
        out.push_str(&format!(
            "  {} {}{} (its provider keeps it on destroy; to delete it, set that to false first)\n",
            s.yellow("."),
            c.type_name,
            id.unwrap_or_default()
        ));
        return out;
    }
    out.push_str(&format!("{} {} {{\n", s.symbol(c.action), c.type_name));
    out.push_str(&attribute_lines(c, s, seen, true));
    out.push_str("    }\n");
    out
}

/// A change's attributes, one per line at six columns: all of a create's or a
/// delete's, the changed ones of an update (with a count of those hidden, if
/// `count_hidden`).
fn attribute_lines<'a>(
    c: &'a Change,
    s: Style,
    seen: &mut Shown<'a>,
    count_hidden: bool,
) -> String {
    let mut out = String::new();
    let (had, has) = (c.before.as_ref(), c.after.as_ref());
    let mut keys: Vec<&'a String> = has
        .into_iter()
        .chain(had)
        .flat_map(|attrs| attrs.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let width = keys.iter().map(|k| key_repr(k).len()).max().unwrap_or(0);
    let mut hidden = 0;
    for k in keys {
        let sensitive = c.sensitive.iter().any(|x| x == k);
        let (old, new) = (had.and_then(|a| a.get(k)), has.and_then(|a| a.get(k)));
        let name = format!("{:width$}", key_repr(k));
        let line = match (c.action, old, new) {
            (Action::Create, _, Some(v)) => format!(
                "      {} {name} = {}",
                s.green("+"),
                seen.value(v, sensitive, &c.address, k)
            ),
            // What goes is named, not read: a text by its length.
            (Action::Delete, Some(Value::String(text)), _) if !sensitive && text.contains('\n') => {
                format!("      {} {name} = ({}) -> null", s.red("-"), lines_of(text))
            }
            (Action::Delete, Some(v), _) => format!(
                "      {} {name} = {} -> null",
                s.red("-"),
                shown(v, sensitive)
            ),
            (_, Some(o), Some(n)) if o == n => {
                hidden += 1;
                continue;
            }
            (_, Some(o), Some(n)) => {
                let forces = c
                    .reasons
                    .iter()
                    .any(|r| r == &format!("{k} forces replacement"));
                let note = if forces {
                    s.red(" # forces replacement")
                } else {
                    String::new()
                };
                format!(
                    "      {} {name} = {}{note}",
                    s.yellow("~"),
                    value_change(o, n, sensitive, s)
                )
            }
            (_, None, Some(n)) => format!(
                "      {} {name} = {}",
                s.green("+"),
                seen.value(n, sensitive, &c.address, k)
            ),
            (_, Some(o), None) => format!(
                "      {} {name} = {} -> null",
                s.red("-"),
                shown(o, sensitive)
            ),
            (_, None, None) => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    if count_hidden && hidden > 0 && matches!(c.action, Action::Update | Action::Replace) {
        out.push_str(&format!(
            "        # ({hidden} unchanged attribute{} hidden)\n",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    out
}

fn kind_label(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::Deleted => "deleted",
        DriftKind::Changed => "changed",
        DriftKind::Adopted => "adopted",
        DriftKind::Unfinished => "unfinished",
        DriftKind::Orphan => "orphan",
    }
}

pub fn drift(d: &Drift, s: Style) -> String {
    let verb = match (d.kind, d.after.as_ref().map(|a| a.status)) {
        (DriftKind::Deleted, _) => "was deleted outside of tik",
        (DriftKind::Changed, Some(tik_engine::state::Status::Tainted)) => {
            "is gone but for what it held, and is taken into state to be replaced or deleted"
        }
        (DriftKind::Changed, _) => "was changed outside of tik",
        (DriftKind::Adopted, Some(tik_engine::state::Status::Tainted)) => {
            "was found half made after an interrupted create: taken into state to be replaced or deleted"
        }
        (DriftKind::Adopted, _) => "was found after an interrupted create and is taken into state",
        (DriftKind::Unfinished, _) if d.type_name == tik_nodes::runtime::STEP_TYPE => {
            "did not run to its end: its run was interrupted"
        }
        (DriftKind::Unfinished, _) => "was not made: its create was interrupted",
        (DriftKind::Orphan, Some(tik_engine::state::Status::Tainted)) => {
            "is an orphan, taken into state to be destroyed"
        }
        (DriftKind::Orphan, _) => "is an orphan, taken into state",
    };
    let mut out = format!("  {} {verb}\n", s.bold(&format!("# {}", d.address)));
    if let (DriftKind::Changed, Some(after)) = (d.kind, &d.after) {
        let mut keys: Vec<&String> = after
            .attributes
            .keys()
            .chain(d.before.attributes.keys())
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (o, n) = (d.before.attributes.get(k), after.attributes.get(k));
            if o != n {
                let sensitive = d.before.sensitive_attributes.iter().any(|x| x == k);
                let show =
                    |v: Option<&Value>| v.map_or("null".to_string(), |v| shown(v, sensitive));
                let text = match (o, n) {
                    (Some(o), Some(n)) => value_change(o, n, sensitive, s),
                    _ => format!("{} -> {}", show(o), show(n)),
                };
                out.push_str(&format!(
                    "      {} {} = {text}\n",
                    s.yellow("~"),
                    key_repr(k)
                ));
            }
        }
    }
    out
}

pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let moves = match plan.moves.len() {
        0 => String::new(),
        n => format!(", {n} to move"),
    };
    let keep = match s.keep {
        0 => String::new(),
        n => format!(", {n} to keep"),
    };
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy{keep}{moves}.",
        s.add, s.change, s.replace, s.destroy
    )
}

/// What refresh found, under two headings: what changed outside of tik, and what an
/// interrupted apply left (found or not found after its create).
pub fn drift_sections(found: &[Drift], s: Style) -> String {
    let left = |d: &&Drift| matches!(d.kind, DriftKind::Adopted | DriftKind::Unfinished);
    let mut out = String::new();
    for (heading, part) in [
        (
            "Objects changed outside of tik:",
            found.iter().filter(|d| !left(d)).collect::<Vec<_>>(),
        ),
        (
            "Left by an interrupted apply:",
            found.iter().filter(left).collect(),
        ),
    ] {
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&s.bold(heading));
        out.push_str("\n\n");
        for d in part {
            out.push_str(&drift(d, s));
        }
    }
    out
}

pub fn plan(plan: &Plan, s: Style) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        out.push_str(&drift_sections(&plan.drift, s));
        out.push_str("\nThe plan below restores what the configuration says.\n\n");
    }
    if !plan.has_changes() {
        out.push_str(&s.green("No changes. The infrastructure matches the configuration."));
        out.push('\n');
        out.push_str(&orphans(&plan.orphans, s));
        return out;
    }
    let entries = nodes::entries(plan);
    if !plan.changes.is_empty() || !plan.moves.is_empty() {
        out.push_str("tik will perform the following actions:\n\n");
        for m in &plan.moves {
            out.push_str(&s.bold(&format!("  # {} has moved to {}", m.from, m.to)));
            out.push_str("\n\n");
        }
        let mut seen = Shown::default();
        if s.verbose {
            for c in &plan.changes {
                out.push_str(&change(c, s, &mut seen));
                out.push('\n');
            }
        } else {
            let mut diffs = nodes::ShownDiffs::default();
            for e in &entries {
                match e {
                    nodes::Entry::Change(c) => match nodes::endpoints_change(c, s) {
                        Some(short) => out.push_str(&short),
                        None => out.push_str(&change(c, s, &mut seen)),
                    },
                    nodes::Entry::Node(g) => out.push_str(&g.render(s, &mut seen, &mut diffs)),
                }
                out.push('\n');
            }
        }
    }
    out.push_str(&sized_pools(plan, s));
    if let Some(line) = nodes::NodeCounts::of(&entries).line() {
        out.push_str(&s.bold(&line));
        out.push('\n');
    }
    out.push_str(&s.bold(&summary_line(plan)));
    out.push('\n');
    if !plan.outputs.is_empty() {
        out.push_str("\nChanges to outputs:\n");
        for o in &plan.outputs {
            let show = |v: &Value| shown_hiding(v, o.sensitive, &o.sensitive_parts, 4);
            let (sym, text) = match (&o.before, &o.after) {
                (None, n) => (s.green("+"), show(n)),
                (Some(old), Value::Null) => (s.red("-"), format!("{} -> null", show(old))),
                (Some(old), n) if o.sensitive || !o.sensitive_parts.is_empty() => {
                    (s.yellow("~"), format!("{} -> {}", show(old), show(n)))
                }
                (Some(old), n) => (s.yellow("~"), collection_change(old, n, s, 4)),
            };
            out.push_str(&format!("  {sym} {} = {text}\n", o.name));
        }
    }
    out.push_str(&orphans(&plan.orphans, s));
    out
}

/// The pools whose size `tik scale` (or the controller) recorded, as the plan sized
/// them: what explains workers that `min` alone would not.
fn sized_pools(plan: &Plan, s: Style) -> String {
    let mut out = String::new();
    for p in plan.pools.iter() {
        let Some(recorded) = p.recorded else { continue };
        let bounds = if recorded == p.size {
            String::new()
        } else {
            format!(", {recorded} recorded is outside the bounds now")
        };
        out.push_str(&s.bold(&format!(
            "Pool sized by tik scale: cluster {}, workers \"{}\": {} (min {}, max {}{bounds})\n",
            tik_engine::scale::cluster_label(&p.cluster),
            p.pool,
            p.size,
            p.min,
            p.max,
        )));
    }
    out
}

/// What `tik scale` says it recorded.
pub fn scaled(scaled: &tik_engine::scale::Scaled, changed: bool, s: Style) -> String {
    let p = &scaled.pool;
    let which = format!(
        "cluster {}, workers \"{}\"",
        tik_engine::scale::cluster_label(&p.cluster),
        p.pool
    );
    if !changed {
        return format!(
            "{which}: {} workers is already its recorded size; nothing changed.\n",
            scaled.size
        );
    }
    format!(
        "{} {which}: {} workers (was {}; min {}, max {}).\nThe controller, or the next tik apply, brings the pool there{}.\n",
        s.green("Recorded"),
        scaled.size,
        p.size,
        p.min,
        p.max,
        if scaled.size < p.size {
            ": the newest workers go first, after their services stop"
        } else {
            ""
        }
    )
}

/// Attributes as JSON, with "(sensitive)" for those named in `sensitive`.
fn attributes_json(attrs: &Map, sensitive: &[String]) -> serde_json::Value {
    serde_json::Value::Object(
        attrs
            .iter()
            .map(|(k, v)| {
                let shown = if sensitive.contains(k) {
                    serde_json::Value::String("(sensitive)".into())
                } else {
                    v.to_json()
                };
                (k.clone(), shown)
            })
            .collect(),
    )
}

/// The machine-readable plan: documented in docs/json-output.md.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let hide = |attrs: &Option<Map>, sensitive: &[String]| -> serde_json::Value {
        attrs
            .as_ref()
            .map_or(serde_json::Value::Null, |m| attributes_json(m, sensitive))
    };
    let unknown = |attrs: &Option<Map>| -> Vec<String> {
        let mut names: Vec<String> = attrs
            .as_ref()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.has_unknown())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let changes: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "address": c.address.to_string(),
                "type": c.type_name,
                "provider": c.provider,
                "action": c.action,
                "reasons": c.reasons,
                "before": hide(&c.before, &c.sensitive),
                "after": hide(&c.after, &c.sensitive),
                "after_unknown": unknown(&c.after),
                "sensitive": c.sensitive,
                "kept": c.kept,
            })
        })
        .collect();
    let drift: Vec<serde_json::Value> = plan
        .drift
        .iter()
        .map(|d| {
            serde_json::json!({
                "address": d.address.to_string(),
                "type": d.type_name,
                "kind": d.kind,
                "before": hide(&Some(d.before.attributes.clone()), &d.before.sensitive_attributes),
                "after": hide(&d.after.as_ref().map(|a| a.attributes.clone()), &d.before.sensitive_attributes),
            })
        })
        .collect();
    let outputs: Vec<serde_json::Value> = plan
        .outputs
        .iter()
        .map(|o| {
            let v = |x: &Value| json_hiding(x, o.sensitive, &o.sensitive_parts);
            serde_json::json!({ "name": o.name, "before": o.before.as_ref().map(v), "after": v(&o.after), "after_unknown": o.after.has_unknown(), "sensitive": o.sensitive, "sensitive_parts": o.sensitive_parts })
        })
        .collect();
    let orphans: Vec<serde_json::Value> = plan
        .orphans
        .iter()
        .map(|o| serde_json::json!({ "address": o.address.to_string(), "type": o.type_name, "provider": o.provider, "attributes": hide(&Some(o.attributes.clone()), &[]) }))
        .collect();
    serde_json::json!({
        "format_version": "1",
        "tik_version": plan.tik_version,
        "orphans": orphans,
        "destroy": plan.destroy,
        "drift": drift,
        "changes": changes,
        "moves": plan.moves.iter().map(|m| serde_json::json!({ "from": m.from.to_string(), "to": m.to.to_string() })).collect::<Vec<_>>(),
        "outputs": outputs,
        "pools": plan.pools.iter().map(pool_json).collect::<Vec<_>>(),
        "summary": plan.summary(),
        "has_changes": plan.has_changes(),
    })
}

fn pool_json(p: &tik_engine::walk::Pool) -> serde_json::Value {
    serde_json::json!({
        "cluster": p.cluster.to_string(),
        "pool": p.pool,
        "min": p.min,
        "max": p.max,
        "size": p.size,
        "recorded": p.recorded,
    })
}

pub fn resource(r: &ResourceState) -> String {
    let mut out = format!("# {}:\n{} {{\n", r.address, r.type_name);
    let width = r
        .attributes
        .keys()
        .map(|k| key_repr(k).len())
        .max()
        .unwrap_or(0);
    for (k, v) in &r.attributes {
        let sensitive = r.sensitive_attributes.iter().any(|x| x == k);
        let text = match v.as_str() {
            _ if sensitive => "(sensitive value)".to_string(),
            Some(text) if text.contains('\n') => heredoc_after(None, text_lines(text), 4),
            _ => indent_tail(&v.to_string(), 4),
        };
        out.push_str(&format!("    {:width$} = {text}\n", key_repr(k)));
    }
    if !matches!(r.status, tik_engine::state::Status::Ready) {
        out.push_str(&format!("    # status: {:?}\n", r.status).to_lowercase());
    }
    out.push_str("}\n");
    out
}

/// The state as `tik show --json` prints it: the snapshot's shape, with every sensitive
/// attribute and output (or part of one) shown as "(sensitive)", as plans show them.
pub fn state_json(state: &State) -> serde_json::Value {
    let mut resources: Vec<&ResourceState> = state.resources.values().collect();
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    let resources: Vec<serde_json::Value> = resources
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "address": r.address.to_string(),
                "type": r.type_name,
                "provider": r.provider,
                "status": r.status,
                "attributes": attributes_json(&r.attributes, &r.sensitive_attributes),
                "sensitive_attributes": r.sensitive_attributes,
                "dependencies": r.dependencies.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = state
        .outputs
        .iter()
        .map(|(name, o)| {
            let value = json_hiding(&o.value, o.sensitive, &o.sensitive_parts);
            (
                name.clone(),
                serde_json::json!({ "value": value, "sensitive": o.sensitive, "sensitive_parts": o.sensitive_parts }),
            )
        })
        .collect();
    serde_json::json!({
        "format_version": tik_engine::state::FORMAT_VERSION,
        "serial": state.serial.get(),
        "lineage": state.lineage,
        "resources": resources,
        "outputs": outputs,
        "sizes": state.sizes.iter().map(|(c, pools)| (c.to_string(), serde_json::json!(pools))).collect::<serde_json::Map<_, _>>(),
    })
}

pub fn state(state: &State) -> String {
    if state.resources.is_empty() && state.outputs.is_empty() {
        return "The state is empty: tik has created nothing here yet.\n".into();
    }
    let mut out = String::new();
    let mut resources: Vec<&ResourceState> = state.resources.values().collect();
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    for r in resources {
        out.push_str(&resource(r));
        out.push('\n');
    }
    if !state.outputs.is_empty() {
        out.push_str("Outputs:\n\n");
        out.push_str(&outputs(&state.outputs));
    }
    if !state.sizes.is_empty() {
        out.push_str("\nPool sizes (tik scale):\n\n");
        for (cluster, pools) in &state.sizes {
            for (pool, n) in pools {
                let label = tik_engine::scale::cluster_label(cluster);
                out.push_str(&format!("cluster {label}, workers \"{pool}\" = {n}\n"));
            }
        }
    }
    out
}

/// `name = value` lines; sensitive values hidden.
pub fn outputs(outputs: &tik_engine::state::Outputs) -> String {
    outputs
        .iter()
        .map(|(name, o)| {
            let value = shown_hiding(&o.value, o.sensitive, &o.sensitive_parts, 0);
            format!("{name} = {value}\n")
        })
        .collect()
}

/// Objects with this state's tags that it does not record, and what to do about them.
pub fn orphans(orphans: &[tik_engine::plan::OrphanReport], s: Style) -> String {
    if orphans.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{}\n\n",
        s.bold("Objects with this state's tags that it does not record (orphans):")
    );
    for o in orphans {
        let id = o
            .attributes
            .get("id")
            .and_then(Value::as_str)
            .map(|i| format!(" [id={i}]"))
            .unwrap_or_default();
        out.push_str(&format!("  # {} ({}){id}\n", o.address, o.type_name));
    }
    out.push_str("\nThey cost money and nothing manages them. Take them into state with tik apply --adopt-orphans,\nor remove them with tik apply --destroy-orphans.\n");
    out
}

/// `tik drift --markdown`: a summary for a CI job's page.
pub fn drift_markdown(drift: &[Drift], orphans: &[tik_engine::plan::OrphanReport]) -> String {
    if drift.is_empty() && orphans.is_empty() {
        return "### tik drift\n\nNo drift: the world matches the state.\n".into();
    }
    let mut out = format!(
        "### tik drift\n\n{} object(s) differ from the state, {} orphan(s).\n\n| address | drift | attributes |\n|---|---|---|\n",
        drift.len(),
        orphans.len()
    );
    for d in drift {
        let mut changed: Vec<String> = match &d.after {
            Some(after) => after
                .attributes
                .keys()
                .chain(d.before.attributes.keys())
                .filter(|k| d.before.attributes.get(*k) != after.attributes.get(*k))
                .map(|k| format!("`{k}`"))
                .collect(),
            None => Vec::new(),
        };
        changed.sort();
        changed.dedup();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.address,
            kind_label(d.kind),
            changed.join(", ")
        ));
    }
    for o in orphans {
        out.push_str(&format!("| `{}` | orphan | |\n", o.address));
    }
    out
}

/// `tik status`: per cluster its nodes, each with its address, its steps by service
/// and the service's health as checked now.
pub fn status(
    nodes: &[tik_nodes::nodes::Node],
    services: &[Vec<tik_nodes::nodes::Service>],
    endpoints: &[tik_nodes::nodes::Endpoints],
    controllers: &[(String, tik_engine::controller::Seen)],
    style: Style,
) -> String {
    use tik_nodes::nodes::{Outcome, ServiceState};
    use tik_nodes::steps::Health;
    let mut out = String::new();
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0).max(4);
    let mut cluster: Option<&str> = None;
    let (mut well, mut total) = (0, 0);
    for (n, list) in nodes.iter().zip(services) {
        if cluster != Some(n.cluster.as_str()) {
            if let Some(c) = cluster {
                status_endpoints(&mut out, endpoints, c);
                controller::status(&mut out, controllers, c, style);
                out.push('\n');
            }
            cluster = Some(&n.cluster);
            let count = nodes.iter().filter(|m| m.cluster == n.cluster).count();
            out.push_str(&format!(
                "{} ({count} node{})\n",
                style.bold(&format!("cluster {}", n.cluster)),
                if count == 1 { "" } else { "s" }
            ));
        }
        let ip = n.private_ip.as_deref().unwrap_or("(no address)");
        let public = match &n.public_ip {
            Some(p) if Some(p.as_str()) != n.private_ip.as_deref() => format!(" (public {p})"),
            _ => String::new(),
        };
        let through = match n.jump.as_ref().and_then(|j| j.get("host")?.as_str()) {
            Some(h) => format!(" (through the head, {h})"),
            None => String::new(),
        };
        out.push_str(&format!("  {:width$}  {ip}{public}{through}\n", n.name));
        if let Some(c) = &n.container {
            let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("?");
            out.push_str(&format!(
                "    in {} container {} ({})\n",
                text("engine"),
                text("name"),
                text("image")
            ));
        }
        if list.is_empty() {
            out.push_str("    no runtime steps\n");
        }
        let sw = list
            .iter()
            .map(|s| s.runtime.len() + s.service.len() + 1)
            .max()
            .unwrap_or(0);
        for s in list {
            total += 1;
            // Padded by what shows, not by the colour codes around it.
            let mut shown_len = 0;
            let steps: Vec<String> = n
                .steps
                .iter()
                .filter(|t| t.runtime == s.runtime && t.service == s.service)
                .map(|t| {
                    let text = match t.outcome {
                        Outcome::Done => t.step.clone(),
                        other => format!("{} {}", t.step, other.as_str()),
                    };
                    shown_len += text.len() + 2;
                    match t.outcome {
                        Outcome::Done => text,
                        Outcome::Failed => style.red(&text),
                        Outcome::Interrupted => style.yellow(&text),
                    }
                })
                .collect();
            let shown_len = shown_len.saturating_sub(2);
            let gap = " ".repeat(27usize.saturating_sub(shown_len).max(2));
            let health = match &s.state {
                ServiceState::Checked(Health::Healthy) => style.green("healthy"),
                ServiceState::Checked(Health::Unhealthy { code, output }) => {
                    let last = output.lines().rev().find(|l| !l.trim().is_empty());
                    style.red(&format!(
                        "unhealthy (exit {code}){}",
                        last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                    ))
                }
                ServiceState::Checked(Health::Unreachable(why)) => {
                    style.red(&format!("unreachable: {}", first_line(why)))
                }
                ServiceState::NoCheck => "running (no health check)".into(),
                ServiceState::NotStarted => style.yellow("not started"),
            };
            if s.is_well() {
                well += 1;
            }
            out.push_str(&format!(
                "    {:sw$}  {}{gap}{health}\n",
                format!("{}.{}", s.runtime, s.service),
                steps.join(", ")
            ));
        }
    }
    if let Some(c) = cluster {
        status_endpoints(&mut out, endpoints, c);
        controller::status(&mut out, controllers, c, style);
    }
    if total > 0 {
        out.push_str(&format!(
            "\n{well} of {total} service{} well.\n",
            if total == 1 { "" } else { "s" }
        ));
    }
    // Apply reads the services' health too, and starts again those that fail it.
    if services
        .iter()
        .flatten()
        .any(|s| !s.is_well() && s.state != ServiceState::NotStarted && s.start.is_some())
    {
        out.push_str(
            "To restart what is not healthy: tik apply (it finds them as tik status does)\n",
        );
    }
    if nodes
        .iter()
        .flat_map(|n| &n.steps)
        .any(|s| s.outcome != Outcome::Done)
    {
        out.push_str("Steps that did not end run again at the next tik apply.\n");
    }
    out
}

/// The endpoints of one cluster's runtimes, as the last apply recorded them.
fn status_endpoints(out: &mut String, endpoints: &[tik_nodes::nodes::Endpoints], cluster: &str) {
    let mine: Vec<(String, String)> = endpoints
        .iter()
        .filter(|e| e.cluster == cluster)
        .flat_map(|e| {
            e.values.iter().map(|(name, value)| {
                let shown = match value {
                    // Quoted where it holds what a terminal would act on.
                    Some(Value::String(s)) if !s.chars().any(char::is_control) => s.clone(),
                    Some(Value::Unknown) => "(not known: the apply that makes it did not end)".into(),
                    Some(other) => other.to_string(),
                    None => format!(
                        "(sensitive: an output shows it, as cluster.{cluster}.runtime.{}.endpoint.{name})",
                        e.runtime
                    ),
                };
                (format!("{}.{name}", e.runtime), shown)
            })
        })
        .collect();
    if mine.is_empty() {
        return;
    }
    let width = mine.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    out.push_str("  endpoints\n");
    for (name, value) in mine {
        out.push_str(&format!("    {name:width$}  {value}\n"));
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `tik status --json`: one object per node.
pub fn status_json(
    nodes: &[tik_nodes::nodes::Node],
    services: &[Vec<tik_nodes::nodes::Service>],
    endpoints: &[tik_nodes::nodes::Endpoints],
    controllers: &[(String, tik_engine::controller::Seen)],
) -> String {
    use serde_json::json;
    use tik_nodes::nodes::ServiceState;
    use tik_nodes::steps::Health;
    let list: Vec<serde_json::Value> = nodes
        .iter()
        .zip(services)
        .map(|(n, list)| {
            json!({
                "cluster": n.cluster,
                "name": n.name,
                "address": n.address.to_string(),
                "private_ip": n.private_ip,
                "public_ip": n.public_ip,
                "through": n.jump.as_ref().and_then(|j| j.get("host")).map(|h| h.to_json()),
                "container": n.container.as_ref().map(|c| c.to_json()),
                "steps": n.steps.iter().map(|s| json!({
                    "address": s.address.to_string(),
                    "runtime": s.runtime,
                    "service": s.service,
                    "step": s.step,
                    "outcome": s.outcome.as_str(),
                })).collect::<Vec<_>>(),
                "services": list.iter().map(|s| {
                    let (health, detail) = match &s.state {
                        ServiceState::Checked(Health::Healthy) => ("healthy", json!(null)),
                        ServiceState::Checked(Health::Unhealthy { code, output }) => {
                            ("unhealthy", json!({ "exit_code": code, "output": output }))
                        }
                        ServiceState::Checked(Health::Unreachable(why)) => ("unreachable", json!(why)),
                        ServiceState::NoCheck => ("no_check", json!(null)),
                        ServiceState::NotStarted => ("not_started", json!(null)),
                    };
                    json!({ "runtime": s.runtime, "service": s.service, "health": health, "detail": detail })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    // A sensitive endpoint is listed with a null value and "sensitive": true.
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .flat_map(|e| {
            e.values.iter().map(|(name, value)| {
                json!({
                    "cluster": e.cluster,
                    "runtime": e.runtime,
                    "name": name,
                    "value": value.as_ref().map(Value::to_json),
                    "sensitive": value.is_none(),
                })
            })
        })
        .collect();
    let controllers = controller::status_json(controllers);
    serde_json::to_string_pretty(
        &json!({ "nodes": list, "endpoints": endpoints, "controllers": controllers }),
    )
    .unwrap_or_default()
}

fn verb(action: Action, done: bool) -> &'static str {
    match (action, done) {
        (Action::Create, false) => "Creating",
        (Action::Create, true) => "Creation complete",
        (Action::Update, false) => "Modifying",
        (Action::Update, true) => "Modifications complete",
        (Action::Replace, false) => "Replacing",
        (Action::Replace, true) => "Replacement complete",
        (Action::Delete, false) => "Destroying",
        (Action::Delete, true) => "Destruction complete",
        (Action::NoOp, _) => "Unchanged",
    }
}

/// One line of apply's progress.
pub fn apply_event(e: ApplyEvent, style: Style) -> String {
    match e {
        ApplyEvent::Started {
            address,
            kept: true,
            ..
        } => format!("{address}: Forgetting (kept in place)..."),
        ApplyEvent::Started {
            address, action, ..
        } => format!("{address}: {}...", verb(action, false)),
        ApplyEvent::Finished {
            address,
            action,
            kept,
            elapsed,
            id,
        } => {
            let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
            let done = if kept {
                "Forgotten, kept in place"
            } else {
                verb(action, true)
            };
            format!("{address}: {done} after {}s{id}", elapsed.as_secs())
        }
        ApplyEvent::Failed {
            address,
            action,
            message,
        } => style.red(&format!(
            "{address}: {} failed: {message}",
            match action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Replace => "replace",
                Action::Delete => "destroy",
                Action::NoOp => "change",
            }
        )),
        ApplyEvent::Progress {
            address,
            action,
            elapsed,
            note,
        } => {
            let note = note.map(|n| format!(": {n}")).unwrap_or_default();
            format!(
                "{address}: still {}... [{}s elapsed]{note}",
                verb(action, false).to_lowercase(),
                elapsed.as_secs()
            )
        }
        ApplyEvent::Interrupted { in_flight } => format!("\nInterrupted: no new changes start; waiting for the {in_flight} in flight to finish, then state is saved..."),
    }
}

/// How an apply ended: what goes to stdout, and what to stderr.
pub fn apply_report(
    plan: &Plan,
    report: &ApplyReport,
    outputs: &tik_engine::state::Outputs,
    style: Style,
) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    let d = &report.done;
    let kept = match d.keep {
        0 => String::new(),
        n => format!(", {n} kept"),
    };
    let totals = if plan.destroy {
        format!("Resources: {} destroyed{kept}.", d.destroy)
    } else {
        let moved = match plan.moves.len() {
            0 => String::new(),
            n => format!(", {n} moved"),
        };
        format!(
            "Resources: {} added, {} changed, {} replaced, {} destroyed{kept}{moved}.",
            d.add, d.change, d.replace, d.destroy
        )
    };
    if report.interrupted {
        let _ = writeln!(
            out,
            "\n{} {totals}",
            style.yellow("Apply interrupted; state saved.")
        );
        let _ = writeln!(
            out,
            "{} change(s) did not start. Run tik apply again to finish.",
            report.not_started
        );
    } else if !report.ok() {
        let _ = writeln!(
            err,
            "\n{} {totals}",
            style.red(&format!(
                "Apply failed: {} change(s) failed.",
                report.failures.len()
            ))
        );
        for (addr, msg) in &report.failures {
            let _ = writeln!(err, "  - {addr}: {msg}");
        }
        if !report.skipped.is_empty() {
            let _ = writeln!(
                err,
                "Skipped because something they need failed: {}",
                report.skipped.join(", ")
            );
        }
    } else {
        let head = if plan.destroy {
            "Destroy complete!"
        } else {
            "Apply complete!"
        };
        let _ = writeln!(out, "\n{} {totals}", style.green(head));
        if !plan.destroy && !outputs.is_empty() {
            let _ = write!(out, "\nOutputs:\n\n{}", self::outputs(outputs));
        }
    }
    (out, err)
}
