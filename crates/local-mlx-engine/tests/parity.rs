//! Parity: the native engine's token ids equal the sidecar's (mlx-lm on the same MLX
//! version) for the same requests: prompt ids, generated ids, and what the prefix
//! cache reused, on tiny (Qwen3, 4-bit) and smol (Llama, SmolLM2), quantized and fp32,
//! with the transcript constraint off and on.
mod common;

use common::{reference, request};
use local_mlx_engine::{Engine, Request, WeightsMode};

/// The first transcripts of eval/transcripts.jsonl with the default clean-up prompt
/// (eval/prompts/v2.txt; the second reuses the first's instructions from the prefix
/// cache), then a plain question; `constrain` sets the transcript constraint on each.
fn requests(constrain: bool) -> Vec<Request> {
    let root = common::repo_root();
    let prompt = std::fs::read_to_string(root.join("eval/prompts/v2.txt")).unwrap();
    let system = prompt.trim().trim_end_matches("${output}").trim();
    let transcripts = std::fs::read_to_string(root.join("eval/transcripts.jsonl")).unwrap();
    let mut out: Vec<Request> = transcripts
        .lines()
        .take(if constrain { 4 } else { 2 })
        .map(|line| {
            let raw = serde_json::from_str::<serde_json::Value>(line).unwrap()["raw"].as_str().unwrap().to_string();
            // crates/local-mlx/src/postprocess.rs's max_tokens_for
            request(Some(system), &raw, raw.chars().count().div_ceil(4) * 3 / 2 + 64)
        })
        .collect();
    out.push(request(None, "What is the capital of France?", 16));
    for r in &mut out {
        r.constrain_to_input = constrain;
    }
    out
}

fn assert_parity(model: &std::path::Path, mode: WeightsMode, mode_name: &str, constrain: bool) {
    let requests = requests(constrain);
    let expected = reference(model, mode_name, &requests);
    let mut engine = Engine::load(model, mode).unwrap();
    for (r, want) in requests.iter().zip(&expected) {
        assert_eq!(engine.prompt_tokens(&r.messages).unwrap(), want.prompt, "prompt ids of {:?}", r.messages);
        let got = engine.generate(r, &|| false, &mut |_| {}).unwrap();
        assert_eq!(
            got.tokens, want.tokens,
            "generated ids for {:?} ({mode_name}, constraint {constrain}; sidecar weights {})",
            r.messages, want.weights
        );
        assert_eq!(got.cached_tokens, want.cached, "prefix-cache reuse");
    }
    assert!(expected.iter().any(|e| e.cached > 0), "the requests share a prefix: the cache must be exercised");
    if constrain {
        // The constraint must change something here, or this parity proves nothing.
        let changed = requests.iter().zip(&expected).any(|(r, want)| {
            let free = Request { constrain_to_input: false, ..r.clone() };
            engine.generate(&free, &|| false, &mut |_| {}).unwrap().tokens != want.tokens
        });
        assert!(changed, "the constraint changed no answer ({mode_name})");
    }
}

#[test]
fn tiny_quantized_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Quantized, "quantized", false);
}

#[test]
fn tiny_fp32_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Fp32, "fp32", false);
}

#[test]
fn smol_quantized_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Quantized, "quantized", false);
}

#[test]
fn smol_fp32_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Fp32, "fp32", false);
}

#[test]
fn tiny_quantized_constrained_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Quantized, "quantized", true);
}

#[test]
fn tiny_fp32_constrained_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Fp32, "fp32", true);
}

#[test]
fn smol_quantized_constrained_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Quantized, "quantized", true);
}

#[test]
fn smol_fp32_constrained_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Fp32, "fp32", true);
}
