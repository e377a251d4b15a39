//! Spoken forms and their written forms, made one: [`written`] rewrites a text so
//! that what a speaker says and what a clean-up writes for it read the same, and the
//! other checks then compare like with like.
//!
//! - Addresses dictated with symbol words: "anna dot lee at example dot org" →
//!   `anna.lee@example.org`, "slash home slash notes dot txt" → `/home/notes.txt`,
//!   "w w w dot" → `www.`; [`changed_addresses`] then requires the same addresses,
//!   character for character, on both sides.
//! - Units after a number, in words, abbreviations or signs, as one name: "forty
//!   kilometers" and "40 km" → `40 kilometer`, "$5" and "5 dollars" → `5 dollar`,
//!   "10%" → `10 percent`. A unit changed for another is then a word the speaker did
//!   not say, which the form check refuses.
//! - Clock times said in words: "half past three" → `3:30`, "quarter to five" → `4:45`,
//!   "three o'clock" → `3:00`.
//!
//! Invariant: [`written`] is applied to both texts alike, so a form it does not know
//! stays as it was on both sides, and a text already written is left unchanged.

use super::numbers::{is_number_word, values_of};

/// Symbol words inside a dictated address, and the sign each writes.
const SEPARATORS: &[(&str, char)] = &[("dot", '.'), ("at", '@'), ("slash", '/'), ("dash", '-'), ("underscore", '_')];

/// Units after a number: every way of writing one, and the one name it is compared by.
const UNITS: &[(&str, &[&str])] = &[
    ("dollar", &["dollar", "dollars", "bucks", "usd", "$"]),
    ("euro", &["euro", "euros", "eur", "€"]),
    ("pound", &["pound", "pounds", "gbp", "quid", "£", "lb", "lbs"]),
    ("yen", &["yen", "jpy", "¥"]),
    ("cent", &["cent", "cents", "¢"]),
    ("percent", &["percent", "pct", "%"]),
    ("kilometer", &["kilometer", "kilometers", "kilometre", "kilometres", "km", "kms"]),
    ("meter", &["meter", "meters", "metre", "metres", "m"]),
    ("centimeter", &["centimeter", "centimeters", "centimetre", "centimetres", "cm"]),
    ("millimeter", &["millimeter", "millimeters", "millimetre", "millimetres", "mm"]),
    ("mile", &["mile", "miles", "mi"]),
    ("foot", &["foot", "feet", "ft"]),
    ("inch", &["inch", "inches"]),
    ("kilogram", &["kilogram", "kilograms", "kilo", "kilos", "kg", "kgs"]),
    ("gram", &["gram", "grams", "g"]),
    ("milligram", &["milligram", "milligrams", "mg"]),
    ("ounce", &["ounce", "ounces", "oz"]),
    ("liter", &["liter", "liters", "litre", "litres", "l"]),
    ("milliliter", &["milliliter", "milliliters", "millilitre", "millilitres", "ml"]),
    ("kilobyte", &["kilobyte", "kilobytes", "kb"]),
    ("megabyte", &["megabyte", "megabytes", "mb"]),
    ("gigabyte", &["gigabyte", "gigabytes", "gb"]),
    ("terabyte", &["terabyte", "terabytes", "tb"]),
    ("degree", &["degree", "degrees", "°"]),
    ("degree fahrenheit", &["°f"]),
    ("degree celsius", &["°c"]),
    ("hour", &["hour", "hours", "hr", "hrs", "h"]),
    ("minute", &["minute", "minutes", "min", "mins"]),
    // Not "second": "the twenty second" is an ordinal.
    ("second", &["seconds", "sec", "secs"]),
    ("teaspoon", &["teaspoon", "teaspoons", "tsp"]),
    ("tablespoon", &["tablespoon", "tablespoons", "tbsp"]),
];

/// Signs written before a number ("$5") or after it ("10%", "5€").
const SIGNS_BEFORE: &[char] = &['$', '€', '£', '¥'];
const SIGNS_AFTER: &[char] = &['%', '€', '¢', '°'];

/// A whitespace-separated piece of a text, with the whitespace after it.
#[derive(Debug, Clone)]
struct Chunk {
    text: String,
    space: String,
}

impl Chunk {
    /// Lower case, without the punctuation around it.
    fn core(&self) -> String {
        self.text.trim_matches(|c: char| ",;:!?\"“”()[]".contains(c)).trim_end_matches('.').to_lowercase()
    }

    /// The punctuation after the core (a sentence's full stop, a comma).
    fn trailing(&self) -> &str {
        let kept = self.text.trim_end_matches(|c: char| ",;:!?\"“”)].".contains(c));
        &self.text[kept.len()..]
    }
}

fn chunks(text: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end();
        let space = piece[word.len()..].to_string();
        match out.last_mut() {
            // Runs of whitespace stay with the word before them.
            Some(Chunk { space: before, .. }) if word.is_empty() => before.push_str(&space),
            _ => out.push(Chunk { text: word.to_string(), space }),
        }
    }
    out
}

fn join(chunks: &[Chunk]) -> String {
    chunks.iter().map(|c| format!("{}{}", c.text, c.space)).collect()
}

/// `text` with its spoken forms written (see the module doc).
pub(super) fn written(text: &str) -> String {
    let chunks = chunks(text);
    let chunks = clock_times(&chunks);
    let chunks = addresses(&chunks);
    join(&units(&chunks))
}

/// The sign a symbol word writes inside an address.
fn separator(chunk: &Chunk) -> Option<char> {
    let core = chunk.core();
    (chunk.text.to_lowercase() == core).then_some(())?;
    SEPARATORS.iter().find(|(word, _)| *word == core).map(|(_, sign)| *sign)
}

/// Whether `chunk` can be part of an address: letters and digits, maybe with the signs
/// of an address already written ("example.com").
fn is_part(chunk: &Chunk) -> bool {
    let core = chunk.core();
    separator(chunk).is_none()
        && core.chars().any(char::is_alphanumeric)
        && core.chars().all(|c| c.is_alphanumeric() || "._-@/~".contains(c))
}

/// The part starting at `at`: a run of two or more spelled letters ("w w w") is one.
fn part(chunks: &[Chunk], at: usize) -> (String, usize) {
    let single = |i: usize| chunks.get(i).is_some_and(|c| c.text.chars().count() == 1 && is_part(c));
    let mut end = at;
    while single(end) && single(end + 1) {
        end += 1;
    }
    if end > at && chunks.get(end + 1).and_then(separator).is_some() {
        return (chunks[at..=end].iter().map(Chunk::core).collect(), end);
    }
    (chunks[at].core(), at)
}

/// Addresses said with symbol words, joined into one written address. A run is an
/// address only if it has a dot, slash or underscore (said or written): "support dash
/// team" alone stays words.
fn addresses(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let mut joined = String::new();
        let mut start = i;
        if separator(&chunks[i]) == Some('/') && chunks.get(i + 1).is_some_and(is_part) {
            joined.push('/');
            start = i + 1;
        }
        if !is_part(&chunks[start]) {
            out.push(chunks[i].clone());
            i += 1;
            continue;
        }
        let (first, mut end) = part(chunks, start);
        joined.push_str(&first);
        let mut joins = usize::from(start > i);
        // Only the last part may carry punctuation after it ("org.").
        while chunks[end].trailing().is_empty() {
            let (Some(sign), Some(next)) = (chunks.get(end + 1).and_then(separator), chunks.get(end + 2)) else {
                break;
            };
            // "at /home/…": a path after "at" is where, not an e-mail address.
            if !is_part(next) || (sign == '@' && next.core().starts_with('/')) {
                break;
            }
            let (text, last) = part(chunks, end + 2);
            joined.push(sign);
            joined.push_str(&text);
            joins += 1;
            end = last;
        }
        if joins > 0 && joined.contains(['.', '/', '_']) {
            out.push(Chunk { text: format!("{joined}{}", chunks[end].trailing()), space: chunks[end].space.clone() });
            i = end + 1;
        } else {
            out.push(chunks[i].clone());
            i += 1;
        }
    }
    out
}

/// The one name of a unit written `word`, if it is one.
fn unit_name(word: &str) -> Option<&'static str> {
    UNITS.iter().find(|(_, forms)| forms.contains(&word)).map(|(name, _)| *name)
}

fn is_number(chunk: &Chunk) -> bool {
    let core = chunk.core();
    core.chars().any(|c| c.is_ascii_digit()) || is_number_word(&core)
}

/// Units after a number as their one name; a sign before or after the digits becomes
/// that name after them ("-$300." → "-300 dollar.", "10%" → "10 percent").
fn units(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let chunk = &chunks[i];
        i += 1;
        let after_number = out.last().is_some_and(is_number);
        let core = chunk.core();
        if let Some(name) = unit_name(&core).filter(|_| after_number) {
            let start = chunk.text.to_lowercase().find(&core).unwrap_or(0);
            let text = format!("{}{name}{}", &chunk.text[..start], &chunk.text[start + core.len()..]);
            out.push(Chunk { text, space: chunk.space.clone() });
            continue;
        }
        let mut pieces = signs_as_words(chunk);
        // "$2.5 million" is "2.5 million dollar", as said: the name goes after the scale.
        let scale = chunks.get(i).filter(|next| SCALES.contains(&next.core().as_str()));
        if let (2, Some(scale)) = (pieces.len(), scale) {
            let name = pieces.pop().expect("two pieces");
            let core_end = scale.text.len() - scale.trailing().len();
            pieces.push(Chunk { text: scale.text[..core_end].to_string(), space: " ".into() });
            pieces.push(Chunk { text: format!("{}{}", name.text, scale.trailing()), space: scale.space.clone() });
            i += 1;
        }
        out.extend(pieces);
    }
    out
}

/// Words that scale the number before them.
const SCALES: &[&str] = &["thousand", "million", "billion", "trillion"];

/// `chunk` with a sign before or after its digits moved after them as a word.
fn signs_as_words(chunk: &Chunk) -> Vec<Chunk> {
    let text = chunk.text.as_str();
    let minus = text.strip_prefix(['-', '−']).map_or("", |_| "-");
    let unsigned = &text[text.len() - text.trim_start_matches(['-', '−']).len()..];
    let before = unsigned.chars().next().filter(|c| SIGNS_BEFORE.contains(c));
    let body = before.map_or(unsigned, |sign| &unsigned[sign.len_utf8()..]);
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return vec![chunk.clone()];
    }
    let number_end = body.find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.')).unwrap_or(body.len());
    let number = body[..number_end].trim_end_matches(['.', ',']);
    let rest = &body[number.len()..];
    let after: String = rest.chars().take_while(|c| SIGNS_AFTER.contains(c) || c.is_alphabetic()).collect();
    let tail = &rest[after.len()..];
    let mut names: Vec<&str> = before.and_then(|sign| unit_name(&sign.to_string())).into_iter().collect();
    if !after.is_empty() {
        // "10%", "70°F", "5km"; not "4PM" or "3rd", which the other checks read.
        match unit_name(&after.to_lowercase()) {
            Some(name) => names.push(name),
            None => return vec![chunk.clone()],
        }
    }
    if names.is_empty() {
        return vec![chunk.clone()];
    }
    vec![
        Chunk { text: format!("{minus}{number}"), space: " ".into() },
        Chunk { text: format!("{}{tail}", names.join(" ")), space: chunk.space.clone() },
    ]
}

/// The hour a word or digits say, 1 to 12.
fn hour(chunk: &Chunk) -> Option<u64> {
    let values = values_of(&chunk.core());
    let [value] = values.as_slice() else { return None };
    value.parse().ok().filter(|h| (1..=12).contains(h))
}

/// Clock times said in words, as digits: "half past three" → "3:30".
fn clock_times(chunks: &[Chunk]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: usize| chunks.get(i).map(|c| c.text.to_lowercase()).unwrap_or_default();
    while i < chunks.len() {
        let time = match (word(i).as_str(), word(i + 1).as_str(), chunks.get(i + 2).and_then(hour)) {
            ("half", "past" | "after", Some(h)) => Some((format!("{h}:30"), 2)),
            ("quarter", "past" | "after", Some(h)) => Some((format!("{h}:15"), 2)),
            ("quarter", "to" | "till" | "before" | "of", Some(h)) => {
                Some((format!("{}:45", if h == 1 { 12 } else { h - 1 }), 2))
            }
            _ => match (hour(&chunks[i]), chunks.get(i + 1).map(Chunk::core)) {
                (Some(h), Some(next)) if next == "o'clock" || next == "o’clock" => Some((format!("{h}:00"), 1)),
                _ => None,
            },
        };
        match time {
            Some((text, skip)) => {
                let last = &chunks[i + skip];
                out.push(Chunk { text: format!("{text}{}", last.trailing()), space: last.space.clone() });
                i += skip + 1;
            }
            None => {
                out.push(chunks[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// The addresses of a text [`written`] already: a word with `@`, a dot before letters
/// (a domain, a file's extension), or a leading slash (a path).
fn addresses_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = chunks(text)
        .iter()
        .map(Chunk::core)
        .filter(|core| {
            let dotted = core.rsplit_once('.').is_some_and(|(before, after)| {
                !before.is_empty() && after.chars().count() >= 2 && after.chars().all(char::is_alphabetic)
            });
            core.chars().any(char::is_alphabetic) && (core.contains('@') || dotted || core.starts_with('/'))
        })
        .collect();
    found.sort();
    found
}

/// Why the answer's addresses are not the transcript's, character for character.
pub(super) fn changed_addresses(transcript: &str, output: &str) -> Option<String> {
    let (said, written) = (addresses_in(transcript), addresses_in(output));
    (said != written).then(|| {
        let list = |a: &[String]| if a.is_empty() { "none".to_string() } else { a.join(" ") };
        format!("the answer changes an address ({} said, {} written)", list(&said), list(&written))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictated_addresses_are_written() {
        assert_eq!(written("my email is anna dot lee at example dot org"), "my email is anna.lee@example.org");
        assert_eq!(
            written("the site is w w w dot example dot com slash pricing."),
            "the site is www.example.com/pricing."
        );
        assert_eq!(written("open it at slash home slash anna slash notes dot txt"), "open it at /home/anna/notes.txt");
        assert_eq!(written("Open it at /home/anna/notes.txt."), "Open it at /home/anna/notes.txt.");
        assert_eq!(
            written("write to support dash team at my dash company dot io"),
            "write to support-team@my-company.io"
        );
        assert_eq!(written("a dash of salt at noon"), "a dash of salt at noon", "no dot, slash or underscore");
        assert_eq!(written("it was good dot dot dot i think"), "it was good dot dot dot i think");
        assert_eq!(written("Write to anna.lee@example.org."), "Write to anna.lee@example.org.");
    }

    #[test]
    fn units_and_signs_after_numbers_are_one_name() {
        assert_eq!(written("we drove forty kilometers"), "we drove forty kilometer");
        assert_eq!(written("We drove 40 km."), "We drove 40 kilometer.");
        assert_eq!(written("It costs $5."), "It costs 5 dollar.");
        assert_eq!(written("The balance is -$300."), "The balance is -300 dollar.");
        assert_eq!(written("The budget is €1,500."), "The budget is 1,500 euro.");
        assert_eq!(written("Sales grew 10%."), "Sales grew 10 percent.");
        assert_eq!(written("it was 70 °F"), "it was 70 degree fahrenheit");
        assert_eq!(written("We paid $2.5 million."), "We paid 2.5 million dollar.");
        assert_eq!(written("I'm here at 4PM"), "I'm here at 4PM", "not a unit");
        assert_eq!(written("the m is silent"), "the m is silent", "a unit only after a number");
    }

    #[test]
    fn clock_times_in_words_are_digits() {
        assert_eq!(written("at half past three"), "at 3:30");
        assert_eq!(written("at quarter to five."), "at 4:45.");
        assert_eq!(written("quarter past eight"), "8:15");
        assert_eq!(written("at three o'clock"), "at 3:00");
        assert_eq!(written("half of the team"), "half of the team");
    }

    #[test]
    fn an_address_must_stay_the_same() {
        let said = written("write to support dash team at my dash company dot io");
        assert_eq!(changed_addresses(&said, "Write to support-team@my-company.io."), None);
        assert!(changed_addresses(&said, "Write to support_team@my-company.io.").is_some());
        assert!(changed_addresses("see notes.txt", "See notes.md.").is_some());
        assert_eq!(changed_addresses("e.g. 3.5 and 12.99", "eg. 3.5 and 12.99"), None, "no address");
    }
}
