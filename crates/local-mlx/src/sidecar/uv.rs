//! Finding uv, the one program the sidecar needs on the user's machine.
//!
//! The search order is: the path set in settings, a `uv` shipped next to our own
//! executable (how the app bundle carries it, and where the `local-mlx` wheel's `uv`
//! dependency lands), `PATH`, then the places uv's installers
//! and package managers put it. The last step exists because a macOS app started from
//! Finder gets a bare `PATH` (`/usr/bin:/bin:/usr/sbin:/sbin`) that never holds a
//! user-installed uv. [`UvSearch`] takes every input as a value, so tests search an
//! empty world without touching the process environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Result, SidecarError};

const UV: &str = if cfg!(windows) { "uv.exe" } else { "uv" };

/// Where to look for uv. [`UvSearch::from_env`] fills it from this process.
#[derive(Debug, Clone, Default)]
pub struct UvSearch {
    /// The path from settings, tried first.
    pub explicit: Option<PathBuf>,
    /// The folder of our executable.
    pub exe_dir: Option<PathBuf>,
    /// The value of `PATH`.
    pub path_var: Option<OsString>,
    /// The home folder, for `~/.local/bin/uv` and `~/.cargo/bin/uv`.
    pub home: Option<PathBuf>,
    /// Fixed system locations (Homebrew's, `/usr/local/bin`).
    pub system_dirs: Vec<PathBuf>,
}

impl UvSearch {
    /// The search this process would do, with `explicit` from settings.
    pub fn from_env(explicit: Option<&Path>) -> Self {
        UvSearch {
            explicit: explicit.map(Path::to_path_buf),
            // Resolved, so a link on PATH (`~/.local/bin/local-mlx` from `uv tool install`
            // or pipx) leads to the venv whose `bin/` holds the `uv` wheel's binary.
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|exe| std::fs::canonicalize(exe).ok())
                .and_then(|exe| exe.parent().map(Path::to_path_buf)),
            path_var: std::env::var_os("PATH"),
            home: crate::fs::home_dir(),
            system_dirs: ["/opt/homebrew/bin", "/usr/local/bin"].iter().map(PathBuf::from).collect(),
        }
    }

    /// Every candidate, in order.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        out.extend(self.explicit.clone());
        out.extend(self.exe_dir.as_ref().map(|dir| dir.join(UV)));
        if let Some(path) = &self.path_var {
            out.extend(std::env::split_paths(path).filter(|d| !d.as_os_str().is_empty()).map(|d| d.join(UV)));
        }
        if let Some(home) = &self.home {
            out.push(home.join(".local").join("bin").join(UV));
            out.push(home.join(".cargo").join("bin").join(UV));
        }
        out.extend(self.system_dirs.iter().map(|d| d.join(UV)));
        out
    }

    /// The first candidate that is an executable file.
    pub fn find(&self) -> Result<PathBuf> {
        if let Some(explicit) = &self.explicit {
            if !is_executable(explicit) {
                tracing::warn!(path = %explicit.display(), "the uv path in settings is not an executable file; searching elsewhere");
            }
        }
        let candidates = self.candidates();
        if let Some(found) = candidates.iter().find(|c| is_executable(c)) {
            return Ok(found.clone());
        }
        let mut searched: Vec<String> = Vec::new();
        if let Some(explicit) = &self.explicit {
            searched.push(format!("{} (from settings)", explicit.display()));
        }
        if let Some(dir) = &self.exe_dir {
            searched.push(format!("{} (next to local-mlx)", dir.display()));
        }
        searched.push("PATH".into());
        if let Some(home) = &self.home {
            searched.push(format!("{}/.local/bin", home.display()));
            searched.push(format!("{}/.cargo/bin", home.display()));
        }
        searched.extend(self.system_dirs.iter().map(|d| d.display().to_string()));
        Err(SidecarError::UvNotFound { searched: searched.join(", ") })
    }
}

/// The oldest uv the sidecar runs with: the `local-mlx` wheel's `uv` dependency has the
/// same lower bound (crates/local-mlx-cli/pyproject.toml).
pub(super) const MIN_UV: &str = "0.9.0";

/// `Err` when the uv at `path` says (`uv --version`) it is older than [`MIN_UV`]; a uv
/// whose answer cannot be read is let through (the sync then says what went wrong).
pub(super) fn check_version(path: &Path) -> Result<()> {
    let Ok(output) = std::process::Command::new(path).arg("--version").stdin(std::process::Stdio::null()).output()
    else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(found) = text.split_whitespace().nth(1) else { return Ok(()) };
    let numbers = |v: &str| -> Option<Vec<u64>> { v.split(['.', '-', '+']).take(3).map(|n| n.parse().ok()).collect() };
    match (numbers(found), numbers(MIN_UV)) {
        (Some(have), Some(need)) if have < need => {
            Err(SidecarError::UvTooOld { path: path.to_path_buf(), found: found.to_string() })
        }
        _ => Ok(()),
    }
}

/// uv, searched the way this process would (see [`UvSearch`]).
pub(super) fn find_uv(explicit: Option<&Path>) -> Result<PathBuf> {
    UvSearch::from_env(explicit).find()
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_uv(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(UV);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        path
    }

    #[test]
    fn a_uv_older_than_the_minimum_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let uv = fake_uv(tmp.path());
        for (says, ok) in
            [("uv 0.4.30 (abc 2024-11-01)", false), ("uv 0.9.0", true), ("uv 0.13.9 (x)", true), ("", true)]
        {
            std::fs::write(&uv, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
            let result = check_version(&uv);
            assert_eq!(result.is_ok(), ok, "{says}");
            if let Err(error) = result {
                let message = error.to_string();
                assert!(message.contains("uv 0.4.30 at") && message.contains("uv ≥ 0.9.0 needed"), "{message}");
            }
        }
    }

    #[test]
    fn settings_path_wins_over_exe_dir_and_path() {
        let tmp = tempfile::tempdir().unwrap();
        let explicit = fake_uv(&tmp.path().join("settings"));
        let beside = fake_uv(&tmp.path().join("exe"));
        let on_path = fake_uv(&tmp.path().join("path"));
        let mut search = UvSearch {
            explicit: Some(explicit.clone()),
            exe_dir: Some(tmp.path().join("exe")),
            path_var: Some(tmp.path().join("path").into_os_string()),
            ..UvSearch::default()
        };
        assert_eq!(search.find().unwrap(), explicit);
        search.explicit = Some(tmp.path().join("missing/uv"));
        assert_eq!(search.find().unwrap(), beside);
        search.exe_dir = None;
        assert_eq!(search.find().unwrap(), on_path);
    }

    #[test]
    fn home_install_locations_are_found_without_path() {
        let tmp = tempfile::tempdir().unwrap();
        let installed = fake_uv(&tmp.path().join(".local/bin"));
        let search =
            UvSearch { home: Some(tmp.path().to_path_buf()), path_var: Some(OsString::new()), ..UvSearch::default() };
        assert_eq!(search.find().unwrap(), installed);
    }

    #[test]
    fn a_non_executable_file_is_not_uv() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(UV);
        std::fs::write(&path, "not a program").unwrap();
        let search = UvSearch { explicit: Some(path), ..UvSearch::default() };
        assert!(matches!(search.find(), Err(SidecarError::UvNotFound { .. })) || cfg!(not(unix)));
    }
}
