//! The one error type of the core library.
//!
//! Every variant carries the context a user needs to act on it (the model id, the
//! repo, the path, the numbers), so the message is complete where it is formatted and
//! the faces never add guesswork. [`Error::kind`] gives a stable machine-readable tag,
//! so a frontend can branch on `{ kind, message }` instead of parsing strings.

use std::path::PathBuf;

use crate::state::{ModelState, Transition};

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
    /// A stable, machine-readable name for the error's kind (`snake_case`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownModel { .. } => "unknown_model",
            Error::InvalidRepoId { .. } => "invalid_repo_id",
            Error::Offline { .. } => "offline",
            Error::RepoNotFound { .. } => "repo_not_found",
            Error::RevisionNotFound { .. } => "revision_not_found",
            Error::Unauthorized { .. } => "unauthorized",
            Error::HttpStatus { .. } => "http_status",
            Error::BadHubResponse { .. } => "bad_hub_response",
            Error::UnsafeFileName { .. } => "unsafe_file_name",
            Error::NoUsableFiles { .. } => "no_usable_files",
            Error::HubLimitExceeded { .. } => "hub_limit_exceeded",
            Error::HubTimeout { .. } => "hub_timeout",
            Error::InvalidEndpoint { .. } => "invalid_endpoint",
            Error::Network { .. } => "network",
            Error::Stalled { .. } => "stalled",
            Error::Integrity { .. } => "integrity",
            Error::SizeMismatch { .. } => "size_mismatch",
            Error::InsufficientDisk { .. } => "insufficient_disk",
            Error::Io { .. } => "io",
            Error::DownloadInProgress { .. } => "download_in_progress",
            Error::NoActiveDownload => "no_active_download",
            Error::NothingToRetry => "nothing_to_retry",
            Error::Busy { .. } => "busy",
            Error::NotDownloaded { .. } => "not_downloaded",
            Error::CorruptRef { .. } => "corrupt_ref",
            Error::DeletedWhileDownloading { .. } => "deleted_while_downloading",
            Error::IllegalTransition { .. } => "illegal_transition",
            Error::DownloadFailed { .. } => "download_failed",
            Error::TranscriptTooLong { .. } => "transcript_too_long",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::InvalidPrompt { .. } => "invalid_prompt",
            Error::UnsupportedPlatform { .. } => "unsupported_platform",
            Error::HandyNotFound { .. } => "handy_not_found",
            Error::HandyStoreCorrupt { .. } => "handy_store_corrupt",
            Error::HandyStoreReadOnly { .. } => "handy_store_read_only",
            Error::HandyRunning { .. } => "handy_running",
            Error::HandyNoBackup { .. } => "handy_no_backup",
            Error::NoModelDownloaded => "no_model_downloaded",
            Error::InvalidUrl { .. } => "invalid_url",
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

/// `url` without the `user:password@` a URL may carry (`HF_ENDPOINT` with basic-auth
/// credentials): every URL in a message goes through this, so a secret never reaches
/// a terminal, a log or a `--json` event. Text that is not a URL is kept as it is.
pub fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{}", &url[..authority_start], &rest[at + 1..]),
        None => url.to_string(),
    }
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
