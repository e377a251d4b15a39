//! The worker's protocol: one JSON object per line on its stdin (commands) and stdout
//! (events); the framing is the newline, which JSON text never contains unescaped.
//! No port and no token: only the parent holds the pipes.
use serde::{Deserialize, Serialize};

use crate::engine::{Answer, WeightsMode};
use crate::prompt::Message;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Load the model folder `path` (replacing any loaded one).
    Load { path: String, weights: Option<WeightsMode> },
    /// Answer a conversation; `id` names it for `Cancel` and in its events.
    /// `constrain_to_input`: the transcript constraint (src/constrain.rs).
    Generate {
        id: u64,
        messages: Vec<Message>,
        max_tokens: usize,
        #[serde(default)]
        constrain_to_input: bool,
    },
    /// Stop generation `id` at its next pre-fill step or token.
    Cancel { id: u64 },
    /// Release the model (the process stays; closing stdin ends it).
    Unload,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker is up (first line).
    Ready {
        pid: u32,
        mlx_version: String,
    },
    Loaded {
        load_ms: f64,
        weights: String,
        context_length: Option<usize>,
    },
    Unloaded,
    /// A generated token of generation `id`.
    Token {
        id: u64,
        token: u32,
    },
    Answer {
        id: u64,
        answer: Answer,
    },
    Cancelled {
        id: u64,
    },
    /// A command failed; `id` is the generation's, if it was one. The worker goes on.
    Error {
        id: Option<u64>,
        message: String,
    },
}
