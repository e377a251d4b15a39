//! The LaunchAgent's log, `~/Library/Logs/local-mlx/serve.log`, kept small: launchd
//! appends the job's output to it forever and has no rotation of its own (newsyslog
//! needs root), so `serve` started by the agent rotates it itself when it starts.
//!
//! The agent names the log in [`LOG_ENV`]. At start, a log past [`ROTATE_AT`] becomes
//! `serve.log.1` (replacing the one before) and this process's stdout and stderr are
//! pointed at a fresh `serve.log`, as launchd would have opened it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Set by the LaunchAgent: the file launchd sends this process's output to.
pub const LOG_ENV: &str = "LOCAL_MLX_SERVICE_LOG";

/// The size past which the log is rotated at start.
pub const ROTATE_AT: u64 = 10 << 20;

/// Rotate the log [`LOG_ENV`] names if it has grown past [`ROTATE_AT`]. A failure is
/// reported on stderr and otherwise ignored: the server matters more than its log.
pub fn rotate_at_start() {
    let Some(log) = std::env::var_os(LOG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from) else { return };
    if let Err(error) = rotate(&log) {
        eprintln!("warning: cannot rotate the log {}: {error}", log.display());
    }
}

fn rotate(log: &Path) -> std::io::Result<()> {
    let size = match std::fs::metadata(log) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if size <= ROTATE_AT {
        return Ok(());
    }
    let mut old = log.as_os_str().to_owned();
    old.push(".1");
    std::fs::rename(log, &old)?;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let fresh = options.open(log)?;
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 on two open descriptors; `fresh` stays open until both are done.
        if unsafe { libc::dup2(fresh.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
