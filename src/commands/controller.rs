use crate::project::*;
use crate::render::{self, Style};
use crate::{backends, VarArgs};
use clap::Args;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tik_engine::controller::{watched, Event, Memory, Outcome, Round};
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
    #[command(flatten)]
    pub(crate) vars: VarArgs,
}

/// Set on Ctrl-C or SIGTERM: the round in progress stops starting changes, and no
/// other round starts.
#[derive(Default)]
struct Stop {
    asked: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn listen() -> Arc<Stop> {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut t) => {
                        t.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
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
    let stop = Stop::listen();
    // What the last round said when it could not act, so that it is said once.
    let mut said: Option<String> = None;
    let mut first = true;
    let mut memory = Memory::default();
    loop {
        let code = round(&args, dir, style, &stop, &mut said, &mut memory, first).await;
        first = false;
        let code = match code {
            Ok(code) => code,
            // A configuration that does not load now (an edit in progress) waits for
            // the next round, as files that differ from the applied ones do.
            Err(f) if !args.once => {
                let text = f.diags.render(&f.sources);
                if said.as_deref() != Some(text.as_str()) {
                    logln(&format!("cannot run a round:\n{}", text.trim_end()));
                    said = Some(text);
                }
                2
            }
            Err(f) => return Err(f),
        };
        if args.once {
            return Ok(code);
        }
        if stop.asked() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait() => break,
        }
    }
    logln("stopped");
    Ok(0)
}

fn logln(text: &str) {
    outln!("{} {text}", tik_engine::timefmt::now_utc());
}

async fn round(
    args: &Run,
    dir: &Path,
    style: Style,
    stop: &Stop,
    said: &mut Option<String>,
    memory: &mut Memory,
    first: bool,
) -> Result<u8> {
    let p = Project::load(dir)?;
    let watch = watched(&p.config, &args.clusters).map_err(|d| p.fail(d))?;
    if first {
        let names: Vec<String> = watch
            .clusters
            .iter()
            .map(tik_engine::scale::cluster_label)
            .collect();
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
    }
    let inputs = p.inputs(&args.vars)?;
    let r = Round {
        config: &p.config,
        providers: &p.providers,
        backend: p.backend()?,
        inputs: &inputs,
        watch: &watch,
        parallelism: args.parallelism,
    };
    let mut on_event = |e: Event<'_>| {
        for line in render::controller::event(e, style) {
            logln(&line);
        }
    };
    let outcome = r
        .run(memory, stop.wait(), &mut on_event)
        .await
        .map_err(|d| p.fail(d))?;
    let (code, note) = match &outcome {
        Outcome::Idle => (0, None),
        Outcome::Paused(why) => (2, Some(format!("paused: {why}"))),
        Outcome::BackingOff(b) => (
            2,
            Some(format!(
                "backing off until {} ({}s) after {} failed round{}: {}",
                b.until_utc,
                b.wait.as_secs(),
                b.failures,
                if b.failures == 1 { "" } else { "s" },
                b.reason
            )),
        ),
        Outcome::Waiting(holder) => (
            2,
            Some(format!(
                "waiting: the state lock is held by {} (operation {}, since {})",
                holder.who, holder.operation, holder.created
            )),
        ),
        Outcome::Acted { report, .. } => {
            logln(&render::controller::round(report));
            *said = None;
            (u8::from(!report.ok()), None)
        }
    };
    match note {
        Some(n) if said.as_ref() != Some(&n) => {
            logln(&n);
            *said = Some(n);
        }
        Some(_) => {}
        None if matches!(outcome, Outcome::Idle) && said.is_some() => {
            logln("the watched clusters are as they should be");
            *said = None;
        }
        None => {}
    }
    Ok(code)
}
