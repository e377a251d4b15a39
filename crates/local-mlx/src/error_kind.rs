//! [`ErrorKind`]: the closed list of what can go wrong, as faces branch on it.
//!
//! Its own module, below `error` and `sidecar` (both map their variants onto it), so
//! neither imports the other back. Invariant: one kind per cause, and its wire name
//! (`snake_case`) never changes once released.

use serde::{Deserialize, Serialize};

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
    /// The repo has none of the files mlx-lm loads: final, not retried.
    NoUsableFiles = "no_usable_files",
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
    UvNotFound = "uv_not_found",
    BackendNotFound = "backend_not_found",
    BackendUnpackFailed = "backend_unpack_failed",
    SidecarSpawn = "sidecar_spawn",
    SyncFailed = "sync_failed",
    NeverReady = "never_ready",
    SidecarExited = "sidecar_exited",
    SidecarCrashed = "sidecar_crashed",
    SidecarStopped = "sidecar_stopped",
    SidecarTimeout = "sidecar_timeout",
    SidecarUnreachable = "sidecar_unreachable",
    /// The sidecar refused our per-spawn token: another program may hold its port.
    SidecarUnauthorized = "sidecar_unauthorized",
    ModelLoad = "model_load",
    NoModelLoaded = "no_model_loaded",
    /// The sidecar's own queue is full: try again in a moment.
    SidecarBusy = "sidecar_busy",
    SidecarBadRequest = "sidecar_bad_request",
    SidecarHttp = "sidecar_http",
    SidecarBadResponse = "sidecar_bad_response",
    /// A settings file cannot be parsed; it was kept as a backup.
    SettingsCorrupt = "settings_corrupt",
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
