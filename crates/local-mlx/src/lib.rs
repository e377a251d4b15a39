//! local-mlx: the MLX Local AI Provider's core, with no Tauri and no terminal in it.
//!
//! The main type is [`MlxModelManager`], the one facade the command-line tool and the
//! desktop app call: it lists the catalog, downloads models from the Hugging Face Hub
//! into the shared HF cache, tracks each model through the provider's state machine and
//! reports every change as an [`MlxModelStateEvent`] to an [`EventSink`] the face
//! provides. A key design decision: the cache itself is the source of truth for what
//! is downloaded (a ref is written only after every blob verified), so another tool
//! deleting a model, or our own process dying mid-download, can never leave a model
//! that looks complete but is not.

pub mod catalog;
pub mod chat;
pub mod error;
pub mod error_kind;
pub mod events;
pub mod handy;
pub mod hub;
pub mod manager;
pub mod platform;
pub mod postprocess;
pub mod settings;
pub mod sidecar;
pub mod state;
pub mod store;
pub mod text;

pub use catalog::{ModelSpec, DEFAULT_MODEL_ID};
pub use chat::{ChatChunk, ChatMessage, ChatRequest, ChatResponse, FinishReason, Role};
pub use error::{Error, ErrorKind, Result};
pub use events::{EventSink, EventType, LoadPhase, MlxModelStateEvent, NullSink, RecordingSink};
pub use manager::{MlxModelManager, Runtime, Slot, Timings};
pub use platform::PlatformSupport;
pub use settings::KeepAlive;
pub use state::{ModelState, Transition};
pub use store::{DownloadOutcome, MlxModelInfo, MlxModelStatus, ModelStore};
