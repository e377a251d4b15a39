//! The word-share checks: the answer's *content words* against the transcript's.
//!
//! [`Vocabulary`] holds the transcript's words, and [`refusal`] names the first reason
//! the answer is not a clean-up, if any, running the exact checks of the sibling
//! modules last.
//!
//! Decision: a word list and counts, no language model and no dependency. Words that a
//! clean-up legitimately adds or drops (stop words, fillers, spoken punctuation,
//! number words and digits, abbreviations like "Dr." for "doctor", accents, plural and
//! verb endings) are allowed for; the thresholds were tuned on `eval/outputs.jsonl`,
//! whose every line a unit test checks (see docs/QUALITY.md for the numbers).

use super::lexicon::{fold, same_stem, STOP_WORDS};
use super::{elision, form, numbers, polarity, spoken, KeptReason, Refusal};

/// Hesitations and discourse fillers in the languages of the set: a clean-up drops them.
const FILLERS: &[&str] = &[
    "um",
    "umm",
    "uh",
    "uhm",
    "er",
    "erm",
    "ah",
    "eh",
    "ehm",
    "hmm",
    "mm",
    "euh",
    "äh",
    "ähm",
    "like",
    "okay",
    "ok",
    "basically",
    "mean",
    "know",
    "well",
    "actually",
    "bueno",
];

/// Spoken punctuation: a clean-up turns these into marks.
const SPOKEN_PUNCTUATION: &[&str] = &[
    "comma",
    "period",
    "full",
    "stop",
    "new",
    "line",
    "paragraph",
    "question",
    "mark",
    "exclamation",
    "colon",
    "semicolon",
    "dash",
    "hyphen",
    "open",
    "close",
    "quote",
    "quotes",
    "unquote",
    "parenthesis",
    "bracket",
    // Symbols and formatting commands Handy's prompt asks to turn into marks.
    "point",
    "ampersand",
    "hash",
    "hashtag",
    "sign",
    "bullet",
    "ellipsis",
    "asterisk",
    "slash",
    "backslash",
    "underscore",
    "dot",
    "apostrophe",
    "tab",
    "equals",
    "plus",
    "minus",
    "negative",
];

/// Number words and units: a clean-up may turn them into digits and signs and back.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "twentieth",
    "thirtieth",
    "oh",
    "half",
    "quarter",
    "dozen",
    // Units a clean-up writes as a sign next to the digits ("five dollars" → "$5").
    "dollar",
    "dollars",
    "euro",
    "euros",
    "pound",
    "pounds",
    "cent",
    "cents",
    "percent",
];

/// The commonest function words of the languages a Handy user dictates in most; the
/// language with the most hits (at least [`MIN_LANGUAGE_HITS`]) is the text's.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("English", &["the", "and", "is", "are", "i", "you", "we", "to", "of", "that", "it", "with", "at", "my"]),
    ("German", &["der", "die", "das", "und", "ist", "ich", "wir", "nicht", "auf", "mit", "zu", "du", "sie", "ein"]),
    ("French", &["le", "la", "les", "et", "est", "je", "nous", "pas", "que", "pour", "de", "une", "des", "vous"]),
    ("Spanish", &["el", "la", "los", "las", "y", "es", "que", "yo", "por", "una", "con", "creo", "pero", "para"]),
    ("Italian", &["il", "lo", "gli", "e", "io", "che", "non", "di", "al", "per", "una", "sono", "vado", "con"]),
];
const MIN_LANGUAGE_HITS: usize = 2;

/// Words at the start of a transcript that make it a question.
const QUESTION_OPENERS: &[&str] = &[
    "what", "whats", "how", "why", "who", "whom", "whose", "when", "where", "which", "can", "could", "should", "would",
    "will", "is", "are", "do", "does", "did", "shall", "may", "am", "was", "were", "have", "has",
];

/// More than this share of the answer's content words not in the transcript is not a clean-up.
const MAX_NOVEL_SHARE: f64 = 0.25;
/// Fewer than this share of the transcript's content words kept is not a clean-up: a
/// clean-up drops fillers and repetitions, which are not content words. (At 0.5 a
/// constrained SmolLM2 passed "The quarterly numbers were strong…" for "summarize the
/// following in one sentence the quarterly numbers…": 5 of 8, an instruction followed.)
const MIN_KEPT_SHARE: f64 = 0.75;
/// What is kept is judged from this many content words in the transcript ("my phone
/// number is five five five…" has two; "Is two five five five…" kept neither).
const MIN_KEPT_WORDS: usize = 2;
/// Fewer than this share of the answer's transcript words in the speaker's order is a
/// rewrite, not a clean-up ("The tests pass on the build server, but the pass on the
/// machine." for "…the tests pass on my machine but not on the build server").
const MIN_IN_ORDER_SHARE: f64 = 0.8;
/// The order is judged from this many of the transcript's words in the answer.
const MIN_ORDER_WORDS: usize = 3;
/// This many more uses of the transcript's words than the speaker's is a ramble.
const MIN_EXTRA_REPEATS: usize = 2;
/// A sentence with at least this many content words, most of them new, was invented.
const MIN_SENTENCE_WORDS: usize = 4;
const MAX_SENTENCE_NOVEL_SHARE: f64 = 0.6;

/// Lower-cased words (runs of letters and digits) of `text`, contractions written out
/// ("don't" and "dont" are "do not", "let's" is "let is"), so both forms count alike.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let token = token.trim_matches(['\'', '’']).to_lowercase().replace('’', "'");
        match (form::expansion(&token), elision::split(&token)) {
            (Some((base, second)), _) => out.extend([base, second[0].to_string()]),
            (None, Some((elided, rest))) => out.extend([elided, rest.to_string()]),
            (None, None) => out.extend(token.split('\'').filter(|w| !w.is_empty()).map(str::to_string)),
        }
    }
    out
}

fn is_digits(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit())
}

/// A word that carries meaning: not a stop word, filler, spoken mark or number.
fn is_content(word: &str) -> bool {
    ![STOP_WORDS, elision::FUNCTION_WORDS, FILLERS, SPOKEN_PUNCTUATION, NUMBER_WORDS]
        .iter()
        .any(|list| list.contains(&word))
        && !is_digits(word)
}

/// `short`'s letters appear in order in `long`, from its first letter ("dr", "doctor").
fn abbreviates(short: &str, long: &str) -> bool {
    let mut letters = long.chars();
    short.chars().next() == long.chars().next() && short.chars().all(|c| letters.any(|l| l == c))
}

/// `word` (folded) is `said`, or inflects or abbreviates it.
fn same_word(said: &str, word: &str) -> bool {
    said == word
        || same_stem(said, word)
        || elision::same_elided(said, word)
        || (word.chars().count() <= 4 && abbreviates(word, said))
}

/// The words of a transcript, to look the answer's words up in.
pub(super) struct Vocabulary {
    /// Every word, folded.
    all: Vec<String>,
    /// The content words, folded, in order.
    content: Vec<String>,
    has_numbers: bool,
}

impl Vocabulary {
    pub(super) fn new(transcript: &str) -> Self {
        let all: Vec<String> = words(transcript).iter().map(|w| fold(w)).collect();
        let content = all.iter().filter(|w| is_content(w)).cloned().collect();
        let has_numbers = all.iter().any(|w| is_digits(w) || NUMBER_WORDS.contains(&w.as_str()));
        Vocabulary { all, content, has_numbers }
    }

    /// Whether the transcript has `word` (folded), or one it abbreviates or inflects.
    pub(super) fn has(&self, word: &str) -> bool {
        let word = fold(&word.to_lowercase());
        self.all.iter().any(|t| same_word(t, &word))
    }

    /// The content words of `text` that the transcript does not have.
    fn novel<'a>(&self, content: &'a [String]) -> Vec<&'a String> {
        content.iter().filter(|w| !self.has(w)).collect()
    }
}

/// The content words of `text`.
fn content_words(text: &str) -> Vec<String> {
    // Judged folded, as the transcript's are: "à" is the function word "a".
    words(text).into_iter().filter(|w| is_content(&fold(w))).collect()
}

/// The language whose function words `text` uses most, if it uses enough of them.
fn language(text: &str) -> Option<&'static str> {
    let words = words(text);
    let hits = |list: &[&str]| words.iter().filter(|w| list.contains(&w.as_str())).count();
    let mut scored: Vec<(usize, &str)> = LANGUAGES.iter().map(|(name, list)| (hits(list), *name)).collect();
    scored.sort_by_key(|(hits, _)| std::cmp::Reverse(*hits));
    (scored[0].0 >= MIN_LANGUAGE_HITS && scored[0].0 > scored[1].0).then_some(scored[0].1)
}

/// A dictated question: it ends with a question mark (written or spoken) or opens with
/// a question word once fillers are skipped.
fn is_question(transcript: &str) -> bool {
    let words = words(transcript);
    let spoken_mark = words.windows(2).any(|w| w[0] == "question" && w[1] == "mark");
    let opener = words.iter().find(|w| !FILLERS.contains(&w.as_str()) && w.as_str() != "so");
    transcript.trim_end().ends_with('?')
        || spoken_mark
        || opener.is_some_and(|w| QUESTION_OPENERS.contains(&w.as_str()))
}

/// Whether `output` opens with the transcript's first word once fillers are skipped: a
/// cleaned question does ("What is…"), a statement made of its words may not ("The
/// capital of France is…", seen from a constrained model).
fn same_opening(transcript: &str, output: &str) -> bool {
    let first = |text: &str| words(text).into_iter().find(|w| !FILLERS.contains(&w.as_str()) && w != "so");
    first(transcript) == first(output)
}

/// Why `output` is not a clean-up of `transcript`, or `None` when it may be one. The
/// checks run in this order, the first refusal wins: the answer's shape, a dictated
/// question answered, the transcript's words covered, words added, then the exact checks.
pub(super) fn refusal(transcript: &str, output: &str) -> Option<Refusal> {
    // Spoken forms written alike on both sides: "anna dot lee at example dot org" and
    // "anna.lee@example.org", "forty kilometers" and "40 km" (see `spoken`).
    let (transcript, output) = (spoken::written(transcript), spoken::written(&join_initials(output)));
    let (transcript, output) = (transcript.as_str(), output.as_str());
    let vocabulary = Vocabulary::new(transcript);
    let answer = content_words(output);
    shape_refusal(transcript, output)
        .or_else(|| question_refusal(&vocabulary, transcript, output, &answer))
        .or_else(|| coverage_refusal(&vocabulary, output, &answer))
        .or_else(|| addition_refusal(&vocabulary, output, &answer))
        .or_else(|| exact_refusal(transcript, output))
}

/// A think tag, JSON or code, or another language: not a clean-up, whatever its words.
fn shape_refusal(transcript: &str, output: &str) -> Option<Refusal> {
    for tag in ["<think>", "</think>"] {
        if output.contains(tag) && !transcript.contains(tag) {
            return Some(Refusal::new(
                KeptReason::ThinkTag,
                format!("the answer contains a {tag} tag (the model's reasoning)"),
            ));
        }
    }
    if ["{", "}", "```"].iter().any(|mark| output.contains(mark) && !transcript.contains(mark)) {
        return Some(Refusal::new(KeptReason::Code, "the answer is JSON or code, and the transcript was not"));
    }
    if let (Some(from), Some(to)) = (language(transcript), language(output)) {
        if from != to {
            return Some(Refusal::new(
                KeptReason::OtherLanguage,
                format!("the answer is in {to}, the transcript in {from}"),
            ));
        }
    }
    None
}

/// A dictated question answered rather than cleaned up, or numbers the speaker never said.
fn question_refusal(vocabulary: &Vocabulary, transcript: &str, output: &str, answer: &[String]) -> Option<Refusal> {
    let novel = vocabulary.novel(answer);
    let adds_numbers = !vocabulary.has_numbers && words(output).iter().any(|w| w.chars().any(|c| c.is_ascii_digit()));
    if is_question(transcript)
        && !output.contains('?')
        && (!novel.is_empty() || adds_numbers || !same_opening(transcript, output))
    {
        return Some(Refusal::new(
            KeptReason::AnswersQuestion,
            "the answer answers the dictated question instead of cleaning it up",
        ));
    }
    adds_numbers.then(|| Refusal::new(KeptReason::AddsNumbers, "the answer has numbers the transcript did not have"))
}

/// The transcript's content words dropped, reordered, or the answer stopping short.
fn coverage_refusal(vocabulary: &Vocabulary, output: &str, answer: &[String]) -> Option<Refusal> {
    let transcript_words = &vocabulary.content;
    let answer_vocabulary = Vocabulary::new(output);
    let kept = transcript_words.iter().filter(|w| answer_vocabulary.has(w)).count();
    if transcript_words.len() >= MIN_KEPT_WORDS && (kept as f64) < MIN_KEPT_SHARE * transcript_words.len() as f64 {
        let message =
            format!("the answer keeps only {kept} of the transcript's {} content words", transcript_words.len());
        return Some(Refusal::new(KeptReason::DropsWords, message));
    }
    let said: Vec<String> = answer.iter().map(|w| fold(w)).filter(|w| vocabulary.has(w)).collect();
    let in_order = in_order(transcript_words, &said);
    if said.len() >= MIN_ORDER_WORDS && (in_order as f64) < MIN_IN_ORDER_SHARE * said.len() as f64 {
        let message = format!(
            "the answer reorders the transcript's words (only {in_order} of {} in the speaker's order)",
            said.len()
        );
        return Some(Refusal::new(KeptReason::Reorders, message));
    }
    if transcript_words.len() >= 3 {
        // A clean-up ends where the speaker did: one of the transcript's last two content
        // words is among the answer's last few (room for a reordered date or list).
        let answer_end = &answer[answer.len().saturating_sub(6)..];
        let tail = &transcript_words[transcript_words.len() - 2..];
        if !tail.iter().any(|w| answer_end.iter().any(|a| same_word(&fold(a), w))) {
            let message = format!("the answer stops before the transcript's end (\"{}\")", tail.join(" "));
            return Some(Refusal::new(KeptReason::StopsEarly, message));
        }
    }
    None
}

/// The transcript's words said more often than the speaker did, or words and sentences
/// of the model's own.
fn addition_refusal(vocabulary: &Vocabulary, output: &str, answer: &[String]) -> Option<Refusal> {
    let transcript_words = &vocabulary.content;
    // A clean-up only removes words: saying the transcript's words more often than the
    // speaker did is a ramble.
    let extra: usize = answer
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|w| {
            let folded = fold(w);
            let said = transcript_words.iter().filter(|t| same_word(t, &folded)).count();
            answer.iter().filter(|a| *a == w).count().saturating_sub(said.max(1))
        })
        .sum();
    if extra >= MIN_EXTRA_REPEATS.max(transcript_words.len() / 10) {
        let message = format!("the answer repeats the transcript's words {extra} times more than the speaker did");
        return Some(Refusal::new(KeptReason::Repeats, message));
    }
    let novel = vocabulary.novel(answer);
    if novel.len() >= 2 && novel.len() as f64 > MAX_NOVEL_SHARE * answer.len() as f64 {
        let message = format!("the answer adds words that are not in the transcript ({})", quoted(&novel));
        return Some(Refusal::new(KeptReason::AddsWords, message));
    }
    for sentence in output.split(['.', '!', '?', '\n']) {
        let words = content_words(sentence);
        let new = vocabulary.novel(&words);
        if words.len() >= MIN_SENTENCE_WORDS && new.len() as f64 >= MAX_SENTENCE_NOVEL_SHARE * words.len() as f64 {
            let message = format!("the answer adds a sentence that is not in the transcript ({})", quoted(&new));
            return Some(Refusal::new(KeptReason::AddsSentence, message));
        }
    }
    None
}

/// The checks one word can fail: numbers, addresses, negations, words the speaker did not say.
fn exact_refusal(transcript: &str, output: &str) -> Option<Refusal> {
    let (said, written) = (numbers::values_of(transcript), numbers::values_of(output));
    if !numbers::same_values(&said, &written) {
        let message = format!(
            "the answer changes the transcript's numbers ({} said, {} written)",
            listed(&said),
            listed(&written)
        );
        return Some(Refusal::new(KeptReason::ChangesNumbers, message));
    }
    spoken::changed_addresses(transcript, output)
        .map(|message| Refusal::new(KeptReason::ChangesAddress, message))
        .or_else(|| {
            polarity::changed(transcript, output).map(|message| Refusal::new(KeptReason::ChangesPolarity, message))
        })
        .or_else(|| form::added(transcript, output))
}

/// Values for a warning: "none", or the first few joined.
fn listed(values: &[String]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.iter().take(6).cloned().collect::<Vec<_>>().join(" ")
}

/// `text` with dotted initials written as one word ("p.m." → "pm.", "U.S." → "US."), as
/// the speaker said them: the checks compare words.
fn join_initials(text: &str) -> String {
    let initials = |chunk: &str| {
        let core = chunk.trim_end_matches([',', ';', ':', '!', '?', ')']);
        let parts: Vec<&str> = core.split('.').collect();
        let dotted = parts.len() >= 3 && parts.last() == Some(&"");
        let letters = &parts[..parts.len().saturating_sub(1)];
        (dotted && letters.iter().all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic)))
            .then(|| format!("{}.{}", letters.concat(), &chunk[core.len()..]))
    };
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(char::is_whitespace) {
        let chunk = piece.trim_end();
        out.push_str(&initials(chunk).unwrap_or_else(|| chunk.to_string()));
        out.push_str(&piece[chunk.len()..]);
    }
    out
}

/// How many of `answer`'s words appear in `transcript`'s order: the length of their
/// longest common subsequence, words compared as [`same_word`]. Two rows of the usual
/// dynamic programme: O(n·m) time for a transcript of n content words and an answer of
/// m, at most a few million steps for the longest transcript accepted.
pub(super) fn in_order(transcript: &[String], answer: &[String]) -> usize {
    let (mut previous, mut current) = (vec![0usize; answer.len() + 1], vec![0usize; answer.len() + 1]);
    for said in transcript {
        for (j, word) in answer.iter().enumerate() {
            current[j + 1] = if same_word(said, word) { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[answer.len()]
}

/// A short, quoted list of `words` for a warning.
fn quoted(words: &[&String]) -> String {
    words.iter().take(4).map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
}

/// Whether every content word of `lead` (text before a colon) is missing from the
/// transcript: "Here is the cleaned text" is the model's, "Shopping list" the speaker's.
pub(super) fn is_lead_in(transcript: &str, lead: &str) -> bool {
    let vocabulary = Vocabulary::new(transcript);
    let lead_words = content_words(lead);
    !lead_words.is_empty() && lead_words.len() <= 8 && vocabulary.novel(&lead_words).len() == lead_words.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_matched_up_to_accents_endings_and_abbreviations() {
        let v = Vocabulary::new("i spoke with doctor okafor in reykjavik, thanks to the colours");
        for word in ["Reykjavík", "dr", "thank", "colour", "OKAFOR"] {
            assert!(v.has(word), "{word}");
        }
        for word in ["paris", "colors", "dx", "docs"] {
            assert!(!v.has(word), "{word}");
        }
    }

    #[test]
    fn words_in_order_are_the_longest_common_subsequence() {
        let w = |text: &str| content_words(text);
        let said = w("tests pass machine build server");
        assert_eq!(in_order(&said, &w("tests pass machine build server")), 5);
        assert_eq!(in_order(&said, &w("tests pass build server pass machine")), 4);
        assert_eq!(in_order(&said, &w("server build machine pass tests")), 1);
        assert_eq!(in_order(&said, &[]), 0);
        assert_eq!(in_order(&w("doctor okafor"), &w("Dr Okafor")), 2, "words compare as same_word");
    }

    #[test]
    fn languages_and_questions_are_recognized() {
        assert_eq!(language("ich glaube wir sollten das meeting verschieben"), Some("German"));
        assert_eq!(language("I think the report is almost finished"), Some("English"));
        assert_eq!(language("hello"), None, "too few function words to tell");
        assert!(is_question("um how many days are there in a leap year"));
        assert!(is_question("are you coming question mark"));
        assert!(!is_question("so the meeting is at noon"));
    }

    #[test]
    fn dotted_initials_are_one_word() {
        assert_eq!(join_initials("at 3:30 p.m. in the U.S., e.g. here."), "at 3:30 pm. in the US., eg. here.");
        assert_eq!(join_initials("Dr. Okafor said a. b"), "Dr. Okafor said a. b", "not initials");
    }

    #[test]
    fn a_lead_in_is_made_of_words_the_speaker_did_not_say() {
        assert!(is_lead_in("um buy milk", "Here is the cleaned text"));
        assert!(!is_lead_in("shopping list apples", "Shopping list"));
        assert!(!is_lead_in("note the office is closed", "Note"));
        assert!(!is_lead_in("buy milk", "Here"), "no content word: not judged");
    }
}
