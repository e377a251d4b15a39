//! Parity: the native engine's token ids equal the sidecar's (mlx-lm on the same MLX
//! version) for the same requests: prompt ids, generated ids, and what the prefix
//! cache reused, on tiny (Qwen3, 4-bit) and smol (Llama, SmolLM2), quantized and fp32.
mod common;

use common::{reference, request};
use local_mlx_engine::{Engine, Request, WeightsMode};

fn requests() -> Vec<Request> {
    let system = "Clean up the transcript: fix punctuation and remove filler words.";
    vec![
        request(Some(system), "um so the quick brown fox uh jumps over the lazy dog", 24),
        request(Some(system), "please send the meeting notes to the team by friday afternoon", 24),
        request(None, "What is the capital of France?", 16),
    ]
}

fn assert_parity(model: &std::path::Path, mode: WeightsMode, mode_name: &str) {
    let requests = requests();
    let expected = reference(model, mode_name, &requests);
    let mut engine = Engine::load(model, mode).unwrap();
    for (r, want) in requests.iter().zip(&expected) {
        assert_eq!(engine.prompt_tokens(&r.messages).unwrap(), want.prompt, "prompt ids of {:?}", r.messages);
        let got = engine.generate(r, &|| false, &mut |_| {}).unwrap();
        assert_eq!(
            got.tokens, want.tokens,
            "generated ids for {:?} ({mode_name}; sidecar weights {})",
            r.messages, want.weights
        );
        assert_eq!(got.cached_tokens, want.cached, "prefix-cache reuse");
    }
    assert!(expected.iter().any(|e| e.cached > 0), "the requests share a prefix: the cache must be exercised");
}

#[test]
fn tiny_quantized_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Quantized, "quantized");
}

#[test]
fn tiny_fp32_matches_the_sidecar() {
    assert_parity(&common::tiny(), WeightsMode::Fp32, "fp32");
}

#[test]
fn smol_quantized_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Quantized, "quantized");
}

#[test]
fn smol_fp32_matches_the_sidecar() {
    assert_parity(&common::smol(), WeightsMode::Fp32, "fp32");
}
