//! Elisions and merged words of the languages Handy transcribes besides English: the
//! written forms a clean-up makes of two spoken words (French `que on` → `qu'on`,
//! `je ai` → `j'ai`, `de le` → `du`; Italian `lo amico` → `l'amico`, `di il` → `del`;
//! Spanish `a el` → `al`; German `in das` → `ins`; Portuguese `em a` → `na`).
//!
//! Two shapes: an elided word ends in an apostrophe and stands for one of a few full
//! words ([`elided_forms`]: `l'` for le, la, lo); a merged word stands for two
//! ([`merges`]: `du` for de + le). The checks treat both as forms of the speaker's
//! words, as they treat English contractions ([`super::form::expansion`]). Tables, no
//! dependency: a few dozen closed-class words per language.

/// Elided words (without their apostrophe) and the full words each stands for.
const ELIDED: &[(&str, &[&str])] = &[
    // French
    ("qu", &["que"]),
    ("j", &["je"]),
    ("l", &["le", "la", "lo"]),
    ("d", &["de", "di"]),
    ("n", &["ne"]),
    ("s", &["se", "si"]),
    ("c", &["ce", "ci"]),
    ("m", &["me", "mi"]),
    ("t", &["te", "ti"]),
    ("jusqu", &["jusque"]),
    ("lorsqu", &["lorsque"]),
    ("puisqu", &["puisque"]),
    // Italian
    ("un", &["una"]),
    ("dov", &["dove"]),
    ("com", &["come"]),
    ("quest", &["questo", "questa"]),
    ("quell", &["quello", "quella"]),
    ("all", &["alla", "allo"]),
    ("dell", &["della", "dello"]),
    ("nell", &["nella", "nello"]),
    ("sull", &["sulla", "sullo"]),
    ("dall", &["dalla", "dallo"]),
];

/// English endings after an apostrophe: "I'd", "it's" are contractions, not elisions.
const ENGLISH_ENDINGS: &[&str] = &["m", "re", "ve", "ll", "d", "s", "t"];

/// Merged words and the two words each stands for (accents folded, as the checks
/// compare words).
const MERGED: &[(&str, &str, &str)] = &[
    // French
    ("du", "de", "le"),
    ("au", "a", "le"),
    ("aux", "a", "les"),
    ("des", "de", "les"),
    // Spanish
    ("al", "a", "el"),
    ("del", "de", "el"),
    // Italian
    ("al", "a", "il"),
    ("allo", "a", "lo"),
    ("alla", "a", "la"),
    ("ai", "a", "i"),
    ("agli", "a", "gli"),
    ("alle", "a", "le"),
    ("del", "di", "il"),
    ("dello", "di", "lo"),
    ("della", "di", "la"),
    ("dei", "di", "i"),
    ("degli", "di", "gli"),
    ("delle", "di", "le"),
    ("nel", "in", "il"),
    ("nello", "in", "lo"),
    ("nella", "in", "la"),
    ("nei", "in", "i"),
    ("nelle", "in", "le"),
    ("sul", "su", "il"),
    ("sulla", "su", "la"),
    ("dal", "da", "il"),
    ("dalla", "da", "la"),
    ("col", "con", "il"),
    // German
    ("ins", "in", "das"),
    ("im", "in", "dem"),
    ("am", "an", "dem"),
    ("ans", "an", "das"),
    ("zum", "zu", "dem"),
    ("zur", "zu", "der"),
    ("vom", "von", "dem"),
    ("beim", "bei", "dem"),
    ("aufs", "auf", "das"),
    ("ubers", "uber", "das"),
    // Portuguese
    ("no", "em", "o"),
    ("na", "em", "a"),
    ("nos", "em", "os"),
    ("nas", "em", "as"),
    ("do", "de", "o"),
    ("da", "de", "a"),
    ("dos", "de", "os"),
    ("das", "de", "as"),
    ("ao", "a", "o"),
    ("aos", "a", "os"),
    ("pelo", "por", "o"),
    ("pela", "por", "a"),
    ("num", "em", "um"),
    ("numa", "em", "uma"),
];

/// Closed-class words of French, Spanish, Italian, German and Portuguese (articles,
/// pronouns, prepositions, elided and merged forms): like the English stop words, a
/// clean-up may add, drop or merge them, so they say nothing about answering.
pub(super) const FUNCTION_WORDS: &[&str] = &[
    "le", "la", "les", "l'", "un", "une", "des", "du", "de", "d'", "au", "aux", "et", "que", "qu'", "qui", "je", "j'",
    "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "ce", "c'", "se", "s'", "me", "m'", "te", "t'", "en",
    "y", "n'", "est", "el", "los", "las", "una", "unos", "unas", "al", "del", "lo", "es", "mi", "su", "gli", "uno",
    "di", "dello", "della", "dei", "degli", "delle", "allo", "alla", "ai", "agli", "alle", "nel", "nella", "sul",
    "sulla", "dal", "dalla", "e", "che", "con", "per", "da", "dov'", "un'", "der", "die", "das", "den", "dem", "ein",
    "eine", "einen", "einem", "einer", "und", "im", "ins", "an", "am", "ans", "zu", "zum", "zur", "von", "vom", "bei",
    "beim", "auf", "aufs", "ist", "ich", "du", "er", "sie", "wir", "ihr", "mit", "o", "os", "as", "um", "uma", "do",
    "da", "dos", "das", "em", "na", "nos", "nas", "ao", "aos", "pelo", "pela", "eu", "para", "por",
];

/// `token` (lower case, apostrophes straight) split into an elided word (with its
/// apostrophe) and the rest: `qu'on` → (`qu'`, `on`); `None` for anything else,
/// English contractions included (`it's`, `don't`).
pub(super) fn split(token: &str) -> Option<(String, &str)> {
    let (prefix, rest) = token.split_once('\'')?;
    if rest.is_empty() || ENGLISH_ENDINGS.contains(&rest) || !ELIDED.iter().any(|(e, _)| *e == prefix) {
        return None;
    }
    Some((format!("{prefix}'"), rest))
}

/// The full words an elided word (`l'`) stands for; empty for any other word.
pub(super) fn elided_forms(word: &str) -> &'static [&'static str] {
    word.strip_suffix('\'').and_then(|prefix| ELIDED.iter().find(|(e, _)| *e == prefix)).map_or(&[], |(_, full)| *full)
}

/// Whether `a` and `b` are one word, elided on one side (`l'` and `la`).
pub(super) fn same_elided(a: &str, b: &str) -> bool {
    elided_forms(a).contains(&b) || elided_forms(b).contains(&a)
}

/// Whether `one` is the merged form of `first` and `second` (`du` of de + le).
pub(super) fn merges(one: &str, first: &str, second: &str) -> bool {
    MERGED.iter().any(|&(m, f, s)| m == one && f == first && s == second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elided_and_merged_words_stand_for_the_full_ones() {
        assert_eq!(split("qu'on"), Some(("qu'".to_string(), "on")));
        assert_eq!(split("l'ecole"), Some(("l'".to_string(), "ecole")));
        assert_eq!(split("it's"), None, "an English contraction");
        assert_eq!(split("i'd"), None);
        assert_eq!(split("o'clock"), None, "not an elision");
        assert!(same_elided("l'", "la") && same_elided("lo", "l'") && !same_elided("l'", "les"));
        assert!(merges("du", "de", "le") && merges("del", "di", "il") && merges("ins", "in", "das"));
        assert!(!merges("du", "de", "la"));
    }
}
