//! The strict loader: every tensor of the model*.safetensors files maps to a parameter
//! and every parameter is loaded, with the shape the config implies; otherwise an error
//! naming the first missing, unexpected or misshapen tensor.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::array::{self, Array, Dtype, Quantized};
use crate::config::Config;
use crate::dequant::Affine;
use crate::error::{Error, Result};

/// A `x @ W.T (+ b)` layer, its matrix dense or quantized.
#[derive(Debug)]
pub enum Linear {
    Dense { weight: Array, bias: Option<Array> },
    Quantized { weight: Quantized, bias: Option<Array> },
}

impl Linear {
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (y, bias) = match self {
            Linear::Dense { weight, bias } => (x.matmul(&weight.transpose(&[1, 0])?)?, bias),
            Linear::Quantized { weight, bias } => (x.quantized_matmul(weight)?, bias),
        };
        Ok(match bias {
            Some(b) => y.add(b)?,
            None => y,
        })
    }

    /// The same layer with an fp32 dense matrix (the CPU path with OpenBLAS).
    pub fn to_fp32(self) -> Result<Linear> {
        let fp32 = |b: Option<Array>| b.map(|b| b.astype(Dtype::F32)).transpose();
        let out = match self {
            Linear::Dense { weight, bias } => Linear::Dense { weight: weight.astype(Dtype::F32)?, bias: fp32(bias)? },
            Linear::Quantized { weight, bias } => {
                Linear::Dense { weight: dequantize_fp32(&weight)?, bias: fp32(bias)? }
            }
        };
        out.eval()?;
        Ok(out)
    }

    fn eval(&self) -> Result<()> {
        Ok(array::eval(&self.arrays())?)
    }

    /// Every array the layer holds.
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            Linear::Dense { weight, bias } => std::iter::once(weight).chain(bias).collect(),
            Linear::Quantized { weight, bias } => weight.arrays().into_iter().chain(bias).collect(),
        }
    }
}

/// With fp32 scales and biases the result is fp32 directly (python-backend's cpu.py).
/// Affine widths that pack whole into a word go through [`dequant::affine_fp32`] (the
/// same numbers, a fraction of MLX's time on the CPU); the rest through MLX's op.
fn dequantize_fp32(q: &Quantized) -> Result<Array> {
    let fp32 = Quantized {
        weight: q.weight.clone(),
        scales: q.scales.astype(Dtype::F32)?,
        biases: q.biases.as_ref().map(|b| b.astype(Dtype::F32)).transpose()?,
        group_size: q.group_size,
        bits: q.bits,
        mode: q.mode.clone(),
    };
    let shape = q.weight.shape();
    let (rows, cols) = (shape[0], shape[1] * 32 / q.bits.max(1));
    let layout = Affine::new((rows, cols), q.group_size, q.bits);
    let (Some(layout), Some(biases), "affine") = (layout, &fp32.biases, fp32.mode.as_str()) else {
        return Ok(fp32.dequantize(None)?);
    };
    let (packed, scales, biases) = (q.weight.data::<u32>()?, fp32.scales.data::<f32>()?, biases.data::<f32>()?);
    let mut fits = false;
    let w = Array::filled(&[rows, cols], |out| fits = layout.fp32_into(packed, scales, biases, out))?;
    if !fits {
        return Err(Error::Weights(format!(
            "a quantized matrix's packed words, scales or biases do not match its {rows} x {cols} shape"
        )));
    }
    Ok(w)
}

/// The token embedding, also the output layer when tied.
#[derive(Debug)]
pub enum Embedding {
    Dense(Array),
    Quantized(Quantized),
}

impl Embedding {
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            Embedding::Dense(w) => vec![w],
            Embedding::Quantized(q) => q.arrays(),
        }
    }

    pub fn lookup(&self, ids: &Array) -> Result<Array> {
        Ok(match self {
            Embedding::Dense(w) => w.take(ids, 0)?,
            Embedding::Quantized(q) => q.take_rows(ids)?,
        })
    }

    /// `x @ E.T`: logits from a tied embedding.
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        Ok(match self {
            Embedding::Dense(w) => x.matmul(&w.transpose(&[1, 0])?)?,
            Embedding::Quantized(q) => x.quantized_matmul(q)?,
        })
    }

    pub fn to_fp32(self) -> Result<Embedding> {
        let w = match self {
            Embedding::Dense(w) => w.astype(Dtype::F32)?,
            Embedding::Quantized(q) => dequantize_fp32(&q)?,
        };
        array::eval(&[&w])?;
        Ok(Embedding::Dense(w))
    }
}

/// The model folder's weight files: `model*.safetensors`, sorted.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("model") && name.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Weights(format!("{} has no model*.safetensors weight files", dir.display())));
    }
    Ok(files)
}

/// The tensors not yet claimed by a parameter, by name.
pub struct Tensors {
    left: BTreeMap<String, Array>,
    config: Config,
}

fn shape_error(name: &str, expected: &[usize], got: &[usize]) -> Error {
    Error::Weights(format!("tensor {name} has shape {got:?}, the config implies {expected:?}"))
}

impl Tensors {
    /// Every tensor of `files` (a truncated or malformed file is an error naming it).
    pub fn read(files: &[PathBuf], config: &Config) -> Result<Tensors> {
        let mut left = BTreeMap::new();
        for file in files {
            let tensors = array::load_safetensors(file)
                .map_err(|e| Error::Weights(format!("{} cannot be read as safetensors: {}", file.display(), e.0)))?;
            left.extend(tensors);
        }
        // Precomputed rotary frequencies some checkpoints carry are not parameters.
        left.retain(|name, _| !name.contains("self_attn.rotary_emb.inv_freq"));
        if config.tie_word_embeddings {
            left.remove("lm_head.weight");
        }
        Ok(Tensors { left, config: config.clone() })
    }

    /// Claim tensor `name`, of `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Array> {
        let a = self.left.remove(name).ok_or_else(|| {
            Error::Weights(format!("tensor {name} is missing from the weight files (the config implies it)"))
        })?;
        if a.shape() != shape {
            return Err(shape_error(name, shape, &a.shape()));
        }
        Ok(a)
    }

    fn take_optional(&mut self, name: &str, shape: &[usize], present: bool) -> Result<Option<Array>> {
        present.then(|| self.take(name, shape)).transpose()
    }

    /// Claim the packed matrix `prefix.weight` (out x in) with its scales and biases.
    fn take_quantized(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Option<Quantized>> {
        let Some(q) = self.config.quantization_for(prefix, self.left.contains_key(&format!("{prefix}.scales"))) else {
            return Ok(None);
        };
        if !inp.is_multiple_of(q.group_size) || !(inp * q.bits).is_multiple_of(32) {
            return Err(Error::Weights(format!(
                "{prefix}: {inp} columns do not divide into groups of {} at {} bits",
                q.group_size, q.bits
            )));
        }
        let weight = self.take(&format!("{prefix}.weight"), &[out, inp * q.bits / 32])?;
        if weight.dtype() != Dtype::U32 {
            return Err(Error::Weights(format!(
                "tensor {prefix}.weight is {:?}, quantized weights are uint32",
                weight.dtype()
            )));
        }
        let scales = self.take(&format!("{prefix}.scales"), &[out, inp / q.group_size])?;
        let biases = self.take(&format!("{prefix}.biases"), &[out, inp / q.group_size])?;
        Ok(Some(Quantized {
            weight,
            scales,
            biases: Some(biases),
            group_size: q.group_size,
            bits: q.bits,
            mode: q.mode,
        }))
    }

    pub fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let quantized = self.take_quantized(prefix, out, inp)?;
        let bias = self.take_optional(&format!("{prefix}.bias"), &[out], bias)?;
        Ok(match quantized {
            Some(weight) => Linear::Quantized { weight, bias },
            None => Linear::Dense { weight: self.take(&format!("{prefix}.weight"), &[out, inp])?, bias },
        })
    }

    pub fn embedding(&mut self, prefix: &str, vocab: usize, dim: usize) -> Result<Embedding> {
        Ok(match self.take_quantized(prefix, vocab, dim)? {
            Some(q) => Embedding::Quantized(q),
            None => Embedding::Dense(self.take(&format!("{prefix}.weight"), &[vocab, dim])?),
        })
    }

    /// Every tensor was claimed, else an error naming the first left over.
    pub fn finish(self) -> Result<()> {
        match self.left.keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::Weights(format!(
                "tensor {name} is not a parameter of the {:?} architecture as configured ({} unexpected tensors)",
                self.config.arch,
                self.left.len()
            ))),
        }
    }
}
