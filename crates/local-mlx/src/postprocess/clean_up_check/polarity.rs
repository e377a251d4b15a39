//! The words that turn a sentence around: negations ("not", "never", "n't", "without")
//! and contrast words ("but", "except", "unless"). One of them dropped, or added, makes
//! a fluent clean-up say the opposite ("we should not cancel" → "we should cancel"),
//! and no other check sees it: a clean-up may drop words.
//!
//! [`changed`] counts each class in the transcript and the answer. The answer may drop
//! only a repetition ("not not" → "not"), and may add none.

use super::elision::elided_forms;
use super::form::{expansion, tokens};

/// Negations, English first, then the other languages of the eval set. A contraction
/// with "not" ("don't", "dont", "cannot") counts too (see [`is_negation`]).
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "without", "nobody", "nothing", "none", "nowhere", "neither", "nor", "nicht", "kein",
    "keine", "keinen", "nie", "niemals", "pas", "jamais", "ne", "non", "nunca", "nada", "nessuno", "mai",
];
/// Contrast words.
const CONTRASTS: &[&str] =
    &["but", "except", "unless", "although", "though", "however", "aber", "sondern", "mais", "pero", "ma"];

/// Whether a word belongs to a class.
type Class = fn(&str) -> bool;

fn is_contrast(word: &str) -> bool {
    CONTRASTS.contains(&word)
}

fn is_negation(word: &str) -> bool {
    NEGATIONS.contains(&word)
        || expansion(word).is_some_and(|(_, second)| second == ["not"])
        || elided_forms(word).iter().any(|full| NEGATIONS.contains(full))
}

/// How many words of `words` are in the class, all of them and without immediate
/// repetitions ("not not" once).
fn count(words: &[String], in_class: impl Fn(&str) -> bool) -> (usize, usize) {
    let all = words.iter().filter(|w| in_class(w)).count();
    let once = words.iter().enumerate().filter(|(i, w)| in_class(w) && (*i == 0 || words[i - 1] != **w)).count();
    (all, once)
}

/// Why the answer changes the transcript's polarity, or `None` when it keeps it.
pub(super) fn changed(transcript: &str, answer: &str) -> Option<String> {
    let (said, written) = (tokens(transcript), tokens(answer));
    let classes: [(&str, Class); 2] = [("negation", is_negation), ("contrast word", is_contrast)];
    for (name, in_class) in classes {
        let (all, once) = count(&said, in_class);
        let (answer_count, _) = count(&written, in_class);
        if answer_count < once {
            let lost: Vec<&String> = said.iter().filter(|w| in_class(w)).collect();
            return Some(format!(
                "the answer drops a {name} of the transcript ({} of {once} kept: {})",
                answer_count,
                lost.iter().take(3).map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
            ));
        }
        if answer_count > all {
            return Some(format!("the answer adds a {name} the transcript did not have"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_or_added_negation_or_contrast_is_a_change() {
        assert!(changed("we should not cancel the order", "We should cancel the order.").is_some());
        assert!(changed("we should cancel the order", "We shouldn't cancel the order.").is_some());
        assert!(changed("fix the login but keep the old layout", "Fix the login and keep the old layout.").is_some());
        assert!(changed("i never said that", "I said that.").is_some());
        assert!(changed("ich habe nicht gesagt", "Ich habe gesagt.").is_some());
    }

    #[test]
    fn kept_negations_in_any_form_and_dropped_repetitions_are_not() {
        assert_eq!(changed("we should not cancel", "We shouldn't cancel."), None);
        assert_eq!(changed("i can't come", "I cannot come."), None);
        assert_eq!(changed("no no no we're done", "No, we're done."), None, "a repetition dropped");
        assert_eq!(changed("but um not today", "But not today."), None);
        assert_eq!(changed("i’m not sure", "I'm not sure."), None);
        assert_eq!(changed("i dont know", "I don't know."), None);
        assert!(changed("i dont know", "I know.").is_some());
    }
}
