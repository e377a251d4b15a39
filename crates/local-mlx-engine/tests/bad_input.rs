//! Bad model folders: each is a clear error naming what is wrong, never a crash. Each
//! case is a copy of the tiny fixture with one thing broken.
mod common;

use std::path::{Path, PathBuf};

use local_mlx_engine::{Engine, Error, WeightsMode};
use serde_json::Value;

fn copy_of_tiny() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(common::tiny()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (tmp, dir)
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Rewrite model.safetensors' header (the data stays as it is).
fn edit_header(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    edit(&mut header);
    let mut text = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + len..]);
    std::fs::write(path, out).unwrap();
}

fn load_error(dir: &Path) -> String {
    match Engine::load(dir, WeightsMode::Quantized) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_tensor_is_named() {
    let (_tmp, dir) = copy_of_tiny();
    edit_header(&dir, |h| {
        h.remove("model.layers.1.mlp.down_proj.biases").unwrap();
    });
    let e = load_error(&dir);
    assert!(e.contains("tensor model.layers.1.mlp.down_proj.biases is missing"), "{e}");
}

#[test]
fn an_unexpected_tensor_is_named() {
    let (_tmp, dir) = copy_of_tiny();
    edit_header(&dir, |h| {
        let copy = h["model.norm.weight"].clone();
        h.insert("model.extra_head.weight".into(), copy);
    });
    let e = load_error(&dir);
    assert!(e.contains("tensor model.extra_head.weight is not a parameter"), "{e}");
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let (_tmp, dir) = copy_of_tiny();
    edit_header(&dir, |h| {
        let shape = h["model.layers.0.self_attn.q_proj.scales"]["shape"].as_array().unwrap().clone();
        let swapped: Vec<Value> = shape.into_iter().rev().collect();
        h["model.layers.0.self_attn.q_proj.scales"]["shape"] = Value::Array(swapped);
    });
    let e = load_error(&dir);
    assert!(
        e.contains("tensor model.layers.0.self_attn.q_proj.scales has shape [1, 64], the config implies [64, 1]"),
        "{e}"
    );
}

#[test]
fn an_unknown_quantization_is_refused() {
    let (_tmp, dir) = copy_of_tiny();
    edit_json(&dir.join("config.json"), |c| c["quantization"]["mode"] = "nvfp9".into());
    let e = load_error(&dir);
    assert!(e.contains("does not support the quantization mode \"nvfp9\""), "{e}");
    edit_json(&dir.join("config.json"), |c| {
        c["quantization"]["mode"] = "affine".into();
        c["quantization"]["bits"] = 7.into();
    });
    let e = load_error(&dir);
    assert!(e.contains("7-bit quantization"), "{e}");
}

#[test]
fn a_truncated_weight_file_is_named() {
    let (_tmp, dir) = copy_of_tiny();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_error(&dir);
    assert!(e.contains("model.safetensors cannot be read as safetensors"), "{e}");
}

#[test]
fn an_unsupported_architecture_is_named() {
    let (_tmp, dir) = copy_of_tiny();
    edit_json(&dir.join("config.json"), |c| c["model_type"] = "mamba".into());
    let e = load_error(&dir);
    assert!(e.contains("does not support the architecture \"mamba\""), "{e}");
    assert!(e.contains("LOCAL_MLX_ENGINE=sidecar"), "{e}");
}

#[test]
fn a_template_that_fails_is_an_error_naming_it() {
    let (_tmp, dir) = copy_of_tiny();
    edit_json(&dir.join("tokenizer_config.json"), |c| {
        c["chat_template"] = "{{ raise_exception('this template needs tools') }}".into()
    });
    let mut engine = Engine::load(&dir, WeightsMode::Quantized).unwrap();
    let err = engine.generate(&common::request(None, "hello", 4), &|| false, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::Template(_)), "{err:?}");
    assert!(err.to_string().contains("this template needs tools"), "{err}");
    // A template that does not even parse.
    edit_json(&dir.join("tokenizer_config.json"), |c| c["chat_template"] = "{% for %}".into());
    let mut engine = Engine::load(&dir, WeightsMode::Quantized).unwrap();
    let err = engine.generate(&common::request(None, "hello", 4), &|| false, &mut |_| {}).unwrap_err();
    assert!(err.to_string().starts_with("the model's chat template failed"), "{err}");
}
