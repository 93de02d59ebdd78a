//! Apply's live view on a terminal: a line per change in flight with its elapsed
//! time and what its provider says it waits for, under a count of what is done,
//! running and left; what finishes scrolls above as the plain lines a pipe gets.

use super::{apply_event, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::time::Duration;
use tik_engine::addr::Address;
use tik_engine::apply::ApplyEvent;

pub struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    running: HashMap<Address, ProgressBar>,
    done: usize,
    failed: usize,
    total: usize,
    style: Style,
}

impl Live {
    /// A live view of `total` changes, drawn on stdout.
    pub fn new(total: usize, style: Style) -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let header = multi.add(ProgressBar::new(total as u64));
        header.set_style(
            ProgressStyle::with_template("{bar:24} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut live = Live {
            multi,
            header,
            running: HashMap::new(),
            done: 0,
            failed: 0,
            total,
            style,
        };
        live.count();
        live
    }

    fn count(&mut self) {
        let left = self
            .total
            .saturating_sub(self.done + self.failed + self.running.len());
        let failed = if self.failed > 0 {
            format!(", {} failed", self.failed)
        } else {
            String::new()
        };
        self.header.set_position((self.done + self.failed) as u64);
        self.header.set_message(format!(
            "{} done, {} running, {left} left{failed}",
            self.done,
            self.running.len()
        ));
    }

    /// Shows one event: a change that starts gets a line of its own; one that ends
    /// loses it and is printed above, as off a terminal.
    pub fn event(&mut self, e: ApplyEvent) {
        match &e {
            ApplyEvent::Started { address, .. } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(apply_event(e.clone(), self.style));
                bar.enable_steady_tick(Duration::from_millis(200));
                self.running.insert(address.clone(), bar);
            }
            ApplyEvent::Finished { address, .. } | ApplyEvent::Failed { address, .. } => {
                if let Some(bar) = self.running.remove(address) {
                    bar.finish_and_clear();
                }
                if matches!(e, ApplyEvent::Failed { .. }) {
                    self.failed += 1;
                } else {
                    self.done += 1;
                }
                let _ = self.multi.println(apply_event(e, self.style));
            }
            ApplyEvent::Progress { address, note, .. } => {
                // The line already counts the time; the provider's note is news.
                if let (Some(bar), Some(note)) = (self.running.get(address), note) {
                    let line = bar.message();
                    let head = line.split(" — ").next().unwrap_or(&line).to_string();
                    bar.set_message(format!("{head} — {note}"));
                }
            }
            ApplyEvent::Interrupted { .. } => {
                let _ = self.multi.println(apply_event(e, self.style));
            }
        }
        self.count();
    }

    /// Takes the live lines away, leaving what was printed above them.
    pub fn finish(self) {
        for bar in self.running.values() {
            bar.finish_and_clear();
        }
        self.header.finish_and_clear();
        let _ = self.multi.clear();
    }
}
