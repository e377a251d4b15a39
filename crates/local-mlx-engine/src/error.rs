//! The engine's one error type: what went wrong loading or running a model, worded
//! for the user (it reaches `local-mlx process` and the app as the worker's error).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", crate::NO_MLX)]
    NoMlx,
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("bad model config: {0}")]
    Config(String),
    #[error("the native engine does not support {0}")]
    Unsupported(String),
    #[error("the model's weights do not match its config: {0}")]
    Weights(String),
    #[error("the model's tokenizer: {0}")]
    Tokenizer(String),
    #[error("the model's chat template failed: {0}")]
    Template(String),
    #[error("{0}")]
    Request(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Mlx(#[from] crate::array::MlxError),
}

pub type Result<T> = std::result::Result<T, Error>;
