//! The Hugging Face Hub side of local-mlx: configuration from the environment, the
//! cache layout, the metadata API, and resumable, verified snapshot downloads.
//!
//! The cache is byte-compatible with `huggingface_hub`, so a model downloaded here is
//! a model mlx-lm (and every other HF tool) finds, and the other way round.

pub mod api;
pub mod cache;
pub mod config;
pub mod download;
pub mod fetch;
mod in_order;
pub mod listing;
pub mod partial;
pub mod parts;
pub mod resume;
mod transfer;
mod verify;

pub use cache::{CachedRepo, DeleteReport, HubCache, RefState, RepoLock};
pub use config::HubConfig;
pub use download::{Downloader, Outcome, Progress};
pub use listing::{Digest, RemoteFile, RepoListing};
