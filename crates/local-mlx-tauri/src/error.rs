//! `MlxCommandError`, the one error shape every command returns: `{ kind, message }`.
//!
//! `kind` is the core's [`ErrorKind`] (`busy`, `download_in_progress`, `not_downloaded`...,
//! exported as the TypeScript union `MlxErrorKind`) so a frontend can branch on it; `message` is the core's full
//! sentence, shown to the user as it is. Handy's own commands return a bare string
//! (`Result<T, String>`); the kind is what a string loses, and a frontend that only
//! wants text reads `message`.

use local_mlx::ErrorKind;
use serde::Serialize;
use specta::Type;

/// Exported as `MlxCommandError`: a name no embedding app is likely to use already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct MlxCommandError {
    pub kind: ErrorKind,
    pub message: String,
}

impl MlxCommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        MlxCommandError { kind, message: message.into() }
    }
}

impl From<local_mlx::Error> for MlxCommandError {
    fn from(error: local_mlx::Error) -> Self {
        MlxCommandError::new(error.kind(), error.to_string())
    }
}

impl std::fmt::Display for MlxCommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for MlxCommandError {}

pub type MlxCommandResult<T> = Result<T, MlxCommandError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_kind_and_full_message() {
        let error: MlxCommandError = local_mlx::Error::NothingToRetry.into();
        assert_eq!(error.kind, ErrorKind::NothingToRetry);
        assert_eq!(error.message, local_mlx::Error::NothingToRetry.to_string());
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "nothing_to_retry", "message": error.message}));
    }
}
