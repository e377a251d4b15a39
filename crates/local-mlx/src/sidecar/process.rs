//! One sidecar process, once spawned: its stderr, its signals, its end.
//!
//! [`Process`] owns the `uv run` child, which leads a process group of its own (Python
//! is its child in the same group). Its stderr goes line by line to the log file
//! (`log_file.rs`) and into its [`Tail`] (`tail.rs`). Signals go to the whole group,
//! and only while uv is not yet reaped: the group id cannot be taken by another process
//! before then, so a late signal can never hit a stranger.
//!
//! A reaper thread per process publishes its end in a `watch` ([`Process::exit`]): it
//! waits with `waitid(WNOWAIT)`, which leaves uv unreaped, then reaps it under the same
//! lock the signals take. Everyone who waits for the end waits on that channel.

use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

use super::exit::ExitInfo;
use super::tail::Tail;

/// How long a process that was told to die, or whose pipes closed, gets to be reaped.
pub(super) const REAP_WAIT: Duration = Duration::from_secs(2);

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
    pub(crate) fn exit(&self) -> Option<ExitInfo> {
        *self.ended.borrow()
    }

    /// Every change of [`Self::exit`]: `None` while it runs, then how it ended.
    pub(crate) fn ended(&self) -> watch::Receiver<Option<ExitInfo>> {
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
    pub(crate) async fn wait_exit(&self, within: Duration) -> Option<ExitInfo> {
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
