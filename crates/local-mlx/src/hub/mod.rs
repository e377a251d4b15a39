//! The Hugging Face Hub side of local-mlx: configuration from the environment, the
//! cache layout, the metadata API, and resumable, verified snapshot downloads.
//!
//! The cache is byte-compatible with `huggingface_hub`, so a model downloaded here is
//! a model mlx-lm (and every other HF tool) finds, and the other way round.

pub(crate) mod api;
pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod download;
pub(crate) mod fetch;
mod in_order;
pub(crate) mod listing;
pub(crate) mod partial;
pub(crate) mod parts;
pub(crate) mod resume;
mod transfer;
mod verify;

pub use cache::DeleteReport;
#[cfg(feature = "test-support")]
pub use cache::{CachedRepo, HubCache};
pub(crate) use cache::{RefState, RepoLock};
pub use config::{HubConfig, PartsConfig};
pub use download::Downloader;
pub(crate) use download::{Outcome, Progress};
