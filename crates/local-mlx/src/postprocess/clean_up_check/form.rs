//! A clean-up changes the form of the speaker's words, never adds to them.
//!
//! [`added`] aligns the answer's words with the transcript's, in order, and names what
//! the answer says that the speaker did not. A word of the answer is the speaker's
//! when it is one of theirs (up to case, accents and apostrophes), an abbreviation or
//! an inflection of one ("Dr." for "doctor", "thanks" for "thank"), a contraction the
//! speaker's words make or its expansion ("don't" / "do not", "gonna" / "going to"),
//! two of their words joined or one split ("email" / "e mail"), or a spelling fix: a
//! homophone ("there" / "their"), or the same first letter and at most one edit (two
//! from eight letters on), never between two days or months. Numbers are the [`super::numbers`] check's, and dropped words
//! (fillers, repeats, spoken punctuation) are allowed: only *added* words count. Each
//! of the speaker's words is used once, so saying a word again ("Say only OK. OK") is
//! an addition too.
//!
//! Decision: no added word at all, and at most [`corrections_allowed`] spelling fixes
//! (one for every ten words of the answer, at least one): a speech-to-text engine
//! spells correctly and mishears rarely, and a fix that is one letter from the
//! speaker's word is far likelier a fix than a new meaning. The alignment is a dynamic
//! programme over the two word lists, O(n·m) like [`super::words::in_order`].

use super::elision;
use super::lexicon::{fold, same_stem, STOP_WORDS};
use super::numbers::is_number_word;
use super::{KeptReason, Refusal};

/// Closed classes whose members look alike but name different things: no spelling fix
/// turns one into another ("Tuesday" → "Thursday").
const VALUE_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words that sound alike, which a speech-to-text engine mixes up: one for another is a
/// spelling fix (counted as one), whatever the edit distance.
const HOMOPHONES: &[&[&str]] = &[
    &["their", "there", "they're"],
    &["your", "you're"],
    &["to", "too"],
    &["whose", "who's"],
    &["weather", "whether"],
    &["hear", "here"],
    &["new", "knew"],
    &["right", "write"],
    &["by", "buy", "bye"],
    &["where", "wear"],
    &["peace", "piece"],
    &["break", "brake"],
    &["principal", "principle"],
    &["affect", "effect"],
    &["accept", "except"],
];

/// Spoken short forms and what they stand for.
const SHORT_FORMS: &[(&str, &[&str])] = &[
    ("gonna", &["going", "to"]),
    ("wanna", &["want", "to"]),
    ("gotta", &["got", "to"]),
    ("kinda", &["kind", "of"]),
    ("sorta", &["sort", "of"]),
    ("lemme", &["let", "me"]),
    ("gimme", &["give", "me"]),
    ("cannot", &["can", "not"]),
];

/// Contractions as speech-to-text engines also write them, without the apostrophe.
const BARE_CONTRACTIONS: &[(&str, &str)] = &[
    ("dont", "don't"),
    ("cant", "can't"),
    ("wont", "won't"),
    ("isnt", "isn't"),
    ("arent", "aren't"),
    ("wasnt", "wasn't"),
    ("werent", "weren't"),
    ("doesnt", "doesn't"),
    ("didnt", "didn't"),
    ("havent", "haven't"),
    ("hasnt", "hasn't"),
    ("shouldnt", "shouldn't"),
    ("wouldnt", "wouldn't"),
    ("couldnt", "couldn't"),
    ("im", "i'm"),
    ("ive", "i've"),
    ("youre", "you're"),
    ("theyre", "they're"),
    ("lets", "let's"),
    ("thats", "that's"),
    ("whats", "what's"),
];

/// Words of `text` as the alignment sees them: lower case, accents folded, apostrophes
/// straight and kept inside a word ("don't"), number words and digits left out.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(['\'', '’']))
        .filter(|w| !w.is_empty())
        .map(|w| fold(&w.to_lowercase()).replace('’', "'"));
    for word in words {
        match elision::split(&word) {
            // "qu'on" is two words, "qu'" and "on", as the speaker's "que on".
            Some((elided, rest)) => out.extend([elided, rest.to_string()]),
            None => out.push(word),
        }
    }
    out.retain(|w| !is_number_word(w));
    out
}

/// The two words a contraction or short form stands for: the first, and the choices
/// for the second ("it's" → "it", is/has/us; "dont" → "do", not).
pub(super) fn expansion(word: &str) -> Option<(String, &'static [&'static str])> {
    let word = BARE_CONTRACTIONS.iter().find(|(bare, _)| *bare == word).map_or(word, |(_, full)| *full);
    if let Some((_, parts)) = SHORT_FORMS.iter().find(|(short, _)| *short == word) {
        return Some((parts[0].to_string(), &parts[1..]));
    }
    if let Some(base) = word.strip_suffix("n't") {
        let base = match base {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            other => other,
        };
        return Some((base.to_string(), &["not"]));
    }
    let (base, ending) = word.rsplit_once('\'')?;
    let second: &'static [&'static str] = match ending {
        "m" => &["am"],
        "re" => &["are"],
        "ve" => &["have"],
        "ll" => &["will", "shall"],
        "d" => &["would", "had"],
        // German "geht's" is "geht es".
        "s" => &["is", "has", "us", "es"],
        _ => return None,
    };
    Some((base.to_string(), second))
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, or `None`
/// beyond `limit`.
fn edits(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>(); a.len() + 1];
    for i in 1..=a.len() {
        rows[i][0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    Some(rows[a.len()][b.len()]).filter(|&d| d <= limit)
}

/// A word with what the alignment asks of it, computed once.
struct Word {
    text: String,
    /// Without apostrophes ("lets" for "let's").
    bare: String,
    chars: usize,
    expansion: Option<(String, &'static [&'static str])>,
}

impl Word {
    fn new(text: String) -> Word {
        let bare = text.replace('\'', "");
        Word { chars: text.chars().count(), expansion: expansion(&text), bare, text }
    }
}

/// How `written` (the answer's word) stands for `said` (the speaker's): `Some(false)`
/// as a form of it, `Some(true)` as a spelling fix, `None` not at all.
fn stands_for(said: &Word, written: &Word) -> Option<bool> {
    if said.bare == written.bare
        || same_stem(&said.text, &written.text)
        || elision::same_elided(&said.text, &written.text)
    {
        return Some(false);
    }
    if let (Some((a, a2)), Some((b, b2))) = (&said.expansion, &written.expansion) {
        if a == b && a2.iter().any(|w| b2.contains(w)) {
            return Some(false); // "can't" and "cannot"
        }
    }
    let (s, w) = (said.text.as_str(), written.text.as_str());
    if HOMOPHONES.iter().any(|group| group.contains(&s) && group.contains(&w)) {
        return Some(true);
    }
    if s.chars().next() != w.chars().next() {
        return None;
    }
    // "Dr." for "doctor", "OK" for "okay"; never a function word ("it" for "important").
    let mut letters = s.chars();
    let abbreviates = written.chars <= 4
        && written.chars < said.chars
        && !STOP_WORDS.contains(&w)
        && w.chars().all(|c| letters.any(|l| l == c));
    if abbreviates {
        return Some(false);
    }
    let limit = match written.chars.min(said.chars) {
        0..=3 => return None,
        4..=7 => 1,
        _ => 2,
    };
    let fixable =
        said.chars.abs_diff(written.chars) <= limit && !(VALUE_WORDS.contains(&s) && VALUE_WORDS.contains(&w));
    (fixable && edits(s, w, limit).is_some()).then_some(true)
}

/// How two of one side's words stand for one of the other's: a contraction and its
/// expansion, or a word joined or split.
fn joins(one: &Word, first: &Word, second: &Word) -> bool {
    let joined = one.bare.len() == first.bare.len() + second.bare.len()
        && one.bare.starts_with(&first.bare)
        && one.bare.ends_with(&second.bare);
    joined
        || elision::merges(&one.text, &first.text, &second.text)
        || one.expansion.as_ref().is_some_and(|(base, seconds)| {
            (*base == first.text || same_stem(base, &first.text)) && seconds.contains(&second.text.as_str())
        })
}

/// At most this many spelling fixes in an answer of `words` words.
pub(super) fn corrections_allowed(words: usize) -> usize {
    (words / 10).max(1)
}

/// The best alignment's cost: answer words left unaligned, then spelling fixes.
type Cost = (usize, usize);

/// Why `answer` adds to `transcript`, or `None` when it only changes the form.
pub(super) fn added(transcript: &str, answer: &str) -> Option<Refusal> {
    let said: Vec<Word> = tokens(transcript).into_iter().map(Word::new).collect();
    let written: Vec<Word> = tokens(answer).into_iter().map(Word::new).collect();
    let (n, m) = (said.len(), written.len());
    // cost[i][j]: aligning the first i words said with the first j written. Three rows.
    let worst: Cost = (usize::MAX / 2, 0);
    let mut rows: Vec<Vec<Cost>> = vec![vec![worst; m + 1]; 3];
    for i in 0..=n {
        let (row, back1, back2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        for j in 0..=m {
            let mut best: Cost = if i == 0 && j == 0 { (0, 0) } else { worst };
            let mut consider = |cost: Cost| best = best.min(cost);
            if i > 0 {
                consider(rows[back1][j]); // a word said and dropped: free
            }
            if j > 0 {
                let (unaligned, fixes) = rows[row][j - 1];
                consider((unaligned + 1, fixes)); // a word written and not said
            }
            if i > 0 && j > 0 {
                if let Some(fix) = stands_for(&said[i - 1], &written[j - 1]) {
                    let (unaligned, fixes) = rows[back1][j - 1];
                    consider((unaligned, fixes + usize::from(fix)));
                }
            }
            if i > 0 && j > 1 && joins(&said[i - 1], &written[j - 2], &written[j - 1]) {
                consider(rows[back1][j - 2]);
            }
            if i > 1 && j > 0 && joins(&written[j - 1], &said[i - 2], &said[i - 1]) {
                consider(rows[back2][j - 1]);
            }
            rows[row][j] = best;
        }
    }
    let (unaligned, fixes) = rows[n % 3][m];
    if unaligned > 0 {
        let new: Vec<String> = written
            .iter()
            .filter(|w| !said.iter().any(|s| stands_for(s, w).is_some()))
            .take(4)
            .map(|w| format!("\"{}\"", w.text))
            .collect();
        return Some(if new.is_empty() {
            Refusal::new(KeptReason::Repeats, format!("the answer says the transcript's words more often than the speaker did, or out of order ({unaligned} extra)"))
        } else {
            Refusal::new(
                KeptReason::UnsaidWords,
                format!("the answer adds {unaligned} word(s) the speaker did not say ({})", new.join(", ")),
            )
        });
    }
    let allowed = corrections_allowed(m);
    (fixes > allowed).then(|| {
        let message = format!("the answer changes {fixes} of its {m} words (a clean-up fixes at most {allowed})");
        Refusal::new(KeptReason::ChangesWords, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_speakers_words_add_nothing() {
        for (said, written) in [
            (
                "um so i was thinking we could uh move the meeting to friday",
                "So I was thinking we could move the meeting to Friday.",
            ),
            ("i i do not know", "I don't know."),
            ("i don't know", "I do not know."),
            ("we're gonna need a bigger boat", "We are going to need a bigger boat."),
            ("i spoke with doctor okafor", "I spoke with Dr. Okafor."),
            ("send me an e mail", "Send me an email."),
            ("lets go", "Let's go."),
            ("the colour of the sky", "The color of the sky."),
            ("she said open quote hi close quote", "She said, \"hi\""),
            ("twenty five units", "25 units"),
            ("i will call you at five pm", "I'll call you at 5 p.m."),
            ("we can not go", "We cannot go."),
            ("it's nine ninety nine", "It's $9.99."),
            ("the year two thousand and twenty four", "The year 2024."),
            ("put it over their", "Put it over there."),
            ("send a follow up", "Send a follow-up."),
        ] {
            assert_eq!(added(said, written), None, "{said} -> {written}");
        }
    }

    #[test]
    fn an_answer_a_new_word_a_repeat_or_another_word_is_an_addition() {
        for (said, written) in [
            ("what is the capital of france", "What is the capital of France? Paris."),
            ("say only ok", "Say only OK. OK"),
            ("buy milk", "Here is the cleaned text. Buy milk."),
            ("i love it", "I hate it."),
            ("see you on tuesday", "See you on Thursday."),
            ("fix the login", "Fix the login and keep the old layout."),
        ] {
            assert!(added(said, written).is_some(), "{said} -> {written}");
        }
    }

    #[test]
    fn spelling_fixes_are_counted_and_capped() {
        assert_eq!(corrections_allowed(5), 1);
        assert_eq!(corrections_allowed(25), 2);
        assert_eq!(added("the reciept is here", "The receipt is here."), None);
        let why = added("the reciept and the adress", "The receipt and the address.").unwrap();
        assert!(why.message.contains("changes 2 of its 5 words"), "{why:?}");
    }
}
