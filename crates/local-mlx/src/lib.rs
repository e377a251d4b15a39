//! local-mlx: the MLX Local AI Provider's core, with no Tauri and no terminal in it.
//!
//! [`MlxModelManager`] is the one facade every face calls: the catalog, downloads into
//! the shared HF cache, the loaded model, the events ([`MlxModelStateEvent`] to an
//! [`EventSink`]). Invariants: the cache is the truth for what is downloaded (a ref is
//! written only after every blob verified); every rule (delete, disk space, retry,
//! prompt, value ranges) is decided here once and shown to the faces as data; no modules
//! reach each other in a circle, between top-level modules or between files
//! (`tests/module_graph.rs`).
//!
//! A key design decision is that the public surface is what an embedder uses and no
//! more: eight modules ([`manager`], [`chat`], [`events`], [`error`], [`settings`],
//! [`platform`], [`postprocess`] with the clean-up check's verdict, and [`fs`], the file
//! helpers the CLI and Handy's crate share with the core) and, at the root, the types
//! every face names. The store, the hub client, the sidecar supervisor, the state
//! machine and the catalog are private: a face asks the manager
//! ([`MlxModelManager::downloaded_models`], [`MlxModelManager::sidecar_backend`]…), so
//! the insides can change without a face noticing. `unreachable_pub` keeps the rest
//! `pub(crate)`.

// `unreachable_pub` is checked with `test-support` on, as every build of the crate's tests
// (and so `clippy --all-targets`) has it: the surface is then the modules below plus
// `internals`, and any other `pub` is a warning. Without the feature the items only
// `internals` re-exports are unreachable on purpose.
#![cfg_attr(feature = "test-support", warn(unreachable_pub))]

// The supported surface: eight modules, and at the root the types every face names.
pub mod chat;
pub mod error;
pub mod events;
pub mod fs;
pub mod manager;
pub mod platform;
pub mod postprocess;
pub mod settings;

// The insides: reached through the modules above, never named by a face.
mod catalog;
mod error_kind;
mod hub;
mod sidecar;
mod small_answer;
mod state;
mod store;
mod text;
mod transcript;

pub use catalog::{ModelSpec, DEFAULT_MODEL_ID};
pub use chat::{ChatChunk, ChatMessage, ChatRequest, ChatResponse, FinishReason, Role};
pub use error::{Error, ErrorKind, Result};
pub use events::{EventSink, EventType, LoadPhase, MlxModelStateEvent, NullSink, RecordingSink};
pub use manager::{
    DownloadOutcome, MlxModelInfo, MlxModelManager, MlxModelStatus, ModelState, Refusal, Runtime, Slot, Timings,
};
pub use platform::PlatformSupport;
pub use postprocess::{CleanUpVerdict, KeptReason};
pub use settings::{KeepAlive, MlxSettings};
pub use small_answer::{read_small_json, SmallAnswerError, MAX_SMALL_ANSWER_BYTES};

/// The insides the crate's own integration tests drive directly (the cache on disk, the
/// downloader, the sidecar supervisor), with the paths they have inside the crate. Only
/// with the `test-support` feature, which the crate's dev-dependency on itself turns on:
/// not part of the API.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod internals {
    pub mod catalog {
        pub use crate::catalog::resolve;
    }
    pub mod hub {
        pub use crate::hub::{CachedRepo, Downloader, HubCache};
    }
    pub mod sidecar {
        pub use crate::sidecar::{
            FinishReason, GenerateChunk, GenerateRequest, Phase, ServerState, SidecarSupervisor, UvSearch,
        };
        pub mod blas {
            pub use crate::sidecar::blas::missing_warning;
        }
    }
    pub use crate::store::ModelStore;
}
