use crate::backends;
use crate::project::*;
use crate::render::{self, Style};
use clap::Args;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tik_engine::controller::{watched, Memory, Outcome, Registration, Round};
use tik_engine::diag::Diagnostic;
use tokio::sync::Notify;

#[derive(Args)]
pub(crate) struct Run {
    /// The clusters to keep (by default every cluster, and what depends on them): a root cluster's name, or the
    /// address of one in a module.
    pub(crate) clusters: Vec<String>,
    /// How long from the end of one round to the start of the next (5s, 1m).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub(crate) interval: String,
    /// Run one round and exit: 0 when everything is as it should be (or was made so),
    /// 1 when a change failed, 2 when the round could not act (paused, or the state
    /// lock held by another run).
    #[arg(long)]
    pub(crate) once: bool,
    /// How many changes a round may run at once.
    #[arg(long, default_value_t = 10)]
    pub(crate) parallelism: usize,
    /// Where it runs, in words, for tik status (the service on a head says so).
    #[arg(long, hide = true, default_value = "in the foreground")]
    pub(crate) running_on: String,
}

/// Set on Ctrl-C or SIGTERM: the round in progress stops starting changes, and no
/// other round starts.
#[derive(Default)]
struct Stop {
    asked: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Listens from now on: the handlers are in place before this returns, so a
    /// signal that comes at once (a supervisor stopping a controller just started)
    /// still stops it cleanly.
    fn listen() -> Arc<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        tokio::spawn(async move {
            let wait = |sig: Option<tokio::signal::unix::Signal>| async move {
                match sig {
                    Some(mut sig) => {
                        sig.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
            s.asked.store(true, Ordering::SeqCst);
            s.notify.notify_waiters();
        });
        stop
    }

    fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.asked() {
            notified.await;
        }
    }
}

pub(crate) async fn run(args: Run, dir: &Path, style: Style) -> Result<u8> {
    let interval = backends::parse_duration(&args.interval)
        .map_err(|e| Diagnostic::new(format!("--interval: {e}")))?;
    if interval < Duration::from_millis(100) {
        return Err(Diagnostic::new("--interval must be at least 100ms")
            .help("a round reads every watched cluster; 5s is the default")
            .into());
    }
    if args.parallelism == 0 {
        return Err(Diagnostic::new("--parallelism must be at least 1").into());
    }
    // By its path, not as `.`: a controller on a head has its project copied anew
    // over the directory it started in.
    let stop = Stop::listen();
    let absolute = std::env::current_dir()
        .map_err(|e| Diagnostic::new(format!("cannot tell the current directory: {e}")))?
        .join(dir);
    let dir = absolute.as_path();
    let registration = {
        let p = Project::load(dir)?;
        let watch = watched(&p.config, &args.clusters).map_err(|d| p.fail(d))?;
        let names: Vec<String> = watch
            .clusters
            .iter()
            .map(tik_engine::scale::cluster_label)
            .collect();
        let registration =
            Registration::claim(p.backend()?, &watch.clusters, &args.running_on, interval)
                .map_err(|d| p.fail(d))?;
        logln(&format!(
            "watching {} {} (state: {})",
            if names.len() == 1 {
                "cluster"
            } else {
                "clusters"
            },
            names.join(", "),
            p.backend()?.describe()
        ));
        registration
    };
    let mut c = Controller {
        args: &args,
        dir,
        style,
        stop,
        said: None,
        memory: Memory::default(),
        registration,
        lines: Vec::new(),
    };
    let code = c.rounds(interval).await;
    c.finish();
    code
}

fn logln(text: &str) {
    outln!("{} {text}", tik_engine::timefmt::now_utc());
}

/// A running controller: what it keeps between rounds.
struct Controller<'a> {
    args: &'a Run,
    dir: &'a Path,
    style: Style,
    stop: Arc<Stop>,
    /// What the last round said when it could not act, so that it is said once.
    said: Option<String>,
    memory: Memory,
    registration: Registration,
    /// This round's log lines, for the status record.
    lines: Vec<String>,
}

impl Controller<'_> {
    fn log(&mut self, text: &str) {
        let line = format!("{} {text}", tik_engine::timefmt::now_utc());
        outln!("{line}");
        self.lines.push(line);
    }

    /// Says `note` unless the last round said it.
    fn note(&mut self, note: String) {
        if self.said.as_ref() != Some(&note) {
            self.log(&note);
            self.said = Some(note);
        }
    }

    async fn rounds(&mut self, interval: Duration) -> Result<u8> {
        loop {
            let code = match self.round().await {
                Ok(code) => code,
                // A configuration that does not load now (an edit in progress) waits
                // for the next round, as files that differ from the applied ones do.
                Err(f) if !self.args.once => {
                    let text = f.diags.render(&f.sources);
                    self.note(format!("cannot run a round:\n{}", text.trim_end()));
                    2
                }
                Err(f) => return Err(f),
            };
            if self.args.once {
                return Ok(code);
            }
            if self.stop.asked() {
                return Ok(0);
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.stop.wait() => return Ok(0),
            }
        }
    }

    /// Marks the status record stopped: `tik status` says so.
    fn finish(self) {
        let stopped = Project::load(self.dir).and_then(|p| {
            let backend = p.backend()?;
            self.registration.stop(backend).map_err(|d| p.fail(d))
        });
        if let Err(f) = stopped {
            errln!(
                "warning: could not mark the controller's status record stopped:\n{}",
                f.diags.render(&f.sources).trim_end()
            );
        }
        if !self.args.once {
            logln("stopped");
        }
    }

    async fn round(&mut self) -> Result<u8> {
        let p = Project::load(self.dir)?;
        let watch = watched(&p.config, &self.args.clusters).map_err(|d| p.fail(d))?;
        let r = Round {
            config: &p.config,
            providers: &p.providers,
            backend: p.backend()?,
            watch: &watch,
            parallelism: self.args.parallelism,
        };
        let style = self.style;
        let stop = self.stop.clone();
        let lines = &mut self.lines;
        let outcome = r
            .run(&mut self.memory, stop.wait(), &mut |e| {
                for text in render::controller::event(e, style) {
                    let line = format!("{} {text}", tik_engine::timefmt::now_utc());
                    outln!("{line}");
                    lines.push(line);
                }
            })
            .await
            .map_err(|d| p.fail(d))?;
        let note = render::controller::note(&outcome);
        let (code, summary) = match &outcome {
            Outcome::Idle => (0, "idle".to_string()),
            Outcome::Acted { report, .. } => {
                let line = render::controller::round(report);
                self.log(&line);
                self.said = None;
                (u8::from(!report.ok()), line)
            }
            _ => (2, String::new()),
        };
        let summary = match note {
            Some(n) => {
                self.note(n.clone());
                n
            }
            None if matches!(outcome, Outcome::Idle) && self.said.is_some() => {
                self.log("the watched clusters are as they should be");
                self.said = None;
                summary
            }
            None => summary,
        };
        let lines = std::mem::take(&mut self.lines);
        let waiting = self
            .memory
            .waits()
            .into_iter()
            .map(render::controller::backoff)
            .collect();
        self.registration
            .round(p.backend()?, &summary, lines, waiting)
            .map_err(|d| p.fail(d))?;
        Ok(code)
    }
}
