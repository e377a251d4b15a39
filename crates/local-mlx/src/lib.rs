//! local-mlx: the MLX Local AI Provider's core, with no Tauri and no terminal in it.
//!
//! [`MlxModelManager`] is the one facade every face calls: the catalog, downloads into
//! the shared HF cache, the loaded model, the events ([`MlxModelStateEvent`] to an
//! [`EventSink`]). Invariants: the cache is the truth for what is downloaded (a ref is
//! written only after every blob verified); every rule (delete, disk space, retry,
//! prompt, value ranges) is decided here once and shown to the faces as data; no modules
//! reach each other in a circle, between top-level modules or between files
//! (`tests/module_graph.rs`).

pub mod catalog;
pub mod chat;
pub mod error;
pub mod error_kind;
pub mod events;
pub mod fs;
pub mod hub;
pub mod manager;
pub mod platform;
pub mod postprocess;
pub mod settings;
pub mod sidecar;
pub mod small_answer;
pub mod state;
pub mod store;
pub mod text;
mod transcript;

pub use catalog::{ModelSpec, DEFAULT_MODEL_ID};
pub use chat::{ChatChunk, ChatMessage, ChatRequest, ChatResponse, FinishReason, Role};
pub use error::{Error, ErrorKind, Result};
pub use events::{EventSink, EventType, LoadPhase, MlxModelStateEvent, NullSink, RecordingSink};
pub use manager::{MlxModelManager, Runtime, Slot, Timings};
pub use platform::PlatformSupport;
pub use settings::KeepAlive;
pub use small_answer::{read_small_json, SmallAnswerError, MAX_SMALL_ANSWER_BYTES};
pub use state::{ModelState, Transition};
pub use store::{DownloadOutcome, MlxModelInfo, MlxModelStatus, ModelStore, Refusal};
