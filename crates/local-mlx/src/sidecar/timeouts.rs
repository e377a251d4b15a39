//! [`Timeouts`]: how long each of the sidecar's calls may take, generous enough to catch a
//! wedged sidecar and never a merely slow one.

use std::time::Duration;

/// Timeouts of the sidecar's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `GET /status`: it answers at once even while busy.
    pub status: Duration,
    /// `POST /load`: reading GBs of weights from a slow disk, after MLX's own import.
    pub load: Duration,
    /// `POST /unload`: waits for running and queued generations.
    pub unload: Duration,
    /// `POST /generate`: this much plus [`Timeouts::generate_per_token`] per `max_tokens`.
    pub generate_base: Duration,
    pub generate_per_token: Duration,
    /// While streaming: the longest silence between two pieces (the first piece waits
    /// for the whole pre-fill of the prompt).
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            status: Duration::from_secs(2),
            load: Duration::from_secs(600),
            unload: Duration::from_secs(30),
            // Generous: these catch a wedged sidecar, not a slow one. A long prompt's
            // pre-fill on a busy laptop CPU can take minutes, and a client such as Handy
            // sets no timeout of its own, so a too-eager limit only loses its answer.
            generate_base: Duration::from_secs(300),
            generate_per_token: Duration::from_millis(250),
            stream_idle: Duration::from_secs(300),
        }
    }
}

impl Timeouts {
    /// The whole-request timeout of a generation of at most `max_tokens`.
    pub fn generate(&self, max_tokens: u32) -> Duration {
        self.generate_base + self.generate_per_token * max_tokens
    }
}
