//! The one error shape every command returns: `{ kind, message }`.
//!
//! `kind` is the core's stable snake_case tag (`busy`, `download_in_progress`,
//! `not_downloaded`...) so the frontend can branch on it; `message` is the core's full
//! sentence, shown to the user as it is. Tauri's own plugins send a bare string; this
//! is the better half of that contract (see STYLE.md).

use serde::Serialize;
use specta::Type;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct CommandError {
    pub kind: String,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        CommandError { kind: kind.to_string(), message: message.into() }
    }
}

impl From<local_mlx::Error> for CommandError {
    fn from(error: local_mlx::Error) -> Self {
        CommandError::new(error.kind(), error.to_string())
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for CommandError {}

pub type CommandResult<T> = Result<T, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_kind_and_full_message() {
        let error: CommandError = local_mlx::Error::NothingToRetry.into();
        assert_eq!(error.kind, "nothing_to_retry");
        assert_eq!(error.message, local_mlx::Error::NothingToRetry.to_string());
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "nothing_to_retry", "message": error.message}));
    }
}
