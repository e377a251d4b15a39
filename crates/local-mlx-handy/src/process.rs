//! Is Handy running? It saves its whole settings on exit (and on every change), so a
//! change made under it would be undone: `connect` and `disconnect` refuse while it runs.
//!
//! Handy's process is `Handy` in the macOS bundle (`Handy.app/Contents/MacOS/Handy`),
//! `handy` from the Linux packages (inside an AppImage's mount, started as `AppRun`)
//! and `Handy.exe` on Windows. A process counts when its executable is named so (the
//! process name, or the file its `/proc/<pid>/exe` link names) *and* the executable
//! holds Handy's bundle identifier ([`IDENTIFIER`], which Tauri builds into every
//! Handy binary): another program called `handy` is not Handy. Where the executable
//! cannot be read (another user's process: not the Handy that writes this store) the
//! process does not count; on Windows, where only names are listed, the name decides.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::schema::IDENTIFIER;

/// A process that is Handy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningHandy {
    pub pid: u32,
    pub name: String,
}

/// One process as listed: its id, its name, the name of the file it runs (when it
/// differs, as for an AppImage's `AppRun`), and where to read that file when we may.
#[derive(Debug, Clone)]
struct Listed {
    pid: u32,
    name: String,
    file_name: Option<String>,
    executable: Option<PathBuf>,
}

/// Whether `name` (an executable's name or path) is Handy's.
pub fn is_handy_name(name: &str) -> bool {
    let base = Path::new(name.trim()).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let base = base.strip_suffix(".exe").or_else(|| base.strip_suffix(".EXE")).unwrap_or(base);
    base.eq_ignore_ascii_case("handy")
}

/// The largest executable searched for the identifier (Handy's is tens of MB).
const MAX_EXECUTABLE_BYTES: u64 = 1 << 30;

/// Whether the file at `path` holds Handy's bundle identifier.
pub fn is_handy_executable(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let needle = IDENTIFIER.as_bytes();
    let mut reader = file.take(MAX_EXECUTABLE_BYTES);
    let mut window = Vec::with_capacity((1 << 20) + needle.len());
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(&chunk[..n]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        // Keep the tail: the identifier may straddle two reads.
        let keep = window.len().min(needle.len() - 1);
        window.drain(..window.len() - keep);
    }
}

/// The first running process that is Handy, other than this one.
pub fn running_handy() -> Option<RunningHandy> {
    let own = std::process::id();
    processes().into_iter().filter(|p| p.pid != own).find_map(|p| {
        let named = is_handy_name(&p.name) || p.file_name.as_deref().is_some_and(is_handy_name);
        // Only a process named so is read: reading every executable would take seconds.
        let confirmed = || match &p.executable {
            Some(executable) => is_handy_executable(executable),
            None => cfg!(windows),
        };
        (named && confirmed()).then(|| RunningHandy { pid: p.pid, name: p.name.clone() })
    })
}

/// Every process: `/proc/<pid>/comm` and the file `/proc/<pid>/exe` names, on Linux.
#[cfg(target_os = "linux")]
fn processes() -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            // Read through the link itself: it opens the running file even when its
            // path is gone or out of reach (an AppImage's mount, a replaced binary);
            // another user's process has none we may read.
            let link = entry.path().join("exe");
            let target = std::fs::read_link(&link).ok();
            let file_name = target.as_deref().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
            let executable = target.map(|_| link);
            Some(Listed { pid, name: name.trim_end().to_string(), file_name, executable })
        })
        .collect()
}

/// Every process's id and executable path: `ps -A -o pid= -o comm=`.
#[cfg(all(unix, not(target_os = "linux")))]
fn processes() -> Vec<Listed> {
    let Ok(output) = std::process::Command::new("ps").args(["-A", "-o", "pid=", "-o", "comm="]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (pid, name) = line.trim_start().split_once(char::is_whitespace)?;
            let name = name.trim().to_string();
            Some(Listed { pid: pid.parse().ok()?, file_name: None, executable: Some(PathBuf::from(&name)), name })
        })
        .collect()
}

/// Every process's id and image name: `tasklist /FO CSV /NH` (`"Handy.exe","1234",…`).
#[cfg(windows)]
fn processes() -> Vec<Listed> {
    let Ok(output) = std::process::Command::new("tasklist").args(["/FO", "CSV", "/NH"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split("\",\"");
            let name = fields.next()?.trim_start_matches('"').to_string();
            let pid = fields.next()?.parse().ok()?;
            Some(Listed { pid, name, file_name: None, executable: None })
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

    #[test]
    fn only_an_executable_holding_the_identifier_is_handys_even_across_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        std::fs::write(&plain, vec![b'x'; 3 << 20]).unwrap();
        assert!(!is_handy_executable(&plain));
        // The identifier across the 1 MiB boundary between two reads.
        let mut bytes = vec![b'x'; (1 << 20) - 5];
        bytes.extend_from_slice(IDENTIFIER.as_bytes());
        bytes.extend_from_slice(&[b'y'; 100]);
        let handy = tmp.path().join("handy");
        std::fs::write(&handy, bytes).unwrap();
        assert!(is_handy_executable(&handy));
        assert!(!is_handy_executable(tmp.path()), "a folder");
        assert!(!is_handy_executable(&tmp.path().join("gone")));
    }
}
