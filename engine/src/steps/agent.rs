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

use openssh::{ChildStdin, ChildStdout, Session, Stdio};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
    _child: openssh::Child<Arc<Session>>,
}

impl Agent {
    /// Starts the agent on a connection and waits until it answers.
    pub(super) async fn start(session: &Arc<Session>) -> Result<Agent, String> {
        let mut child = session
            .clone()
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
            _child: child,
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
async fn ready(stdout: &mut BufReader<ChildStdout>) -> Result<(), String> {
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

async fn write_requests(mut stdin: ChildStdin, mut queue: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(request) = queue.recv().await {
        if stdin.write_all(&request).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin ends the agent, and with it every job's held stdin.
}

/// Hands each finished job's frame to whoever waits for it; when the agent's
/// stdout ends, every job still waiting learns so.
async fn read_frames(mut stdout: BufReader<ChildStdout>, waiting: Arc<Mutex<Option<Waiting>>>) {
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
async fn frame(stdout: &mut BufReader<ChildStdout>) -> Option<(u64, Finished)> {
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

async fn exactly(stdout: &mut BufReader<ChildStdout>, n: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut *stdout).take(n).read_to_end(&mut buf).await.ok()?;
    (buf.len() as u64 == n).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_holding_the_end_line_gets_another() {
        let text = String::from_utf8(request(7, "echo a\ntik-end-7\n", true)).unwrap();
        assert_eq!(text, "run 7 w tik-end-7-\necho a\ntik-end-7\ntik-end-7-\n");
        let text = String::from_utf8(request(8, "true", false)).unwrap();
        assert_eq!(text, "run 8 n tik-end-8\ntrue\ntik-end-8\n");
    }
}
