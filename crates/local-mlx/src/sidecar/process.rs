//! One sidecar process, once spawned: its stderr, its signals, its end.
//!
//! [`Process`] owns the `uv run` child, which leads a process group of its own (Python
//! is its child in the same group). Its stderr goes line by line to the log file and
//! into a ring of the last [`TAIL_LINES`] lines, which every error about the process
//! quotes. The log file is a [`LogSink`]: capped at [`LOG_CAP_BYTES`], then rotated to
//! `<name>.1` (one old file kept), with runs of identical lines written once, so a
//! process that floods its stderr cannot fill the disk. Signals go to the whole group,
//! and only while uv is not yet reaped: the group id cannot be taken by another process
//! before then, so a late signal can never hit a stranger.
//!
//! A reaper thread per process publishes its end in a `watch` ([`Process::exit`]): it
//! waits with `waitid(WNOWAIT)`, which leaves uv unreaped, then reaps it under the same
//! lock the signals take. Everyone who waits for the end waits on that channel.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

/// Lines of stderr kept for error messages.
pub const TAIL_LINES: usize = 50;
/// Longer lines are cut in the tail (the log file keeps them whole).
const TAIL_LINE_CHARS: usize = 1000;
/// How long a process that was told to die, or whose pipes closed, gets to be reaped.
pub(super) const REAP_WAIT: Duration = Duration::from_secs(2);
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
    pub(super) fn new() -> Self {
        Tail { lines: Mutex::new(VecDeque::with_capacity(TAIL_LINES)), closed: watch::channel(false).0 }
    }

    pub(super) fn push(&self, line: &str) {
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
    /// How it ended, once it has (published by whoever reaps it: the reaper or a stop).
    ended: watch::Sender<Option<ExitInfo>>,
    stdin: Mutex<Option<ChildStdin>>,
    pub tail: Arc<Tail>,
    /// Set when we stop it on purpose, so a request cut off then is not a crash.
    pub stopping: AtomicBool,
}

impl Process {
    /// Take over `child` (its stdout and stderr already taken), whose stderr lines go to
    /// `tail`; a reaper starts publishing its end.
    pub(super) fn adopt(child: Child, stdin: Option<ChildStdin>, tail: Arc<Tail>) -> Arc<Process> {
        let process = Arc::new(Process {
            pid: child.id(),
            child: Mutex::new(child),
            ended: watch::Sender::new(None),
            stdin: Mutex::new(stdin),
            tail,
            stopping: AtomicBool::new(false),
        });
        spawn_reaper(&process);
        process
    }

    /// uv's pid, the process group's id.
    pub(super) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Mark it as stopped on purpose and close its stdin (the server exits on EOF).
    pub(super) fn stop_on_purpose(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How it ended, if it has: the published end, no system call.
    pub fn exit(&self) -> Option<ExitInfo> {
        *self.ended.borrow()
    }

    /// Every change of [`Self::exit`]: `None` while it runs, then how it ended.
    pub fn ended(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.ended.subscribe()
    }

    /// Reap uv if it has ended, and publish how.
    fn reap(&self) -> Option<ExitInfo> {
        let status = self.child().try_wait();
        self.publish(status)
    }

    fn publish(&self, status: std::io::Result<Option<ExitStatus>>) -> Option<ExitInfo> {
        let info = match status {
            Ok(status) => status.map(ExitInfo::from),
            // Only if the child was reaped behind our back: it is gone either way.
            Err(_) => Some(ExitInfo { code: None, signal: None }),
        };
        if let Some(info) = info {
            self.ended.send_if_modified(|ended| {
                let first = ended.is_none();
                if first {
                    *ended = Some(info);
                }
                first
            });
        }
        self.exit()
    }

    /// Send `signal` to the process group, unless uv is already reaped.
    pub(super) fn signal(&self, signal: Signal) {
        let mut child = self.child();
        match child.try_wait() {
            Ok(None) => {}
            ended => {
                drop(child);
                self.publish(ended);
                return;
            }
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
        let mut ended = self.ended();
        let _ = tokio::time::timeout(within, ended.wait_for(Option::is_some)).await;
        self.exit()
    }

    /// SIGKILL the group and reap uv, blocking the thread for at most [`REAP_WAIT`].
    pub(super) fn kill_and_reap_now(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.signal(Signal::Kill);
        // Synchronous (a drop cannot await): the reaper may run on this very thread.
        let deadline = Instant::now() + REAP_WAIT;
        while self.reap().is_none() && Instant::now() < deadline {
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
pub(super) enum Signal {
    Term,
    Kill,
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
pub(super) async fn copy_lines(
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

/// Start the thread that publishes `process`'s end. It holds the process weakly, so
/// dropping the [`Sidecar`] still kills it; it ends when the process does.
fn spawn_reaper(process: &Arc<Process>) {
    let weak = Arc::downgrade(process);
    let pid = process.pid;
    let reaper = move || {
        wait_for_end(pid, &weak);
        if let Some(process) = weak.upgrade() {
            process.reap();
        }
    };
    if let Err(e) = std::thread::Builder::new().name("sidecar-reaper".into()).spawn(reaper) {
        tracing::warn!("cannot start the sidecar's reaper thread ({e}); its end is seen only when it is next used");
    }
}

/// Block until `pid` has ended, leaving it unreaped (so its group id stays ours until
/// [`Process::reap`] takes it under the child's lock).
#[cfg(unix)]
fn wait_for_end(pid: Option<u32>, _process: &std::sync::Weak<Process>) {
    let Some(pid) = pid else { return };
    loop {
        // SAFETY: waitid writes only into `info`, which outlives the call.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let done = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if done == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return; // ended, or already reaped (ECHILD)
        }
    }
}

/// Elsewhere there is no wait that leaves the child unreaped: ask every 100 ms (the
/// sidecar does not run there; this keeps the crate building).
#[cfg(not(unix))]
fn wait_for_end(_pid: Option<u32>, process: &std::sync::Weak<Process>) {
    while let Some(process) = process.upgrade() {
        if process.reap().is_some() {
            return;
        }
        drop(process);
        std::thread::sleep(Duration::from_millis(100));
    }
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
}
