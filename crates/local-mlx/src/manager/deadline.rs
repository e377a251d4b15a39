//! An answer within a deadline: [`MlxModelManager::chat_within`] gives a chat request a
//! fixed time, model load and queue included, and says how far it got when that passes.
//!
//! A dictation app waits on the clean-up before it pastes anything, and Handy's HTTP
//! client has no timeout of its own: a cold load on a busy machine, a runaway answer or
//! a wedged sidecar would hold the user's text forever. With a deadline, the caller
//! answers with the transcript itself instead ([`Late`] says why, for the log).
//! Giving up is dropping the work: the session is cancel-safe (a load under way is
//! still completed and recorded for the next request, and a dropped generation stream
//! makes the sidecar stop generating), so nothing is left half-done.

use std::time::Duration;

use futures_util::StreamExt;

use super::{MlxModelManager, Runtime};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason, Timings};
use crate::error::Result;
use crate::postprocess::{CleanUpVerdict, KeptReason};

/// A chat request's outcome under a deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum Within {
    Answered(ChatResponse),
    Late(Late),
}

/// No finished answer when the deadline passed, and how far the request had come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    pub deadline: Duration,
    pub reached: Reached,
}

/// Where a late request was when it was given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached {
    /// Not generating yet: the session was doing this (another request's turn, the
    /// sidecar starting, a model loading).
    Waiting(Runtime),
    /// Generating: `pieces` streamed pieces (about one token each), `chars` characters.
    Generating { pieces: u32, chars: usize },
}

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {}: ", format_duration(self.deadline))?;
        match &self.reached {
            Reached::Waiting(Runtime::Starting) => f.write_str("the sidecar was still starting"),
            Reached::Waiting(Runtime::Loading { model_id }) => write!(f, "{model_id} was still loading"),
            Reached::Waiting(Runtime::Idle | Runtime::Ready { .. }) => f.write_str(
                "the model had not started answering (another request's turn, or the sidecar slow to reply)",
            ),
            Reached::Generating { pieces, chars } => {
                write!(f, "the answer was unfinished after {pieces} pieces ({chars} characters)")
            }
        }
    }
}

impl Late {
    /// The answer when late: `transcript` as it came, with the finish reason `stop` (it
    /// is whole), and the warning, also logged with how far the request got.
    pub fn keep_transcript(&self, transcript: &str, model_id: &str) -> (ChatResponse, CleanUpVerdict) {
        let verdict = CleanUpVerdict::kept(KeptReason::Deadline, &self.to_string());
        tracing::warn!(model_id, "{}", verdict.warnings[0]);
        let total_ms = u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX);
        let response = ChatResponse {
            model_id: model_id.to_string(),
            text: transcript.to_string(),
            reasoning: None,
            finish_reason: FinishReason::Stop,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            timings: Timings { total_ms, ..Timings::default() },
        };
        (response, verdict)
    }
}

/// `15 s`, `1.5 s`, `250 ms`.
fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        return format!("{} ms", duration.as_millis());
    }
    let secs = duration.as_secs_f64();
    if duration.subsec_millis() == 0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

impl MlxModelManager {
    /// [`Self::chat`], given up when no finished answer is there by `deadline` (`None`:
    /// no deadline). Giving up cancels the generation; a load under way completes.
    pub async fn chat_within(&self, request: ChatRequest, deadline: Option<Duration>) -> Result<Within> {
        let Some(deadline) = deadline else {
            return self.chat(request).await.map(Within::Answered);
        };
        // `None` until the stream is there (the load and the queue are behind us).
        let mut generated: Option<(u32, usize)> = None;
        let work = async {
            let mut stream = self.chat_stream(request).await?;
            generated = Some((0, 0));
            while let Some(chunk) = stream.next().await {
                match chunk? {
                    ChatChunk::Text(text) => {
                        let (pieces, chars) = generated.get_or_insert((0, 0));
                        *pieces += 1;
                        *chars += text.chars().count();
                    }
                    ChatChunk::Done(response) => return Ok(response),
                }
            }
            unreachable!("a chat stream ends with Done or an error")
        };
        let answered = tokio::time::timeout(deadline, work).await;
        match answered {
            Ok(result) => result.map(Within::Answered),
            Err(_elapsed) => {
                let reached = match generated {
                    Some((pieces, chars)) => Reached::Generating { pieces, chars },
                    None => Reached::Waiting(self.runtime()),
                };
                Ok(Within::Late(Late { deadline, reached }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_request_says_how_far_it_got() {
        let late = |reached| Late { deadline: Duration::from_secs(15), reached }.to_string();
        assert_eq!(
            late(Reached::Waiting(Runtime::Loading { model_id: "org/m".into() })),
            "no answer within 15 s: org/m was still loading"
        );
        assert_eq!(
            late(Reached::Generating { pieces: 40, chars: 170 }),
            "no answer within 15 s: the answer was unfinished after 40 pieces (170 characters)"
        );
        assert!(late(Reached::Waiting(Runtime::Starting)).ends_with("the sidecar was still starting"));
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
    }
}
