//! The controller's log: one line per thing it found and per change it made.

use super::{apply_event, drift, summary_line, Style};
use tik_engine::apply::{ApplyEvent, ApplyReport};
use tik_engine::controller::{Event, Heal};
use tik_engine::plan::Plan;

/// The lines of what a round tells as it goes; a change starting says nothing (its
/// end, or its progress, does).
pub fn event(e: Event<'_>, style: Style) -> Vec<String> {
    match e {
        Event::Change(ApplyEvent::Started { .. }) => Vec::new(),
        Event::Change(e) => vec![apply_event(e, style).trim_start().to_string()],
        Event::Acting(plan) => found(plan),
        Event::Failing(f) => vec![format!(
            "{}: its health check failed ({} of {} rounds in a row before it is recovered)",
            f.check,
            f.rounds.min(f.of),
            f.of
        )],
        Event::Healing(Heal::Restart { check, attempt, of }) => vec![format!(
            "{check}: restarting it (recovery {attempt} of {of} before its node is replaced)"
        )],
        Event::Healing(Heal::Replace {
            check,
            node,
            attempts,
        }) => vec![format!(
            "{node}: replacing the node: {check} kept failing its health check after {attempts} restart{}",
            if *attempts == 1 { "" } else { "s" }
        )],
    }
}

/// What a round found wrong, before it acts: each drift on one line, then the plan's
/// totals.
fn found(plan: &Plan) -> Vec<String> {
    let plain = Style {
        color: false,
        verbose: false,
    };
    let mut lines: Vec<String> = plan
        .drift
        .iter()
        .map(|d| {
            let text = drift(d, plain);
            let first = text.lines().next().unwrap_or_default().trim();
            first.trim_start_matches("# ").to_string()
        })
        .collect();
    lines.push(format!("acting: {}", summary_line(plan)));
    lines
}

/// The line that ends a round that acted.
pub fn round(report: &ApplyReport) -> String {
    let d = &report.done;
    let totals = format!(
        "{} added, {} changed, {} replaced, {} destroyed",
        d.add, d.change, d.replace, d.destroy
    );
    if report.interrupted {
        format!(
            "round interrupted: {totals}; state saved, the next round or apply finishes the work"
        )
    } else if !report.ok() {
        format!(
            "round failed: {totals}; {} failed, the next round tries again",
            report.failures.len()
        )
    } else {
        format!("round done: {totals}")
    }
}
