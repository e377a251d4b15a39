//! Load a model folder and answer a conversation with it, greedily, as the sidecar's
//! engine.py does with mlx-lm: pre-fill in steps (a cancel point each), a KV cache kept
//! for the next request's common prefix (the instruction-prefix cache), stop tokens,
//! `max_tokens`, and on the CPU fp32 weights when an optimized BLAS is loaded.
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::array;
use crate::config::Config;
use crate::constrain::{Constraint, Piece};
use crate::error::{Error, Result};
use crate::model::{Cache, Model};
use crate::prompt::{Message, Prompter};
use crate::weights::{weight_files, Tensors};

/// Pre-fill steps in tokens, as python-backend's cpu.py measured them: a step must take
/// well under a second wherever the model runs (the cancel point).
const PREFILL_STEP_CPU_FP32: usize = 64;
const PREFILL_STEP_CPU_QUANTIZED: usize = 8;
const PREFILL_STEP_GPU: usize = 2048;

/// How the weights are kept (`LOCAL_MLX_CPU_WEIGHTS`, as for the sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsMode {
    Auto,
    Fp32,
    Quantized,
}

/// One request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub messages: Vec<Message>,
    pub max_tokens: usize,
    /// The transcript constraint (src/constrain.rs): only the last user message's words.
    #[serde(default)]
    pub constrain_to_input: bool,
}

/// Its answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    pub text: String,
    /// The generated token ids (the stop token left out).
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    /// "stop" (a stop token) or "length" (`max_tokens`).
    pub finish_reason: String,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

pub struct Engine {
    model: Model,
    prompter: Prompter,
    prefill_step: usize,
    /// Why the weights are kept as they are (for the load log).
    pub weights: String,
    /// Where the load's time went (for the load log).
    pub timings: String,
    cache: Option<(Cache, Vec<u32>)>,
    /// Every token's text as the constraint sees it (made at load).
    pieces: Vec<Option<Piece>>,
}

/// Whether the process runs MLX's matmuls with an optimized BLAS (the supervisor
/// preloads OpenBLAS: crates/local-mlx/src/sidecar/blas.rs).
pub fn fast_blas() -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    ["libopenblas", "libmkl_rt", "libblis"].iter().any(|m| maps.contains(m))
}

fn physical_ram() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGE_SIZE)) };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

/// fp32 or not, and why: the sidecar's `cpu.choose_weights`.
fn choose_fp32(config: &Config, on_cpu: bool, mode: WeightsMode) -> (bool, String) {
    if !config.is_quantized() {
        return (false, "the model is not quantized".into());
    }
    if !on_cpu {
        return (false, "MLX runs on the GPU".into());
    }
    match mode {
        WeightsMode::Quantized => return (false, "LOCAL_MLX_CPU_WEIGHTS=quantized".into()),
        WeightsMode::Fp32 => return (true, "LOCAL_MLX_CPU_WEIGHTS=fp32".into()),
        WeightsMode::Auto => {}
    }
    if !fast_blas() {
        return (false, "no optimized BLAS is loaded: fp32 would be no faster".into());
    }
    let percent: f64 =
        std::env::var("LOCAL_MLX_CPU_FP32_MAX_RAM_PERCENT").ok().and_then(|v| v.parse().ok()).unwrap_or(25.0);
    let Some(ram) = physical_ram() else { return (false, "physical RAM is unknown".into()) };
    let c = config;
    let per_layer = c.hidden_size * (c.num_heads + 2 * c.num_kv_heads) * c.head_dim
        + c.num_heads * c.head_dim * c.hidden_size
        + 3 * c.hidden_size * c.intermediate_size;
    let heads = if c.tie_word_embeddings { 1 } else { 2 };
    let bytes = 4 * (c.num_layers * per_layer + heads * c.vocab_size * c.hidden_size) as u64;
    let budget = ram as f64 * percent / 100.0;
    if (bytes as f64) <= budget {
        (true, format!("fp32 weights ({} MiB) fit the budget ({percent} % of RAM)", bytes >> 20))
    } else {
        (false, format!("fp32 weights ({} MiB) exceed the budget ({percent} % of RAM)", bytes >> 20))
    }
}

impl Engine {
    /// Load the model folder `dir` (strictly: see [`Tensors`]).
    pub fn load(dir: &Path, mode: WeightsMode) -> Result<Engine> {
        if !crate::mlx_available() {
            return Err(Error::NoMlx);
        }
        let on_cpu = !cfg!(target_os = "macos");
        if on_cpu {
            array::use_cpu()?;
        }
        let config = Config::read(dir)?;
        let started = Instant::now();
        // The tokenizer (parsing tokenizer.json) and every token's text for the
        // transcript constraint (which the default prompt turns on) on a thread of their
        // own, beside the weights on this one (MLX stays on this thread): neither is
        // left for the first request to pay.
        let (prompter, pieces, model, why, timings) = std::thread::scope(|s| -> Result<_> {
            let eos = config.eos_token_ids.clone();
            let tokenizer = s.spawn(move || {
                let prompter = Prompter::read(dir, &eos).and_then(|p| {
                    let pieces = p.pieces()?;
                    Ok((p, pieces))
                });
                (prompter, started.elapsed())
            });
            let files = weight_files(dir)?;
            let tensors = Tensors::read(&files, &config)?;
            let (fp32, why) = choose_fp32(&config, on_cpu, mode);
            let mut model = Model::from_tensors(config.clone(), tensors)?;
            // Every tensor read from the files in one evaluation, then (fp32) converted.
            model.eval_weights()?;
            let read = started.elapsed();
            if fp32 {
                model = model.into_fp32()?;
                model.eval_weights()?;
            }
            let weights = started.elapsed();
            let (prompter, tokenizer) = tokenizer.join().expect("the tokenizer thread panicked");
            let timings = format!(
                "weights read {:.0} ms, ready {:.0} ms; tokenizer and token texts {:.0} ms beside them",
                read.as_secs_f64() * 1000.0,
                weights.as_secs_f64() * 1000.0,
                tokenizer.as_secs_f64() * 1000.0
            );
            let (prompter, pieces) = prompter?;
            Ok((prompter, pieces, model, why, timings))
        })?;
        let quantized = model.is_quantized();
        let prefill_step = match (on_cpu, quantized) {
            (false, _) => PREFILL_STEP_GPU,
            (true, true) => PREFILL_STEP_CPU_QUANTIZED,
            (true, false) => PREFILL_STEP_CPU_FP32,
        };
        Ok(Engine { model, prompter, prefill_step, weights: why, timings, cache: None, pieces })
    }

    pub fn context_length(&self) -> Option<usize> {
        self.model.config.context_length
    }

    pub fn prompter(&self) -> &Prompter {
        &self.prompter
    }

    /// The prompt's token ids, rendered and tokenized as the sidecar does.
    pub fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.prompter.render(messages)?;
        self.prompter.encode(&text)
    }

    /// The cache to continue from and how many of `tokens` it holds: the previous
    /// request's, cut back to the common prefix (at least one token left to feed).
    fn take_cache(&mut self, tokens: &[u32]) -> (Cache, usize) {
        if let Some((mut cache, old)) = self.cache.take() {
            let common = old.iter().zip(tokens).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
            if common > 0 {
                cache.offset = common;
                return (cache, common);
            }
        }
        (Cache::default(), 0)
    }

    /// Answer `request`; `cancelled` is asked between pre-fill steps and between tokens;
    /// `on_token` sees each generated token id.
    pub fn generate(
        &mut self,
        request: &Request,
        cancelled: &dyn Fn() -> bool,
        on_token: &mut dyn FnMut(u32),
    ) -> Result<Answer> {
        let started = Instant::now();
        let tokens = self.prompt_tokens(&request.messages)?;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::Request("the prompt is empty".into()));
        }
        let mut max_tokens = request.max_tokens;
        if let Some(ctx) = self.context_length() {
            if n >= ctx {
                return Err(Error::Request(format!(
                    "the prompt is {n} tokens long, longer than the model's context of {ctx} tokens"
                )));
            }
            max_tokens = max_tokens.min(ctx - n);
        }
        let (mut cache, reused) = self.take_cache(&tokens);
        // The words a clean-up may use: the last user message's, as engine.py takes them.
        let mut constraint = request.constrain_to_input.then(|| {
            let source = request.messages.iter().rev().find(|m| m.role == "user").map_or("", |m| &m.content);
            Constraint::new(&self.pieces, &self.prompter.eos_token_ids, source)
        });
        let result = self.run(&tokens[reused..], &mut cache, max_tokens, constraint.as_mut(), cancelled, on_token);
        let (generated, finish_reason, first_token) = match result {
            Ok(r) => r,
            Err(e) => {
                array::clear_cache();
                return Err(e);
            }
        };
        // Keep the cache for the next request, holding exactly this prompt.
        cache.offset = n;
        self.cache = Some((cache, tokens));
        let prefill_ms = (first_token - started).as_secs_f64() * 1000.0;
        let decode_ms = first_token.elapsed().as_secs_f64() * 1000.0;
        let text = self.prompter.decode(&generated)?.trim().to_string();
        Ok(Answer {
            text,
            tokens: generated,
            prompt_tokens: n,
            cached_tokens: reused,
            finish_reason,
            prefill_ms,
            decode_ms,
        })
    }

    /// mlx-lm's `generate_step`, greedy: all prompt tokens but the last in steps, then
    /// one token at a time. Returns the tokens, the finish reason and when the first
    /// token was known (the end of the pre-fill).
    fn run(
        &self,
        mut prompt: &[u32],
        cache: &mut Cache,
        max_tokens: usize,
        mut constraint: Option<&mut Constraint>,
        cancelled: &dyn Fn() -> bool,
        on_token: &mut dyn FnMut(u32),
    ) -> Result<(Vec<u32>, String, Instant)> {
        while prompt.len() > 1 {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            let step = self.prefill_step.min(prompt.len() - 1);
            self.model.forward(&prompt[..step], cache)?;
            array::eval(&cache.state())?;
            array::clear_cache();
            prompt = &prompt[step..];
        }
        let mut next = self.step(prompt, cache, constraint.as_deref())?;
        let first_token = Instant::now();
        let mut generated = Vec::new();
        while generated.len() < max_tokens {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            if self.prompter.eos_token_ids.contains(&next) {
                return Ok((generated, "stop".into(), first_token));
            }
            generated.push(next);
            on_token(next);
            if generated.len() == max_tokens {
                break;
            }
            if let Some(c) = constraint.as_deref_mut() {
                c.advance(next);
            }
            next = self.step(&[next], cache, constraint.as_deref())?;
        }
        Ok((generated, "length".into(), first_token))
    }

    /// Feed `tokens`; the greedy next token (argmax of the log-probabilities, computed
    /// as mlx-lm does so that ties break the same way), the logits `constraint` forbids
    /// set to -inf first, as mlx-lm applies a logits processor.
    fn step(&self, tokens: &[u32], cache: &mut Cache, constraint: Option<&Constraint>) -> Result<u32> {
        let logits = self.model.forward(tokens, cache)?;
        let shape = logits.shape();
        let (len, vocab) = (shape[1], shape[2]);
        let mut last = logits.slice(&[0, len - 1, 0], &[1, len, vocab])?.reshape(&[1, vocab as i32])?;
        if let Some(c) = constraint {
            let mask = array::Array::from_slice(&c.mask(vocab), &[vocab])?;
            let forbidden = array::Array::from_slice(&[f32::NEG_INFINITY], &[1])?.astype(last.dtype())?;
            last = last.where_(&mask, &forbidden)?;
        }
        let logprobs = last.subtract(&last.logsumexp(-1)?)?;
        let token: Vec<u32> = logprobs.argmax(-1)?.to_vec()?;
        Ok(token[0])
    }
}
