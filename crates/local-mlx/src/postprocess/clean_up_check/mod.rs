//! The clean-up check: is the model's answer a faithful clean-up of the transcript?
//!
//! It encodes Handy's rule that on any failure the original transcript is kept: an
//! empty answer, one cut off by the token limit, one wildly longer or shorter than the
//! input, or one that is not a clean-up of it (an answer, a followed instruction, a
//! translation, invented sentences, a word the speaker did not say, a changed number, a
//! dropped "not", JSON, a think tag) is replaced by the input, and the
//! [`CleanUpVerdict`] says why ([`KeptReason`]) in a word and in a sentence the caller
//! can show. A lead-in and quotes around the answer are repaired rather than refused.
//! The core's `process_text`, `process --json` and the server's `local_mlx.clean_up`
//! all carry that one verdict.
//!
//! Small models answer a dictated question, follow a dictated instruction, translate,
//! add a sentence of their own or leak JSON. A clean-up only removes words (fillers,
//! repetitions, spoken punctuation) and re-punctuates; it rarely brings a word of its
//! own. So `words` compares the *content words* of the answer with the transcript's.
//! Those checks judge shares, so one word can slip through them: an answer after an
//! echo of the question ("…of France? Paris."), a changed number, a dropped "not". Four
//! exact checks close that gap: `numbers` (every value kept with its sign, none added),
//! `spoken` (every address kept character for character), `polarity` (negations and
//! contrast words kept) and `form` (every word of the answer is one of the speaker's,
//! or a form of one). Both texts are first read through `spoken::written`, so a
//! dictated address, unit, currency or clock time and its written form are one; the
//! contractions of the other languages are `elision`'s.
//!
//! Think blocks are not removed here: the sidecar removes the one a model opens at the
//! start of its answer (`python-backend/local_mlx_sidecar/text.py`, also while
//! streaming), so its answers arrive stripped. Stripping again here would cut a
//! transcript that merely mentions `<think>`; a think tag left in an answer is refused.

use serde::Serialize;

use crate::chat::{ChatResponse, FinishReason};

mod elision;
mod form;
mod lexicon;
mod numbers;
mod polarity;
mod spoken;
mod words;

/// The clean-up check's verdict on one answer: passed, or the transcript kept and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxCleanUpVerdict"))]
pub struct CleanUpVerdict {
    /// Why the text handed back is the transcript as it came rather than the model's
    /// answer; `None` (`null`) when the answer passed the check.
    pub kept_original: Option<KeptReason>,
    /// What to tell the user, one line each: the reason in words when the transcript
    /// was kept (and, from `process_text`, any other warning).
    pub warnings: Vec<String>,
}

/// Why the transcript was kept. Serialized as stable `snake_case` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxKeptReason"))]
#[serde(rename_all = "snake_case")]
pub enum KeptReason {
    /// The transcript was empty: there was nothing to clean up (no model was asked).
    EmptyTranscript,
    /// No finished answer by the deadline (`answer_within`).
    Deadline,
    /// The model returned no text.
    NoText,
    /// The answer was cut off by the token limit.
    CutOff,
    /// The answer is far shorter than the transcript.
    TooShort,
    /// The answer is far longer than the transcript.
    TooLong,
    /// The answer holds a `<think>` tag (the model's reasoning).
    ThinkTag,
    /// The answer is JSON or code, and the transcript was not.
    Code,
    /// The answer is in another language than the transcript.
    OtherLanguage,
    /// The answer answers the dictated question instead of cleaning it up.
    AnswersQuestion,
    /// The answer has numbers the transcript did not have.
    AddsNumbers,
    /// The answer keeps too few of the transcript's content words.
    DropsWords,
    /// The answer has the transcript's words out of the speaker's order.
    Reorders,
    /// The answer stops before the transcript's end.
    StopsEarly,
    /// The answer says the transcript's words more often than the speaker did.
    Repeats,
    /// The answer adds words that are not in the transcript.
    AddsWords,
    /// The answer adds a sentence that is not in the transcript.
    AddsSentence,
    /// The answer adds a word the speaker did not say (nor a form of one).
    UnsaidWords,
    /// The answer changes more of the speaker's words than a spelling fix would.
    ChangesWords,
    /// The answer changes the transcript's numbers.
    ChangesNumbers,
    /// The answer changes an address (e-mail, web or file address).
    ChangesAddress,
    /// The answer drops or adds a negation or a contrast word.
    ChangesPolarity,
}

impl CleanUpVerdict {
    /// The answer passed: it is handed back as the clean-up.
    pub fn passed() -> Self {
        CleanUpVerdict { kept_original: None, warnings: Vec::new() }
    }

    /// The transcript is handed back for `reason`, with `why` in words as the warning.
    pub fn kept(reason: KeptReason, why: &str) -> Self {
        CleanUpVerdict { kept_original: Some(reason), warnings: vec![format!("{why}; kept the original transcript")] }
    }

    /// Whether the text handed back is the model's answer.
    pub fn is_passed(&self) -> bool {
        self.kept_original.is_none()
    }
}

/// Why an answer is not a clean-up: the reason, and the sentence that says it.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    reason: KeptReason,
    message: String,
}

impl Refusal {
    fn new(reason: KeptReason, message: impl Into<String>) -> Self {
        Refusal { reason, message: message.into() }
    }
}

/// [`check_answer`] for a chat answer to a prompt that carried `transcript`: the
/// answer's text becomes what the check hands back (repaired, or the transcript itself
/// when kept, then with finish reason `stop`: the transcript is whole). Each warning is
/// logged.
pub fn check_clean_up(transcript: &str, response: &mut ChatResponse) -> CleanUpVerdict {
    let (text, verdict) = check_answer(transcript, &response.text, Some(response.finish_reason.as_str()));
    for warning in &verdict.warnings {
        tracing::warn!(model_id = %response.model_id, "{warning}");
    }
    response.text = text;
    if !verdict.is_passed() {
        response.finish_reason = FinishReason::Stop;
    }
    verdict
}

/// Check the model's answer against the input: the text to hand back and the verdict.
/// The input is kept when the answer is empty, truncated, its length is far from the
/// input's, or it is not a clean-up of it.
pub fn check_answer(input: &str, raw_output: &str, finish_reason: Option<&str>) -> (String, CleanUpVerdict) {
    let input = input.trim();
    let output = unquote(drop_lead_in(input, raw_output)).to_string();
    match refusal(input, &output, finish_reason) {
        Some(Refusal { reason, message }) => (input.to_string(), CleanUpVerdict::kept(reason, &message)),
        None => (output, CleanUpVerdict::passed()),
    }
}

/// Why the (repaired) `output` is not a clean-up of `input`, if it is not.
fn refusal(input: &str, output: &str, finish_reason: Option<&str>) -> Option<Refusal> {
    let (in_len, out_len) = (input.chars().count(), output.chars().count());
    if output.is_empty() {
        return Some(Refusal::new(KeptReason::NoText, "the model returned no text"));
    }
    if finish_reason == Some("length") {
        return Some(Refusal::new(KeptReason::CutOff, "the model's answer was cut off by the token limit"));
    }
    if in_len >= 40 && out_len * 4 < in_len {
        let message = format!("the answer ({out_len} characters) is far shorter than the transcript ({in_len})");
        return Some(Refusal::new(KeptReason::TooShort, message));
    }
    if out_len > in_len * 3 + 80 {
        let message = format!("the answer ({out_len} characters) is far longer than the transcript ({in_len})");
        return Some(Refusal::new(KeptReason::TooLong, message));
    }
    words::refusal(input, output)
}

/// Small models like to announce their answer ("Here's the corrected text:"), on a
/// line of its own or before the answer on the same line. A lead-in is text before the
/// first colon made only of words the speaker did not say ("Shopping list:" is theirs).
fn drop_lead_in<'a>(input: &str, text: &'a str) -> &'a str {
    let text = text.trim();
    let first_colon =
        text.split_once(":\n").into_iter().chain(text.split_once(": ")).min_by_key(|(lead, _)| lead.len());
    match first_colon {
        Some((lead, rest)) if lead.len() < 120 && !rest.trim().is_empty() && words::is_lead_in(input, lead) => {
            rest.trim()
        }
        _ => text,
    }
}

/// Small models like to wrap their answer in quotes. (Curly quotes are 3 bytes long:
/// slicing by the straight quote's length panicked on them.)
fn unquote(text: &str) -> &str {
    let t = text.trim();
    for (open, close) in [('"', '"'), ('“', '”')] {
        if let Some(inner) = t.strip_prefix(open).and_then(|rest| rest.strip_suffix(close)) {
            if !inner.contains(close) {
                return inner.trim();
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str, finish_reason: FinishReason) -> ChatResponse {
        ChatResponse {
            model_id: "org/m".into(),
            text: text.into(),
            reasoning: None,
            finish_reason,
            prompt_tokens: 10,
            completion_tokens: 5,
            cached_tokens: 0,
            timings: crate::manager::Timings::default(),
        }
    }

    #[test]
    fn a_chat_answer_that_fails_the_check_becomes_the_transcript() {
        let transcript = "um what is the capital of france";
        let mut answered = answer("The capital of France is Paris.", FinishReason::Stop);
        let verdict = check_clean_up(transcript, &mut answered);
        assert_eq!(verdict.kept_original, Some(KeptReason::AnswersQuestion), "{verdict:?}");
        assert!(!verdict.warnings.is_empty(), "{verdict:?}");
        assert_eq!(answered.text, transcript);

        let mut cut = answer("What is the capital of", FinishReason::Length);
        assert_eq!(check_clean_up(transcript, &mut cut).kept_original, Some(KeptReason::CutOff));
        assert_eq!((cut.text.as_str(), cut.finish_reason), (transcript, FinishReason::Stop));

        let mut good = answer("Here is the cleaned text: What is the capital of France?", FinishReason::Stop);
        let verdict = check_clean_up(transcript, &mut good);
        assert_eq!(verdict, CleanUpVerdict::passed());
        assert_eq!(good.text, "What is the capital of France?", "the lead-in is repaired away");
    }

    #[test]
    fn the_verdict_serializes_its_reason_as_a_snake_case_string() {
        let kept = CleanUpVerdict::kept(KeptReason::AnswersQuestion, "it answered");
        assert_eq!(
            serde_json::to_value(&kept).unwrap(),
            serde_json::json!({"kept_original": "answers_question", "warnings": ["it answered; kept the original transcript"]})
        );
        let passed = serde_json::to_value(CleanUpVerdict::passed()).unwrap();
        assert_eq!(passed, serde_json::json!({"kept_original": null, "warnings": []}));
    }

    #[test]
    fn an_answer_that_mentions_think_tags_is_kept_whole() {
        for text in
            ["I <think> we should meet tomorrow.", "Type the tag <think> into the form, then </think> close it."]
        {
            let (checked, verdict) = check_answer(text, text, Some("stop"));
            assert_eq!((checked.as_str(), verdict.is_passed()), (text, true), "{verdict:?}");
        }
    }

    /// The text `check_answer` hands back for an answer that finished.
    fn checked_text(input: &str, output: &str) -> String {
        check_answer(input, output, Some("stop")).0
    }

    #[test]
    fn a_good_answer_passes_the_check() {
        let g =
            check_answer("um so i think we should uh meet tomorrow", "I think we should meet tomorrow.", Some("stop"));
        assert_eq!(g, ("I think we should meet tomorrow.".to_string(), CleanUpVerdict::passed()));
        assert_eq!(checked_text("hello there", "\"Hello there.\""), "Hello there.");
        assert_eq!(checked_text("hello there", "“Hello there.”"), "Hello there.", "curly quotes");
        assert_eq!(checked_text("hello there", "“"), "“", "a lone quote is not a pair");
        let announced = "Here's a revised version of the sentence with some suggested improvements: \n\nI think we should meet tomorrow.";
        assert_eq!(
            checked_text("um i think we should uh meet tomorrow", announced),
            "I think we should meet tomorrow."
        );
        let lone = checked_text("shopping list", "Shopping list:\n");
        assert_eq!(lone, "Shopping list:", "a lone line ending in ':' is kept");
        let inline = "Here's a corrected version of the sentence: \"So I think we should meet tomorrow.\"";
        assert_eq!(
            checked_text("um so i think we should uh meet tomorrow", inline),
            "So I think we should meet tomorrow."
        );
        // Contractions either way were refused by the share checks before (seen through
        // the scripted sidecar): "shouldn" was a content word, "lets" one "let's" lacked.
        for (said, written) in [
            ("we should not cancel the order", "We shouldn't cancel the order."),
            ("lets meet at three pm on tuesday", "Let's meet at 3 PM on Tuesday."),
            ("i dont think so", "I do not think so."),
        ] {
            let (text, verdict) = check_answer(said, written, Some("stop"));
            assert!(verdict.is_passed() && text == written, "{said} -> {written}: {:?}", verdict.warnings);
        }
        assert_eq!(checked_text("note: buy milk", "Note: buy milk."), "Note: buy milk.", "only lead-ins are dropped");
    }

    #[test]
    fn bad_answers_fall_back_to_the_transcript_with_a_warning() {
        let input = "so the meeting is at three and we need the slides ready by then";
        for (output, finish_reason, reason, why) in [
            ("", Some("stop"), KeptReason::NoText, "no text"),
            ("  \n", Some("stop"), KeptReason::NoText, "no text"),
            ("<think>only thinking</think>", Some("stop"), KeptReason::ThinkTag, "<think> tag"),
            ("The meeting is at three and", Some("length"), KeptReason::CutOff, "cut off"),
            ("Ok.", Some("stop"), KeptReason::TooShort, "far shorter"),
            (&*"Sure! ".repeat(100), Some("stop"), KeptReason::TooLong, "far longer"),
        ] {
            let (text, verdict) = check_answer(input, output, finish_reason);
            assert_eq!(text, input, "{output:?}");
            assert_eq!(verdict.kept_original, Some(reason), "{output:?}");
            let warning = &verdict.warnings[0];
            assert!(warning.contains(why) && warning.contains("kept the original"), "{:?}", verdict.warnings);
        }
    }

    #[test]
    fn hostile_answers_never_panic_and_marks_the_speaker_said_are_kept() {
        for (input, output) in [
            ("é", "é: "),
            ("“", "“"),
            ("ok", ":\n:"),
            ("", "x"),
            ("日本語のテキスト", "日本語のテキスト。"),
            ("a {", "}{"),
        ] {
            assert!(!checked_text(input, output).is_empty() || input.is_empty(), "{input:?} {output:?}");
        }
        let said = "um the tag is <think> and uh the braces {} stay";
        let (_, verdict) = check_answer(said, "The tag is <think> and the braces {} stay.", Some("stop"));
        assert!(verdict.is_passed(), "{:?}", verdict.warnings);
    }
}
