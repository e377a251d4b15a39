//! The word-level facts the clean-up check's parts share: function words, accent
//! folding and "the same word up to an ending"; the bottom of the check (imports nothing).

/// Function words: adding or dropping them says nothing about answering.
pub(super) const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "so", "of", "to", "in", "on", "at", "for", "with", "by", "from", "is", "are",
    "was", "were", "be", "been", "am", "i", "you", "he", "she", "it", "we", "they", "me", "my", "your", "our", "their",
    "his", "her", "its", "this", "that", "these", "those", "there", "here", "do", "does", "did", "not", "no", "as",
    "if", "then", "than", "too", "very", "just", "also", "up", "out", "about", "into", "over", "s", "t", "m", "ll",
    "re", "ve", "d", "st", "nd", "rd", "th", "can", "will", "would", "could", "should", "have", "has", "had", "what",
    "how", "who", "why", "when", "where", "which", "all", "some", "any", "let", "us", "them", "him", "pm", "am",
];

/// `word` with the accents of Latin letters removed, so "Reykjavík" matches "reykjavik".
pub(super) fn fold(word: &str) -> String {
    word.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

/// The same word up to an ending ("thanks"/"thank", "colours"/"colors" is not).
pub(super) fn same_stem(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.chars().count() >= 4 && long.starts_with(short) && long.chars().count() - short.chars().count() <= 2
}
