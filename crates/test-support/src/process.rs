//! Looking at and ending processes a test started (Linux `/proc` and `kill`).

use std::process::Command;

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
