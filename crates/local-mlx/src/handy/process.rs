//! Is Handy running? It saves its whole settings on exit (and on every change), so a
//! change made under it would be undone: `connect` and `disconnect` refuse while it runs.
//!
//! Handy's process is `Handy` in the macOS bundle (`Handy.app/Contents/MacOS/Handy`),
//! `handy` from the Linux packages and `Handy.exe` on Windows: a process whose
//! executable name is `handy` in any case (with `.exe`) counts.

use std::path::Path;

/// A process that looks like Handy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningHandy {
    pub pid: u32,
    pub name: String,
}

/// Whether `name` (an executable's name or path) is Handy's.
pub fn is_handy_name(name: &str) -> bool {
    let base = Path::new(name.trim()).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let base = base.strip_suffix(".exe").or_else(|| base.strip_suffix(".EXE")).unwrap_or(base);
    base.eq_ignore_ascii_case("handy")
}

/// The first running process that looks like Handy, other than this one.
pub fn running_handy() -> Option<RunningHandy> {
    let own = std::process::id();
    processes().into_iter().find(|p| p.pid != own && is_handy_name(&p.name))
}

/// Every process's id and executable name: `/proc/<pid>/comm` on Linux.
#[cfg(target_os = "linux")]
fn processes() -> Vec<RunningHandy> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            Some(RunningHandy { pid, name: name.trim_end().to_string() })
        })
        .collect()
}

/// Every process's id and executable (a path on macOS): `ps -A -o pid= -o comm=`.
#[cfg(all(unix, not(target_os = "linux")))]
fn processes() -> Vec<RunningHandy> {
    let Ok(output) = std::process::Command::new("ps").args(["-A", "-o", "pid=", "-o", "comm="]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (pid, name) = line.trim_start().split_once(char::is_whitespace)?;
            Some(RunningHandy { pid: pid.parse().ok()?, name: name.trim().to_string() })
        })
        .collect()
}

/// Every process's id and image name: `tasklist /FO CSV /NH` (`"Handy.exe","1234",…`).
#[cfg(windows)]
fn processes() -> Vec<RunningHandy> {
    let Ok(output) = std::process::Command::new("tasklist").args(["/FO", "CSV", "/NH"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split("\",\"");
            let name = fields.next()?.trim_start_matches('"').to_string();
            let pid = fields.next()?.parse().ok()?;
            Some(RunningHandy { pid, name })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handys_names_on_each_platform_count_and_others_do_not() {
        for name in ["handy", "Handy", "/Applications/Handy.app/Contents/MacOS/Handy", "Handy.exe", "handy\n"] {
            assert!(is_handy_name(name), "{name:?}");
        }
        for name in ["handyman", "local-mlx", "handy-helper", "", "/usr/bin/unhandy", "Handy Helper"] {
            assert!(!is_handy_name(name), "{name:?}");
        }
    }
}
