//! The clean-up call, [`MlxModelManager::process_text`]: a transcript in, the model's
//! clean-up out when it passes the clean-up check, else the transcript as it came.

use serde::Serialize;

use super::{MlxModelManager, Within};
use crate::chat::{ChatRequest, Timings, DEFAULT_REPETITION_PENALTY};
use crate::error::{Error, Result};
use crate::postprocess::{build_messages, max_tokens_for, DEFAULT_PROMPT, MAX_TRANSCRIPT_CHARS};
use crate::postprocess::{check_clean_up, CleanUpVerdict, KeptReason};
use crate::settings::{check_prompt, AnswerWithin};

/// Per-call choices for [`MlxModelManager::process_text_with`]; `None` uses the settings.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    pub model: Option<String>,
    pub prompt: Option<String>,
    /// Decode only the transcript's own words (the sidecar's `constrain_to_input`);
    /// `None`: on with the default prompt, off with any other.
    pub constrain_to_input: Option<bool>,
    /// `None`: [`DEFAULT_REPETITION_PENALTY`], none.
    pub repetition_penalty: Option<f64>,
    /// How long the answer may take, model load included, before the transcript is
    /// handed back as it came; `None`: the settings' `answer_within_seconds`.
    pub answer_within: Option<AnswerWithin>,
}

/// The clean-up's nucleus, 0.8; it decodes greedily (see
/// [`ChatRequest::new`]), so this matters only to an embedder that raises the temperature.
const PROCESS_TOP_P: f64 = 0.8;

/// The result of enhancing one transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxProcessOutput"))]
pub struct ProcessOutput {
    /// The enhanced text, or the original when the clean-up check kept it.
    pub text: String,
    /// The clean-up check's verdict: whether `text` is the model's answer, and why not.
    pub clean_up: CleanUpVerdict,
    pub model_id: String,
    pub tokens_generated: u32,
    pub prompt_tokens: u32,
    /// Prompt tokens served from the sidecar's prefix cache (not pre-filled again).
    pub cached_tokens: u32,
    pub timings: Timings,
}

impl MlxModelManager {
    /// `mlx_process_text`: enhance a transcript with the selected model and prompt.
    pub async fn process_text(&self, text: &str) -> Result<ProcessOutput> {
        self.process_text_with(text, ProcessOptions::default()).await
    }

    /// [`Self::process_text`] with a model or prompt other than the settings'.
    pub async fn process_text_with(&self, text: &str, options: ProcessOptions) -> Result<ProcessOutput> {
        let settings = self.settings();
        let answer_within = options.answer_within.unwrap_or_else(|| settings.answer_within());
        let model_id = options.model.unwrap_or(settings.selected_model);
        let prompt = options.prompt.unwrap_or(settings.prompt);
        // The one prompt rule, whether the prompt came with the call or from settings
        // written before the rule (`update_settings` applies it too).
        check_prompt(&prompt)?;
        self.ensure_runnable()?;
        if text.trim().is_empty() {
            // Nothing to enhance: no model is started for it.
            return Ok(ProcessOutput {
                text: text.to_string(),
                clean_up: CleanUpVerdict { kept_original: Some(KeptReason::EmptyTranscript), warnings: Vec::new() },
                model_id,
                tokens_generated: 0,
                prompt_tokens: 0,
                cached_tokens: 0,
                timings: Timings::default(),
            });
        }
        let chars = text.chars().count();
        if chars > MAX_TRANSCRIPT_CHARS {
            return Err(Error::TranscriptTooLong { chars, max: MAX_TRANSCRIPT_CHARS });
        }
        let request = ChatRequest {
            max_tokens: Some(max_tokens_for(text)),
            top_p: PROCESS_TOP_P,
            // The default clean-up prompt decodes within the transcript's words (measured
            // in docs/QUALITY.md); a prompt of the user's own may need other words.
            constrain_to_input: options.constrain_to_input.unwrap_or(prompt == DEFAULT_PROMPT),
            repetition_penalty: options.repetition_penalty.unwrap_or(DEFAULT_REPETITION_PENALTY),
            ..ChatRequest::new(model_id.clone(), build_messages(&prompt, text))
        };
        let (response, mut clean_up) = match self.chat_within(request, answer_within.deadline()).await? {
            Within::Answered(mut response) => {
                let clean_up = check_clean_up(text, &mut response);
                (response, clean_up)
            }
            Within::Late(late) => late.keep_transcript(text, &model_id),
        };
        // On Linux without OpenBLAS, every answer is ~10x slower than it need be: say how to fix it.
        clean_up.warnings.extend(crate::sidecar::blas::missing_warning().map(str::to_string));
        Ok(ProcessOutput {
            text: response.text,
            clean_up,
            model_id: response.model_id,
            tokens_generated: response.completion_tokens,
            prompt_tokens: response.prompt_tokens,
            cached_tokens: response.cached_tokens,
            timings: response.timings,
        })
    }
}
