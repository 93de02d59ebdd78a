//! The controller's log: one line per thing it found and per change it made.

use super::{apply_event, drift, summary_line, Style};
use tik_engine::apply::{ApplyEvent, ApplyReport};
use tik_engine::plan::Plan;

/// A change's line; a change starting says nothing (its end, or its progress, does).
pub fn event(e: ApplyEvent, style: Style) -> Option<String> {
    match e {
        ApplyEvent::Started { .. } => None,
        e => Some(apply_event(e, style).trim_start().to_string()),
    }
}

/// What a round found wrong, before it acts: each drift on one line, then the plan's
/// totals.
pub fn found(plan: &Plan) -> Vec<String> {
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
