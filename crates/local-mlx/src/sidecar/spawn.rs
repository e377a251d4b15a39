//! Starting one sidecar: `uv run ... server.py --port 0` with a fresh token, its
//! ready line, a first `/status` answer, and the [`Client`] for it; stopping it.
//!
//! [`Sidecar`] pairs the [`Process`] (the child, its output and its end) with the
//! client; the process never knows the client, so neither imports the other.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::backend::Backend;
use super::client::Client;
use super::exit::ExitInfo;
use super::log_file::{copy_lines, LogSink};
use super::process::{Process, Signal, REAP_WAIT};
use super::tail::Tail;
use super::timeouts::Timeouts;
use super::wire::{SidecarLimits, SIDECAR_LIMITS};
use super::{Result, SidecarError};

const READY_PREFIX: &str = "LOCAL_MLX_READY port=";
const TOKEN_ENV: &str = "LOCAL_MLX_TOKEN";

/// A running sidecar: the process and the [`Client`] for it.
///
/// Dropping it kills the process group and reaps uv at once; prefer
/// [`Sidecar::shutdown`], which lets the server finish cleanly.
#[derive(Debug)]
pub(crate) struct Sidecar {
    process: Arc<Process>,
    client: Arc<Client>,
}

impl Sidecar {
    /// Spawn `uv run ... server.py --port 0` with `env` added to its environment and wait,
    /// up to `ready_timeout` in all, for its ready line and a first answer to `GET /status`.
    pub(crate) async fn spawn(
        uv: &Path,
        backend: &Backend,
        env: &[(String, String)],
        log: Option<LogSink>,
        ready_timeout: Duration,
        timeouts: Timeouts,
    ) -> Result<Sidecar> {
        let deadline = tokio::time::Instant::now() + ready_timeout;
        let token = new_token();
        let mut cmd = backend.command(uv);
        cmd.args(["run", "--frozen", "--no-dev", "--project"])
            .arg(&backend.dir)
            .arg("python")
            .arg(backend.server_py())
            .args(["--port", "0"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(TOKEN_ENV, &token)
            .env(SidecarLimits::ENV, SIDECAR_LIMITS.to_env_value());
        let Piped { child, stdin, stdout, tail, log } = spawn_piped(cmd, uv, log)?;
        let pid = child.id();
        tracing::info!(pid, uv = %uv.display(), backend = %backend.dir.display(), "sidecar spawned");
        let process = Process::adopt(child, Some(stdin), tail.clone());

        let mut stdout = BufReader::new(stdout).lines();
        let port = loop {
            match tokio::time::timeout_at(deadline, stdout.next_line()).await {
                Err(_) => return Err(never_ready(&process, ready_timeout).await),
                Ok(Ok(Some(line))) => match line.trim().strip_prefix(READY_PREFIX).map(str::parse::<u16>) {
                    Some(Ok(port)) => break port,
                    _ => tail.push(&format!("stdout: {line}")),
                },
                // stdout closes when the process ends (uv and Python both hold it).
                Ok(Ok(None)) | Ok(Err(_)) => return Err(exited(&process).await),
            }
        };
        // Python closed its copy after the ready line; uv's stays open: keep it drained.
        tokio::spawn(copy_lines(stdout.into_inner(), tail.clone(), log, "stdout: ", false));

        let client = Arc::new(Client::new(port, token, Arc::downgrade(&process), timeouts));
        loop {
            if process.exit().is_some() {
                return Err(exited(&process).await);
            }
            match client.probe_status().await {
                Ok(_) => break,
                Err(SidecarError::Unauthorized) => return Err(SidecarError::Unauthorized),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => return Err(never_ready(&process, ready_timeout).await),
            }
        }
        tracing::info!(pid, port, "sidecar ready");
        Ok(Sidecar { process, client })
    }

    /// Spawn the native engine's worker (`worker`, see [`super::native`]) with `env`
    /// added, and wait up to `ready_timeout` for its ready line. No uv, no port.
    pub(crate) async fn spawn_native(
        worker: &Path,
        env: &[(String, String)],
        log: Option<LogSink>,
        ready_timeout: Duration,
        timeouts: Timeouts,
    ) -> Result<Sidecar> {
        let mut cmd = tokio::process::Command::new(worker);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let Piped { child, stdin, stdout, tail, .. } = spawn_piped(cmd, worker, log)?;
        tracing::info!(pid = child.id(), worker = %worker.display(), "native engine worker spawned");
        // The link writes the worker's stdin; a shutdown ends it with SIGTERM.
        let process = Process::adopt(child, None, tail);
        let mut stdout = BufReader::new(stdout).lines();
        match tokio::time::timeout(ready_timeout, stdout.next_line()).await {
            Err(_) => return Err(never_ready(&process, ready_timeout).await),
            Ok(Ok(Some(line))) if line.contains("\"ready\"") => {}
            Ok(_) => return Err(exited(&process).await),
        }
        let link = Arc::new(super::native::NativeLink::new(stdin, stdout));
        let client = Arc::new(Client::native(link, Arc::downgrade(&process), timeouts));
        Ok(Sidecar { process, client })
    }

    /// The client for this process (the same one every time).
    pub(super) fn client(&self) -> Arc<Client> {
        self.client.clone()
    }

    /// The pid of `uv run`, the leader of the sidecar's process group (Python's own pid
    /// is in [`StatusResponse::pid`](super::StatusResponse::pid)).
    pub(super) fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the process is still running (this reaps it if it ended).
    pub(super) fn is_alive(&self) -> bool {
        self.process.exit().is_none()
    }

    /// How it ended, if it has.
    pub(super) fn exit_info(&self) -> Option<ExitInfo> {
        self.process.exit()
    }

    /// The last lines of its stderr.
    pub(super) fn stderr_tail(&self) -> String {
        self.process.tail.text()
    }

    /// Stop it: close stdin, SIGTERM the group, wait up to `grace`, then SIGKILL; reap.
    pub(super) async fn shutdown(self, grace: Duration) -> Option<ExitInfo> {
        let process = &self.process;
        process.stop_on_purpose();
        process.signal(Signal::Term);
        let mut exit = process.wait_exit(grace).await;
        if exit.is_none() {
            tracing::warn!(pid = process.pid(), "the sidecar ignored SIGTERM for {grace:?}; killing it");
            process.signal(Signal::Kill);
            exit = process.wait_exit(REAP_WAIT).await;
        }
        tracing::info!(pid = process.pid(), exit = ?exit, "sidecar stopped");
        exit
    }
}

impl Drop for Sidecar {
    /// At once, even if a client still holds the process for a moment (to diagnose a
    /// failed request): the process must not outlive its owner.
    fn drop(&mut self) {
        self.process.kill_and_reap_now();
    }
}

/// A child started by [`spawn_piped`], its stderr already going to `tail` and `log`.
struct Piped {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    tail: Arc<Tail>,
    log: Option<Arc<Mutex<LogSink>>>,
}

/// Start `cmd` (`program`, for the error) in a process group of its own, with piped
/// stdio, killed when dropped; its stderr is copied line by line into a new tail and `log`.
fn spawn_piped(mut cmd: Command, program: &Path, log: Option<LogSink>) -> Result<Piped> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|source| SidecarError::Spawn { program: program.to_path_buf(), source })?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (stdin, stdout, stderr) = (stdin.unwrap(), stdout.unwrap(), stderr.unwrap());
    let tail = Arc::new(Tail::new());
    let log = log.map(|f| Arc::new(Mutex::new(f)));
    tokio::spawn(copy_lines(stderr, tail.clone(), log.clone(), "", true));
    Ok(Piped { child, stdin, stdout, tail, log })
}

async fn exited(process: &Process) -> SidecarError {
    let exit = process.wait_exit(REAP_WAIT).await;
    let stderr_tail = process.tail.settled(Duration::from_secs(1)).await;
    SidecarError::Exited {
        status: exit.map_or_else(|| "it closed its output".to_string(), |e| e.to_string()),
        stderr_tail,
        uv_note: String::new(),
        environment_note: String::new(),
    }
}

async fn never_ready(process: &Process, waited: Duration) -> SidecarError {
    process.kill_and_reap_now();
    SidecarError::NeverReady { secs: waited.as_secs(), stderr_tail: process.tail.settled(Duration::from_secs(1)).await }
}

/// 32 random bytes, hex: the bearer token of one spawn.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_64_hex_digits() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
