//! The transcript constraint, python-backend/local_mlx_sidecar/constrain.py ported rule
//! for rule (read its docstring for the why): the answer may only spell the transcript's
//! own words; digits, whitespace, punctuation, currency and math signs anywhere; a line
//! break only when the transcript has or dictates one; incomplete UTF-8 pieces only when
//! it has non-ASCII characters; end-of-turn tokens always. The engine turns
//! [`Constraint::mask`] into `where(mask, logits, -inf)` before the log-softmax and the
//! argmax, as mlx-lm applies the sidecar's logits processor, so the token ids match.
//!
//! Python's `[^\W\d_]` (a "letter") is a character in a Unicode letter category, or a
//! number that is not a decimal digit (Nl, No); the categories come from
//! `unicode_categories` (already in the tree through `tokenizers`), hand-matched here
//! because no crate reproduces Python's `re` classes.
use std::collections::{BTreeSet, HashMap, HashSet};

use unicode_categories::UnicodeCategories;

/// Sounds, not words: never written even though the speaker said them.
const HESITATIONS: [&str; 13] = ["um", "umm", "uh", "uhm", "er", "erm", "ah", "eh", "ehm", "hmm", "euh", "äh", "ähm"];

/// Python's `[^\W\d_]`: alphanumeric, not a decimal digit, not `_`.
fn is_letter(c: char) -> bool {
    c.is_letter() || c.is_number_letter() || c.is_number_other()
}

/// Python's `str.isalpha` for one character.
fn is_alpha(c: char) -> bool {
    c.is_letter()
}

/// The non-letter characters a clean-up may write (constrain.py's `_ALLOWED_CATEGORIES`
/// or whitespace).
fn is_allowed_mark(c: char) -> bool {
    c.is_whitespace()
        || c.is_punctuation()
        || c.is_separator()
        || c.is_number_decimal_digit()
        || c.is_number_other()
        || c.is_symbol_currency()
        || c.is_symbol_math()
        || c.is_other_control()
}

/// The maximal runs of letters of `text` (Python's `_LETTERS.findall`).
fn letter_runs(text: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_letter(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(&text[s..]);
    }
    runs
}

/// What the constraint needs to know of one token's text.
#[derive(Debug, Clone)]
pub struct Piece {
    runs: Vec<String>,
    letter_start: bool,
    letter_end: bool,
    only_letters: bool,
    marks_ok: bool,
    partial: bool,
    newline: bool,
}

impl Piece {
    /// `text` is the token decoded alone (a SentencePiece "▁" already made a space).
    pub fn new(text: &str) -> Piece {
        let runs: Vec<String> = letter_runs(text).into_iter().map(str::to_lowercase).collect();
        let has_runs = !runs.is_empty();
        Piece {
            letter_start: has_runs && text.chars().next().is_some_and(is_alpha),
            letter_end: has_runs && text.chars().next_back().is_some_and(is_alpha),
            only_letters: runs.len() == 1 && runs[0] == text.to_lowercase(),
            marks_ok: text.chars().filter(|&c| !is_letter(c) && c != '\u{fffd}').all(is_allowed_mark),
            partial: text.contains('\u{fffd}'),
            newline: text.contains('\n'),
            runs,
        }
    }
}

/// The transcript's words, lower-cased, and all their prefixes.
struct Words {
    words: HashSet<String>,
    prefixes: HashSet<String>,
    non_ascii: bool,
    lines: bool,
}

impl Words {
    fn new(transcript: &str) -> Words {
        let lower = transcript.to_lowercase();
        let words: HashSet<String> =
            letter_runs(&lower).into_iter().filter(|w| !HESITATIONS.contains(w)).map(str::to_string).collect();
        let prefixes =
            words.iter().flat_map(|w| w.char_indices().map(|(i, c)| w[..i + c.len_utf8()].to_string())).collect();
        let lines = transcript.contains('\n') || ["line", "paragraph", "newline"].iter().any(|w| words.contains(*w));
        Words { non_ascii: transcript.chars().any(|c| c as u32 > 127), lines, words, prefixes }
    }

    /// Runs `first..` of `piece`: whole words, the last one possibly unfinished.
    fn inner_runs_ok(&self, piece: &Piece, first: usize) -> bool {
        let runs = &piece.runs[first.min(piece.runs.len())..];
        let Some((last, rest)) = runs.split_last() else { return true };
        let last_ok = if piece.letter_end { self.prefixes.contains(last) } else { self.words.contains(last) };
        last_ok && rest.iter().all(|r| self.words.contains(r))
    }
}

/// The tokens allowed for one transcript, and the word being written.
pub struct Constraint<'a> {
    pieces: &'a [Option<Piece>],
    vocab: Words,
    eos: Vec<u32>,
    /// Tokens that begin with a non-letter (they close the word being written).
    starters: Vec<u32>,
    /// Letter-initial tokens by their leading run: only letters (the word goes on) or
    /// with more after it (the word must be complete there).
    open: HashMap<String, Vec<u32>>,
    closed: HashMap<String, Vec<u32>>,
    /// Every letter-initial token: what may follow an incomplete UTF-8 piece.
    any_letters: Vec<u32>,
    /// The letters written since the last non-letter; `None` after an incomplete UTF-8
    /// piece (not checked).
    word: Option<String>,
}

impl<'a> Constraint<'a> {
    /// `pieces` is every token's [`Piece`] (`None` for special tokens), `eos` the
    /// end-of-turn tokens, `transcript` the last user message.
    pub fn new(pieces: &'a [Option<Piece>], eos: &BTreeSet<u32>, transcript: &str) -> Constraint<'a> {
        let words = Words::new(transcript);
        let mut c = Constraint {
            pieces,
            eos: eos.iter().copied().collect(),
            starters: Vec::new(),
            open: HashMap::new(),
            closed: HashMap::new(),
            any_letters: Vec::new(),
            word: Some(String::new()),
            vocab: words,
        };
        let words = &c.vocab;
        for (i, p) in pieces.iter().enumerate() {
            let id = i as u32;
            let Some(p) = p else { continue };
            if !p.marks_ok || (p.newline && !words.lines) {
                continue;
            }
            if p.partial {
                if words.non_ascii {
                    c.starters.push(id);
                }
                continue;
            }
            if !p.letter_start {
                if words.inner_runs_ok(p, 0) {
                    c.starters.push(id);
                }
                continue;
            }
            if words.non_ascii {
                c.any_letters.push(id);
            }
            if p.only_letters {
                c.open.entry(p.runs[0].clone()).or_default().push(id);
            } else if words.inner_runs_ok(p, 1) {
                c.closed.entry(p.runs[0].clone()).or_default().push(id);
            }
        }
        c
    }

    /// The letter-initial tokens that keep the word being written within a transcript
    /// word (any, after an incomplete UTF-8 piece).
    fn continuations(&self, out: &mut Vec<u32>) {
        let Some(word) = &self.word else {
            out.extend(&self.any_letters);
            return;
        };
        for w in &self.vocab.words {
            if w.len() <= word.len() || !w.starts_with(word.as_str()) {
                continue;
            }
            let rest = &w[word.len()..];
            for (i, c) in rest.char_indices() {
                out.extend(self.open.get(&rest[..i + c.len_utf8()]).into_iter().flatten());
            }
            out.extend(self.closed.get(rest).into_iter().flatten());
        }
    }

    /// Whether a non-letter may follow the word being written: it is empty or whole.
    fn may_close(&self) -> bool {
        self.word.as_ref().is_none_or(|w| w.is_empty() || self.vocab.words.contains(w))
    }

    /// Which of the model's `width` logits stay (ids past the tokenizer never do).
    pub fn mask(&self, width: usize) -> Vec<bool> {
        let mut ids = self.eos.clone();
        if self.may_close() {
            ids.extend(&self.starters);
        }
        self.continuations(&mut ids);
        let mut mask = vec![false; width];
        for id in ids {
            if let Some(m) = mask.get_mut(id as usize) {
                *m = true;
            }
        }
        mask
    }

    /// The model wrote `token`: update the word being written.
    pub fn advance(&mut self, token: u32) {
        let piece = self.pieces.get(token as usize).and_then(Option::as_ref);
        match piece {
            Some(p) if p.partial => self.word = None,
            None => self.word = Some(String::new()),
            Some(p) if p.runs.is_empty() => self.word = Some(String::new()),
            Some(p) if p.only_letters => {
                if let Some(w) = &mut self.word {
                    w.push_str(&p.runs[0]);
                }
            }
            Some(p) => {
                self.word = Some(if p.letter_end { p.runs.last().cloned().unwrap_or_default() } else { String::new() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(texts: &[&str]) -> Vec<Option<Piece>> {
        texts.iter().map(|t| Some(Piece::new(t))).collect()
    }

    fn allowed(c: &Constraint, width: usize) -> Vec<usize> {
        c.mask(width).iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i).collect()
    }

    #[test]
    fn only_the_transcripts_words_are_spelled() {
        let p = pieces(&["P", "ar", "is", " Paris", ".", " London", "\n", "²", " um", "ſ"]);
        let eos = BTreeSet::from([10]);
        let mut c = Constraint::new(&p, &eos, "um paris is nice");
        // "P" starts "paris", " Paris" is whole, "." closes; "is" is a word too.
        assert_eq!(allowed(&c, 12), vec![0, 2, 3, 4, 10]);
        c.advance(0);
        assert_eq!(c.word.as_deref(), Some("p"));
        // After "P" only "ar" goes on ("ar"+"is" would spell paris), nothing closes "p".
        assert_eq!(allowed(&c, 12), vec![1, 10]);
        c.advance(1);
        c.advance(2);
        assert_eq!(c.word.as_deref(), Some("paris"));
        assert!(allowed(&c, 12).contains(&4), "a whole word may be closed");
        c.advance(4);
        assert_eq!(c.word.as_deref(), Some(""));
    }

    #[test]
    fn python_letter_classes() {
        assert_eq!(letter_runs("a1b_c²d é"), vec!["a", "b", "c²d", "é"]);
        let p = Piece::new(" n't");
        assert!(!p.letter_start && p.letter_end && !p.only_letters && p.marks_ok);
        assert!(!Piece::new("🙂").marks_ok);
        assert!(Piece::new("\u{fffd}").partial);
    }
}
