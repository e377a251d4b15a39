//! [`Error`]: what can go wrong reading, checking or rewriting Handy's settings, with
//! the `--json` kind each cause has always had (`handy_not_found`, …).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Handy's settings are not at {path}: install Handy from https://handy.computer (macOS: `brew install --cask handy`), open it once and quit it; for a portable Handy pass --handy-dir <its Data folder>")]
    HandyNotFound { path: PathBuf },

    #[error("Handy's settings file {path} cannot be used: {reason}; nothing was changed: repair it or put back a backup of it (Handy itself would start from its defaults and overwrite it)")]
    HandyStoreCorrupt { path: PathBuf, reason: String },

    #[error(
        "Handy's settings file {path} is read-only; nothing was changed: make it writable (`chmod u+w`) and try again"
    )]
    HandyStoreReadOnly { path: PathBuf },

    /// Read-only to us as well (kind `handy_store_read_only`): another user's file,
    /// which we could not give back to its owner once replaced.
    #[error("Handy's settings file {path} belongs to user {owner}, not to the user running this; nothing was changed: run it as that user (without sudo)")]
    HandyStoreNotOwned { path: PathBuf, owner: u32 },

    #[error("Handy is running (process {pid}, {name}): quit Handy first (it saves its settings when it quits and would undo the change), then run this again; nothing was changed")]
    HandyRunning { pid: u32, name: String },

    #[error("there is no backup from `local-mlx handy connect` next to {path}, so there is nothing to put back")]
    HandyNoBackup { path: PathBuf },

    #[error("no model is downloaded: run `local-mlx setup` (it downloads {default_model} and checks that it runs), or pull another and pass --model")]
    NoModelDownloaded { default_model: &'static str },

    #[error("'{url}' is not a server's base URL ({reason}); give one like http://localhost:8397/v1")]
    InvalidUrl { url: String, reason: String },

    /// The core's own error, kind and all: a model asked for that is not downloaded, a
    /// file that cannot be read or written (the core's `Io`, kind `io`).
    #[error(transparent)]
    Core(#[from] local_mlx::Error),
}

impl Error {
    /// The error's kind as `--json` reports it: the same names these causes had when
    /// they were the core's.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::HandyNotFound { .. } => "handy_not_found",
            Error::HandyStoreCorrupt { .. } => "handy_store_corrupt",
            Error::HandyStoreReadOnly { .. } | Error::HandyStoreNotOwned { .. } => "handy_store_read_only",
            Error::HandyRunning { .. } => "handy_running",
            Error::HandyNoBackup { .. } => "handy_no_backup",
            Error::NoModelDownloaded { .. } => "no_model_downloaded",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Core(e) => e.kind().as_str(),
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Core(local_mlx::Error::Io { action, path: path.into(), source })
    }
}
