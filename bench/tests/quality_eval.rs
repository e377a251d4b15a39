//! The eval runner's shape on the tiny model (random weights: the text is noise, the
//! report's shape is what is checked): it runs one line of every category, the empty
//! and the long transcripts included, and reports every category without an error.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn the_eval_runs_every_category_on_the_tiny_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_quality-eval"))
        .args(["--fixture", "tiny", "--per-category", "1", "--json"])
        .output()
        .expect("run quality-eval");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "quality-eval failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let set = std::fs::read_to_string(test_support::workspace_root().join("eval/transcripts.jsonl")).unwrap();
    let categories: BTreeSet<String> = set
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["category"].as_str().unwrap().to_string())
        .collect();
    let reported: BTreeSet<String> = report["categories"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(reported, categories);
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(lines.len(), categories.len(), "one line per category");
    for line in lines {
        assert!(line["error"].is_null(), "{line}");
        let wer = line["wer_result"].as_f64().unwrap();
        assert!(wer.is_finite() && wer >= 0.0, "{line}");
    }
    let long = lines.iter().find(|l| l["category"] == "long").unwrap();
    assert!(long["tokens"].as_u64().unwrap() > 0, "the long transcript was generated for: {long}");
    let empty = lines.iter().find(|l| l["category"] == "empty").unwrap();
    assert_eq!(empty["result"], "", "{empty}");
    assert_eq!(report["total"]["lines"].as_u64().unwrap() as usize, categories.len());
    assert!(report["total"]["errors"].as_u64() == Some(0));
}

#[test]
fn a_missing_model_choice_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_quality-eval")).output().expect("run quality-eval");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fixture tiny|smol or --model"));
}
