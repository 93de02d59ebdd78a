//! The controller's log: one line per thing it found and per change it made.

use super::{apply_event, drift, summary_line, Style};
use tik_engine::apply::{ApplyEvent, ApplyReport};
use tik_engine::controller::{Backoff, Event, Heal, Outcome, Seen};
use tik_engine::plan::Plan;

/// The lines of what a round tells as it goes; a change starting says nothing (its
/// end, or its progress, does).
pub fn event(e: Event<'_>, style: Style) -> Vec<String> {
    match e {
        Event::Change(ApplyEvent::Started { .. }) => Vec::new(),
        Event::Change(e) => vec![apply_event(e, style).trim_start().to_string()],
        Event::Acting(plan) => found(plan),
        Event::Failing(f) => vec![format!(
            "{}: its health check failed ({} of {} checks in a row before it is recovered)",
            f.check,
            f.rounds.min(f.of),
            f.of
        )],
        Event::DemandUnknown(d) => {
            let why = match (&d.more, &d.idle) {
                (Err(e), _) => format!("its demand command {e}"),
                (_, Some(Err(e))) => format!("its idle command {e}"),
                _ => return Vec::new(),
            };
            vec![format!(
                "{}: {} (no scaling decision from it)",
                d.source,
                super::first_line(&why)
            )]
        }
        Event::Scaling(s) => vec![format!(
            "cluster {}, workers \"{}\": {} -> {} workers ({})",
            tik_engine::scale::cluster_label(&s.cluster),
            s.pool,
            s.from,
            s.to,
            s.why
        )],
        Event::Superseded { scale, now } => vec![format!(
            "cluster {}, workers \"{}\": not {} -> {} workers ({}): its size was set to {} meanwhile, which stands",
            tik_engine::scale::cluster_label(&scale.cluster),
            scale.pool,
            scale.from,
            scale.to,
            scale.why,
            now.map_or_else(|| "its default".to_string(), |n| n.to_string())
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

/// A wait after failed rounds, of a pool or of the whole watched set, in words.
pub fn backoff(b: &Backoff) -> String {
    format!(
        "{}backing off until {} ({}s) after {} failed round{}: {}",
        b.pool
            .as_ref()
            .map_or_else(String::new, |(cluster, pool)| format!(
                "cluster {}, workers \"{pool}\": ",
                tik_engine::scale::cluster_label(cluster)
            )),
        b.until_utc,
        b.wait.as_secs(),
        b.failures,
        if b.failures == 1 { "" } else { "s" },
        super::first_line(&b.reason)
    )
}

/// What a round that could not act says (once, until it says something else).
pub fn note(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Paused(why) => Some(format!("paused: {why}")),
        Outcome::BackingOff(b) => Some(backoff(b)),
        Outcome::Waiting(holder) => Some(format!(
            "waiting: the state lock is held by {} (operation {}, since {})",
            holder.who, holder.operation, holder.created
        )),
        Outcome::Idle | Outcome::Acted { .. } => None,
    }
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

/// A cluster's controller as `tik status` shows it, under the cluster, from its
/// status record: where it runs, its last round, its last actions.
pub fn status(out: &mut String, controllers: &[(String, Seen)], cluster: &str, style: Style) {
    let Some((_, seen)) = controllers.iter().find(|(c, _)| c == cluster) else {
        return;
    };
    // A record is read from the store, written by whoever could write there: what
    // it says reaches the terminal without its control characters.
    let clean = |t: &str| -> String {
        t.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let s = &seen.status;
    let (on, who, started) = (clean(&s.on), clean(&s.who), clean(&s.started));
    let last = match &s.last_round {
        Some(at) => format!("; last round {}: {}", clean(at), clean(&s.last_outcome)),
        None => String::new(),
    };
    let head = match (&s.stopped, seen.alive) {
        (Some(at), _) => format!(
            "stopped at {} (ran {on} as {who}, pid {}){last}",
            clean(at),
            s.pid
        ),
        (None, true) => format!(
            "running {on} as {who} (pid {}) since {started}{last}",
            s.pid
        ),
        (None, false) => style.yellow(&format!(
            "not heard from for {}s (ran {on} as {who}, pid {}): it may have died{last}",
            seen.silent_for, s.pid
        )),
    };
    out.push_str(&format!("  controller  {head}\n"));
    if seen.alive {
        for w in &s.waiting {
            out.push_str(&format!(
                "    {}\n",
                style.yellow(&clean(super::first_line(w)))
            ));
        }
    }
    for line in s.actions.iter().rev().take(5).rev() {
        out.push_str(&format!("    {}\n", clean(super::first_line(line))));
    }
}

/// The same for `tik status --json`.
pub fn status_json(controllers: &[(String, Seen)]) -> serde_json::Value {
    serde_json::Value::Array(
        controllers
            .iter()
            .map(|(cluster, seen)| {
                serde_json::json!({
                    "cluster": cluster,
                    "running": seen.alive,
                    "silent_for_seconds": seen.silent_for,
                    "status": seen.status,
                })
            })
            .collect(),
    )
}
