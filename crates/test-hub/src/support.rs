//! Helpers the workspace's integration tests share: waiting for a condition, asking
//! whether a process is gone, killing a process group, listing a folder.
//!
//! They live here, beside [`crate::fixtures`], because every test crate (the core's, the
//! CLI's, this one's) already depends on `test-hub`: one copy, no extra crate. Waits are
//! bounded by a generous deadline that only turns a hang into a failure; no test times
//! anything with them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Poll `condition` until it holds; panic naming `what` after a minute and a half (a
/// hang, not a slow machine).
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

/// SIGKILL a whole process group (the sidecar's `uv run` leads its own).
pub fn kill_group(pgid: u32) {
    let status = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status().unwrap();
    assert!(status.success(), "kill -KILL -{pgid} failed");
}

/// Everything under `dir` (folders too), relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// The files under `dir` (no folders) as sorted `/`-separated paths.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}
