//! The one error type of the core library.
//!
//! Every variant carries the context a user needs to act on it (the model id, the
//! repo, the path, the numbers), so the message is complete where it is formatted and
//! the faces never add guesswork. [`Error::kind`] gives a stable machine-readable tag,
//! so a frontend can branch on `{ kind, message }` instead of parsing strings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::state::{ModelState, Transition};

/// Declares [`ErrorKind`] and its wire name per variant, in one list.
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// What went wrong, as a face branches on it: one kind per cause, sent as its
        /// `snake_case` name (`{ kind, message }` in the app, `error.code` mapping in
        /// the server). Exported to TypeScript as the union `MlxErrorKind`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[cfg_attr(feature = "specta", specta(rename = "MlxErrorKind"))]
        pub enum ErrorKind {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// The kind's wire name (`snake_case`), as serde writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    UnknownModel = "unknown_model",
    InvalidRepoId = "invalid_repo_id",
    Offline = "offline",
    RepoNotFound = "repo_not_found",
    RevisionNotFound = "revision_not_found",
    /// The hub refused our token (or its absence) for a repo: set `HF_TOKEN`.
    HubUnauthorized = "hub_unauthorized",
    HttpStatus = "http_status",
    BadHubResponse = "bad_hub_response",
    UnsafeFileName = "unsafe_file_name",
    HubLimitExceeded = "hub_limit_exceeded",
    HubTimeout = "hub_timeout",
    InvalidEndpoint = "invalid_endpoint",
    Network = "network",
    Stalled = "stalled",
    Integrity = "integrity",
    SizeMismatch = "size_mismatch",
    InsufficientDisk = "insufficient_disk",
    Io = "io",
    DownloadInProgress = "download_in_progress",
    NoActiveDownload = "no_active_download",
    NothingToRetry = "nothing_to_retry",
    /// The model is in use (downloading, loading, generating): the action must wait.
    Busy = "busy",
    NotDownloaded = "not_downloaded",
    CorruptRef = "corrupt_ref",
    DeletedWhileDownloading = "deleted_while_downloading",
    IllegalTransition = "illegal_transition",
    DownloadFailed = "download_failed",
    TranscriptTooLong = "transcript_too_long",
    InvalidRequest = "invalid_request",
    InvalidPrompt = "invalid_prompt",
    UnsupportedPlatform = "unsupported_platform",
    HandyNotFound = "handy_not_found",
    HandyStoreCorrupt = "handy_store_corrupt",
    HandyStoreReadOnly = "handy_store_read_only",
    HandyRunning = "handy_running",
    HandyNoBackup = "handy_no_backup",
    NoModelDownloaded = "no_model_downloaded",
    InvalidUrl = "invalid_url",
    UvNotFound = "uv_not_found",
    BackendNotFound = "backend_not_found",
    BackendUnpackFailed = "backend_unpack_failed",
    Spawn = "spawn",
    SyncFailed = "sync_failed",
    NeverReady = "never_ready",
    Exited = "exited",
    Crashed = "crashed",
    Stopped = "stopped",
    Timeout = "timeout",
    Unreachable = "unreachable",
    /// The sidecar refused our per-spawn token: another program may hold its port.
    SidecarUnauthorized = "sidecar_unauthorized",
    ModelLoad = "model_load",
    NoModelLoaded = "no_model_loaded",
    /// The sidecar's own queue is full: try again in a moment.
    SidecarBusy = "sidecar_busy",
    BadRequest = "bad_request",
    Http = "http",
    BadResponse = "bad_response",
    /// A settings file cannot be parsed; it was kept as a backup.
    SettingsCorrupt = "settings_corrupt",
    /// A post-processing provider id that is not ours.
    UnknownProvider = "unknown_provider",
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparing with a wire name (`err.kind() == "busy"`), as the tests and faces written
/// against the names do.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Result alias for the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in local-mlx's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown model '{id}': run `local-mlx models` to see the catalog, or give a Hugging Face repo id like 'mlx-community/Qwen3-1.7B-4bit'")]
    UnknownModel { id: String },

    #[error("'{id}' is not a valid Hugging Face repo id ({reason}); expected 'org/name' using letters, digits, '-', '_' and '.'")]
    InvalidRepoId { id: String, reason: String },

    #[error("model '{model_id}' is not in the cache at {cache} and HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE to download it")]
    Offline { model_id: String, cache: PathBuf },

    #[error(
        "repository '{repo}' was not found on {endpoint}: check the model id (private or gated models need HF_TOKEN)"
    )]
    RepoNotFound { repo: String, endpoint: String },

    #[error("revision '{revision}' of '{repo}' was not found on the hub")]
    RevisionNotFound { repo: String, revision: String },

    #[error("the hub refused access to '{repo}' (HTTP {status}): set HF_TOKEN to a token that can read it")]
    Unauthorized { repo: String, status: u16 },

    #[error("the hub answered HTTP {status} for {url}")]
    HttpStatus { url: String, status: u16 },

    #[error("the hub's answer for {url} is not what a Hugging Face hub sends: {reason}")]
    BadHubResponse { url: String, reason: String },

    #[error("the hub's answer for {url} goes beyond what local-mlx accepts: {reason}; refusing it (is HF_ENDPOINT a Hugging Face hub?)")]
    HubLimitExceeded { url: String, reason: String },

    #[error(
        "the hub sent nothing for {secs} s on {url}: check your network connection and HF_ENDPOINT, then try again"
    )]
    HubTimeout { url: String, secs: f64 },

    #[error("HF_ENDPOINT \"{endpoint}\" cannot be used: {reason}; set it to the hub's http(s) URL (like https://huggingface.co) or unset it")]
    InvalidEndpoint { endpoint: String, reason: String },

    #[error("the hub lists an unsafe file name '{path}' in '{repo}' ({reason}); refusing to download it")]
    UnsafeFileName { repo: String, path: String, reason: String },

    #[error("network error for {url}: {}", source_chain(.source))]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("no data for {secs} s while downloading '{file}': the connection stalled")]
    Stalled { file: String, secs: u64 },

    #[error("'{file}' failed verification: expected {algorithm} {expected}, got {actual}; the bad copy was deleted")]
    Integrity { file: String, algorithm: &'static str, expected: String, actual: String },

    #[error("'{file}' is {actual} bytes but the hub said {expected}")]
    SizeMismatch { file: String, expected: u64, actual: u64 },

    #[error("not enough disk space in {path}: the download needs {needed} more bytes ({needed_h}), only {available} ({available_h}) are free")]
    InsufficientDisk { path: PathBuf, needed: u64, available: u64, needed_h: String, available_h: String },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("'{in_progress}' is already downloading: wait for it or cancel it before downloading '{requested}'")]
    DownloadInProgress { in_progress: String, requested: String },

    #[error("no download is in progress")]
    NoActiveDownload,

    #[error("no failed download to retry")]
    NothingToRetry,

    #[error("model '{model_id}' is {state}: {action} is not possible now")]
    Busy { model_id: String, state: String, action: &'static str },

    #[error("the cache entry of '{model_id}' is corrupt: {path} holds \"{content}\", not a commit id; run `local-mlx pull {model_id}` to repair it (or `local-mlx rm {model_id}` to remove it)")]
    CorruptRef { model_id: String, path: PathBuf, content: String },

    #[error("the cache folder of '{model_id}' ({dir}) was deleted while it was downloading (by another program?): run `local-mlx pull {model_id}` again")]
    DeletedWhileDownloading { model_id: String, dir: PathBuf },

    #[error("model '{model_id}' is not downloaded: run `local-mlx setup {model_id}` (downloads it and checks that it runs), `local-mlx pull {model_id}`, or press Download first")]
    NotDownloaded { model_id: String },

    #[error("model '{model_id}' cannot go from {from:?} by {transition:?}")]
    IllegalTransition { model_id: String, from: ModelState, transition: Transition },

    #[error("the prompt template cannot be used: {reason}; write a prompt that contains ${{output}} where the transcript should go (for example \"Fix the punctuation of: ${{output}}\")")]
    InvalidPrompt { reason: &'static str },

    #[error(
        "the transcript is {chars} characters long; the most local-mlx enhances at once is {max}: split it into parts"
    )]
    TranscriptTooLong { chars: usize, max: usize },

    #[error("invalid request: {detail}")]
    InvalidRequest { detail: String },
    /// This machine cannot run MLX (see `platform`): refused before any download or
    /// sidecar start, so nothing is fetched that could never run.
    #[error("local-mlx cannot run models on this machine: {reason}")]
    UnsupportedPlatform { os: String, arch: String, reason: String },

    #[error("Handy's settings are not at {path}: install Handy from https://handy.computer (macOS: `brew install --cask handy`), open it once and quit it; for a portable Handy pass --handy-dir <its Data folder>")]
    HandyNotFound { path: PathBuf },

    #[error("Handy's settings file {path} cannot be used: {reason}; nothing was changed: repair it or put back a backup of it (Handy itself would start from its defaults and overwrite it)")]
    HandyStoreCorrupt { path: PathBuf, reason: String },

    #[error(
        "Handy's settings file {path} is read-only; nothing was changed: make it writable (`chmod u+w`) and try again"
    )]
    HandyStoreReadOnly { path: PathBuf },

    #[error("Handy is running (process {pid}, {name}): quit Handy first (it saves its settings when it quits and would undo the change), then run this again; nothing was changed")]
    HandyRunning { pid: u32, name: String },

    #[error("there is no backup from `local-mlx handy connect` next to {path}, so there is nothing to put back")]
    HandyNoBackup { path: PathBuf },

    #[error(
        "no model is downloaded: run `local-mlx setup` (it downloads {} and checks that it runs), or pull another and pass --model",
        crate::catalog::DEFAULT_MODEL_ID
    )]
    NoModelDownloaded,

    #[error("'{url}' is not a server's base URL ({reason}); give one like http://localhost:8397/v1")]
    InvalidUrl { url: String, reason: String },

    #[error(transparent)]
    Sidecar(#[from] crate::sidecar::SidecarError),

    #[error("download of '{model_id}' failed after {attempts} attempts: {last}")]
    DownloadFailed { model_id: String, attempts: u32, last: Box<Error> },
}

impl Error {
    /// The error's kind: what a face branches on (and sends as `snake_case`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownModel { .. } => ErrorKind::UnknownModel,
            Error::InvalidRepoId { .. } => ErrorKind::InvalidRepoId,
            Error::Offline { .. } => ErrorKind::Offline,
            Error::RepoNotFound { .. } => ErrorKind::RepoNotFound,
            Error::RevisionNotFound { .. } => ErrorKind::RevisionNotFound,
            Error::Unauthorized { .. } => ErrorKind::HubUnauthorized,
            Error::HttpStatus { .. } => ErrorKind::HttpStatus,
            Error::BadHubResponse { .. } => ErrorKind::BadHubResponse,
            Error::UnsafeFileName { .. } => ErrorKind::UnsafeFileName,
            Error::HubLimitExceeded { .. } => ErrorKind::HubLimitExceeded,
            Error::HubTimeout { .. } => ErrorKind::HubTimeout,
            Error::InvalidEndpoint { .. } => ErrorKind::InvalidEndpoint,
            Error::Network { .. } => ErrorKind::Network,
            Error::Stalled { .. } => ErrorKind::Stalled,
            Error::Integrity { .. } => ErrorKind::Integrity,
            Error::SizeMismatch { .. } => ErrorKind::SizeMismatch,
            Error::InsufficientDisk { .. } => ErrorKind::InsufficientDisk,
            Error::Io { .. } => ErrorKind::Io,
            Error::DownloadInProgress { .. } => ErrorKind::DownloadInProgress,
            Error::NoActiveDownload => ErrorKind::NoActiveDownload,
            Error::NothingToRetry => ErrorKind::NothingToRetry,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::NotDownloaded { .. } => ErrorKind::NotDownloaded,
            Error::CorruptRef { .. } => ErrorKind::CorruptRef,
            Error::DeletedWhileDownloading { .. } => ErrorKind::DeletedWhileDownloading,
            Error::IllegalTransition { .. } => ErrorKind::IllegalTransition,
            Error::DownloadFailed { .. } => ErrorKind::DownloadFailed,
            Error::TranscriptTooLong { .. } => ErrorKind::TranscriptTooLong,
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::InvalidPrompt { .. } => ErrorKind::InvalidPrompt,
            Error::UnsupportedPlatform { .. } => ErrorKind::UnsupportedPlatform,
            Error::HandyNotFound { .. } => ErrorKind::HandyNotFound,
            Error::HandyStoreCorrupt { .. } => ErrorKind::HandyStoreCorrupt,
            Error::HandyStoreReadOnly { .. } => ErrorKind::HandyStoreReadOnly,
            Error::HandyRunning { .. } => ErrorKind::HandyRunning,
            Error::HandyNoBackup { .. } => ErrorKind::HandyNoBackup,
            Error::NoModelDownloaded => ErrorKind::NoModelDownloaded,
            Error::InvalidUrl { .. } => ErrorKind::InvalidUrl,
            Error::Sidecar(e) => e.kind(),
        }
    }

    /// Whether another attempt of the same download could succeed.
    ///
    /// Network trouble, stalls, server errors and corrupted bytes are worth a retry;
    /// a missing repo, a bad listing, a full disk or a refused token are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { .. }
            | Error::Stalled { .. }
            | Error::HubTimeout { .. }
            | Error::Integrity { .. }
            | Error::SizeMismatch { .. }
            | Error::BadHubResponse { .. } => true,
            // 416: our partial file was dropped, so the next attempt starts clean.
            Error::HttpStatus { status, .. } => *status >= 500 || matches!(*status, 408 | 416 | 429),
            _ => false,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

/// An error and its causes, joined, each said once: reqwest's own message alone hides
/// the reason ("error sending request") while the cause says it ("connection refused"),
/// and our messages already end with their cause ("cannot create X: Not a directory"),
/// so a cause the text already holds is skipped. Faces print errors with this (the CLI
/// does), never by walking `source()` themselves.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// `text` with every control character escaped (`\u{1b}`, `\n`), the rest as is: remote
/// text (a hub's file name, a ref's content) cannot move a terminal's cursor, set its
/// title or forge lines once it sits in a message.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes as a short human string (`1.5 GB`), decimal units as download sizes are quoted.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}
