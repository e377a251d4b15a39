//! A small JSON answer from a local server that we do not trust to end it: `/health`
//! and `/v1/models` asked by `handy status` and `service status`. The body is read in
//! chunks and dropped as soon as it passes a cap, so a program that answers forever
//! costs at most that much memory; the caller's client timeout bounds the time.

use serde_json::Value;

/// The most a `/health` or `/v1/models` answer may hold: local-mlx's are a few hundred
/// bytes (a model list of hundreds of models still fits).
pub const MAX_SMALL_ANSWER_BYTES: usize = 64 << 10;

/// Why an answer is not a small JSON value.
#[derive(Debug, thiserror::Error)]
pub enum SmallAnswerError {
    #[error("its answer is larger than {} kB", MAX_SMALL_ANSWER_BYTES >> 10)]
    TooLarge,
    #[error("its answer broke off ({})", crate::text::source_chain(.0))]
    Read(#[source] reqwest::Error),
    #[error("its answer is not JSON")]
    NotJson,
}

/// The response's body as JSON, read to at most [`MAX_SMALL_ANSWER_BYTES`].
pub async fn read_small_json(mut response: reqwest::Response) -> Result<Value, SmallAnswerError> {
    if response.content_length().is_some_and(|len| len > MAX_SMALL_ANSWER_BYTES as u64) {
        return Err(SmallAnswerError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(SmallAnswerError::Read)? {
        if body.len() + chunk.len() > MAX_SMALL_ANSWER_BYTES {
            return Err(SmallAnswerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| SmallAnswerError::NotJson)
}
