//! A model folder's config.json, read into what the supported architectures need, and
//! its quantization per layer (mlx-lm's rules): anything else is a clear error.
use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The architectures the native engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen3,
}

/// How one layer's weights are quantized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantization {
    pub bits: usize,
    pub group_size: usize,
    pub mode: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub arch: Arch,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    pub rope_traditional: bool,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub context_length: Option<usize>,
    /// config.json's `eos_token_id` (generation_config.json's wins, as in mlx-lm).
    pub eos_token_ids: Vec<u32>,
    /// The default quantization, and the layers that differ (`false`: not quantized).
    quantization: Option<Quantization>,
    per_layer: HashMap<String, Option<Quantization>>,
}

#[derive(Deserialize)]
struct Raw {
    model_type: String,
    hidden_size: usize,
    num_hidden_layers: usize,
    intermediate_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    rms_norm_eps: f32,
    rope_theta: Option<f32>,
    #[serde(default)]
    rope_traditional: bool,
    rope_scaling: Option<Value>,
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    max_position_embeddings: Option<usize>,
    quantization: Option<serde_json::Map<String, Value>>,
}

fn ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
        _ => Vec::new(),
    }
}

fn quantization_of(what: &str, value: &Value, default: Option<&Quantization>) -> Result<Option<Quantization>> {
    let bad = |why: String| Error::Config(format!("quantization of {what}: {why}"));
    let obj = match value {
        Value::Bool(false) => return Ok(None),
        Value::Object(obj) => obj,
        other => return Err(bad(format!("{other} is neither an object nor false"))),
    };
    let number = |key: &str, fallback: Option<usize>| {
        obj.get(key).and_then(Value::as_u64).map(|n| n as usize).or(fallback).ok_or_else(|| bad(format!("no {key}")))
    };
    let bits = number("bits", default.map(|d| d.bits))?;
    let group_size = number("group_size", default.map(|d| d.group_size))?;
    let mode = obj.get("mode").and_then(Value::as_str).unwrap_or("affine").to_string();
    if mode != "affine" {
        return Err(Error::Unsupported(format!(
            "the quantization mode {mode:?} of {what} (the native engine runs mlx-lm's \"affine\" quantization only)"
        )));
    }
    if ![2, 3, 4, 5, 6, 8].contains(&bits) {
        return Err(Error::Unsupported(format!("{bits}-bit quantization of {what} (MLX quantizes to 2-6 or 8 bits)")));
    }
    if ![32, 64, 128].contains(&group_size) {
        return Err(Error::Unsupported(format!(
            "quantization group size {group_size} of {what} (MLX's are 32, 64, 128)"
        )));
    }
    Ok(Some(Quantization { bits, group_size, mode }))
}

impl Config {
    /// Read `dir/config.json` (and generation_config.json's `eos_token_id`).
    pub fn read(dir: &Path) -> Result<Config> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io(path.clone(), e))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let model_type = value.get("model_type").and_then(Value::as_str).unwrap_or("(none)");
        let arch = match model_type {
            "llama" => Arch::Llama,
            "qwen3" => Arch::Qwen3,
            other => {
                return Err(Error::Unsupported(format!(
                    "the architecture {other:?} (config.json model_type; the native engine runs llama and qwen3: \
                     use LOCAL_MLX_ENGINE=sidecar for this model)"
                )))
            }
        };
        let raw: Raw =
            serde_json::from_value(value.clone()).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        debug_assert_eq!(raw.model_type, model_type);
        if raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(Error::Unsupported(format!("rope_scaling {} in config.json", raw.rope_scaling.unwrap())));
        }
        let mut eos_token_ids = ids(value.get("eos_token_id"));
        if let Ok(text) = std::fs::read_to_string(dir.join("generation_config.json")) {
            if let Ok(gen) = serde_json::from_str::<Value>(&text) {
                let from_generation = ids(gen.get("eos_token_id"));
                if !from_generation.is_empty() {
                    eos_token_ids = from_generation;
                }
            }
        }
        let (mut quantization, mut per_layer) = (None, HashMap::new());
        if let Some(q) = &raw.quantization {
            let default = quantization_of("the model", &Value::Object(q.clone()), None)?;
            for (key, v) in q {
                if v.is_object() || v.is_boolean() {
                    per_layer.insert(key.clone(), quantization_of(key, v, default.as_ref())?);
                }
            }
            quantization = default;
        }
        let num_heads = raw.num_attention_heads;
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / num_heads.max(1));
        let rope_theta = match (arch, raw.rope_theta) {
            (_, Some(theta)) => theta,
            (Arch::Llama, None) => 10000.0,
            (Arch::Qwen3, None) => return Err(Error::Config("rope_theta is missing from config.json".into())),
        };
        Ok(Config {
            arch,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_hidden_layers,
            intermediate_size: raw.intermediate_size,
            num_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(num_heads),
            head_dim,
            vocab_size: raw.vocab_size,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            // mlx-lm's qwen3 always uses the non-traditional rotation.
            rope_traditional: arch == Arch::Llama && raw.rope_traditional,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(arch == Arch::Llama),
            attention_bias: arch == Arch::Llama && raw.attention_bias,
            mlp_bias: arch == Arch::Llama && raw.mlp_bias,
            context_length: raw.max_position_embeddings,
            eos_token_ids,
            quantization,
            per_layer,
        })
    }

    /// How the layer `name` (e.g. `model.layers.0.mlp.up_proj`) is quantized, given
    /// whether the weights carry `name.scales` (mlx-lm: a layer without scales stays
    /// unquantized; a per-layer entry in config.json wins).
    pub fn quantization_for(&self, name: &str, has_scales: bool) -> Option<Quantization> {
        if let Some(q) = self.per_layer.get(name) {
            return q.clone();
        }
        if has_scales {
            self.quantization.clone()
        } else {
            None
        }
    }

    pub fn is_quantized(&self) -> bool {
        self.quantization.is_some()
    }
}
