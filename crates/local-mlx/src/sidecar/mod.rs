//! The Python sidecar: find uv, sync the Python environment, spawn `server.py`, read
//! its ready line, supervise it, and talk to it over typed HTTP.
//!
//! The main type is [`SidecarSupervisor`]: [`SidecarSupervisor::ensure_running`] hands
//! out a [`Client`] for a live process, starting one (and reporting each [`Phase`]) when
//! there is none or the last one died. The process contract is python-backend's
//! (`server.py`'s docstring): 127.0.0.1 on an OS-chosen port announced as
//! `LOCAL_MLX_READY port=<port>` on stdout, a bearer token from `LOCAL_MLX_TOKEN`, exit on
//! stdin EOF and on SIGTERM.
//!
//! Decisions, and why:
//! - **The sidecar runs in its own process group** (`uv run` is the leader, Python its
//!   child). uv forwards SIGTERM to Python but nothing can forward SIGKILL, so a group
//!   kill is the only way to be sure Python (which holds the model's memory) dies with it.
//! - **Shutdown is polite, then certain**: close stdin, SIGTERM the group, wait up to
//!   [`SidecarConfig::shutdown_grace`] (3 s), then SIGKILL the group and reap uv.
//! - **Drop never leaves an orphan**: dropping the supervisor (or a start cancelled midway) SIGKILLs
//!   the group and reaps uv synchronously (a few milliseconds). Should our own process
//!   die without running Drop, the sidecar sees stdin close and exits by itself.
//! - **The environment sync is its own phase**: a `uv sync` on first run downloads
//!   hundreds of MB, so it runs explicitly (reported as [`Phase::SyncingEnvironment`])
//!   and a stamp in the venv remembers which `uv.lock` it synced; every later start skips
//!   it. `uv run --frozen` would sync silently inside the ready timeout otherwise.
//! - **On Linux, MLX gets a real BLAS** ([`blas`]): OpenBLAS, when installed, is
//!   preloaded into the sidecar with one thread per physical core; the sidecar then
//!   keeps fp32 weights on the CPU (pre-fill ~10× faster). Without it, a warning says
//!   how to install it.
//! - **Errors say what happened and what to do**, and carry the tail of the sidecar's
//!   stderr (the full log goes to [`SidecarConfig::log_path`]); a request cut off because
//!   the process died is [`SidecarError::Crashed`], not a bare connection error.

mod backend;
pub(crate) mod blas;
mod client;
pub(crate) mod embedded;
mod exit;
mod log_file;
mod native;
mod process;
mod spawn;
mod status_error;
mod supervisor;
mod tail;
mod timeouts;
mod uv;
mod wire;

use std::path::PathBuf;

pub use backend::{BackendSource, BACKEND_DIR_ENV};
pub(crate) use client::Client;
pub use native::{ChosenEngine, EngineChoice};
pub use supervisor::{Phase, SidecarConfig, SidecarSupervisor};
pub use timeouts::Timeouts;
#[cfg(feature = "test-support")]
pub use uv::UvSearch;
pub(crate) use wire::GenerateResponse;
#[cfg(feature = "test-support")]
pub use wire::ServerState;
pub use wire::{FinishReason, GenerateChunk, GenerateRequest};

/// Everything that can go wrong with the sidecar process or its HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("uv, which runs the Python sidecar, was not found (looked in: {searched}). Install uv with `pip install uv` or from https://docs.astral.sh/uv/ , or set the uv path in settings.")]
    UvNotFound { searched: String },

    #[error("uv {found} at {path} is too old: uv ≥ {needed} needed (it reads the sidecar's lock file). Update it (`uv self update`, or `pip install -U uv`), or set the uv path in settings to a newer one.", path = .path.display(), needed = uv::MIN_UV)]
    UvTooOld { path: PathBuf, found: String },

    #[error("the sidecar's files were not found: {dir} has no server.py. Reinstall local-mlx, or set {env} to the python-backend folder.", env = BACKEND_DIR_ENV, dir = .dir.display())]
    BackendNotFound { dir: PathBuf },

    #[error("cannot write the sidecar's files under {dir}: {source}. Make that folder writable, or set LOCAL_MLX_DATA_DIR to a writable folder.", dir = .dir.display())]
    Unpack {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot start {program}: {source}. Check that the uv path in settings points to a working uv.", program = .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("setting up the sidecar's Python environment failed ({status}){uv_note}. uv said:\n{uv_stderr}\nThe first run downloads Python packages: check the network connection, then try again.")]
    SyncFailed {
        status: String,
        uv_stderr: String,
        /// Which uv ran, when the settings chose it (see `SidecarError::naming_uv_from_settings`).
        uv_note: String,
    },

    #[error("the sidecar did not become ready within {secs} s, so it was stopped. Its last output:\n{stderr_tail}")]
    NeverReady { secs: u64, stderr_tail: String },

    #[error(
        "the sidecar exited before it was ready ({status}){uv_note}.{environment_note} Its last output:\n{stderr_tail}"
    )]
    Exited {
        status: String,
        stderr_tail: String,
        /// Which uv ran, when the settings chose it.
        uv_note: String,
        /// Where its files and Python environment are, once a re-sync did not help.
        environment_note: String,
    },

    #[error("the sidecar died during {what} ({status}); it will be restarted on the next request. Its last output:\n{stderr_tail}")]
    Crashed { what: &'static str, status: String, stderr_tail: String },

    #[error("the sidecar was stopped while {what} was in progress.")]
    Stopped { what: &'static str },

    #[error("the sidecar did not answer {what} within {secs} s.{hint}", hint = timeout_hint(.what))]
    Timeout { what: &'static str, secs: u64 },

    #[error("cannot reach the sidecar for {what}: {detail}")]
    Unreachable { what: &'static str, detail: String },

    #[error("the sidecar refused our token (HTTP 401): another program may be using its port. Restart local-mlx.")]
    Unauthorized,

    #[error("the model at {path} could not be loaded: {detail}. Delete and download the model again if its files are damaged.", path = .path.display())]
    ModelLoad { path: PathBuf, detail: String },

    #[error("no model is loaded in the sidecar: load one first.")]
    NoModelLoaded,

    #[error("the sidecar is busy ({detail}). Try again in a moment.")]
    Busy { detail: String },

    #[error("the sidecar refused the request: {detail}.")]
    BadRequest { detail: String },

    #[error("the sidecar answered HTTP {status} to {what}: {detail}")]
    Http { what: &'static str, status: u16, detail: String },

    #[error("the sidecar's answer to {what} is not what it should send: {detail}")]
    BadResponse { what: &'static str, detail: String },
}

impl SidecarError {
    /// The error's kind (see [`crate::error_kind::ErrorKind`]).
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            SidecarError::UvNotFound { .. } | SidecarError::UvTooOld { .. } => ErrorKind::UvNotFound,
            SidecarError::BackendNotFound { .. } => ErrorKind::BackendNotFound,
            SidecarError::Unpack { .. } => ErrorKind::BackendUnpackFailed,
            SidecarError::Spawn { .. } => ErrorKind::SidecarSpawn,
            SidecarError::SyncFailed { .. } => ErrorKind::SyncFailed,
            SidecarError::NeverReady { .. } => ErrorKind::NeverReady,
            SidecarError::Exited { .. } => ErrorKind::SidecarExited,
            SidecarError::Crashed { .. } => ErrorKind::SidecarCrashed,
            SidecarError::Stopped { .. } => ErrorKind::SidecarStopped,
            SidecarError::Timeout { .. } => ErrorKind::SidecarTimeout,
            SidecarError::Unreachable { .. } => ErrorKind::SidecarUnreachable,
            SidecarError::Unauthorized => ErrorKind::SidecarUnauthorized,
            SidecarError::ModelLoad { .. } => ErrorKind::ModelLoad,
            SidecarError::NoModelLoaded => ErrorKind::NoModelLoaded,
            SidecarError::Busy { .. } => ErrorKind::SidecarBusy,
            SidecarError::BadRequest { .. } => ErrorKind::SidecarBadRequest,
            SidecarError::Http { .. } => ErrorKind::SidecarHttp,
            SidecarError::BadResponse { .. } => ErrorKind::SidecarBadResponse,
        }
    }

    /// A failure of the uv the settings chose names it, so the user knows which setting
    /// to fix (a missing one is already named by [`SidecarError::UvNotFound`]).
    pub(crate) fn naming_uv_from_settings(mut self, uv: &std::path::Path) -> Self {
        if let SidecarError::SyncFailed { uv_note, .. } | SidecarError::Exited { uv_note, .. } = &mut self {
            *uv_note = format!(
                " with {}, the uv path from settings: check it, or clear it to use the uv found on this machine",
                uv.display()
            );
        }
        self
    }

    /// An exit before ready that a re-sync did not cure names the sidecar's folders.
    pub(crate) fn naming_environment(mut self, dir: &std::path::Path, venv: &std::path::Path) -> Self {
        if let SidecarError::Exited { environment_note, .. } = &mut self {
            *environment_note = format!(
                " Its files are in {} and its Python environment in {}, synced again just now: if its last \
                 output names a missing module, remove {} and run `local-mlx setup`.",
                dir.display(),
                venv.display(),
                venv.display()
            );
        }
        self
    }

    /// Whether the process is gone, so the next request starts a new one and a retry of the same request may succeed.
    pub fn process_died(&self) -> bool {
        matches!(self, SidecarError::Crashed { .. } | SidecarError::Stopped { .. })
    }
}

fn timeout_hint(what: &str) -> &'static str {
    match what {
        "generate" => " Try a shorter text or a smaller model.",
        "load" => " The model may be too large for this computer's memory, or its disk too slow.",
        _ => "",
    }
}

/// Result alias for the sidecar module.
pub(crate) type Result<T, E = SidecarError> = std::result::Result<T, E>;
