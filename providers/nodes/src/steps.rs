//! Node steps: running a runtime's scripts on a node, over SSH (the `openssh` crate,
//! one multiplexed connection per node) or, on the local provider's default
//! transport, as a local process.
//!
//! Every step runs as `sh -c`, never a login shell; every value tik passes in is an
//! environment variable set with shell quoting, never spliced into the script. Over
//! SSH the login's shell runs once per connection, to start the node's agent
//! (`agent`), which runs every script tik sends the node. What a step printed goes
//! to a log file per node, and the tail of it into the error of a failed step.

mod agent;
mod put;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tik_engine::connection::{self as contract, NodeConnection};
use tik_engine::provider::{ChangeRequest, Operation, Progress, ProviderError};
use tik_engine::value::{Map, Value};

/// How long a node may take to answer SSH before its session fails.
pub const SSH_WAIT: Duration = Duration::from_secs(600);
/// How long a started service may take to pass its health check.
const HEALTH_WAIT: Duration = Duration::from_secs(60);
/// How long one step may run.
const STEP_LIMIT: Duration = Duration::from_secs(3600);
/// How many lines of a failed step's output its error shows.
const TAIL: usize = 30;

/// Runs steps and keeps one SSH connection per node for all of them.
pub struct Runner {
    log_dir: PathBuf,
    sessions: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Link>>>>>,
}

impl Runner {
    pub fn new(log_dir: PathBuf) -> Self {
        Runner {
            log_dir,
            sessions: Default::default(),
        }
    }

    /// Applies a `tik_session`: on create, waits until the node answers and records
    /// its host key; on delete, closes the connection.
    pub async fn apply_session(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let mut attrs = change.planned.clone();
        if change.operation == Operation::Delete {
            if let Ok(conn) = Connection::of(&change.planned) {
                self.sessions.lock().await.remove(&conn.key());
            }
            return Ok(Map::new());
        }
        let conn = Connection::of(&attrs)?;
        let host_key = match &conn.transport {
            Transport::Local => {
                std::fs::create_dir_all(&conn.home)
                    .map_err(|e| ProviderError::new(format!("cannot create {}: {e}", conn.home)))?;
                Value::Null
            }
            Transport::Ssh(ssh) => {
                // The key recorded at first contact stays the node's key for as long
                // as the node does; a node tik created anew is contacted anew.
                let recorded = change
                    .prior
                    .as_ref()
                    .filter(|p| p.get("node_id") == attrs.get("node_id"))
                    .and_then(|p| p.get("host_key"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let key = match recorded {
                    Some(k) => k,
                    None => {
                        let wait = attrs
                            .get("wait")
                            .and_then(Value::as_f64)
                            .filter(|s| *s > 0.0 && *s < 86_400.0)
                            .map_or(SSH_WAIT, Duration::from_secs_f64);
                        let (key, session) =
                            first_contact(ssh, &change.address.to_string(), wait, &change.progress)
                                .await?;
                        // The steps use this connection: one handshake per node.
                        let cell = tokio::sync::OnceCell::new_with(Some(Arc::new(
                            Link::keep(session).await?,
                        )));
                        self.sessions
                            .lock()
                            .await
                            .insert(conn.key(), Arc::new(cell));
                        key
                    }
                };
                Value::String(key)
            }
        };
        attrs.insert("host_key".into(), host_key);
        Ok(attrs)
    }

    /// Applies a `tik_step`: runs its script (a start reruns as stop, then start, and
    /// waits for health); deleting a start step stops the service.
    pub async fn apply_step(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let a = &change.planned;
        let step = a.get("step").and_then(Value::as_str).unwrap_or_default();
        let address = change.address.to_string();
        match change.operation {
            Operation::Delete => {
                let Some(stop) = a.get("stop").and_then(Value::as_str) else {
                    return Ok(Map::new());
                };
                // A node that cannot be reached runs nothing any more; one that shows
                // another host key may, and is not trusted to say so.
                let target = match self.target(a).await {
                    Ok(t) => t,
                    Err(e) if e.code.as_deref() == Some("HostKeyMismatch") => return Err(e),
                    Err(_) => return Ok(Map::new()),
                };
                match self
                    .run(&target, a, &address, "stop", stop, STEP_LIMIT)
                    .await
                {
                    // Its container is gone, and the service with it.
                    Err(_) if !self.container_exists(&target).await => Ok(Map::new()),
                    Err(e) => Err(e),
                    Ok(_) => Ok(Map::new()),
                }
            }
            Operation::Create | Operation::Update => {
                let prior = change.prior.as_ref().unwrap_or(a);
                if let Some(attrs) = record_only(change) {
                    return Ok(attrs);
                }
                let target = self.target(a).await?;
                let script = a.get("script").and_then(Value::as_str).unwrap_or_default();
                // The old service stops where it ran: on the host, or in the same
                // container. One in a container since made anew or removed went with
                // it; its pid file names nothing (or another process) now.
                let gone = prior.get("container").is_some()
                    && prior.get("container") != a.get("container");
                if step == "start" && change.operation == Operation::Update && !gone {
                    if let Some(stop) = prior.get("stop").and_then(Value::as_str) {
                        let before = self.target(prior).await?;
                        self.run(&before, prior, &address, "stop", stop, STEP_LIMIT)
                            .await?;
                    }
                }
                self.put(&target, a, &address, step).await?;
                self.run(&target, a, &address, step, script, STEP_LIMIT)
                    .await?;
                if step == "start" {
                    if let Some(health) = a.get("health").and_then(Value::as_str) {
                        let limit = a
                            .get("health_timeout")
                            .and_then(Value::as_f64)
                            .filter(|s| *s > 0.0 && *s < 86_400.0)
                            .map_or(HEALTH_WAIT, Duration::from_secs_f64);
                        self.wait_healthy(&target, a, &address, health, limit, &change.progress)
                            .await?;
                    }
                }
                let mut attrs = a.clone();
                attrs.insert("hash".into(), Value::String(step_hash(a)));
                Ok(attrs)
            }
        }
    }

    /// Runs `script` on the node `attrs` name (a runtime's scaling command) and
    /// returns what it printed; within `limit`, or an error that says what happened.
    pub async fn ask(&self, attrs: &Map, script: &str, limit: Duration) -> Result<String, String> {
        let target = self.target(attrs).await.map_err(|e| e.message)?;
        let wrapped = wrapped(attrs, target.home(), script);
        let out = tokio::time::timeout(limit, run_sh(&target, &wrapped, true))
            .await
            .map_err(|_| format!("still running after {} s: stopped it", limit.as_secs()))??;
        if !out.status.success() {
            let said = output_text(&out.stdout, &out.stderr);
            let last = said
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(format!(
                "exit {}{}",
                out.status.code().unwrap_or(-1),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last.trim())
                }
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a service's health check once on its node.
    pub async fn check(&self, attrs: &Map, health: &str) -> Health {
        let target = match self.target(attrs).await {
            Ok(t) => t,
            Err(e) => return Health::Unreachable(e.message),
        };
        match exec(&target, attrs, health, Duration::from_secs(30)).await {
            Ok((0, _)) => Health::Healthy,
            Ok((code, output)) => Health::Unhealthy { code, output },
            Err(e) => Health::Unhealthy {
                code: -1,
                output: e,
            },
        }
    }

    /// Reads recorded steps back: a start step whose health check runs and fails is
    /// read with `running = false` (its service died, or was stopped by hand), one
    /// that passes with `running = true`. Other steps, and those whose node cannot
    /// be reached, are as recorded. All nodes at once.
    pub async fn read_steps(self: &Arc<Self>, items: Vec<Map>) -> Vec<Option<Map>> {
        self.each(items, |runner, mut attrs| async move {
            let health = (attrs.get("step").and_then(Value::as_str) == Some("start"))
                .then(|| {
                    attrs
                        .get("health")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .flatten();
            if let Some(health) = health {
                let running = match runner.check(&attrs, &health).await {
                    Health::Healthy => Some(true),
                    Health::Unhealthy { code, .. } if code >= 0 => Some(false),
                    Health::Unhealthy { .. } | Health::Unreachable(_) => None,
                };
                if let Some(running) = running {
                    attrs.insert("running".into(), Value::Bool(running));
                }
            }
            Some(attrs)
        })
        .await
    }

    /// Runs health checks on their nodes, all at once: `(step attributes, check)`.
    pub async fn check_all(self: &Arc<Self>, checks: Vec<(Map, String)>) -> Vec<Health> {
        self.each(checks, |runner, (attrs, health)| async move {
            runner.check(&attrs, &health).await
        })
        .await
    }

    /// Runs a user's command as `sh -c` on a node, in its home and with its `TIK_`
    /// variables, as `tik exec` does.
    pub async fn command(&self, attrs: &Map, command: &str) -> Result<Output, ProviderError> {
        let target = self.target(attrs).await?;
        let home = target.home().to_string();
        // Watched like a step: an interrupted `tik exec` stops what it ran.
        let script = format!(
            "{}cd \"$TIK_HOME\" || exit 1\n{PROFILE}{}exit $rc\n",
            exports(attrs, &home),
            watched(command, "")
        );
        let out = run_sh(&target, &script, true)
            .await
            .map_err(ProviderError::new)?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs a command on several nodes at once, one result per node in their order.
    pub async fn command_all(
        self: &Arc<Self>,
        nodes: Vec<Map>,
        command: &str,
    ) -> Vec<Result<Output, ProviderError>> {
        let command = Arc::new(command.to_string());
        self.each(nodes, move |runner, attrs| {
            let command = command.clone();
            async move { runner.command(&attrs, &command).await }
        })
        .await
    }

    /// Runs `work` for every item concurrently; results in the items' order.
    async fn each<I, F, Fut, R>(self: &Arc<Self>, items: Vec<I>, work: F) -> Vec<R>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: Fn(Arc<Self>, I) -> Fut,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        let n = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let fut = work(self.clone(), item);
            set.spawn(async move { (i, fut.await) });
        }
        let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
        while let Some(done) = set.join_next().await {
            if let Ok((i, r)) = done {
                results[i] = Some(r);
            }
        }
        results.into_iter().flatten().collect()
    }

    /// Where a step or command with these attributes runs: its node, and inside the
    /// node's container when the cluster has one.
    async fn target(&self, attrs: &Map) -> Result<Target, ProviderError> {
        let conn = Connection::of(attrs)?;
        let via = match &conn.transport {
            Transport::Local => Via::Local,
            Transport::Ssh(ssh) => {
                let host_key = attrs
                    .get("host_key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProviderError::new(
                            "the node's host key is not recorded yet (its session comes first)",
                        )
                    })?;
                let cell = self
                    .sessions
                    .lock()
                    .await
                    .entry(conn.key())
                    .or_default()
                    .clone();
                let link = cell
                    .get_or_try_init(|| async {
                        Link::keep(connect_verified(ssh, host_key, attrs).await?)
                            .await
                            .map(Arc::new)
                    })
                    .await?;
                Via::Ssh(link.clone())
            }
        };
        Ok(Target {
            via,
            home: conn.home.clone(),
            container: Container::of(attrs)?,
        })
    }

    /// Reads nodes' containers back, all at once: a container that is gone from its
    /// node, or whose name another container now has, reads as None (deleted outside
    /// tik: the plan makes it anew). Where the node cannot be asked (unreachable, its
    /// engine not answering), the recorded container stands: the plan cannot tell.
    pub async fn read_containers(self: &Arc<Self>, items: Vec<Map>) -> Vec<Option<Map>> {
        self.each(items, |runner, attrs| async move {
            match runner.container_id(&attrs).await {
                Some(found) => {
                    let recorded = attrs
                        .get("container")
                        .and_then(|c| c.get("id"))
                        .and_then(Value::as_str);
                    (found.as_deref() == recorded && found.is_some()).then_some(attrs)
                }
                None => Some(attrs),
            }
        })
        .await
    }

    /// The id of a node's container as its engine tells it: `Some(None)` when the
    /// engine says there is no such container, `None` when it cannot be asked.
    async fn container_id(&self, attrs: &Map) -> Option<Option<String>> {
        let target = self.target(attrs).await.ok()?;
        match inspect_container(&target).await {
            Inspected::Id(id) => Some(Some(id)),
            Inspected::NoSuch => Some(None),
            Inspected::EngineFailed | Inspected::Unreachable | Inspected::NoContainer => None,
        }
    }

    /// Whether the target's container is there (true for a target without one, or
    /// one whose node cannot be reached; false where its engine fails to answer).
    async fn container_exists(&self, target: &Target) -> bool {
        !matches!(
            inspect_container(target).await,
            Inspected::NoSuch | Inspected::EngineFailed
        )
    }

    /// Applies a `tik_container`: on create, (re)makes the node's container from its
    /// image, with the host's network and the node's home mounted at the same path;
    /// on delete, removes it.
    pub async fn apply_container(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let a = &change.planned;
        // Reached another way, it is the same container.
        if let Some(attrs) = record_only(change) {
            return Ok(attrs);
        }
        let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
        let engine = text("engine");
        check_engine(engine)?;
        let name = container_name(a)?;
        let address = change.address.to_string();
        let e = shell_quote(engine);
        let n = shell_quote(&name);
        if change.operation == Operation::Delete {
            let target = match self.target(a).await {
                Ok(t) => t.host(),
                Err(e) if e.code.as_deref() == Some("HostKeyMismatch") => return Err(e),
                Err(_) => return Ok(Map::new()),
            };
            let script = format!(
                "command -v {e} >/dev/null 2>&1 || exit 0\n{e} rm -f {n} >/dev/null 2>&1 || true\n"
            );
            self.run(&target, a, &address, "container", &script, STEP_LIMIT)
                .await?;
            return Ok(Map::new());
        }
        let target = self.target(a).await?.host();
        let image = text("image");
        let options: String = a
            .get("options")
            .and_then(|o| match o {
                Value::List(items) => Some(items),
                _ => None,
            })
            .map(|o| {
                o.iter()
                    .filter_map(Value::as_str)
                    .map(|v| format!(" {}", shell_quote(v)))
                    .collect()
            })
            .unwrap_or_default();
        let script = format!(
            "command -v {e} >/dev/null 2>&1 || {{\n\
             \x20 echo \"the cluster runs its services in containers with {engine}, which is not on this node: install it, or set the cluster's container {{ engine = ... }}\" >&2\n\
             \x20 exit 127\n\
             }}\n\
             {e} rm -f {n} >/dev/null 2>&1 || true\n\
             id=$({e} run -d --name {n} --network=host --label tik.node={label} --label tik.lineage={lineage} \\\n\
             \x20 -v \"$TIK_HOME:$TIK_HOME\" -w \"$TIK_HOME\"{options} {image} \\\n\
             \x20 sh -c 'trap \"exit 0\" TERM; while :; do sleep 3600 & wait $!; done') || exit 1\n\
             echo \"tik-container-id: $id\"\n",
            label = shell_quote(&address),
            lineage = shell_quote(&change.lineage),
            image = shell_quote(image),
        );
        let output = self
            .run(&target, a, &address, "container", &script, STEP_LIMIT)
            .await?;
        let id = output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("tik-container-id: "))
            .map(|i| i.trim().to_string())
            .unwrap_or_default();
        let mut attrs = a.clone();
        attrs.insert(
            "container".into(),
            Value::Object(Map::from_iter([
                ("engine".to_string(), Value::from(engine)),
                ("name".to_string(), Value::String(name)),
                ("id".to_string(), Value::String(id)),
                ("image".to_string(), Value::from(image)),
            ])),
        );
        Ok(attrs)
    }

    /// Copies what the step's `put` asks for to the node, before its script runs.
    async fn put(
        &self,
        target: &Target,
        attrs: &Map,
        address: &str,
        step: &str,
    ) -> Result<(), ProviderError> {
        let fail = |message: String| ProviderError {
            code: Some("StepFailed".into()),
            message: format!(
                "{step} failed on {}: {message}",
                attrs
                    .get("node_name")
                    .and_then(Value::as_str)
                    .unwrap_or("the node"),
            ),
        };
        for p in put::of(attrs).map_err(fail)? {
            let started = Instant::now();
            let input = p.input().map_err(fail)?;
            let mut script = String::from("set -u\n");
            script.push_str(&exports(attrs, target.home()));
            script.push_str(&p.script());
            let result = tokio::time::timeout(STEP_LIMIT, run_fed(target, &script, input))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "still copying after {} s: stopped",
                        STEP_LIMIT.as_secs()
                    ))
                });
            let (code, output) = match result {
                Ok(out) => (
                    out.status.code().unwrap_or(-1),
                    output_text(&out.stdout, &out.stderr),
                ),
                Err(e) => (-1, e),
            };
            let what = format!("{step}: copy {}", p.describe());
            self.log(attrs, address, &what, code, started.elapsed(), &output);
            if code != 0 {
                return Err(fail(format!(
                    "copying {} failed (exit {code}):\n{}",
                    p.describe(),
                    tail(&output)
                )));
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        target: &Target,
        attrs: &Map,
        address: &str,
        what: &str,
        script: &str,
        limit: Duration,
    ) -> Result<String, ProviderError> {
        let started = Instant::now();
        let result = exec(target, attrs, script, limit).await;
        let (code, output) = match result {
            Ok(r) => r,
            Err(e) => (-1, e),
        };
        self.log(attrs, address, what, code, started.elapsed(), &output);
        if code == 0 {
            return Ok(output);
        }
        Err(ProviderError {
            code: Some("StepFailed".into()),
            message: format!(
                "{what} failed (exit {code}) on {}; last lines of its output (all of it in {}):\n{}",
                attrs.get("node_name").and_then(Value::as_str).unwrap_or("the node"),
                self.log_path(attrs).display(),
                tail(&output)
            ),
        })
    }

    async fn wait_healthy(
        &self,
        target: &Target,
        attrs: &Map,
        address: &str,
        health: &str,
        limit: Duration,
        progress: &Progress,
    ) -> Result<(), ProviderError> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(100);
        loop {
            let (code, output) = exec(target, attrs, health, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| (-1, e));
            if code == 0 {
                return Ok(());
            }
            progress.note(format!(
                "started; waiting for its health check to pass (last exit {code}, gives up in {} s)",
                deadline.saturating_duration_since(Instant::now()).as_secs()
            ));
            if Instant::now() + pause > deadline {
                self.log(attrs, address, "health", code, limit, &output);
                return Err(ProviderError {
                    code: Some("Unhealthy".into()),
                    message: format!(
                        "the service started but its health check did not pass within {} s (last exit {code}):\n{}",
                        limit.as_secs(),
                        tail(&output)
                    ),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn log_path(&self, attrs: &Map) -> PathBuf {
        let part = |k: &str| {
            attrs
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .replace(['/', '\\'], "_")
        };
        self.log_dir
            .join(part("cluster"))
            .join(format!("{}.log", part("node_name")))
    }

    fn log(&self, attrs: &Map, address: &str, what: &str, code: i32, took: Duration, output: &str) {
        let path = self.log_path(attrs);
        let _ = path.parent().map(std::fs::create_dir_all);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(
                f,
                "== {address} ({what}): exit {code} after {:.1} s\n{output}",
                took.as_secs_f64()
            );
        }
    }
}

/// What a node's engine says of its container.
enum Inspected {
    Id(String),
    /// The engine answered: it has no such container.
    NoSuch,
    /// The engine ran and failed otherwise (missing, not answering).
    EngineFailed,
    /// The node could not be reached.
    Unreachable,
    /// The target has no container.
    NoContainer,
}

/// One `container inspect` of the target's container.
async fn inspect_container(target: &Target) -> Inspected {
    let Some(c) = &target.container else {
        return Inspected::NoContainer;
    };
    // Exit 3: the engine answered, and has no such container.
    let check = format!(
        "out=$({} container inspect --format '{{{{.Id}}}}' {} 2>&1) && {{ echo \"$out\"; exit 0; }}\n\
         case \"$out\" in *[Nn]o\\ such*) exit 3;; esac\nexit 1",
        shell_quote(&c.engine),
        shell_quote(&c.name)
    );
    match run_sh(&target.host(), &check, false).await {
        Err(_) => Inspected::Unreachable,
        Ok(out) => match out.status.code() {
            Some(0) => Inspected::Id(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            Some(3) => Inspected::NoSuch,
            _ => Inspected::EngineFailed,
        },
    }
}

/// A service's health, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// The check ran and failed: its exit code and output.
    Unhealthy {
        code: i32,
        output: String,
    },
    /// The node could not be reached.
    Unreachable(String),
}

/// What a command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// An interactive login to a node, for the CLI to run with the terminal attached.
#[derive(Debug, Clone)]
pub struct Login {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where to start it (a local node's home).
    pub dir: Option<String>,
    /// Files written for it, to remove once it ends.
    pub scratch: Vec<PathBuf>,
}

/// How to log in to a node: `ssh` with the host key recorded at first contact (and
/// nothing from the user's ~/.ssh/config), or for a local node a shell in its home.
/// With `command`, that command runs instead of a login shell.
pub fn login(attrs: &Map, command: Option<&str>) -> Result<Login, ProviderError> {
    let conn = Connection::of(attrs)?;
    let container = Container::of(attrs)?;
    match &conn.transport {
        Transport::Local => {
            let shell = std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "sh".into());
            let (program, args) = match (&container, command) {
                (Some(c), _) => {
                    let mut argv = c.login(&environment(attrs, &conn.home), command);
                    let program = argv.remove(0);
                    (program, argv)
                }
                (None, Some(c)) => (
                    "sh".to_string(),
                    vec!["-c".to_string(), format!("{PROFILE}{c}")],
                ),
                // A login shell in the node's home, with what its runtimes installed
                // on its PATH.
                (None, None) => (
                    "sh".to_string(),
                    vec!["-c".to_string(), format!("{PROFILE}exec \"$0\""), shell],
                ),
            };
            Ok(Login {
                program,
                args,
                env: environment(attrs, &conn.home),
                dir: Some(conn.home.clone()),
                scratch: Vec::new(),
            })
        }
        Transport::Ssh(ssh) => {
            let known = scratch_file("known-hosts");
            let recorded = attrs.get("host_key").and_then(Value::as_str);
            let check = match recorded {
                Some(key) => {
                    std::fs::write(&known, format!("{} {key}\n", host_pattern(ssh))).map_err(
                        |e| ProviderError::new(format!("cannot write {}: {e}", known.display())),
                    )?;
                    "yes"
                }
                // No session recorded a key (a cluster without runtimes): trust on
                // first use, into a file of its own, never the user's.
                None => "accept-new",
            };
            let mut args: Vec<String> = [
                "-F",
                "/dev/null",
                "-o",
                &format!("UserKnownHostsFile={}", known.display()),
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                &format!("StrictHostKeyChecking={check}"),
                "-p",
                &ssh.port.to_string(),
                "-l",
                &ssh.user,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut scratch = Scratch::default();
            if let Some(i) = &ssh.identity {
                args.extend(i.args(&mut scratch)?);
            }
            if let Some(j) = &ssh.jump {
                // Through the head, whose ssh speaks to the terminal.
                args.extend([
                    "-o".into(),
                    format!("ProxyCommand={}", j.proxy_command(&mut scratch, None)?),
                ]);
            }
            args.push(ssh.host.clone());
            match (&container, command) {
                (Some(c), _) => {
                    // ssh runs its command through the login shell: one quoted line,
                    // after the home under the login's $HOME where it is relative.
                    let mut line: Vec<String> = c
                        .login(&environment(attrs, &conn.home), command)
                        .iter()
                        .map(|w| shell_quote(w))
                        .collect();
                    if !conn.home.starts_with('/') {
                        let home = shell_quote(&conn.home);
                        line.insert(
                            0,
                            format!("TIK_HOME=\"$HOME\"/{home} && export TIK_HOME &&"),
                        );
                    }
                    if command.is_none() {
                        args.insert(0, "-t".into());
                    }
                    args.extend(["--".into(), line.join(" ")]);
                }
                (None, Some(c)) => args.extend([
                    "--".into(),
                    format!("{}{c}", login_prelude(attrs, &conn.home)),
                ]),
                (None, None) => {
                    args.insert(0, "-t".into());
                    // The user's login profile runs first (a login shell), and may set
                    // PATH anew (Debian's /etc/profile does): the node's home and its
                    // runtimes' profile come after it, then the interactive shell.
                    let after_login = format!(
                        "cd \"$TIK_HOME\" 2>/dev/null; {}; exec \"${{SHELL:-sh}}\" -i",
                        PROFILE.trim_end()
                    );
                    args.extend([
                        "--".into(),
                        format!(
                            "{}exec \"${{SHELL:-sh}}\" -l -c {}",
                            login_prelude(attrs, &conn.home),
                            shell_quote(&after_login)
                        ),
                    ]);
                }
            }
            Ok(Login {
                program: "ssh".into(),
                args,
                env: Vec::new(),
                dir: None,
                scratch: std::iter::once(known)
                    .chain(std::mem::take(&mut scratch.0))
                    .collect(),
            })
        }
    }
}

/// The address of a step's session, for messages that tell what to replace.
fn session_address(attrs: &Map) -> String {
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("?");
    format!("cluster.{}.{}.session", text("cluster"), text("node"))
}

/// The head's session beside a node's session (`...cluster.c.node.worker["w"][0].session`).
fn head_session_of(session: &str) -> String {
    match session.find(".node.") {
        Some(at) => format!("{}.node.head.session", &session[..at]),
        None => "cluster.NAME.node.head.session".into(),
    }
}

/// The hash of what a step ran: its script and every value it was given.
fn step_hash(attrs: &Map) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (k, v) in attrs {
        // Not what ran: what was found, and the way to the node.
        if k == "hash" || k == "host_key" || k == "jump_host_key" || k == "running" {
            continue;
        }
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.to_json().to_string().as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = lines.len().saturating_sub(TAIL);
    lines[from..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An update that changes only the way to a node (`runtime::WAY_IN`, or a session
/// made anew that found the host key it had): its new record, with what it computed
/// when it last ran, and nothing to run.
fn record_only(change: &ChangeRequest) -> Option<Map> {
    let prior = change.prior.as_ref()?;
    let changed = crate::runtime::step_changes(prior, &change.planned);
    if change.operation != Operation::Update || crate::runtime::step_runs(&changed) {
        return None;
    }
    let mut attrs = change.planned.clone();
    if let (Some(hash), false) = (prior.get("hash"), attrs.contains_key("hash")) {
        attrs.insert("hash".into(), hash.clone());
    }
    Some(attrs)
}

/// Where a script runs: on a node, in its home, and in its container if it has one.
struct Target {
    via: Via,
    home: String,
    container: Option<Container>,
}

/// How long a node's ssh master outlives its last channel: after tik ends, even
/// killed, no longer than this.
const LINGER: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(20) {
    Some(s) => s,
    None => unreachable!(),
};

/// A node's SSH connection, up for as long as tik holds it and no longer.
///
/// Its master ssh stays up only `LINGER` seconds after its last channel closes (not
/// forever, as it would with openssh's default). While tik runs one channel stays
/// open, so the master stays up between steps: the node's agent, which runs every
/// script tik sends the node and ends when its stdin, which only tik holds, closes.
struct Link {
    agent: agent::Agent,
    /// For a command with an input of its own (a file copied to the node).
    session: Arc<openssh::Session>,
}

impl Link {
    async fn keep(session: openssh::Session) -> Result<Link, ProviderError> {
        let session = Arc::new(session);
        let agent = agent::Agent::start(session.clone())
            .await
            .map_err(ProviderError::new)?;
        Ok(Link { agent, session })
    }
}

#[derive(Clone)]
enum Via {
    Local,
    Ssh(Arc<Link>),
}

impl Target {
    /// The node's home, where steps and commands run.
    fn home(&self) -> &str {
        &self.home
    }

    /// `script` as it runs on the target: in its container where it has one.
    fn inside<'s>(&self, script: &'s str) -> std::borrow::Cow<'s, str> {
        match &self.container {
            Some(c) => std::borrow::Cow::Owned(c.wrap(script)),
            None => std::borrow::Cow::Borrowed(script),
        }
    }

    /// The same node, on its host rather than in its container.
    fn host(&self) -> Target {
        Target {
            via: self.via.clone(),
            home: self.home.clone(),
            container: None,
        }
    }
}

/// A node's container, as its `tik_container` made it.
struct Container {
    engine: String,
    name: String,
    /// The `tik_container`'s address, for the hint when it is gone.
    address: String,
}

impl Container {
    fn of(attrs: &Map) -> Result<Option<Container>, ProviderError> {
        let Some(c) = attrs.get("container").and_then(Value::as_object) else {
            return Ok(None);
        };
        let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
        let engine = text("engine");
        check_engine(engine)?;
        if text("name").is_empty() {
            return Err(ProviderError::new(
                "the node's container has no name: its tik_container has not run yet",
            ));
        }
        let node = attrs.get("node").and_then(Value::as_str).unwrap_or("node");
        let cluster = attrs.get("cluster").and_then(Value::as_str).unwrap_or("?");
        Ok(Some(Container {
            engine: engine.to_string(),
            name: text("name").to_string(),
            address: format!("cluster.{cluster}.{node}.container"),
        }))
    }

    /// The argv that logs in to the container (a shell in the node's home), or runs
    /// `command` there, with the node's environment. A home given relative to the
    /// login's `$HOME` is not known here: the engine takes `TIK_HOME` from its own
    /// environment (`-e TIK_HOME`), which the caller sets, and the shell goes there.
    fn login(&self, env: &[(String, String)], command: Option<&str>) -> Vec<String> {
        let mut argv = vec![self.engine.clone(), "exec".into()];
        if command.is_none() {
            argv.push("-it".into());
        }
        let mut relative = false;
        for (k, v) in env {
            if k == "TIK_HOME" && !v.starts_with('/') {
                relative = true;
                argv.extend(["-e".into(), "TIK_HOME".into()]);
                continue;
            }
            argv.extend(["-e".into(), format!("{k}={v}")]);
            if k == "TIK_HOME" {
                argv.extend(["-w".into(), v.clone()]);
            }
        }
        argv.extend([self.name.clone(), "sh".into()]);
        match (relative, command) {
            (false, Some(c)) => argv.extend(["-c".into(), c.to_string()]),
            (false, None) => {}
            (true, c) => argv.extend([
                "-c".into(),
                format!("cd \"$TIK_HOME\" || exit 1\n{}", c.unwrap_or("exec sh")),
            ]),
        }
        argv
    }

    /// The host's command that runs `sh -c SCRIPT` in the container, and says so when
    /// the container is gone.
    fn wrap(&self, script: &str) -> String {
        let e = shell_quote(&self.engine);
        let n = shell_quote(&self.name);
        let gone = format!(
            "tik: the node's container {} is not there (removed by hand?): tik plan shows '{}' to be made again, and tik apply makes it and runs the node's steps in it",
            self.name, self.address
        );
        let stopped = format!(
            "tik: the node's container {} is stopped (the node restarted?): tik apply --replace '{}' makes it again, and runs the node's steps in it",
            self.name, self.address
        );
        // The login's $HOME, for a home relative to it (`exports`); `-i` carries the
        // host's stdin in, which `wrapped` watches.
        format!(
            "{e} exec -i -e TIK_LOGIN_HOME=\"$HOME\" {n} sh -c {}\nrc=$?\n\
             if [ $rc -ne 0 ]; then\n\
             \x20 if ! running=$({e} container inspect --format '{{{{.State.Running}}}}' {n} 2>/dev/null); then\n\
             \x20   echo {} >&2\n\
             \x20 elif [ \"$running\" != true ]; then\n\
             \x20   echo {} >&2\n\
             \x20 fi\n\
             fi\n\
             exit $rc\n",
            shell_quote(script),
            shell_quote(&gone),
            shell_quote(&stopped)
        )
    }
}

/// An engine's name goes into commands: only the two tik knows.
fn check_engine(engine: &str) -> Result<(), ProviderError> {
    if engine == "docker" || engine == "podman" {
        return Ok(());
    }
    Err(ProviderError::new(format!(
        "the node's container engine is \"{engine}\": tik runs containers with docker or podman"
    )))
}

/// The name of a node's container: from the node's id, so unique on its host.
fn container_name(attrs: &Map) -> Result<String, ProviderError> {
    let id = attrs
        .get("node_id")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ProviderError::new("the node has no id yet: it must exist first"))?;
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(format!("tik-{safe}"))
}

enum Transport {
    Local,
    Ssh(Ssh),
}

struct Ssh {
    host: String,
    port: u16,
    user: String,
    identity: Option<Identity>,
    /// The host this node is reached through (its cluster's head), for a node
    /// without a public address.
    jump: Option<Box<Jump>>,
}

/// The private key tik logs in with: a file of the user's, or the key itself as the
/// provider made it (kept in state), which reaches ssh through a file only its owner
/// reads, there while the connection is made.
enum Identity {
    File(String),
    Key(String),
}

impl Identity {
    /// ssh's `-i FILE -o IdentitiesOnly=yes`.
    fn args(&self, scratch: &mut Scratch) -> Result<[String; 4], ProviderError> {
        let file = match self {
            Identity::File(f) => f.clone(),
            Identity::Key(k) => scratch.write_private("key", k)?.display().to_string(),
        };
        Ok(["-i".into(), file, "-o".into(), "IdentitiesOnly=yes".into()])
    }
}

/// A jump host: how to reach it, and the host key its own session recorded (none
/// for a node never contacted through a session: then trusted on first use).
struct Jump {
    ssh: Ssh,
    host_key: Option<String>,
}

struct Connection {
    transport: Transport,
    home: String,
}

impl Connection {
    /// How to reach a node: its `connection` (the contract its provider fills),
    /// and the `jump` host (with its recorded `jump_host_key`) where the node has
    /// no public address.
    fn of(attrs: &Map) -> Result<Connection, ProviderError> {
        let c = attrs
            .get(contract::ATTRIBUTE)
            .filter(|c| c.as_object().is_some())
            .ok_or_else(|| {
                ProviderError::new(
                    "the node offers no connection: its provider does not run node steps \
                     (the local and aws providers do; see docs/runtimes.md)",
                )
            })?;
        let node = NodeConnection::from_value(c).map_err(ProviderError::new)?;
        let transport = match node.transport {
            contract::Transport::Local => Transport::Local,
            contract::Transport::Ssh(s) => {
                let mut ssh = Ssh::from(s);
                if let Some(j) = attrs.get("jump").and_then(Value::as_object) {
                    if j.get("transport").and_then(Value::as_str) != Some("ssh") {
                        return Err(ProviderError::new(
                            "the node is reached through its cluster's head, which offers no SSH connection",
                        ));
                    }
                    ssh.jump = Some(Box::new(Jump {
                        ssh: Ssh::from(contract::Ssh::from_map(j).map_err(ProviderError::new)?),
                        host_key: attrs
                            .get("jump_host_key")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    }));
                }
                Transport::Ssh(ssh)
            }
        };
        Ok(Connection {
            transport,
            home: node.home,
        })
    }

    fn key(&self) -> String {
        match &self.transport {
            Transport::Local => format!("local:{}", self.home),
            Transport::Ssh(s) => s.to_string(),
        }
    }
}

impl From<contract::Ssh> for Ssh {
    fn from(s: contract::Ssh) -> Ssh {
        Ssh {
            host: s.host,
            port: s.port,
            user: s.user,
            identity: s.identity.map(|i| match i {
                contract::Identity::File(f) => Identity::File(f),
                contract::Identity::Key(k) => Identity::Key(k),
            }),
            jump: None,
        }
    }
}

impl Ssh {
    /// `through HOST:PORT` for messages about a node behind a jump host, else nothing.
    fn through(&self) -> String {
        match &self.jump {
            Some(j) => format!(" through {}:{}", j.ssh.host, j.ssh.port),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Quotes a value for `sh`: it arrives as one word, whatever it holds.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The environment a step sees: where it runs, the node's and cluster's addresses,
/// and the runtime's params.
fn environment(attrs: &Map, home: &str) -> Vec<(String, String)> {
    let text = |k: &str| attrs.get(k).and_then(|v| v.to_template_string());
    let mut env = vec![("TIK_HOME".to_string(), home.to_string())];
    for (var, attr) in [
        ("TIK_NODE_NAME", "node_name"),
        ("TIK_ROLE", "role"),
        ("TIK_CLUSTER", "cluster"),
        ("TIK_RUNTIME", "runtime"),
        ("TIK_SERVICE", "service"),
        ("TIK_NODE_IP", "node_ip"),
        ("TIK_NODE_PUBLIC_IP", "node_public_ip"),
        ("TIK_HEAD_IP", "head_ip"),
        ("TIK_HEAD_PUBLIC_IP", "head_public_ip"),
    ] {
        if let Some(v) = text(attr) {
            env.push((var.to_string(), v));
        }
    }
    for (k, v) in attrs {
        if let Some(i) = k.strip_prefix("ip_") {
            if let Some(ip) = v.as_str() {
                env.push((format!("TIK_IP_{i}"), ip.to_string()));
            }
        }
    }
    if let Some(Value::Object(params)) = attrs.get("env") {
        for (k, v) in params {
            if let Some(v) = v.to_template_string() {
                env.push((k.clone(), v));
            }
        }
    }
    env
}

/// The script as `sh -c` runs it: the environment exported, in the node's home, with
/// its output in a file that a background service may keep writing to (so the step
/// never waits on a daemon's stdout), shown when the step ends; `watched`.
fn wrapped(attrs: &Map, home: &str, script: &str) -> String {
    let mut text = String::from("set -u\n");
    text.push_str(&exports(attrs, home));
    text.push_str(
        "mkdir -p \"$TIK_HOME/.tik\" && cd \"$TIK_HOME\" || exit 1\n\
         out=\"$TIK_HOME/.tik/step.$$.log\"\n",
    );
    text.push_str(&watched(script, ">\"$out\" 2>&1"));
    text.push_str("cat \"$out\"; rm -f \"$out\"\nexit $rc\n");
    text
}

/// Shell text that runs `script` with `sh -c` and sets `rc` to its exit code, its
/// output sent by `redirect`. The script runs in a session of its own, watched: tik
/// holds the wrapper's stdin open for as long as it waits, and when that closes
/// before the script ends (tik stopped waiting, was interrupted twice or killed, or
/// lost the connection), the whole session is stopped, so a step tik gave up on
/// never runs on beside the next apply's. What a script leaves running when it ends
/// (a service) stays. Without `setsid` on the node only the script's shell is stopped.
fn watched(script: &str, redirect: &str) -> String {
    // fd 3 keeps tik's end of stdin: a background job's own stdin is /dev/null.
    format!(
        "script={}\n\
         exec 3<&0\n\
         if command -v setsid >/dev/null 2>&1; then\n\
         \x20 setsid sh -c \"$script\" </dev/null {redirect} 3<&- &\n\
         else\n\
         \x20 sh -c \"$script\" </dev/null {redirect} 3<&- &\n\
         fi\n\
         pid=$!\n\
         ( while read -r _; do :; done\n\
         \x20 kill -TERM -\"$pid\" 2>/dev/null || kill -TERM \"$pid\" 2>/dev/null ) <&3 >/dev/null 2>&1 &\n\
         watch=$!\n\
         exec 3<&-\n\
         wait \"$pid\"\n\
         rc=$?\n\
         kill -9 \"$watch\" 2>/dev/null\n",
        shell_quote(script)
    )
}

/// The `export NAME='value'` lines of a node's environment. A home its provider
/// gives as a relative path (a cloud node's `tik`) is under the login's `$HOME`,
/// which a container's shell has from the login as `TIK_LOGIN_HOME`.
/// What a runtime put on its node's `PATH` (and other settings), for a person's
/// command or login: each runtime's install writes `$TIK_HOME/profile.d/NAME.sh`
/// (`export PATH="$TIK_HOME/spark/current/bin:$PATH"`), and `tik exec` and `tik
/// ssh` read them all, so that `spark-submit` works as typed.
pub const PROFILE: &str = "for tik_profile in \"$TIK_HOME\"/profile.d/*.sh; do [ -r \"$tik_profile\" ] && . \"$tik_profile\"; done; unset tik_profile\n";

/// A login's first lines on an ssh node: the node's home (relative to the login's
/// own, unless absolute) as `TIK_HOME` and the working directory, and its profile.
fn login_prelude(attrs: &Map, home: &str) -> String {
    let at = if home.starts_with('/') {
        shell_quote(home)
    } else {
        format!("\"$HOME\"/{}", shell_quote(home))
    };
    // What a step and `tik exec` see too: the node's name, cluster, addresses.
    let env: String = environment(attrs, home)
        .into_iter()
        .filter(|(k, _)| k != "TIK_HOME")
        .map(|(k, v)| format!("{k}={}; export {k}; ", shell_quote(&v)))
        .collect();
    // A node no runtime has set up yet has no home: the login's own is used.
    format!("TIK_HOME={at}; export TIK_HOME; {env}cd \"$TIK_HOME\" 2>/dev/null; {PROFILE}")
}

fn exports(attrs: &Map, home: &str) -> String {
    let mut text: String = environment(attrs, home)
        .into_iter()
        .map(|(k, v)| format!("export {k}={}\n", shell_quote(&v)))
        .collect();
    if !home.starts_with('/') {
        text.push_str("TIK_HOME=\"${TIK_LOGIN_HOME:-$HOME}/$TIK_HOME\"\n");
    }
    text
}

/// Runs `sh -c SCRIPT` on a target, locally or by its node's agent. With `watched`,
/// its stdin stays open until it ends, or until this future is dropped or tik exits
/// (for `wrapped`); otherwise it reads nothing.
async fn run_sh(
    target: &Target,
    script: &str,
    watched: bool,
) -> Result<std::process::Output, String> {
    let inside = target.inside(script);
    let script: &str = &inside;
    match &target.via {
        Via::Local => {
            let stdin = if watched {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            };
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(stdin)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run sh: {e}"))?;
            // Held here, not closed by `wait_with_output`.
            let _held = child.stdin.take();
            child
                .wait_with_output()
                .await
                .map_err(|e| format!("cannot run sh: {e}"))
        }
        Via::Ssh(link) => {
            let done = link.agent.run(script, watched).await?;
            Ok(std::process::Output {
                status: std::os::unix::process::ExitStatusExt::from_raw((done.code & 0xff) << 8),
                stdout: done.stdout,
                stderr: done.stderr,
            })
        }
    }
}

/// Runs `sh -c SCRIPT` on a target with `input` as its stdin: locally, or over a
/// channel of its own on the node's connection (the agent's stdin carries its
/// requests); into a container with its engine's `exec -i`.
async fn run_fed(
    target: &Target,
    script: &str,
    input: put::Input,
) -> Result<std::process::Output, String> {
    let inside = target.inside(script);
    let script: &str = &inside;
    let mut reader = input.reader().await?;
    let copy = |e: std::io::Error| format!("cannot send the file to the node: {e}");
    match &target.via {
        Via::Local => {
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run sh: {e}"))?;
            let Some(stdin) = child.stdin.take() else {
                return Err("sh took no input".into());
            };
            // Fed while its output is read: neither waits on the other's pipe.
            let (sent, out) = tokio::join!(feed(&mut reader, stdin), child.wait_with_output());
            let out = out.map_err(|e| format!("cannot run sh: {e}"))?;
            // A script that ended early (it failed) closed its stdin: its output says
            // why.
            if out.status.success() {
                sent.map_err(copy)?;
            }
            Ok(out)
        }
        Via::Ssh(link) => {
            let mut child = link
                .session
                .clone()
                .arc_command("sh")
                .arg("-c")
                .arg(script)
                .stdin(openssh::Stdio::piped())
                .stdout(openssh::Stdio::piped())
                .stderr(openssh::Stdio::piped())
                .spawn()
                .await
                .map_err(|e| format!("cannot run sh on the node: {}", error_chain(&e)))?;
            let Some(stdin) = child.stdin().take() else {
                return Err("sh on the node took no input".into());
            };
            let (sent, out) = tokio::join!(feed(&mut reader, stdin), child.wait_with_output());
            let out = out.map_err(|e| format!("cannot run sh on the node: {}", error_chain(&e)))?;
            if out.status.success() {
                sent.map_err(copy)?;
            }
            Ok(out)
        }
    }
}

/// Copies `reader` into a script's stdin, then closes it.
async fn feed(
    reader: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
    mut stdin: impl tokio::io::AsyncWrite + Unpin,
) -> std::io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let sent = tokio::io::copy(reader, &mut stdin).await;
    let _ = stdin.shutdown().await;
    sent
}

/// Runs a script on a target: exit code and output.
async fn exec(
    target: &Target,
    attrs: &Map,
    script: &str,
    limit: Duration,
) -> Result<(i32, String), String> {
    let run = async {
        let out = run_sh(target, &wrapped(attrs, target.home(), script), true).await?;
        Ok::<_, String>((
            out.status.code().unwrap_or(-1),
            output_text(&out.stdout, &out.stderr),
        ))
    };
    tokio::time::timeout(limit, run)
        .await
        .map_err(|_| format!("still running after {} s: stopped waiting", limit.as_secs()))?
}

fn output_text(stdout: &[u8], stderr: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(stderr));
    s
}

/// Files a connection needs only while it is made (known hosts, the jump's command
/// and its log); removed when dropped.
#[derive(Default)]
struct Scratch(Vec<PathBuf>);

impl Scratch {
    fn file(&mut self, tag: &str) -> PathBuf {
        let f = scratch_file(tag);
        let _ = std::fs::remove_file(&f);
        self.0.push(f.clone());
        f
    }

    fn write(&mut self, tag: &str, text: &str) -> Result<PathBuf, ProviderError> {
        let f = self.file(tag);
        std::fs::write(&f, text)
            .map_err(|e| ProviderError::new(format!("cannot write {}: {e}", f.display())))?;
        Ok(f)
    }

    /// A file only its owner can read, made so from the start (ssh refuses a key
    /// others can read).
    fn write_private(&mut self, tag: &str, text: &str) -> Result<PathBuf, ProviderError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let f = self.file(tag);
        let mut text = text.to_string();
        if !text.ends_with('\n') {
            // ssh reads a key without its last newline as invalid.
            text.push('\n');
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&f)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| ProviderError::new(format!("cannot write {}: {e}", f.display())))?;
        Ok(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Jump {
    /// The `ProxyCommand` that carries a connection to the node through the jump
    /// host: ssh to it with its recorded host key (none recorded: trusted on first
    /// use, into a file of its own), nothing from the user's ~/.ssh, forwarding to
    /// the node's address and port. With `log`, what the jump's ssh says goes there.
    fn proxy_command(
        &self,
        scratch: &mut Scratch,
        log: Option<&Path>,
    ) -> Result<String, ProviderError> {
        let (known, check) = match &self.host_key {
            Some(k) => (
                scratch.write(
                    "jump-known-hosts",
                    &format!("{} {k}\n", host_pattern(&self.ssh)),
                )?,
                "yes",
            ),
            None => (scratch.file("jump-known-hosts"), "accept-new"),
        };
        let mut words: Vec<String> = vec![
            "ssh".into(),
            "-F".into(),
            "/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", known.display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={check}"),
            "-o".into(),
            "ConnectTimeout=10".into(),
            "-p".into(),
            self.ssh.port.to_string(),
            "-l".into(),
            self.ssh.user.clone(),
        ];
        if let Some(i) = &self.ssh.identity {
            words.extend(i.args(scratch)?);
        }
        if let Some(l) = log {
            words.extend(["-E".into(), l.display().to_string()]);
        }
        words.push(self.ssh.host.clone());
        // ssh expands `%` in a ProxyCommand: the words' own are doubled; `%h:%p` is
        // the node's address and port.
        let mut line: Vec<String> = words
            .iter()
            .map(|w| shell_quote(w).replace('%', "%%"))
            .collect();
        line.insert(line.len() - 1, "-W '[%h]:%p'".into());
        Ok(line.join(" "))
    }
}

/// How openssh connects to a node: its port, user and key, `known_hosts` with the
/// host key check `check`, nothing from the user's ~/.ssh/config, and through its
/// jump host where it has one (whose ssh logs to `jump_log`).
fn builder(
    ssh: &Ssh,
    known_hosts: &Path,
    check: openssh::KnownHosts,
    scratch: &mut Scratch,
    jump_log: &Path,
) -> Result<openssh::SessionBuilder, ProviderError> {
    let mut b = openssh::SessionBuilder::default();
    b.user(ssh.user.clone())
        .port(ssh.port)
        .known_hosts_check(check)
        .user_known_hosts_file(known_hosts)
        // Never the user's ~/.ssh/config: what tik connects to is what state says.
        .config_file("/dev/null")
        .control_directory(std::env::temp_dir())
        .control_persist(openssh::ControlPersist::IdleFor(LINGER))
        .connect_timeout(Duration::from_secs(10))
        .server_alive_interval(Duration::from_secs(15));
    if let Some(i) = &ssh.identity {
        let [_, file, _, _] = i.args(scratch)?;
        b.keyfile(file);
    }
    if let Some(j) = &ssh.jump {
        let command = j.proxy_command(scratch, Some(jump_log))?;
        let config = scratch.write("ssh-config", &format!("ProxyCommand {command}\n"))?;
        b.config_file(config);
    }
    Ok(b)
}

/// An error with its causes: ssh's own words are in the source.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {}", c.to_string().trim()));
        cause = c.source();
    }
    text
}

/// The innermost words of an error (ssh's "Connection refused"), or the jump host's
/// last line, for a progress line.
fn last_words(e: &dyn std::error::Error, jump_log: &Path) -> String {
    if let Some(said) = jump_said(jump_log) {
        return said.lines().last().unwrap_or_default().trim().to_string();
    }
    let chain = error_chain(e);
    let last = chain.rsplit(": ").next().unwrap_or(&chain).trim();
    last.lines().last().unwrap_or(last).to_string()
}

fn host_pattern(ssh: &Ssh) -> String {
    if ssh.port == 22 {
        ssh.host.clone()
    } else {
        format!("[{}]:{}", ssh.host, ssh.port)
    }
}

fn scratch_file(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "tik-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// One connection attempt and what it leaves to read: the known-hosts file ssh
/// wrote, and the jump host's log (removed with `_scratch`).
struct Attempt {
    result: Result<openssh::Session, openssh::Error>,
    known_hosts: String,
    jump_log: PathBuf,
    _scratch: Scratch,
}

/// How long a connection's directory may be without its master's socket before it
/// counts as left behind: far longer than a connect takes.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Removes what the masters of a killed tik leave in `dir`: openssh's
/// `.ssh-connection*` directory, which its master's socket has left (only a `log`
/// is in it) and which has not changed for `stale_after`. A directory with anything
/// else in it, a master's socket above all, is not touched.
fn sweep_control_dirs(dir: &Path, stale_after: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let ours = e
            .file_name()
            .to_string_lossy()
            .starts_with(".ssh-connection");
        if !ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let changed = e.metadata().and_then(|m| m.modified());
        let old = changed.is_ok_and(|t| t.elapsed().is_ok_and(|age| age > stale_after));
        if !old {
            continue;
        }
        let path = e.path();
        let only_log = std::fs::read_dir(&path)
            .map(|inside| inside.flatten().all(|f| f.file_name() == "log"))
            .unwrap_or(false);
        if only_log {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Connects to a node: accepting only `recorded` as its host key, or with none
/// recorded, any key, which ssh writes to the known-hosts file.
async fn attempt(ssh: &Ssh, recorded: Option<&str>) -> Result<Attempt, ProviderError> {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_control_dirs(&std::env::temp_dir(), STALE_AFTER));
    let mut scratch = Scratch::default();
    let (known, check) = match recorded {
        Some(key) => (
            scratch.write("known-hosts", &format!("{} {key}\n", host_pattern(ssh)))?,
            openssh::KnownHosts::Strict,
        ),
        None => (scratch.file("known-hosts"), openssh::KnownHosts::Add),
    };
    let jump_log = scratch.file("jump-log");
    let result = builder(ssh, &known, check, &mut scratch, &jump_log)?
        .connect_mux(&ssh.host)
        .await;
    Ok(Attempt {
        result,
        known_hosts: std::fs::read_to_string(&known).unwrap_or_default(),
        jump_log,
        _scratch: scratch,
    })
}

/// Waits (with growing pauses, up to `wait`) until the node answers, and returns
/// the host key it showed (recorded in state and required from then on) and the
/// connection, which the node's steps go on to use. Each failed attempt is noted
/// in `progress`.
async fn first_contact(
    ssh: &Ssh,
    address: &str,
    wait: Duration,
    progress: &Progress,
) -> Result<(String, openssh::Session), ProviderError> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let Attempt {
            result,
            known_hosts: text,
            jump_log,
            _scratch,
        } = attempt(ssh, None).await?;
        match result {
            Ok(session) => {
                // A known_hosts line: host pattern, key type, key.
                let key = text
                    .lines()
                    .filter_map(|l| {
                        let parts: Vec<&str> = l.split_whitespace().collect();
                        (parts.len() >= 3).then(|| format!("{} {}", parts[1], parts[2]))
                    })
                    .next();
                return match key {
                    Some(k) => Ok((k, session)),
                    None => Err(ProviderError::new(format!(
                        "{address}: connected to {}, but ssh recorded no host key",
                        ssh.host
                    ))),
                };
            }
            Err(e) => {
                // The jump host showed another key than its session recorded:
                // waiting will not change that.
                if let Some(refused) = jump_refused(ssh, &jump_log) {
                    return Err(with_replace(refused, &head_session_of(address)));
                }
                if Instant::now() >= deadline {
                    return Err(ProviderError {
                        code: Some("SshUnreachable".into()),
                        message: format!(
                            "{ssh}{} did not answer SSH within {} s ({attempts} attempts): {}",
                            ssh.through(),
                            wait.as_secs(),
                            error_text(&e, &jump_log)
                        ),
                    });
                }
                progress.note(format!(
                    "waiting for SSH on {ssh}{} ({attempts} attempts, last: {}; gives up in {} s)",
                    ssh.through(),
                    last_words(&e, &jump_log),
                    deadline.saturating_duration_since(Instant::now()).as_secs()
                ));
                // The last attempt is at the bound, not a pause before it.
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Connects, accepting only the host key recorded at first contact (and, through a
/// jump host, only the one its session recorded).
async fn connect_verified(
    ssh: &Ssh,
    host_key: &str,
    attrs: &Map,
) -> Result<openssh::Session, ProviderError> {
    // `_scratch` holds the jump's log until the error is read.
    let Attempt {
        result,
        jump_log,
        _scratch,
        ..
    } = attempt(ssh, Some(host_key)).await?;
    result.map_err(|e| {
        if let Some(refused) = jump_refused(ssh, &jump_log) {
            return with_replace(refused, &head_session_of(&session_address(attrs)));
        }
        let text = format!("{e:?}");
        if text.contains("verification failed") || text.contains("REMOTE HOST IDENTIFICATION") {
            ProviderError {
                code: Some("HostKeyMismatch".into()),
                message: format!(
                    "{}:{} shows a host key other than the one recorded at first contact ({host_key}). \
                     Refusing to connect: the node may have been replaced, or someone is in between. \
                     If it was rebuilt on purpose, replace its session: tik apply --replace '{}'",
                    ssh.host,
                    ssh.port,
                    session_address(attrs)
                ),
            }
        } else {
            ProviderError {
                code: Some("SshFailed".into()),
                message: format!(
                    "cannot connect to {ssh}{}: {}",
                    ssh.through(),
                    error_text(&e, &jump_log)
                ),
            }
        }
    })
}

/// What the jump host's ssh said, if it said anything.
fn jump_said(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The refusal of a jump host that shows another host key than its session recorded.
fn jump_refused(ssh: &Ssh, log: &Path) -> Option<ProviderError> {
    let jump = ssh.jump.as_ref()?;
    let said = jump_said(log)?;
    if !(said.contains("verification failed") || said.contains("REMOTE HOST IDENTIFICATION")) {
        return None;
    }
    Some(ProviderError {
        code: Some("HostKeyMismatch".into()),
        message: format!(
            "{}:{}, the head that {} is reached through, shows a host key other than the one its \
             session recorded ({}). Refusing to connect: the head may have been replaced, or \
             someone is in between.",
            jump.ssh.host,
            jump.ssh.port,
            ssh.host,
            jump.host_key.as_deref().unwrap_or("none")
        ),
    })
}

/// The refusal `error`, with how to accept a node rebuilt on purpose.
fn with_replace(mut error: ProviderError, session: &str) -> ProviderError {
    error.message.push_str(&format!(
        " If it was rebuilt on purpose, replace its session: tik apply --replace '{session}'"
    ));
    error
}

/// ssh's error; through a jump host that said something, its words: the node's ssh
/// only saw the jump end.
fn error_text(e: &dyn std::error::Error, jump_log: &Path) -> String {
    match jump_said(jump_log) {
        Some(said) => said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        None => error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_gone_master_left_long_ago_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, files: &[&str], age: u64| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            for f in files {
                std::fs::write(d.join(f), "").unwrap();
            }
            let then = std::time::SystemTime::now() - Duration::from_secs(age);
            std::fs::File::open(&d).unwrap().set_modified(then).unwrap();
        };
        make(".ssh-connection1", &["log"], 3600); // left by a killed tik
        make(".ssh-connection2", &[], 3600); // its log gone too
        make(".ssh-connection3", &["log", "master"], 3600); // a live master
        make(".ssh-connection4", &["log"], 5); // a connect in progress
        make(".ssh-connection5", &["log", "notes"], 3600); // not openssh's alone
        make("other", &["log"], 3600);
        std::fs::write(dir.path().join(".ssh-connection6"), "").unwrap();
        sweep_control_dirs(dir.path(), STALE_AFTER);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".ssh-connection3",
                ".ssh-connection4",
                ".ssh-connection5",
                ".ssh-connection6",
                "other"
            ]
        );
    }

    #[test]
    fn a_new_way_to_the_node_is_recorded_and_runs_nothing() {
        let prior = Map::from_iter([
            ("script".to_string(), Value::from("echo hi")),
            ("connection".to_string(), Value::from("old")),
            ("host_key".to_string(), Value::from("ssh-ed25519 AAAA")),
            ("hash".to_string(), Value::from("h1")),
        ]);
        let change = |planned: &[(&str, Value)], operation| ChangeRequest {
            address: tik_engine::addr::Address::new().name("step"),
            type_name: crate::runtime::STEP_TYPE.into(),
            operation,
            prior: Some(prior.clone()),
            planned: prior
                .iter()
                .filter(|(k, _)| k.as_str() != "hash")
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(planned.iter().map(|(k, v)| (k.to_string(), v.clone())))
                .collect(),
            lineage: String::new(),
            progress: Progress::default(),
        };
        let moved = record_only(&change(
            &[("connection", Value::from("new"))],
            Operation::Update,
        ))
        .expect("a new connection alone runs nothing");
        assert_eq!(moved["connection"], Value::from("new"));
        assert_eq!(
            moved["hash"],
            Value::from("h1"),
            "what it ran is what ran before"
        );
        // A session made anew that found the key it had: nothing changed at all.
        assert!(record_only(&change(&[], Operation::Update)).is_some());
        for runs in [
            change(&[("script", Value::from("echo bye"))], Operation::Update),
            change(
                &[("host_key", Value::from("ssh-ed25519 BBBB"))],
                Operation::Update,
            ),
            change(&[("connection", Value::from("new"))], Operation::Create),
        ] {
            assert!(record_only(&runs).is_none(), "{:?}", runs.planned);
        }
    }

    #[test]
    fn a_home_under_the_logins_home_needs_a_login() {
        let node = |transport: &str| {
            let c = Map::from_iter([
                ("transport".to_string(), Value::from(transport)),
                ("home".to_string(), Value::from("tik")),
                ("host".to_string(), Value::from("127.0.0.9")),
            ]);
            Map::from_iter([("connection".to_string(), Value::Object(c))])
        };
        let e = Connection::of(&node("local")).err().expect("refused");
        assert!(
            e.message.contains("\"tik\" is not an absolute path"),
            "{}",
            e.message
        );
        let ssh = Connection::of(&node("ssh")).expect("a login knows its $HOME");
        assert_eq!(ssh.home, "tik");
        assert!(exports(&Map::new(), "tik")
            .ends_with("TIK_HOME=\"${TIK_LOGIN_HOME:-$HOME}/$TIK_HOME\"\n"));
    }

    #[test]
    fn quoting_keeps_every_value_one_word() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[tokio::test]
    async fn a_local_step_runs_with_its_environment_and_quoted_values() {
        let dir = std::env::temp_dir().join(format!("tik-steps-test-{}", std::process::id()));
        let attrs = Map::from_iter([
            (
                "connection".to_string(),
                Value::Object(Map::from_iter([
                    ("transport".to_string(), Value::from("local")),
                    ("home".to_string(), Value::from(dir.display().to_string())),
                ])),
            ),
            ("node_ip".to_string(), Value::from("127.0.0.9")),
            (
                "env".to_string(),
                Value::Object(Map::from_iter([(
                    "TIK_PARAM_GREETING".to_string(),
                    Value::from("it's $(echo injected)"),
                )])),
            ),
        ]);
        let runner = Runner::new(dir.join("logs"));
        let target = runner.target(&attrs).await.unwrap();
        let (code, out) = exec(
            &target,
            &attrs,
            "echo \"$TIK_NODE_IP|$TIK_PARAM_GREETING|$(pwd)\"; (sleep 30 &) ; exit 3",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(code, 3);
        assert_eq!(
            out.trim(),
            format!("127.0.0.9|it's $(echo injected)|{}", dir.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_way_through_the_head_quotes_its_words_and_keeps_only_ssh_its_percent_signs() {
        let jump = Jump {
            ssh: Ssh {
                host: "10.0.0.5".into(),
                port: 2200,
                user: "o'brien".into(),
                identity: Some(Identity::File("/keys/100% mine/id".into())),
                jump: None,
            },
            host_key: Some("ssh-ed25519 AAAA".into()),
        };
        let mut scratch = Scratch::default();
        let command = jump.proxy_command(&mut scratch, None).unwrap();
        let known = &scratch.0[0];
        assert_eq!(
            std::fs::read_to_string(known).unwrap(),
            "[10.0.0.5]:2200 ssh-ed25519 AAAA\n"
        );
        assert!(
            command.starts_with("'ssh' '-F' '/dev/null' '-o' 'BatchMode=yes' "),
            "{command}"
        );
        assert!(command.contains("'StrictHostKeyChecking=yes'"), "{command}");
        assert!(command.contains("'-l' 'o'\\''brien'"), "{command}");
        assert!(command.contains("'-i' '/keys/100%% mine/id'"), "{command}");
        assert!(command.ends_with(" -W '[%h]:%p' '10.0.0.5'"), "{command}");
        // Unrecorded, the head is trusted on first use, into a file of its own.
        let first = Jump {
            host_key: None,
            ..jump
        };
        let command = first.proxy_command(&mut scratch, None).unwrap();
        assert!(
            command.contains("'StrictHostKeyChecking=accept-new'"),
            "{command}"
        );
        let files = scratch.0.clone();
        drop(scratch);
        assert!(
            files.iter().all(|f| !f.exists()),
            "scratch files are removed"
        );
    }

    #[tokio::test]
    async fn the_wait_for_ssh_notes_each_attempt_and_gives_up_at_its_bound() {
        // A loopback port nothing listens on: every attempt is refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let ssh = Ssh {
            host: "127.0.0.1".into(),
            port,
            user: "tik".into(),
            identity: None,
            jump: None,
        };
        let progress = Progress::default();
        let started = Instant::now();
        let err = first_contact(
            &ssh,
            "cluster.c.node.head.session",
            Duration::from_secs(2),
            &progress,
        )
        .await
        .expect_err("nothing answers");
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        assert_eq!(err.code.as_deref(), Some("SshUnreachable"));
        assert!(
            err.message.starts_with(&format!(
                "tik@127.0.0.1:{port} did not answer SSH within 2 s ("
            )),
            "{}",
            err.message
        );
        let note = progress.current().expect("each attempt is noted");
        assert!(
            note.starts_with(&format!("waiting for SSH on tik@127.0.0.1:{port} (")),
            "{note}"
        );
        assert!(note.contains("Connection refused"), "{note}");
        assert!(note.contains("gives up in "), "{note}");
        // Backoff: a handful of attempts in 2 s, not hundreds.
        let attempts: u32 = note
            .split(" (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!((2..=10).contains(&attempts), "{note}");
    }
}
