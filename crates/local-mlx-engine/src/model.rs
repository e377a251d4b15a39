//! The Llama and Qwen3 decoder (mlx-lm's llama.py / qwen3.py, op for op, so that the
//! token ids match the sidecar's) and its KV cache.
use crate::array::{Array, Dtype};
use crate::config::{Arch, Config};
use crate::error::Result;
use crate::weights::{Embedding, Linear, Tensors};

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Qwen3 normalizes each head's queries and keys.
    q_norm: Option<Array>,
    k_norm: Option<Array>,
}

struct Block {
    attn: Attention,
    gate: Linear,
    up: Linear,
    down: Linear,
    input_norm: Array,
    post_attention_norm: Array,
}

pub struct Model {
    pub config: Config,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: Array,
    lm_head: Option<Linear>,
}

/// One layer's keys and values so far, in buffers grown 256 positions at a time and
/// written in place (mlx-lm's `KVCache`).
struct LayerCache {
    keys: Array,
    values: Array,
}

/// The KV cache of every layer, holding `offset` positions.
#[derive(Default)]
pub struct Cache {
    layers: Vec<LayerCache>,
    pub offset: usize,
}

const CACHE_STEP: usize = 256;

impl Cache {
    /// Append this layer's new `keys` / `values` ([1, kv_heads, L, head_dim]); return
    /// all of them up to the new end.
    fn update(&mut self, layer: usize, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        let shape = keys.shape();
        let (heads, len, dim) = (shape[1], shape[2], shape[3]);
        let prev = self.offset;
        // Room for `len` more positions, past what the buffer held up to `prev`.
        let grow = |old: Option<&Array>| -> Result<Array> {
            let fresh = Array::zeros(&[1, heads, len.div_ceil(CACHE_STEP) * CACHE_STEP, dim], keys.dtype())?;
            let Some(old) = old else { return Ok(fresh) };
            let kept = if prev.is_multiple_of(CACHE_STEP) {
                old.clone()
            } else {
                old.slice(&[0, 0, 0, 0], &[1, heads, prev, dim])?
            };
            Ok(kept.concatenate(&fresh, 2)?)
        };
        if layer == self.layers.len() {
            self.layers.push(LayerCache { keys: grow(None)?, values: grow(None)? });
        } else if prev + len > self.layers[layer].keys.shape()[2] {
            let l = &self.layers[layer];
            let (k, v) = (grow(Some(&l.keys))?, grow(Some(&l.values))?);
            self.layers[layer] = LayerCache { keys: k, values: v };
        }
        let end = prev + len;
        let l = &mut self.layers[layer];
        l.keys = l.keys.slice_update(keys, &[0, 0, prev, 0], &[1, heads, end, dim])?;
        l.values = l.values.slice_update(values, &[0, 0, prev, 0], &[1, heads, end, dim])?;
        if end < l.keys.shape()[2] {
            Ok((
                l.keys.slice(&[0, 0, 0, 0], &[1, heads, end, dim])?,
                l.values.slice(&[0, 0, 0, 0], &[1, heads, end, dim])?,
            ))
        } else {
            Ok((l.keys.clone(), l.values.clone()))
        }
    }

    /// The arrays to evaluate after a pre-fill step.
    pub fn state(&self) -> Vec<&Array> {
        self.layers.iter().flat_map(|l| [&l.keys, &l.values]).collect()
    }
}

impl Model {
    /// Build the model from `tensors`, claiming every parameter (see [`Tensors`]).
    pub fn from_tensors(config: Config, mut t: Tensors) -> Result<Model> {
        let c = &config;
        let (d, hd) = (c.hidden_size, c.head_dim);
        let embed = t.embedding("model.embed_tokens", c.vocab_size, d)?;
        let mut blocks = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let qk_norm = |t: &mut Tensors, name: &str| -> Result<Option<Array>> {
                (c.arch == Arch::Qwen3).then(|| t.take(&format!("{a}.{name}.weight"), &[hd])).transpose()
            };
            let attn = Attention {
                q: t.linear(&format!("{a}.q_proj"), c.num_heads * hd, d, c.attention_bias)?,
                k: t.linear(&format!("{a}.k_proj"), c.num_kv_heads * hd, d, c.attention_bias)?,
                v: t.linear(&format!("{a}.v_proj"), c.num_kv_heads * hd, d, c.attention_bias)?,
                o: t.linear(&format!("{a}.o_proj"), d, c.num_heads * hd, c.attention_bias)?,
                q_norm: qk_norm(&mut t, "q_norm")?,
                k_norm: qk_norm(&mut t, "k_norm")?,
            };
            let m = format!("{p}.mlp");
            blocks.push(Block {
                attn,
                gate: t.linear(&format!("{m}.gate_proj"), c.intermediate_size, d, c.mlp_bias)?,
                up: t.linear(&format!("{m}.up_proj"), c.intermediate_size, d, c.mlp_bias)?,
                down: t.linear(&format!("{m}.down_proj"), d, c.intermediate_size, c.mlp_bias)?,
                input_norm: t.take(&format!("{p}.input_layernorm.weight"), &[d])?,
                post_attention_norm: t.take(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
            });
        }
        let norm = t.take("model.norm.weight", &[d])?;
        let lm_head = if c.tie_word_embeddings { None } else { Some(t.linear("lm_head", c.vocab_size, d, false)?) };
        t.finish()?;
        Ok(Model { config, embed, blocks, norm, lm_head })
    }

    /// Read every weight now (MLX loads lazily; mlx-lm's `load` evaluates the
    /// parameters too, so "loaded" means the same on both sides).
    pub fn eval_weights(&self) -> Result<()> {
        let mut all = self.embed.arrays();
        all.push(&self.norm);
        all.extend(self.lm_head.iter().flat_map(Linear::arrays));
        for b in &self.blocks {
            for l in [&b.attn.q, &b.attn.k, &b.attn.v, &b.attn.o, &b.gate, &b.up, &b.down] {
                all.extend(l.arrays());
            }
            all.extend([&b.input_norm, &b.post_attention_norm]);
            all.extend(b.attn.q_norm.iter().chain(&b.attn.k_norm));
        }
        Ok(crate::array::eval(&all)?)
    }

    /// Whether any layer is quantized.
    pub fn is_quantized(&self) -> bool {
        let q = |l: &Linear| matches!(l, Linear::Quantized { .. });
        matches!(self.embed, Embedding::Quantized(_))
            || self.lm_head.as_ref().is_some_and(q)
            || self.blocks.iter().any(|b| q(&b.attn.q) || q(&b.gate))
    }

    /// Every layer dequantized and every weight cast to fp32, one layer at a time (the
    /// sidecar's CPU path with OpenBLAS, python-backend's cpu.py).
    pub fn into_fp32(self) -> Result<Model> {
        let fp32 = |a: Array| -> Result<Array> { Ok(a.astype(Dtype::F32)?) };
        let fp32_opt = |a: Option<Array>| a.map(fp32).transpose();
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for b in self.blocks {
            blocks.push(Block {
                attn: Attention {
                    q: b.attn.q.to_fp32()?,
                    k: b.attn.k.to_fp32()?,
                    v: b.attn.v.to_fp32()?,
                    o: b.attn.o.to_fp32()?,
                    q_norm: fp32_opt(b.attn.q_norm)?,
                    k_norm: fp32_opt(b.attn.k_norm)?,
                },
                gate: b.gate.to_fp32()?,
                up: b.up.to_fp32()?,
                down: b.down.to_fp32()?,
                input_norm: fp32(b.input_norm)?,
                post_attention_norm: fp32(b.post_attention_norm)?,
            });
        }
        Ok(Model {
            config: self.config,
            embed: self.embed.to_fp32()?,
            blocks,
            norm: fp32(self.norm)?,
            lm_head: self.lm_head.map(Linear::to_fp32).transpose()?,
        })
    }

    /// The logits ([1, L, vocab]) for `tokens` following what `cache` holds; the cache
    /// then holds them too.
    pub fn forward(&self, tokens: &[u32], cache: &mut Cache) -> Result<Array> {
        let c = &self.config;
        let len = tokens.len();
        let ids = Array::from_slice(tokens, &[1, len])?;
        let mut h = self.embed.lookup(&ids)?;
        let causal = len > 1;
        let scale = (c.head_dim as f32).powf(-0.5);
        for (i, b) in self.blocks.iter().enumerate() {
            let x = h.rms_norm(&b.input_norm, c.rms_norm_eps)?;
            let heads = |l: &Linear, n: usize, norm: &Option<Array>| -> Result<Array> {
                let mut y = l.forward(&x)?.reshape(&[1, len as i32, n as i32, -1])?;
                if let Some(w) = norm {
                    y = y.rms_norm(w, c.rms_norm_eps)?;
                }
                Ok(y.transpose(&[0, 2, 1, 3])?)
            };
            let rope = |y: Array| y.rope(c.head_dim, c.rope_traditional, c.rope_theta, 1.0, cache.offset);
            let q = rope(heads(&b.attn.q, c.num_heads, &b.attn.q_norm)?)?;
            let k = rope(heads(&b.attn.k, c.num_kv_heads, &b.attn.k_norm)?)?;
            let v = heads(&b.attn.v, c.num_kv_heads, &None)?;
            let (k, v) = cache.update(i, &k, &v)?;
            let o = q.attention(&k, &v, scale, causal)?.transpose(&[0, 2, 1, 3])?.reshape(&[1, len as i32, -1])?;
            h = h.add(&b.attn.o.forward(&o)?)?;
            let x = h.rms_norm(&b.post_attention_norm, c.rms_norm_eps)?;
            let gate = b.gate.forward(&x)?;
            let swiglu = gate.multiply(&gate.sigmoid()?)?.multiply(&b.up.forward(&x)?)?;
            h = h.add(&b.down.forward(&swiglu)?)?;
        }
        cache.offset += len;
        let h = h.rms_norm(&self.norm, c.rms_norm_eps)?;
        match &self.lm_head {
            Some(head) => head.forward(&h),
            None => self.embed.as_linear(&h),
        }
    }
}
