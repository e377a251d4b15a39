//! The Python sidecar: find uv, spawn `server.py`, read its ready line, supervise it,
//! and talk to it over typed HTTP. (Being written.)

/// Everything that can go wrong with the sidecar process or its HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("{0}")]
    Other(String),
}
