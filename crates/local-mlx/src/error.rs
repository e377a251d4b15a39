//! The one error type of the core library.
//!
//! Every variant carries the context a user needs to act on it (the model id, the
//! repo, the path, the numbers), so the message is complete where it is formatted and
//! the faces never add guesswork. [`Error::kind`] gives its [`ErrorKind`] (one per
//! cause), so a face branches on `{ kind, message }` and never parses strings.

use std::path::PathBuf;

pub use crate::error_kind::ErrorKind;
/// The sidecar's own error, carried whole by [`Error::Sidecar`].
pub use crate::sidecar::SidecarError;
use crate::text::without_userinfo;
pub use crate::text::{escape_controls, human_bytes, source_chain};

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
        "repository '{repo}' was not found on {}: check the model id (private or gated models need HF_TOKEN)",
        without_userinfo(endpoint)
    )]
    RepoNotFound { repo: String, endpoint: String },

    #[error("revision '{revision}' of '{repo}' was not found on the hub")]
    RevisionNotFound { repo: String, revision: String },

    #[error("the hub refused access to '{repo}' (HTTP {status}): set HF_TOKEN to a token that can read it")]
    Unauthorized { repo: String, status: u16 },

    #[error("the hub answered HTTP {status} for {}", without_userinfo(url))]
    HttpStatus { url: String, status: u16 },

    #[error("the hub's answer for {} is not what a Hugging Face hub sends: {reason}", without_userinfo(url))]
    BadHubResponse { url: String, reason: String },

    #[error("the hub's answer for {} goes beyond what local-mlx accepts: {reason}; refusing it (is HF_ENDPOINT a Hugging Face hub?)", without_userinfo(url))]
    HubLimitExceeded { url: String, reason: String },

    #[error(
        "the hub sent nothing for {secs} s on {}: check your network connection and HF_ENDPOINT, then try again",
        without_userinfo(url)
    )]
    HubTimeout { url: String, secs: f64 },

    #[error("HF_ENDPOINT \"{}\" cannot be used: {reason}; set it to the hub's http(s) URL (like https://huggingface.co) or unset it", without_userinfo(endpoint))]
    InvalidEndpoint { endpoint: String, reason: String },

    #[error("'{repo}' has no files mlx-lm can use (no config.json or safetensors weights): choose an MLX model, such as one from mlx-community")]
    NoUsableFiles { repo: String },

    #[error("the hub lists an unsafe file name '{path}' in '{repo}' ({reason}); refusing to download it")]
    UnsafeFileName { repo: String, path: String, reason: String },

    #[error("network error for {}: {}", without_userinfo(url), source_chain(.source))]
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

    /// `from` and `transition` as the state machine names them (`Downloaded`, `StartLoad`).
    #[error("model '{model_id}' cannot go from {from} by {transition}")]
    IllegalTransition { model_id: String, from: String, transition: String },

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

    #[error("the settings file {path} cannot be read ({reason}); it was moved to {backup} and the defaults apply: repair that copy and move it back to keep its values")]
    SettingsCorrupt { path: PathBuf, backup: PathBuf, reason: String },

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
            Error::NoUsableFiles { .. } => ErrorKind::NoUsableFiles,
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
            Error::SettingsCorrupt { .. } => ErrorKind::SettingsCorrupt,
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

impl From<crate::fs::WriteError> for Error {
    fn from(e: crate::fs::WriteError) -> Self {
        Error::io("write", e.path, e.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_carry_no_credentials() {
        assert_eq!(
            without_userinfo("https://user:pa%40ss@hub.example:8443/a?b=c@d"),
            "https://hub.example:8443/a?b=c@d"
        );
        assert_eq!(without_userinfo("http://token@127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(without_userinfo("https://huggingface.co/x@y"), "https://huggingface.co/x@y");
        assert_eq!(without_userinfo("not a url"), "not a url");
        let url = "http://me:s3cret@hub.example/api/models/o/n";
        for error in [
            Error::HttpStatus { url: url.into(), status: 500 },
            Error::BadHubResponse { url: url.into(), reason: "odd".into() },
            Error::HubLimitExceeded { url: url.into(), reason: "big".into() },
            Error::HubTimeout { url: url.into(), secs: 1.0 },
            Error::RepoNotFound { repo: "o/n".into(), endpoint: "http://me:s3cret@hub.example".into() },
            Error::InvalidEndpoint { endpoint: "ftp://me:s3cret@hub.example".into(), reason: "ftp".into() },
        ] {
            let said = error.to_string();
            assert!(!said.contains("s3cret") && !said.contains("me:"), "{said}");
            assert!(said.contains("hub.example"), "{said}");
        }
    }
}
