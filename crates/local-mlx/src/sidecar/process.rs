//! One sidecar process: spawn it, wait for its ready line, keep its stderr, stop it.
//!
//! [`Sidecar`] owns the `uv run` child, which leads a process group of its own (Python
//! is its child in the same group). Its stderr goes line by line to the log file and
//! into a ring of the last [`TAIL_LINES`] lines, which every error about the process
//! quotes. The log file is a [`LogSink`]: capped at [`LOG_CAP_BYTES`], then rotated to
//! `<name>.1` (one old file kept), with runs of identical lines written once, so a
//! process that floods its stderr cannot fill the disk. Signals go to the whole group, and only while uv is not yet reaped: the group
//! id cannot be taken by another process before then, so a late signal can never hit a
//! stranger.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

use super::backend::Backend;
use super::client::{Client, Timeouts};
use super::{Result, SidecarError};

/// Lines of stderr kept for error messages.
pub const TAIL_LINES: usize = 50;
/// Longer lines are cut in the tail (the log file keeps them whole).
const TAIL_LINE_CHARS: usize = 1000;
const READY_PREFIX: &str = "LOCAL_MLX_READY port=";
const TOKEN_ENV: &str = "LOCAL_MLX_TOKEN";
/// How long a process that was told to die, or whose pipes closed, gets to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);
/// The log file's size before it is rotated; with the one old file, the log never
/// takes more than twice this.
pub const LOG_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// Longer lines are cut in the log file too (a line is not a place for megabytes).
const LOG_LINE_BYTES: usize = 64 * 1024;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    /// The signal that ended it (Unix).
    pub signal: Option<i32>,
}

impl From<ExitStatus> for ExitInfo {
    fn from(status: ExitStatus) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        ExitInfo { code: status.code(), signal }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // uv reports a child killed by signal N as exit code 128 + N, like a shell.
        let signal = match (self.code, self.signal) {
            (Some(code), _) if (129..160).contains(&code) => {
                write!(f, "exit code {code}, the Python server was ")?;
                code - 128
            }
            (Some(code), _) => return write!(f, "exit code {code}"),
            (None, Some(signal)) => signal,
            (None, None) => return f.write_str("ended"),
        };
        match signal {
            9 => f.write_str("killed by signal 9, SIGKILL: out of memory, or killed by another program"),
            15 => f.write_str("stopped by signal 15, SIGTERM"),
            _ => write!(f, "killed by signal {signal}"),
        }
    }
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    ExitInfo::from(status).to_string()
}

/// The last lines of some output, as one string for an error message.
pub(crate) fn tail_of<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> String {
    let mut last: Vec<&str> = lines.rev().take(TAIL_LINES).collect();
    last.reverse();
    if last.iter().all(|l| l.trim().is_empty()) {
        return "(no output)".into();
    }
    last.join("\n")
}

/// The last lines of a process's stderr, and whether stderr has closed.
#[derive(Debug)]
pub(crate) struct Tail {
    lines: Mutex<VecDeque<String>>,
    closed: watch::Sender<bool>,
}

impl Tail {
    fn new() -> Self {
        Tail { lines: Mutex::new(VecDeque::with_capacity(TAIL_LINES)), closed: watch::channel(false).0 }
    }

    fn push(&self, line: &str) {
        let mut cut: String = line.chars().take(TAIL_LINE_CHARS).collect();
        if cut.len() < line.len() {
            cut.push_str(" [...]");
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(cut);
    }

    pub fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        tail_of(lines.iter().map(String::as_str))
    }

    /// Wait (briefly) until stderr has closed, so the tail holds the last words.
    pub async fn settled(&self, within: Duration) -> String {
        let mut closed = self.closed.subscribe();
        let _ = tokio::time::timeout(within, closed.wait_for(|c| *c)).await;
        self.text()
    }
}

/// The child and what is shared with the [`Client`]s that talk to it.
#[derive(Debug)]
pub(crate) struct Process {
    /// uv's pid, which is also the process group's id.
    pid: Option<u32>,
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    pub tail: Arc<Tail>,
    /// Set when we stop it on purpose, so a request cut off then is not a crash.
    pub stopping: AtomicBool,
}

impl Process {
    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How it ended, if it has (this reaps it).
    pub fn exit(&self) -> Option<ExitInfo> {
        match self.child().try_wait() {
            Ok(status) => status.map(ExitInfo::from),
            // Only if the child was reaped behind our back: it is gone either way.
            Err(_) => Some(ExitInfo { code: None, signal: None }),
        }
    }

    /// Send `signal` to the process group, unless uv is already reaped.
    fn signal(&self, signal: Signal) {
        let mut child = self.child();
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        match (signal, self.pid) {
            #[cfg(unix)]
            (_, Some(pid)) => {
                let sig = match signal {
                    Signal::Term => libc::SIGTERM,
                    Signal::Kill => libc::SIGKILL,
                };
                // SAFETY: kill(2) has no memory effects; the group is ours (see above).
                unsafe { libc::kill(-(pid as libc::pid_t), sig) };
            }
            _ => {
                let _ = child.start_kill();
            }
        }
    }

    /// Wait up to `within` for the process to end.
    pub async fn wait_exit(&self, within: Duration) -> Option<ExitInfo> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.exit() {
                return Some(exit);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL the group and reap uv, blocking the thread for at most [`REAP_WAIT`].
    fn kill_and_reap_now(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.signal(Signal::Kill);
        let deadline = Instant::now() + REAP_WAIT;
        while self.exit().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_and_reap_now();
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| SidecarError::Spawn { program: uv.to_path_buf(), source })?;
        let pid = child.id();
        tracing::info!(pid, uv = %uv.display(), backend = %backend.dir.display(), "sidecar spawned");
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        let tail = Arc::new(Tail::new());
        let log = log.map(|f| Arc::new(Mutex::new(f)));
        tokio::spawn(copy_lines(stderr, tail.clone(), log.clone(), "", true));
        let process = Arc::new(Process {
            pid,
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            tail: tail.clone(),
            stopping: AtomicBool::new(false),
        });

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
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| SidecarError::Spawn { program: worker.to_path_buf(), source })?;
        let pid = child.id();
        tracing::info!(pid, worker = %worker.display(), "native engine worker spawned");
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let tail = Arc::new(Tail::new());
        let log = log.map(|f| Arc::new(Mutex::new(f)));
        tokio::spawn(copy_lines(stderr, tail.clone(), log, "", true));
        let process = Arc::new(Process {
            pid,
            child: Mutex::new(child),
            // The link writes the worker's stdin; a shutdown ends it with SIGTERM.
            stdin: Mutex::new(None),
            tail,
            stopping: AtomicBool::new(false),
        });
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
    pub fn client(&self) -> Arc<Client> {
        self.client.clone()
    }

    /// The pid of `uv run`, the leader of the sidecar's process group (Python's own pid
    /// is in [`StatusResponse::pid`](super::StatusResponse::pid)).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid
    }

    /// Whether the process is still running (this reaps it if it ended).
    pub fn is_alive(&self) -> bool {
        self.process.exit().is_none()
    }

    /// How it ended, if it has.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.process.exit()
    }

    /// The last lines of its stderr.
    pub fn stderr_tail(&self) -> String {
        self.process.tail.text()
    }

    /// Stop it: close stdin, SIGTERM the group, wait up to `grace`, then SIGKILL; reap.
    pub async fn shutdown(self, grace: Duration) -> Option<ExitInfo> {
        let process = &self.process;
        process.stopping.store(true, Ordering::SeqCst);
        process.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        process.signal(Signal::Term);
        let mut exit = process.wait_exit(grace).await;
        if exit.is_none() {
            tracing::warn!(pid = process.pid, "the sidecar ignored SIGTERM for {grace:?}; killing it");
            process.signal(Signal::Kill);
            exit = process.wait_exit(REAP_WAIT).await;
        }
        tracing::info!(pid = process.pid, exit = ?exit, "sidecar stopped");
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

async fn exited(process: &Process) -> SidecarError {
    let exit = process.wait_exit(REAP_WAIT).await;
    let stderr_tail = process.tail.settled(Duration::from_secs(1)).await;
    SidecarError::Exited {
        status: exit.map_or_else(|| "it closed its output".to_string(), |e| e.to_string()),
        stderr_tail,
        uv_note: String::new(),
    }
}

async fn never_ready(process: &Process, waited: Duration) -> SidecarError {
    process.kill_and_reap_now();
    SidecarError::NeverReady { secs: waited.as_secs(), stderr_tail: process.tail.settled(Duration::from_secs(1)).await }
}

/// The sidecar's log file: size-capped and rotated, identical lines collapsed.
///
/// Hand-written because it is small and specific: log-rotation crates rotate by time or
/// manage whole `tracing` subscribers, while this copies another process's lines and
/// must also collapse repeats (a flood is one line over and over).
#[derive(Debug)]
pub(crate) struct LogSink {
    path: PathBuf,
    file: Option<std::fs::File>,
    written: u64,
    cap: u64,
    last: Option<String>,
    repeats: u64,
}

impl LogSink {
    /// Append to `file`, which is open at `path` (rotation renames it and opens a new one).
    pub(crate) fn new(file: std::fs::File, path: &Path) -> Self {
        Self::with_cap(file, path, LOG_CAP_BYTES)
    }

    fn with_cap(file: std::fs::File, path: &Path, cap: u64) -> Self {
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        LogSink { path: path.to_path_buf(), file: Some(file), written, cap, last: None, repeats: 0 }
    }

    /// Write one line; a repeat of the previous line is only counted.
    fn line(&mut self, line: &str) {
        if self.last.as_deref() == Some(line) {
            self.repeats += 1;
            return;
        }
        self.flush_repeats();
        self.write(line);
        self.last = Some(line.to_string());
    }

    /// Say how often the last line was repeated, if it was.
    fn flush_repeats(&mut self) {
        if self.repeats > 0 {
            let note = format!("(the line above was repeated {} more times)", self.repeats);
            self.repeats = 0;
            self.write(&note);
        }
    }

    fn write(&mut self, line: &str) {
        let cut;
        let line = if line.len() > LOG_LINE_BYTES {
            let end = (0..=LOG_LINE_BYTES).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            cut = format!("{} [... {} more bytes]", &line[..end], line.len() - end);
            &cut
        } else {
            line
        };
        let len = line.len() as u64 + 1;
        if self.written > 0 && self.written + len > self.cap {
            self.rotate();
        }
        if let Some(file) = &mut self.file {
            if writeln!(file, "{line}").is_ok() {
                self.written += len;
            }
        }
    }

    /// `<name>` becomes `<name>.1` (replacing the older one) and a new `<name>` starts.
    fn rotate(&mut self) {
        self.file = None;
        let mut previous = self.path.as_os_str().to_owned();
        previous.push(".1");
        let _ = std::fs::rename(&self.path, previous);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600); // it can quote prompts
        match options.open(&self.path) {
            Ok(file) => self.file = Some(file),
            Err(e) => tracing::warn!(path = %self.path.display(), "cannot rotate the sidecar log ({e}); it stops here"),
        }
        self.written = 0;
    }
}

/// Copy a pipe line by line into the log file and the tail; mark the tail closed at EOF.
async fn copy_lines(
    pipe: impl AsyncRead + Unpin,
    tail: Arc<Tail>,
    log: Option<Arc<Mutex<LogSink>>>,
    prefix: &'static str,
    marks_close: bool,
) {
    let mut lines = BufReader::new(pipe).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let line = String::from_utf8_lossy(&line);
        let line = format!("{prefix}{}", line.trim_end_matches('\r'));
        if let Some(log) = &log {
            log.lock().unwrap_or_else(|e| e.into_inner()).line(&line);
        }
        tail.push(&line);
    }
    if let Some(log) = &log {
        log.lock().unwrap_or_else(|e| e.into_inner()).flush_repeats();
    }
    if marks_close {
        tail.closed.send_replace(true);
    }
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
    fn the_tail_keeps_the_last_lines_and_cuts_long_ones() {
        let tail = Tail::new();
        for i in 0..(TAIL_LINES + 10) {
            tail.push(&format!("line {i}"));
        }
        tail.push(&"x".repeat(5000));
        let text = tail.text();
        assert!(!text.contains("line 10\n"));
        assert!(text.starts_with("line 11\n"), "{text}");
        assert!(text.ends_with(" [...]"));
        assert_eq!(text.lines().count(), TAIL_LINES);
    }

    #[test]
    fn a_signal_reported_as_an_exit_code_is_named() {
        let info = |code, signal| ExitInfo { code, signal }.to_string();
        assert_eq!(info(Some(3), None), "exit code 3");
        assert!(info(Some(137), None).starts_with("exit code 137, the Python server was killed by signal 9, SIGKILL"));
        assert!(info(None, Some(9)).starts_with("killed by signal 9"));
        assert_eq!(info(None, Some(15)), "stopped by signal 15, SIGTERM");
    }

    fn sink(dir: &Path, cap: u64) -> (LogSink, PathBuf) {
        let path = dir.join("sidecar.log");
        (LogSink::with_cap(std::fs::File::create(&path).unwrap(), &path, cap), path)
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn a_flood_on_stderr_is_capped_and_rotated_keeping_one_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cap = 64 * 1024;
        let (log, path) = sink(tmp.path(), cap);
        // 50 MB of distinct lines, as a traceback flood with timestamps would be.
        let flood: String =
            (0..500_000).map(|i| format!("{i:08} OSError: [Errno 24] Too many open files ...........\n")).collect();
        let tail = Arc::new(Tail::new());
        copy_lines(flood.as_bytes(), tail.clone(), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert!(
            size(&path) <= cap && size(&path.with_extension("log.1")) <= cap,
            "{} {}",
            size(&path),
            size(&path.with_extension("log.1"))
        );
        let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(
            newest.ends_with("00499999 OSError: [Errno 24] Too many open files ...........\n"),
            "the newest lines are kept"
        );
        assert!(tail.text().ends_with("00499999 OSError: [Errno 24] Too many open files ..........."));
    }

    #[tokio::test]
    async fn repeated_identical_lines_are_written_once_with_a_count() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        let input = format!("start\n{}end\n", "socket.accept() out of system resource\n".repeat(100_000));
        copy_lines(input.as_bytes(), Arc::new(Tail::new()), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "start\nsocket.accept() out of system resource\n(the line above was repeated 99999 more times)\nend\n"
        );
        let trailing = "x\ny\ny\ny\n";
        let (log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        copy_lines(trailing.as_bytes(), Arc::new(Tail::new()), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "x\ny\n(the line above was repeated 2 more times)\n",
            "counted at the end too"
        );
    }

    #[test]
    fn a_huge_line_is_cut_in_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        log.line(&"é".repeat(1_000_000));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < LOG_LINE_BYTES + 100 && text.ends_with(" more bytes]\n"), "{}", text.len());
    }

    #[cfg(unix)]
    #[test]
    fn a_rotated_log_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, path) = sink(tmp.path(), 10);
        log.line("first line, longer than the cap");
        log.line("second");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn tokens_are_fresh_and_64_hex_digits() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
