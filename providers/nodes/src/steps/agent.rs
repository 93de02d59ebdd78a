//! One shell per SSH connection that runs every script tik sends the node.
//!
//! A command over SSH runs in the login's shell (`$SHELL -c`), and bash reads
//! `~/.bashrc` for every command sshd runs: on a node whose rc files start conda,
//! pyenv or nvm, that costs more than the step. The agent (`agent.sh`) is started
//! once per connection, so those files run once per node; each script then runs
//! as a job of the agent's, `sh FILE`, and its exit code, stdout and stderr come
//! back as one frame on the agent's stdout. Its stdin is tik's: when tik ends, or
//! drops the connection, the agent closes every job's held stdin (which the
//! steps' watchers take as their cue to stop) and ends.

use openssh::{Session, Stdio};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

const SCRIPT: &str = include_str!("agent.sh");
const READY: &str = "tik-agent ready";
const NEEDS: &str = "tik's agent ended on the node before it answered: it needs sh, mktemp \
     and mkfifo on the node, and a directory it may write in ${TMPDIR:-/tmp}";
/// How long the login's start-up files may take before the agent answers.
const START_WAIT: Duration = Duration::from_secs(120);
/// How much the login's start-up files may print before the agent answers.
const MAX_BANNER: usize = 1 << 20;

/// How a job ended on the node.
pub(super) struct Finished {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

type Waiting = HashMap<u64, oneshot::Sender<Finished>>;

/// The agent of one connection. Dropping it closes the agent's stdin.
pub(super) struct Agent {
    requests: mpsc::UnboundedSender<Vec<u8>>,
    /// Jobs sent and not finished; `None` once the agent's stdout has ended.
    waiting: Arc<Mutex<Option<Waiting>>>,
    next: AtomicU64,
    /// What keeps the agent's channel open (its ssh child).
    _channel: Box<dyn Send + Sync>,
}

impl Agent {
    /// Starts the agent on a connection and waits until it answers.
    pub(super) async fn start(session: Arc<Session>) -> Result<Agent, String> {
        let mut child = session
            .arc_command("sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .await
            .map_err(|e| {
                format!(
                    "cannot start tik's agent on the node: {}",
                    super::error_chain(&e)
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
            return Err("tik's agent has no stdin or stdout".into());
        };
        Agent::over(stdin, stdout, Box::new(child)).await
    }

    /// The agent whose stdin and stdout these are, once it answers; `channel` is
    /// kept for as long as the agent is.
    async fn over<W, R>(stdin: W, stdout: R, channel: Box<dyn Send + Sync>) -> Result<Agent, String>
    where
        W: AsyncWrite + Unpin + Send + 'static,
        R: AsyncRead + Unpin + Send + 'static,
    {
        let mut stdout = BufReader::new(stdout);
        tokio::time::timeout(START_WAIT, ready(&mut stdout))
            .await
            .map_err(|_| {
                format!(
                    "tik's agent did not answer within {} s",
                    START_WAIT.as_secs()
                )
            })??;
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_requests(stdin, queue));
        let waiting = Arc::new(Mutex::new(Some(Waiting::new())));
        tokio::spawn(read_frames(stdout, waiting.clone()));
        Ok(Agent {
            requests,
            waiting,
            next: AtomicU64::new(1),
            _channel: channel,
        })
    }

    /// Runs `script` on the node with `sh`. With `held`, the script's stdin stays
    /// open until it ends or this future is dropped (which closes it); otherwise it
    /// is /dev/null.
    pub(super) async fn run(&self, script: &str, held: bool) -> Result<Finished, String> {
        let job = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, finished) = oneshot::channel();
        match lock(&self.waiting).as_mut() {
            Some(waiting) => waiting.insert(job, done),
            None => return Err(ENDED.into()),
        };
        let mut cancel = Cancel {
            job,
            agent: self,
            armed: true,
        };
        self.requests
            .send(request(job, script, held))
            .map_err(|_| ENDED.to_string())?;
        let result = finished.await.map_err(|_| ENDED.to_string());
        cancel.armed = false;
        result
    }
}

const ENDED: &str = "the connection to the node ended while the script ran";

/// Stops a job whose caller stopped waiting for it (a timeout, an interrupt).
struct Cancel<'a> {
    job: u64,
    agent: &'a Agent,
    armed: bool,
}

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(waiting) = lock(&self.agent.waiting).as_mut() {
                waiting.remove(&self.job);
            }
            let _ = self
                .agent
                .requests
                .send(format!("stop {}\n", self.job).into_bytes());
        }
    }
}

fn lock(waiting: &Mutex<Option<Waiting>>) -> std::sync::MutexGuard<'_, Option<Waiting>> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `run` request for a script: its lines end with a line that none of them is.
fn request(job: u64, script: &str, held: bool) -> Vec<u8> {
    let mut end = format!("tik-end-{job}");
    while script.lines().any(|l| l == end) {
        end.push('-');
    }
    let mut text = format!("run {job} {} {end}\n", if held { "w" } else { "n" });
    text.push_str(script);
    if !script.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&end);
    text.push('\n');
    text.into_bytes()
}

/// Reads up to the agent's first line; what the login's start-up files print
/// before it is passed over.
async fn ready(stdout: &mut BufReader<impl AsyncRead + Unpin>) -> Result<(), String> {
    let mut seen = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stdout
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("cannot read tik's agent: {e}"))?;
        if n == 0 {
            return Err(NEEDS.into());
        }
        if line.trim_ascii_end().ends_with(READY.as_bytes()) {
            return Ok(());
        }
        seen += n;
        if seen > MAX_BANNER {
            return Err("the node's login printed over 1 MiB before tik's agent answered".into());
        }
    }
}

async fn write_requests(
    mut stdin: impl AsyncWrite + Unpin,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(request) = queue.recv().await {
        if stdin.write_all(&request).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin ends the agent, and with it every job's held stdin.
}

/// Hands each finished job's frame to whoever waits for it; when the agent's
/// stdout ends, every job still waiting learns so.
async fn read_frames(
    mut stdout: BufReader<impl AsyncRead + Unpin>,
    waiting: Arc<Mutex<Option<Waiting>>>,
) {
    while let Some((job, finished)) = frame(&mut stdout).await {
        let done = lock(&waiting).as_mut().and_then(|w| w.remove(&job));
        if let Some(done) = done {
            let _ = done.send(finished);
        }
    }
    lock(&waiting).take();
}

/// One frame: `JOB RC OUT ERR\n`, then OUT and ERR bytes. None at the end of
/// stdout, or at anything that is not a frame.
async fn frame(stdout: &mut BufReader<impl AsyncRead + Unpin>) -> Option<(u64, Finished)> {
    let mut header = String::new();
    if stdout.read_line(&mut header).await.ok()? == 0 {
        return None;
    }
    let mut fields = header.split_ascii_whitespace();
    let mut next = || fields.next()?.parse::<u64>().ok();
    let (job, code, out, err) = (next()?, next()?, next()?, next()?);
    let stdout_bytes = exactly(stdout, out).await?;
    let stderr_bytes = exactly(stdout, err).await?;
    Some((
        job,
        Finished {
            code: i32::try_from(code).unwrap_or(-1),
            stdout: stdout_bytes,
            stderr: stderr_bytes,
        },
    ))
}

async fn exactly(stdout: &mut BufReader<impl AsyncRead + Unpin>, n: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut *stdout).take(n).read_to_end(&mut buf).await.ok()?;
    (buf.len() as u64 == n).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use std::time::Instant;

    #[test]
    fn a_script_holding_the_end_line_gets_another() {
        let text = String::from_utf8(request(7, "echo a\ntik-end-7\n", true)).unwrap();
        assert_eq!(text, "run 7 w tik-end-7-\necho a\ntik-end-7\ntik-end-7-\n");
        let text = String::from_utf8(request(8, "true", false)).unwrap();
        assert_eq!(text, "run 8 n tik-end-8\ntrue\ntik-end-8\n");
    }

    /// Kills a process group when dropped: what a test's agent left running ends
    /// with the test, pass or fail (and holds no pipe of the test runner's); then
    /// its `TMPDIR` goes.
    struct Group(u32, tempfile::TempDir);

    impl Drop for Group {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The agent under a local `sh`, after what a login's rc files might print, in a
    /// process group of its own; the child is the test's, to wait for or kill.
    async fn local_agent() -> (Agent, tokio::process::Child, Group) {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new("sh")
            .env("TMPDIR", tmp.path())
            .arg("-c")
            .arg("printf 'Welcome to the node\\nno newline '; exec sh -c \"$1\"")
            .arg("sh")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("sh runs");
        let group = Group(child.id().expect("sh runs"), tmp);
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let agent = Agent::over(stdin, stdout, Box::new(()))
            .await
            .expect("the agent answers");
        (agent, child, group)
    }

    async fn wait_for(path: &std::path::Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if path.exists() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn jobs_run_at_once_and_come_back_whole_with_their_exit_codes() {
        let (agent, _child, _group) = local_agent().await;
        let started = Instant::now();
        let (slow, failed, big, end_line) = tokio::join!(
            agent.run("sleep 0.5; echo slow", false),
            agent.run("echo out; echo err >&2; exit 4", true),
            agent.run(
                "i=0; while [ $i -lt 20000 ]; do echo 0123456789; i=$((i+1)); done",
                false
            ),
            agent.run("echo before\ntik-end-4\necho after", false),
        );
        // The three quick ones did not wait for the slow one.
        assert!(started.elapsed() < Duration::from_secs(2));
        let slow = slow.unwrap();
        assert_eq!((slow.code, slow.stdout.as_slice()), (0, &b"slow\n"[..]));
        let failed = failed.unwrap();
        assert_eq!(failed.code, 4);
        assert_eq!(failed.stdout, b"out\n");
        assert_eq!(failed.stderr, b"err\n");
        let big = big.unwrap();
        assert_eq!(big.stdout.len(), 220_000);
        assert!(big.stdout.chunks(11).all(|c| c == b"0123456789\n"));
        // A line like the request's end (`tik-end-4` is job 4's) is the script's
        // own: it runs, as a command that is not found, and so does what follows.
        let end_line = end_line.unwrap();
        assert_eq!(end_line.stdout, b"before\nafter\n");
        assert!(String::from_utf8_lossy(&end_line.stderr).contains("tik-end-4"));
    }

    #[tokio::test]
    async fn a_job_whose_caller_stops_waiting_has_its_stdin_closed() {
        let (agent, _child, _group) = local_agent().await;
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("closed");
        let script = format!("cat >/dev/null; echo closed >'{}'", marker.display());
        let waited =
            tokio::time::timeout(Duration::from_millis(300), agent.run(&script, true)).await;
        assert!(waited.is_err(), "the held job ended by itself");
        assert!(wait_for(&marker).await, "the job's stdin stayed open");
        // The agent goes on.
        let next = agent.run("echo still here", false).await.unwrap();
        assert_eq!(next.stdout, b"still here\n");
    }

    #[tokio::test]
    async fn a_killed_agent_leaves_nothing_behind_and_its_jobs_still_answer() {
        let (agent, mut child, _group) = local_agent().await;
        let held = agent.run("cat >/dev/null; echo eof", true);
        let quick = agent.run("sleep 0.3; echo done", false);
        // The agent alone, reaped as sshd reaps it: its held job's stdin closes.
        let kill = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = child.start_kill();
            let _ = child.wait().await;
        };
        let ((held, quick), ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(async { tokio::join!(held, quick) }, kill)
        })
        .await
        .expect("the jobs answered after the agent was killed");
        assert_eq!(held.unwrap().stdout, b"eof\n");
        assert_eq!(quick.unwrap().stdout, b"done\n");
        // Then nothing holds its stdout open: the connection ends, nothing hangs.
        let after = tokio::time::timeout(Duration::from_secs(5), agent.run("true", false)).await;
        assert_eq!(
            after
                .expect("a script sent to a killed agent fails")
                .err()
                .as_deref(),
            Some(ENDED)
        );
    }

    #[tokio::test]
    async fn a_terminated_agent_stops_its_held_jobs_and_leaves_nothing_behind() {
        let (agent, mut child, group) = local_agent().await;
        let held = agent.run("cat >/dev/null; echo eof", true);
        let term = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pid = child.id().unwrap().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            tokio::time::timeout(Duration::from_secs(10), child.wait()).await
        };
        let (_, ended) = tokio::join!(held, term);
        assert!(ended.is_ok(), "the agent did not end on TERM");
        let left: Vec<_> = std::fs::read_dir(group.1.path()).unwrap().collect();
        assert!(left.is_empty(), "the agent left {left:?}");
    }

    #[tokio::test]
    async fn when_the_agent_is_gone_every_job_waiting_on_it_learns_so() {
        let (agent, child, _group) = local_agent().await;
        let pgid = child.id().unwrap();
        let waiting = agent.run("sleep 30", false);
        let kill = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        };
        let (result, ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(waiting, kill)
        })
        .await
        .expect("the waiting job learned that the agent is gone");
        assert_eq!(result.err().as_deref(), Some(ENDED));
        assert_eq!(agent.run("true", false).await.err().as_deref(), Some(ENDED));
    }
}
