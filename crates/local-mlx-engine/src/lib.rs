//! local-mlx's native engine: Llama and Qwen3 models run with MLX from Rust (through
//! the C++ shim in shim/), the way the Python sidecar runs them with mlx-lm, in a
//! worker process (`local-mlx-engine`, src/bin/worker.rs) that the supervisor starts.

pub mod array;
pub mod config;
pub mod constrain;
pub mod dequant;
pub mod engine;
pub mod error;
mod ffi;
pub mod model;
pub mod prompt;
pub mod protocol;
pub mod weights;

pub use engine::{Answer, Engine, Request, WeightsMode};
pub use error::{Error, Result};
pub use prompt::Message;

/// Whether this build links libmlx (see build.rs); without it every model call fails
/// with [`NO_MLX`].
pub const fn mlx_available() -> bool {
    cfg!(mlx)
}

/// What to do when [`mlx_available`] is false.
pub const NO_MLX: &str = "local-mlx-engine was built without libmlx: run `source tools/ensure-mlx.sh` and rebuild";
