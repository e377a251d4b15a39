//! The python-backend folder (`server.py`, `pyproject.toml`, `uv.lock`) and its
//! Python environment: where the folder comes from ([`BackendSource`]), whether its
//! venv is synced, and the sync.
//!
//! "Synced" is remembered by a stamp file in the venv holding a hash of `uv.lock` and
//! `pyproject.toml` as they were when `uv sync` last succeeded. The venv's own mtime
//! cannot say it: uv leaves it alone when nothing changed, so a lock edited and synced
//! by hand would look stale forever. A stale or missing stamp costs one `uv sync`, which
//! is quick when there is nothing to do. The sync is `--inexact --no-dev`: it installs
//! what the server needs and never removes what a developer installed on top.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::exit::describe_status;
use super::tail::tail_of;
use super::{Result, SidecarError};

/// Set this to a python-backend folder to use it instead of the copy built into the
/// binary (see [`SidecarConfig::in_data_dir`](super::SidecarConfig::in_data_dir)).
pub const BACKEND_DIR_ENV: &str = "LOCAL_MLX_BACKEND_DIR";

const SERVER: &str = "server.py";
const STAMP: &str = ".local-mlx-synced";

/// Where the sidecar's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSource {
    /// A python-backend folder on disk: `$LOCAL_MLX_BACKEND_DIR`, or one an app bundle
    /// or a Linux package ships next to the executable.
    Dir(PathBuf),
    /// The copy built into this binary, written to `<root>/<version>/` at the first
    /// start (see `sidecar/embedded.rs`); its venv is `<root>/venv`, shared by versions so
    /// an upgrade syncs only what changed.
    Embedded { root: PathBuf },
}

impl BackendSource {
    /// The folder to run from (writing the embedded files if needed) and its venv
    /// (`venv` wins when set).
    pub(crate) fn resolve(&self, venv: Option<&Path>) -> Result<Backend> {
        match self {
            BackendSource::Dir(dir) => Backend::new(dir, venv),
            BackendSource::Embedded { root } => {
                let dir = super::embedded::materialize(root)
                    .map_err(|source| SidecarError::Unpack { dir: root.clone(), source })?;
                Backend::new(&dir, Some(venv.map_or_else(|| root.join("venv"), Path::to_path_buf).as_path()))
            }
        }
    }

    /// Where the sidecar's files are (or will be), for messages.
    pub fn describe(&self) -> String {
        match self {
            BackendSource::Dir(dir) => dir.display().to_string(),
            BackendSource::Embedded { root } => {
                format!("{} (built into local-mlx)", super::embedded::version_dir(root).display())
            }
        }
    }
}

/// The sidecar's files: `$LOCAL_MLX_BACKEND_DIR` if set (a development checkout), else
/// the copy built into this binary, unpacked under `data_dir`.
pub(super) fn default_backend(data_dir: &Path) -> BackendSource {
    backend_from(std::env::var_os(BACKEND_DIR_ENV), data_dir)
}

/// [`default_backend`] with the variable's value given. No folder next to the
/// executable is looked for: the binary carries its own files, and a copy found there
/// (a Tauri build leaves one in `target/release/python-backend`) may be older than it.
/// An app that bundles the folder on purpose passes it as [`BackendSource::Dir`].
fn backend_from(env_dir: Option<std::ffi::OsString>, data_dir: &Path) -> BackendSource {
    match env_dir.filter(|d| !d.is_empty()) {
        Some(dir) => BackendSource::Dir(PathBuf::from(dir)),
        None => BackendSource::Embedded { root: data_dir.join("sidecar") },
    }
}

/// What [`Backend::sync`] does with packages already installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncMode {
    /// Keep them (the usual sync: quick when nothing changed).
    KeepInstalled,
    /// Install every package again (a venv whose files were damaged).
    Reinstall,
}

/// A python-backend folder and the venv uv runs it in.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub dir: PathBuf,
    /// `UV_PROJECT_ENVIRONMENT`, when the venv must live elsewhere (a read-only bundle).
    pub venv: Option<PathBuf>,
}

impl Backend {
    pub(crate) fn new(dir: &Path, venv: Option<&Path>) -> Result<Self> {
        if !dir.join(SERVER).is_file() {
            return Err(SidecarError::BackendNotFound { dir: dir.to_path_buf() });
        }
        Ok(Backend { dir: dir.to_path_buf(), venv: venv.map(Path::to_path_buf) })
    }

    pub(crate) fn server_py(&self) -> PathBuf {
        self.dir.join(SERVER)
    }

    pub(crate) fn venv_dir(&self) -> PathBuf {
        self.venv.clone().unwrap_or_else(|| self.dir.join(".venv"))
    }

    /// The environment every uv call of ours gets.
    pub(crate) fn command(&self, uv: &Path) -> Command {
        let mut cmd = Command::new(uv);
        // Python downloads are left to the user's uv settings: the project prefers the
        // machine's Python, and a Mac whose only Python is too old needs uv to fetch one.
        cmd.current_dir(&self.dir)
            // A venv the caller happens to be in is not the project's; uv warns otherwise.
            .env_remove("VIRTUAL_ENV");
        if let Some(venv) = &self.venv {
            cmd.env("UV_PROJECT_ENVIRONMENT", venv);
        }
        cmd
    }

    /// What the stamp must hold for the venv to count as synced.
    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for file in ["pyproject.toml", "uv.lock"] {
            hash.update(file.as_bytes());
            hash.update(std::fs::read(self.dir.join(file)).unwrap_or_default());
        }
        hex::encode(hash.finalize())
    }

    /// Whether [`Backend::sync`] must run before the server can start quickly.
    pub(crate) fn needs_sync(&self) -> bool {
        let venv = self.venv_dir();
        if !venv.join("pyvenv.cfg").is_file() {
            return true;
        }
        std::fs::read_to_string(venv.join(STAMP)).map_or(true, |stamp| stamp.trim() != self.fingerprint())
    }

    /// `uv sync --frozen --no-dev --inexact`, its output appended to `log`; on success the
    /// stamp is written. Returns how long it took. `SyncMode::Reinstall` adds `--reinstall`:
    /// a package whose files were deleted but whose metadata stayed counts as installed
    /// to a plain sync (and to `uv run`'s own), so only a reinstall puts it back.
    pub(crate) async fn sync(
        &self,
        uv: &Path,
        timeout: Duration,
        log: Option<&std::fs::File>,
        how: SyncMode,
    ) -> Result<Duration> {
        let started = Instant::now();
        let fingerprint = self.fingerprint();
        let mut cmd = self.command(uv);
        cmd.args(["sync", "--frozen", "--no-dev", "--inexact", "--project"])
            .arg(&self.dir)
            .args((how == SyncMode::Reinstall).then_some("--reinstall"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| SidecarError::Spawn { program: uv.to_path_buf(), source })?;
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let run = async {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            let (a, b, status) = tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr), child.wait());
            a.and(b).and(status).map(|status| (status, stdout, stderr))
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        let (status, stdout, stderr) = match outcome {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Err(SidecarError::SyncFailed {
                    status: format!("reading uv's output failed: {e}"),
                    uv_stderr: String::new(),
                    uv_note: String::new(),
                })
            }
            Err(_) => {
                // kill_on_drop ends uv when `run` is dropped; its output so far is lost.
                return Err(SidecarError::SyncFailed {
                    status: format!("no result after {} s", timeout.as_secs()),
                    uv_stderr: String::new(),
                    uv_note: String::new(),
                });
            }
        };
        let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
        if let Some(mut log) = log {
            let _ = writeln!(log, "--- uv sync ({:.1} s, {status})\n{text}", started.elapsed().as_secs_f64());
        }
        if !status.success() {
            return Err(SidecarError::SyncFailed {
                status: describe_status(status),
                uv_stderr: tail_of(text.lines()),
                uv_note: String::new(),
            });
        }
        if let Err(e) = std::fs::write(self.venv_dir().join(STAMP), &fingerprint) {
            tracing::warn!(venv = %self.venv_dir().display(), "cannot write the sync stamp ({e}); the next start syncs again");
        }
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_a_folder_else_the_binarys_own_copy_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let embedded = BackendSource::Embedded { root: tmp.path().join("sidecar") };
        assert_eq!(
            backend_from(Some("/src/python-backend".into()), tmp.path()),
            BackendSource::Dir(PathBuf::from("/src/python-backend"))
        );
        assert_eq!(backend_from(Some("".into()), tmp.path()), embedded, "an empty variable is unset");
        assert_eq!(backend_from(None, tmp.path()), embedded);
    }

    #[test]
    fn the_embedded_copy_runs_from_its_version_folder_with_a_shared_venv() {
        let tmp = tempfile::tempdir().unwrap();
        let source = BackendSource::Embedded { root: tmp.path().to_path_buf() };
        let backend = source.resolve(None).unwrap();
        assert_eq!(backend.dir, super::super::embedded::version_dir(tmp.path()));
        assert!(backend.server_py().is_file());
        assert_eq!(backend.venv_dir(), tmp.path().join("venv"));
        let elsewhere = tmp.path().join("env");
        assert_eq!(source.resolve(Some(&elsewhere)).unwrap().venv_dir(), elsewhere);
    }

    #[test]
    fn a_changed_lock_needs_a_sync() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(SERVER), "").unwrap();
        std::fs::write(tmp.path().join("uv.lock"), "a").unwrap();
        let venv = tmp.path().join("venv");
        let backend = Backend::new(tmp.path(), Some(&venv)).unwrap();
        assert!(backend.needs_sync(), "no venv");
        std::fs::create_dir(&venv).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "").unwrap();
        assert!(backend.needs_sync(), "no stamp");
        std::fs::write(venv.join(STAMP), backend.fingerprint()).unwrap();
        assert!(!backend.needs_sync());
        std::fs::write(tmp.path().join("uv.lock"), "b").unwrap();
        assert!(backend.needs_sync(), "lock changed");
    }
}
