//! The values a text says: number words and digits read into numbers, so a clean-up that
//! writes "five hundred dollars" as "$500" keeps its value and one that writes "$5,000"
//! does not.
//!
//! [`values`] reads English number words (cardinals, ordinals, "hundred", "thousand",
//! "and" inside a number, "oh" inside a digit string), the digits of any token ("3rd",
//! "15th", "4PM", "$5,000", "555-1234", "10%", "3:30") and the small numbers of the other
//! languages of the set. [`same_values`] compares two texts' values: equal when the
//! digits, read in order, spell the same string ("twenty twenty five" → "2025",
//! "three thirty" → "3:30", "five five five one two" → "555-12") or the two lists hold
//! the same numbers in another order ("June 12" for "the twelfth of June").

/// Units, as cardinals and ordinals.
const UNITS: &[(&str, u64)] = &[
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
];
const TEENS: &[(&str, u64)] = &[
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("tenth", 10),
    ("eleventh", 11),
    ("twelfth", 12),
    ("thirteenth", 13),
    ("fourteenth", 14),
    ("fifteenth", 15),
    ("sixteenth", 16),
    ("seventeenth", 17),
    ("eighteenth", 18),
    ("nineteenth", 19),
];
const TENS: &[(&str, u64)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("twentieth", 20),
    ("thirtieth", 30),
    ("fortieth", 40),
    ("fiftieth", 50),
    ("sixtieth", 60),
    ("seventieth", 70),
    ("eightieth", 80),
    ("ninetieth", 90),
];
const SCALES: &[(&str, u64)] =
    &[("thousand", 1_000), ("million", 1_000_000), ("billion", 1_000_000_000), ("thousandth", 1_000)];
/// Small numbers of the other languages of the eval set (German, French, Spanish,
/// Italian): read alone, not combined ("cinco" → 5).
const FOREIGN: &[(&str, u64)] = &[
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("fünf", 5),
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("neun", 9),
    ("zehn", 10),
    ("deux", 2),
    ("trois", 3),
    ("quatre", 4),
    ("cinq", 5),
    ("sept", 7),
    ("huit", 8),
    ("neuf", 9),
    ("dix", 10),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("siete", 7),
    ("ocho", 8),
    ("nueve", 9),
    ("diez", 10),
    ("due", 2),
    ("tre", 3),
    ("quattro", 4),
    ("cinque", 5),
    ("sei", 6),
    ("sette", 7),
    ("otto", 8),
    ("nove", 9),
    ("dieci", 10),
];

fn lookup(table: &[(&str, u64)], word: &str) -> Option<u64> {
    table.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
}

/// Whether `word` (lower case) is read as part of a number: a number word, "hundred",
/// a scale, or a token with a digit. ("oh" and "and" only count inside a number.)
pub(super) fn is_number_word(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        || word == "hundred"
        || word == "hundredth"
        || [UNITS, TEENS, TENS, SCALES, FOREIGN].iter().any(|table| lookup(table, word).is_some())
}

/// What the last word of the number being read was: which slots are still open.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    Nothing,
    Unit,
    Teen,
    Tens,
    Hundred,
    Scale,
}

/// Reads words into numbers; a word that cannot continue the current number ends it.
struct Reader {
    values: Vec<String>,
    total: u64,
    current: u64,
    last: Last,
    /// A "minus" or "negative" before the next value: its sign.
    negative: bool,
}

impl Reader {
    fn flush(&mut self) {
        if self.last != Last::Nothing {
            self.push((self.total + self.current).to_string());
        }
        (self.total, self.current, self.last) = (0, 0, Last::Nothing);
    }

    /// A value, signed by a pending "minus".
    fn push(&mut self, value: String) {
        let sign = if std::mem::take(&mut self.negative) { "-" } else { "" };
        self.values.push(format!("{sign}{value}"));
    }

    /// A unit, teen or tens word (`kind`) of value `v`.
    fn small(&mut self, v: u64, kind: Last) {
        let joins = match kind {
            Last::Unit => matches!(self.last, Last::Tens | Last::Hundred | Last::Scale),
            _ => matches!(self.last, Last::Hundred | Last::Scale),
        };
        if !joins {
            self.flush();
        }
        self.current += v;
        self.last = kind;
    }

    fn hundred(&mut self) {
        match self.last {
            Last::Unit | Last::Teen | Last::Tens => self.current *= 100,
            Last::Nothing => self.current = 100,
            Last::Hundred | Last::Scale => {
                self.flush();
                self.current = 100;
            }
        }
        self.last = Last::Hundred;
    }

    fn scale(&mut self, scale: u64) {
        if self.last == Last::Nothing || self.last == Last::Scale {
            self.flush();
            self.current = 1;
        }
        self.total = self.total.saturating_add(self.current.saturating_mul(scale));
        self.current = 0;
        self.last = Last::Scale;
    }
}

/// The numbers `text` says, as decimal strings, in order: a token with a digit is read
/// whole ("5,000", "3:00"), the others word by word ("twenty-five").
pub(super) fn values_of(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text.split_whitespace() {
        if chunk.chars().any(|c| c.is_ascii_digit()) {
            // "-10", "-$300": the sign is part of the value, read as the word "minus".
            let unsigned = chunk.trim_start_matches(['-', '−']);
            if unsigned.len() < chunk.len()
                && unsigned.trim_start_matches(['$', '€', '£', '¥']).starts_with(|c: char| c.is_ascii_digit())
            {
                words.push("minus".to_string());
            }
            words.push(unsigned.to_lowercase());
        } else {
            words.extend(chunk.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase));
        }
    }
    values(&words)
}

/// The numbers `words` (lower case, in order) say, as decimal strings, in order.
fn values(words: &[String]) -> Vec<String> {
    let mut r = Reader { values: Vec::new(), total: 0, current: 0, last: Last::Nothing, negative: false };
    let next_is_number = |i: usize| words.get(i + 1).is_some_and(|w| is_number_word(w) || w == "oh");
    let mut skip_to = 0;
    for (i, word) in words.iter().enumerate() {
        if i < skip_to {
            continue;
        }
        let w = word.as_str();
        let ordinal = w.ends_with("th") || ["first", "second", "third"].contains(&w);
        if let Some((value, next)) = scaled_decimal(words, i, r.total + r.current, r.last != Last::Nothing) {
            // "2.5 million", "two point five million": one value, 2500000.
            (r.total, r.current, r.last) = (0, 0, Last::Nothing);
            r.push(value.to_string());
            skip_to = next;
            continue;
        }
        if w.chars().any(|c| c.is_ascii_digit()) {
            r.flush();
            // Every run of digits in the token is a number ("3:30" → 3, 30; "x1" → 1),
            // but for the "00" of a round time or sum ("3:00", "$5.00").
            let runs: Vec<&str> = w.split(|c: char| !c.is_ascii_digit()).filter(|run| !run.is_empty()).collect();
            let scaled = words.get(i + 1).is_some_and(|next| lookup(SCALES, next).is_some());
            for (k, run) in runs.iter().enumerate() {
                match run.parse::<u64>() {
                    // "2 million": the digits times the scale that follows.
                    Ok(n) if scaled && k + 1 == runs.len() => (r.current, r.last) = (n, Last::Unit),
                    _ if k > 0 && *run == "00" => {}
                    _ => r.push(run.to_string()),
                }
            }
            continue;
        }
        if let Some(v) = lookup(UNITS, w) {
            r.small(v, Last::Unit);
        } else if let Some(v) = lookup(TEENS, w) {
            r.small(v, Last::Teen);
        } else if let Some(v) = lookup(TENS, w) {
            r.small(v, Last::Tens);
        } else if w == "hundred" || w == "hundredth" {
            r.hundred();
        } else if let Some(scale) = lookup(SCALES, w) {
            r.scale(scale);
        } else if let Some(v) = lookup(FOREIGN, w) {
            r.flush();
            r.push(v.to_string());
            continue;
        } else if w == "oh" && words.get(i + 1).is_some_and(|next| is_number_word(next)) {
            // "five oh two", "oh seven nine": a zero in a digit string.
            r.flush();
            r.push("0".into());
            continue;
        } else if (w == "minus" || w == "negative") && r.last == Last::Nothing && next_is_number(i) {
            // A sign, not a subtraction: no number before it ("five minus three" is two).
            r.negative = i == 0 || !is_number_word(&words[i - 1]);
            continue;
        } else if w == "and" && matches!(r.last, Last::Hundred | Last::Scale) && next_is_number(i) {
            continue; // "one hundred and forty"
        } else if w == "a" && words.get(i + 1).is_some_and(|n| n == "hundred" || lookup(SCALES, n).is_some()) {
            r.flush();
            (r.current, r.last) = (1, Last::Unit); // "a hundred"
            continue;
        } else {
            r.flush();
            continue;
        }
        if ordinal {
            r.flush(); // an ordinal ends its number: "the twenty first" is 21, then a new one
        }
    }
    r.flush();
    r.values
}

/// A decimal number times the scale after it, starting at `words[i]`: digits with one
/// point ("2.5") or, after the whole part said so far (`whole`, when `spoken`), "point"
/// and digit words. The value and the index after the scale; `None` for anything else.
fn scaled_decimal(words: &[String], i: usize, whole: u64, spoken: bool) -> Option<(u64, usize)> {
    let digit = |w: &str| match w {
        "oh" | "zero" => Some('0'),
        _ => lookup(UNITS[..10].as_ref(), w).and_then(|v| char::from_digit(v as u32, 10)),
    };
    let (whole, fraction, end) = if spoken && words[i] == "point" {
        let fraction: String = words[i + 1..].iter().map_while(|w| digit(w)).collect();
        (whole, fraction.clone(), i + 1 + fraction.len())
    } else {
        let (whole, fraction) = words[i].trim_start_matches(['$', '€', '£', '¥']).split_once('.')?;
        let all_digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
        (all_digits(whole) && all_digits(fraction)).then_some(())?;
        (whole.parse().ok()?, fraction.to_string(), i + 1)
    };
    let scale = lookup(SCALES, words.get(end)?)?;
    let places = u32::try_from(fraction.len()).ok().filter(|&p| p > 0 && p < 10)?;
    let fraction: u64 = fraction.parse().ok()?;
    let value = whole.checked_mul(scale)?.checked_add(fraction.checked_mul(scale)? / 10u64.pow(places))?;
    Some((value, end + 1))
}

/// Whether two lists of values say the same: the same digits in order, or the same
/// numbers in another order.
pub(super) fn same_values(said: &[String], written: &[String]) -> bool {
    if said.concat() == written.concat() {
        return true;
    }
    // Digits read one by one (a phone number, a code) keep their order.
    let digit_string = |values: &[String]| values.windows(3).any(|w| w.iter().all(|v| v.len() == 1));
    if digit_string(said) || digit_string(written) {
        return false;
    }
    let (mut a, mut b) = (said.to_vec(), written.to_vec());
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<String> {
        values_of(text)
    }

    #[test]
    fn number_words_are_read_into_values() {
        assert_eq!(read("one hundred and forty dollars"), ["140"]);
        assert_eq!(read("we sold twenty five units"), ["25"]);
        assert_eq!(read("five five five one two three four"), ["5", "5", "5", "1", "2", "3", "4"]);
        assert_eq!(read("the first of april twenty twenty five"), ["1", "20", "25"]);
        assert_eq!(read("three thirty pm on march third"), ["3", "30", "3"]);
        assert_eq!(read("two thousand five hundred"), ["2500"]);
        assert_eq!(read("nineteen hundred"), ["1900"]);
        assert_eq!(read("a hundred people and two dogs"), ["100", "2"]);
        assert_eq!(read("the twenty first"), ["21"]);
        assert_eq!(read("five oh two"), ["5", "0", "2"]);
        assert_eq!(read("oh i forgot"), Vec::<String>::new(), "an oh alone is a sigh");
        assert_eq!(read("$5,000 and 15th at 3:00"), ["5", "000", "15", "3"]);
        assert_eq!(read("2 million"), ["2000000"]);
        assert_eq!(read("a las cinco"), ["5"]);
        assert_eq!(read("minus ten and negative 3"), ["-10", "-3"]);
        assert_eq!(read("-10 degrees and -$300"), ["-10", "-300"]);
        assert_eq!(read("five minus three"), ["5", "3"], "a subtraction, not a sign");
        assert_eq!(read("oh seven nine"), ["0", "7", "9"]);
        assert_eq!(read("two point five million dollars"), ["2500000"]);
        assert_eq!(read("$2.5 million"), ["2500000"]);
        assert_eq!(read("$25 million"), ["25000000"]);
        assert_eq!(read("twelve ninety nine and 12.99"), ["12", "99", "12", "99"]);
    }

    #[test]
    fn values_are_the_same_in_digits_or_in_another_order() {
        let same = |a: &str, b: &str| same_values(&read(a), &read(b));
        assert!(same("the first of april twenty twenty five", "April 1, 2025"));
        assert!(same("three thirty pm", "3:30 PM"));
        assert!(same("five five five one two three four", "555-1234"));
        assert!(same("seven fifteen on the twelfth of june", "7:15 on June 12"));
        assert!(same("the twelfth of june at seven", "at 7 on June 12"));
        assert!(same("ten percent", "10%"));
        assert!(same("five thousand dollars", "$5,000"));
        assert!(same("at three", "at 3:00"));
        assert!(same("five hundred dollars", "$500"));
        assert!(!same("five hundred dollars", "$5,000"));
        assert!(!same("the fifth", "the 15th"));
        assert!(!same("three pm on tuesday", "4 PM on Tuesday"));
        assert!(!same("what is two plus two", "What is two plus two? Four."));
        assert!(!same("no numbers here", "Call 911"));
        assert!(!same("minus ten", "10"), "a dropped sign");
        assert!(!same("ten", "-10"), "an added sign");
        assert!(same("minus ten", "-10"));
        assert!(!same("four four seven two", "4 4 2 7"), "digits keep their order");
    }
}
