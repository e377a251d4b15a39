//! `postprocess::check_answer` judged on the labeled model outputs of `eval/outputs.jsonl`:
//! every bad kind caught, the good clean-ups kept, an echo left unchanged. The test
//! reads the files, so the labeled sets and the clean-up check cannot drift apart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use local_mlx::postprocess::check_answer;
use serde::Deserialize;

/// A line of `transcripts.jsonl` (eval/README.md documents the fields).
#[derive(Deserialize)]
struct Transcript {
    id: String,
    category: String,
    raw: String,
    #[serde(default, rename = "forbidden")]
    answer_words: Vec<String>,
    reference: String,
}

#[derive(Deserialize)]
struct Output {
    /// The id of a line of `transcripts.jsonl`, or none when `raw` is given.
    #[serde(default)]
    transcript: Option<String>,
    /// The transcript itself, for lines of a spoken-form class (kept out of
    /// `transcripts.jsonl`, whose 85 lines are the model eval's set).
    #[serde(default)]
    raw: Option<String>,
    /// The spoken-form class of the line (`address`, `signed`, `money`, …), if any.
    #[serde(default)]
    class: Option<String>,
    label: String,
    kind: String,
    output: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    repaired: Option<String>,
}

fn eval_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    eval_file(name)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1)))
        .collect()
}

#[test]
fn the_transcript_set_covers_every_category_and_is_consistent() {
    let set: Vec<Transcript> = lines("transcripts.jsonl");
    assert!(set.len() >= 80, "{} transcripts", set.len());
    let ids: HashSet<&str> = set.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), set.len(), "ids are unique");
    let categories: HashSet<&str> = set.iter().map(|t| t.category.as_str()).collect();
    for category in [
        "filler_words",
        "repeated_words",
        "spoken_punctuation",
        "numbers_dates",
        "names",
        "lists",
        "questions",
        "instructions",
        "non_english",
        "short",
        "fillers_only",
        "empty",
        "long",
    ] {
        assert!(categories.contains(category), "{category} missing");
    }
    for t in &set {
        let said: HashSet<String> = t.raw.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
        for word in &t.answer_words {
            assert!(!said.contains(word), "{}: forbidden word {word:?} is in the transcript", t.id);
        }
        if t.category == "long" {
            assert!(t.raw.split_whitespace().count() >= 250, "{}: about two minutes of speech", t.id);
        }
        if t.category == "empty" {
            assert!(t.raw.trim().is_empty() && t.reference.is_empty(), "{}", t.id);
        }
    }
}

/// Each output judged by the check against its label.
#[derive(Default)]
struct Scores {
    /// (label, kind) -> (caught or kept as labeled, total)
    score: BTreeMap<(String, String), (usize, usize)>,
    /// (class, label) -> (caught or kept as labeled, total)
    by_class: BTreeMap<(String, String), (usize, usize)>,
    /// One line per output judged wrong.
    failures: Vec<String>,
}

fn judge_all(transcripts: &HashMap<String, Transcript>, outputs: &[Output]) -> Scores {
    let mut scores = Scores::default();
    for o in outputs {
        let raw = match (&o.raw, &o.transcript) {
            (Some(raw), None) => raw.as_str(),
            (None, Some(id)) => &transcripts.get(id).unwrap_or_else(|| panic!("unknown transcript {id}")).raw,
            _ => panic!("a line names a transcript or gives its raw text, one of the two: {:?}", o.output),
        };
        let (text, verdict) = check_answer(raw, &o.output, Some(o.finish_reason.as_deref().unwrap_or("stop")));
        let right = match o.label.as_str() {
            "good" => verdict.is_passed() && text == o.output.trim() && verdict.warnings.is_empty(),
            // An echo is not judged (a transcript may need no change), but must stay the transcript.
            "unchanged" => text == raw.trim(),
            "bad" => {
                let fell_back = !verdict.is_passed()
                    && text == raw.trim()
                    && verdict.warnings.len() == 1
                    && verdict.warnings[0].ends_with("kept the original transcript");
                fell_back || o.repaired.as_deref() == Some(text.as_str())
            }
            other => panic!("unknown label {other:?}"),
        };
        let entry = scores.score.entry((o.label.clone(), o.kind.clone())).or_default();
        entry.1 += 1;
        entry.0 += usize::from(right);
        if let Some(class) = &o.class {
            let entry = scores.by_class.entry((class.clone(), o.label.clone())).or_default();
            entry.1 += 1;
            entry.0 += usize::from(right);
        }
        if !right {
            scores
                .failures
                .push(format!("{} {} {raw:?}: {:?} -> {text:?} {:?}", o.label, o.kind, o.output, verdict.warnings));
        }
    }
    scores
}

#[test]
fn the_clean_up_check_catches_every_bad_kind_and_keeps_the_good_clean_ups() {
    let transcripts: HashMap<String, Transcript> =
        lines::<Transcript>("transcripts.jsonl").into_iter().map(|t| (t.id.clone(), t)).collect();
    let outputs: Vec<Output> = lines("outputs.jsonl");
    let Scores { score, by_class, failures } = judge_all(&transcripts, &outputs);
    for ((class, label), (right, all)) in &by_class {
        eprintln!("class {class:10} {label:5} {right:3} of {all:3} judged right");
    }
    // A spoken form is a form of the transcript: every fair line of a class kept, every
    // unfair one (a changed address, a dropped sign, a swapped unit, a changed digit) caught.
    for ((class, label), (right, all)) in &by_class {
        assert!(right == all, "class {class}, {label}: {right} of {all} judged right\n{}", failures.join("\n"));
    }
    for class in ["address", "signed", "money", "time_date", "unit", "digits", "command", "elision"] {
        for label in ["good", "bad"] {
            assert!(by_class.contains_key(&(class.to_string(), label.to_string())), "no {label} line of class {class}");
        }
    }
    let share = |label: &str| {
        let (right, all) = score
            .iter()
            .filter(|((l, _), _)| l == label)
            .fold((0, 0), |(r, a), (_, (right, all))| (r + right, a + all));
        assert!(all > 0, "no {label} outputs");
        right as f64 / all as f64
    };
    for kind in [
        "answer",
        "followed",
        "lead_in",
        "closing_remark",
        "quoted",
        "cut_off",
        "translated",
        "invented",
        "json",
        "think",
        "reordered",
        "dropped",
    ] {
        let (caught, all) = score.get(&("bad".to_string(), kind.to_string())).copied().unwrap_or_default();
        assert!(all > 0 && caught * 2 > all, "bad kind {kind}: {caught} of {all} caught\n{}", failures.join("\n"));
    }
    // The kinds where one word or one number changes the meaning: every one is caught.
    let meaning = ["appended_answer", "changed_number", "polarity", "replaced_word", "prompt_echo"];
    for kind in meaning {
        let (caught, all) = score.get(&("bad".to_string(), kind.to_string())).copied().unwrap_or_default();
        assert!(all >= 2 && caught == all, "bad kind {kind}: {caught} of {all} caught\n{}", failures.join("\n"));
    }
    // Each of those has a good twin here: a fair clean-up of the same transcript (and
    // every transcript's reference passes too, see below).
    let source = |o: &Output| o.transcript.clone().or_else(|| o.raw.clone()).unwrap_or_default();
    let good: HashSet<String> = outputs.iter().filter(|o| o.label == "good").map(source).collect();
    let twinless: Vec<String> = outputs
        .iter()
        .filter(|o| o.label == "bad" && meaning.contains(&o.kind.as_str()) && !good.contains(&source(o)))
        .map(source)
        .collect();
    assert!(twinless.is_empty(), "bad outputs without a good clean-up of their transcript: {twinless:?}");
    let (bad, good) = (share("bad"), share("good"));
    assert!(bad >= 0.95 && good >= 0.97, "bad caught {bad:.3}, good kept {good:.3}\n{}", failures.join("\n"));
    assert_eq!(share("unchanged"), 1.0, "{}", failures.join("\n"));
    for ((label, kind), (right, all)) in &score {
        eprintln!("{label:9} {kind:16} {right:3} of {all:3}");
    }
    eprintln!("bad caught {bad:.3}, good kept {good:.3}; misses:\n{}", failures.join("\n"));
}

#[test]
fn every_reference_clean_up_passes_the_clean_up_check() {
    let mut refused = Vec::new();
    for t in lines::<Transcript>("transcripts.jsonl").iter().filter(|t| !t.reference.is_empty()) {
        let (text, verdict) = check_answer(&t.raw, &t.reference, Some("stop"));
        if !(verdict.is_passed() && text == t.reference) {
            refused.push(format!("{}: {:?} {:?}", t.id, t.reference, verdict.warnings));
        }
    }
    assert!(refused.is_empty(), "references refused:\n{}", refused.join("\n"));
}

#[test]
fn the_default_prompt_is_the_tuned_one_measured_in_eval() {
    assert_eq!(local_mlx::postprocess::DEFAULT_PROMPT, eval_file("prompts/v2.txt"));
}
