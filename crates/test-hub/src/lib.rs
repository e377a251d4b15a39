//! A Hugging-Face-Hub-compatible HTTP server on 127.0.0.1, for tests and benchmarks.
//!
//! [`TestHub`] serves the repos found under a folder (`<dir>/<org>/<name>/...`) with the
//! routes and headers that `huggingface_hub` and our own client use: repo info, tree
//! listings, `resolve` with 302s for LFS files to a CDN stand-in, `Range` requests. It runs
//! in the test's own runtime on port 0; [`RepoBuilder`] makes repos in a line.
//!
//! A key design decision is that faults are data: a [`Fault`] is one JSON object, armed from
//! Rust ([`TestHub::set_faults`]) or over HTTP (`POST /_test/faults`) with the same shape, and
//! applied at exact byte offsets inside the streamed body. So a test of resume-after-reset or
//! of a corrupted byte reads the same whether it drives the library in-process or the
//! `test-hub` binary behind our CLI, and [`Stats`] count exactly what reached the socket.
//!
//! ```no_run
//! # async fn demo() -> test_hub::Result<()> {
//! use test_hub::{Fault, RepoBuilder, TestHub};
//! let root = tempfile::tempdir().unwrap();
//! RepoBuilder::new(root.path(), "org/tiny")
//!     .file("config.json", br#"{"model_type": "qwen3"}"#)
//!     .pattern_file("model.safetensors", 4 << 20, 1)
//!     .build()?;
//! let hub = TestHub::start(root.path()).await?;
//! hub.set_faults(vec![Fault::reset_after(1000).on_path("model.safetensors").times(1)]);
//! // HF_ENDPOINT=hub.url() ...
//! # Ok(()) }
//! ```

mod body;
mod builder;
mod error;
mod faults;
mod range;
mod rate_cap;
mod repo;
mod routes;
mod server;
mod stats;

pub use builder::{pattern, RepoBuilder};
pub use error::{Error, Result};
pub use faults::{ApiBodyMode, Fault, FaultKind, Route};
pub use repo::{is_lfs, LFS_EXTENSIONS, LFS_MIN_SIZE};
pub use server::{Config, TestHub};
pub use stats::{FileStats, Stats};
