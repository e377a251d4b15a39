//! [`Array`]: an owned MLX array with the operations the models use, each returning
//! `Result` with MLX's own message on failure. Not `Send`: MLX (≥ 0.31) ties a stream
//! to the OS thread that created it, so arrays never leave the engine's one thread.
use std::ffi::{c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::path::Path;
use std::ptr;

use crate::ffi::{self, RawArray};

/// An MLX call failed; the text is MLX's (or the shim's) message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("MLX: {0}")]
pub struct MlxError(pub String);

pub type Result<T> = std::result::Result<T, MlxError>;

/// Element types, in the shim's code order (`DTYPES` in mlx_shim.cpp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Dtype {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    BF16,
}

const DTYPES: [Dtype; 13] = [
    Dtype::Bool,
    Dtype::U8,
    Dtype::U16,
    Dtype::U32,
    Dtype::U64,
    Dtype::I8,
    Dtype::I16,
    Dtype::I32,
    Dtype::I64,
    Dtype::F16,
    Dtype::F32,
    Dtype::F64,
    Dtype::BF16,
];

impl Dtype {
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::F32 | Dtype::F64 | Dtype::BF16)
    }
}

fn last_error() -> MlxError {
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated string.
    MlxError(unsafe { CStr::from_ptr(ffi::mlxs_last_error()) }.to_string_lossy().into_owned())
}

fn status(code: i32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// The MLX version linked (`mlx::core::version()`).
pub fn version() -> String {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::mlxs_version()) }.to_string_lossy().into_owned()
}

/// [`version`], or "none" in a build without libmlx.
pub fn version_or_none() -> String {
    if crate::mlx_available() {
        version()
    } else {
        "none".into()
    }
}

/// Run every following operation on the CPU (the Linux wheel has no other device).
pub fn use_cpu() -> Result<()> {
    // SAFETY: no arguments.
    status(unsafe { ffi::mlxs_use_cpu() })
}

/// Bytes MLX holds at its peak since start.
pub fn peak_memory() -> usize {
    // SAFETY: no arguments.
    unsafe { ffi::mlxs_peak_memory() }
}

/// Give MLX's buffer cache back to the system.
pub fn clear_cache() {
    // SAFETY: no arguments.
    unsafe { ffi::mlxs_clear_cache() }
}

/// Evaluate the arrays' graphs together.
pub fn eval(arrays: &[&Array]) -> Result<()> {
    let raw: Vec<*mut RawArray> = arrays.iter().map(|a| a.raw).collect();
    // SAFETY: every pointer is a live array owned by an `Array`.
    status(unsafe { ffi::mlxs_eval(raw.as_ptr(), raw.len() as i32) })
}

/// An owned MLX array (freed on drop).
pub struct Array {
    raw: *mut RawArray,
}

impl Drop for Array {
    fn drop(&mut self) {
        // SAFETY: `raw` came from the shim and is freed once.
        unsafe { ffi::mlxs_free(self.raw) }
    }
}

impl Clone for Array {
    /// Another handle to the same (reference-counted) array: no data is copied.
    fn clone(&self) -> Array {
        // SAFETY: `raw` is live; copying an mlx::core::array cannot fail short of OOM.
        wrap(unsafe { ffi::mlxs_clone(self.raw) }).expect("MLX could not copy an array handle")
    }
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array({:?}, {:?})", self.shape(), self.dtype())
    }
}

fn wrap(raw: *mut RawArray) -> Result<Array> {
    if raw.is_null() {
        Err(last_error())
    } else {
        Ok(Array { raw })
    }
}

fn dims(shape: &[usize]) -> Vec<i32> {
    shape.iter().map(|&d| d as i32).collect()
}

/// Element types that cross the boundary by value.
pub trait Element: Copy + Default {
    const DTYPE: Dtype;
}
impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
}
impl Element for i32 {
    const DTYPE: Dtype = Dtype::I32;
}
impl Element for bool {
    const DTYPE: Dtype = Dtype::Bool;
}
impl Element for u32 {
    const DTYPE: Dtype = Dtype::U32;
}

impl Array {
    /// An array of `shape` holding `data` (row-major).
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Array> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(MlxError(format!("{} values for shape {shape:?}", data.len())));
        }
        let shape = dims(shape);
        // SAFETY: `data` holds exactly the elements the shape asks for.
        wrap(unsafe { ffi::mlxs_from_data(data.as_ptr().cast(), T::DTYPE as i32, shape.as_ptr(), shape.len() as i32) })
    }

    /// A new array of `shape` whose elements `fill` writes, in MLX's own memory (no
    /// copy). `fill` must write every element.
    pub fn filled<T: Element>(shape: &[usize], fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Result<Array> {
        let n: usize = shape.iter().product();
        let dims = dims(shape);
        // SAFETY: plain values.
        let array = wrap(unsafe { ffi::mlxs_alloc(T::DTYPE as i32, dims.as_ptr(), dims.len() as i32) })?;
        // SAFETY: the array owns `n` elements of `T`, uninitialized, that nothing else sees
        // until `fill` returns.
        let out = unsafe { std::slice::from_raw_parts_mut(ffi::mlxs_data_mut(array.raw).cast::<MaybeUninit<T>>(), n) };
        fill(out);
        Ok(array)
    }

    /// The elements, evaluated, in place: no copy. An error if the array is not `T` or
    /// not row-contiguous (use [`Array::to_vec`] then).
    pub fn data<T: Element>(&self) -> Result<&[T]> {
        let n: usize = self.shape().iter().product();
        // SAFETY: `raw` is live; the shim checks dtype and layout.
        let ptr = unsafe { ffi::mlxs_data(self.raw, T::DTYPE as i32) };
        if ptr.is_null() {
            return Err(last_error());
        }
        // SAFETY: `n` row-contiguous elements of type `T`, owned by the array, which
        // outlives the borrow; evaluated arrays are not written again.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), n) })
    }

    pub fn zeros(shape: &[usize], dtype: Dtype) -> Result<Array> {
        let shape = dims(shape);
        // SAFETY: plain values.
        wrap(unsafe { ffi::mlxs_zeros(shape.as_ptr(), shape.len() as i32, dtype as i32) })
    }

    pub fn shape(&self) -> Vec<usize> {
        // SAFETY: `raw` is live; `out` has room for ndim values.
        unsafe {
            let mut out = vec![0i32; ffi::mlxs_ndim(self.raw) as usize];
            ffi::mlxs_shape(self.raw, out.as_mut_ptr());
            out.into_iter().map(|d| d as usize).collect()
        }
    }

    pub fn dtype(&self) -> Dtype {
        // SAFETY: `raw` is live.
        let code = unsafe { ffi::mlxs_dtype(self.raw) };
        DTYPES.get(code as usize).copied().unwrap_or(Dtype::Bool)
    }

    /// Evaluate and copy out the elements (converted to `T` first if needed).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let converted;
        let source = if self.dtype() == T::DTYPE {
            self
        } else {
            converted = self.astype(T::DTYPE)?;
            &converted
        };
        let n: usize = self.shape().iter().product();
        let mut out = vec![T::default(); n];
        // SAFETY: `out` has `n * size_of::<T>()` bytes; the shim checks the size.
        status(unsafe { ffi::mlxs_read(source.raw, out.as_mut_ptr().cast(), n * std::mem::size_of::<T>()) })?;
        Ok(out)
    }

    pub fn astype(&self, dtype: Dtype) -> Result<Array> {
        // SAFETY: `raw` is live.
        wrap(unsafe { ffi::mlxs_astype(self.raw, dtype as i32) })
    }
    pub fn add(&self, other: &Array) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_add(self.raw, other.raw) })
    }
    pub fn subtract(&self, other: &Array) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_subtract(self.raw, other.raw) })
    }
    pub fn multiply(&self, other: &Array) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_multiply(self.raw, other.raw) })
    }
    pub fn sigmoid(&self) -> Result<Array> {
        // SAFETY: live.
        wrap(unsafe { ffi::mlxs_sigmoid(self.raw) })
    }
    pub fn matmul(&self, other: &Array) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_matmul(self.raw, other.raw) })
    }
    /// `shape` may hold one -1.
    pub fn reshape(&self, shape: &[i32]) -> Result<Array> {
        // SAFETY: live; the slice outlives the call.
        wrap(unsafe { ffi::mlxs_reshape(self.raw, shape.as_ptr(), shape.len() as i32) })
    }
    pub fn transpose(&self, axes: &[i32]) -> Result<Array> {
        // SAFETY: live; the slice outlives the call.
        wrap(unsafe { ffi::mlxs_transpose(self.raw, axes.as_ptr(), axes.len() as i32) })
    }
    pub fn slice(&self, start: &[usize], stop: &[usize]) -> Result<Array> {
        let (start, stop) = (dims(start), dims(stop));
        // SAFETY: live; equal lengths checked by MLX.
        wrap(unsafe { ffi::mlxs_slice(self.raw, start.as_ptr(), stop.as_ptr(), start.len().min(stop.len()) as i32) })
    }
    /// A copy of `self` with `update` written over `start..stop`.
    pub fn slice_update(&self, update: &Array, start: &[usize], stop: &[usize]) -> Result<Array> {
        let (start, stop) = (dims(start), dims(stop));
        // SAFETY: live arrays; slices outlive the call.
        wrap(unsafe {
            ffi::mlxs_slice_update(
                self.raw,
                update.raw,
                start.as_ptr(),
                stop.as_ptr(),
                start.len().min(stop.len()) as i32,
            )
        })
    }
    pub fn concatenate(&self, other: &Array, axis: i32) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_concatenate(self.raw, other.raw, axis) })
    }
    pub fn take(&self, indices: &Array, axis: i32) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_take(self.raw, indices.raw, axis) })
    }
    /// `self` where `cond` holds, else `other` (broadcast).
    pub fn where_(&self, cond: &Array, other: &Array) -> Result<Array> {
        // SAFETY: all live.
        wrap(unsafe { ffi::mlxs_where(cond.raw, self.raw, other.raw) })
    }
    pub fn argmax(&self, axis: i32) -> Result<Array> {
        // SAFETY: live.
        wrap(unsafe { ffi::mlxs_argmax(self.raw, axis, false) })
    }
    pub fn logsumexp(&self, axis: i32) -> Result<Array> {
        // SAFETY: live.
        wrap(unsafe { ffi::mlxs_logsumexp(self.raw, axis, true) })
    }
    pub fn rms_norm(&self, weight: &Array, eps: f32) -> Result<Array> {
        // SAFETY: both live.
        wrap(unsafe { ffi::mlxs_rms_norm(self.raw, weight.raw, eps) })
    }
    pub fn rope(&self, dims: usize, traditional: bool, base: f32, scale: f32, offset: usize) -> Result<Array> {
        // SAFETY: live.
        wrap(unsafe { ffi::mlxs_rope(self.raw, dims as i32, traditional, base, scale, offset as i32) })
    }
    /// Fused attention of queries `self` over `keys` / `values` (causal: each query sees
    /// the keys up to its own position, aligned at the end).
    pub fn attention(&self, keys: &Array, values: &Array, scale: f32, causal: bool) -> Result<Array> {
        // SAFETY: all live.
        wrap(unsafe { ffi::mlxs_sdpa(self.raw, keys.raw, values.raw, scale, causal) })
    }
    /// `self @ w.T` for affine-quantized `w`.
    pub fn quantized_matmul(&self, w: &Quantized) -> Result<Array> {
        let mode = CString::new(w.mode.as_str()).map_err(|e| MlxError(e.to_string()))?;
        let biases = w.biases.as_ref().map_or(ptr::null(), |b| b.raw as *const RawArray);
        // SAFETY: all live; `mode` outlives the call.
        wrap(unsafe {
            ffi::mlxs_quantized_matmul(
                self.raw,
                w.weight.raw,
                w.scales.raw,
                biases,
                true,
                w.group_size as i32,
                w.bits as i32,
                mode.as_ptr(),
            )
        })
    }
}

/// A quantized matrix as mlx-lm stores it: packed `weight`, per-group `scales` and
/// `biases`.
#[derive(Debug)]
pub struct Quantized {
    pub weight: Array,
    pub scales: Array,
    pub biases: Option<Array>,
    pub group_size: usize,
    pub bits: usize,
    pub mode: String,
}

impl Quantized {
    pub fn arrays(&self) -> Vec<&Array> {
        [&self.weight, &self.scales].into_iter().chain(&self.biases).collect()
    }

    /// The full matrix, as `dtype` (None: the scales' dtype).
    pub fn dequantize(&self, dtype: Option<Dtype>) -> Result<Array> {
        let mode = CString::new(self.mode.as_str()).map_err(|e| MlxError(e.to_string()))?;
        let biases = self.biases.as_ref().map_or(ptr::null(), |b| b.raw as *const RawArray);
        // SAFETY: all live; `mode` outlives the call.
        wrap(unsafe {
            ffi::mlxs_dequantize(
                self.weight.raw,
                self.scales.raw,
                biases,
                self.group_size as i32,
                self.bits as i32,
                mode.as_ptr(),
                dtype.map_or(-1, |d| d as i32),
            )
        })
    }

    /// Rows `indices` of the quantized matrix (an embedding lookup), dequantized.
    pub fn take_rows(&self, indices: &Array) -> Result<Array> {
        let rows = Quantized {
            weight: self.weight.take(indices, 0)?,
            scales: self.scales.take(indices, 0)?,
            biases: self.biases.as_ref().map(|b| b.take(indices, 0)).transpose()?,
            group_size: self.group_size,
            bits: self.bits,
            mode: self.mode.clone(),
        };
        rows.dequantize(None)
    }
}

/// Every tensor of a `.safetensors` file, in the file's order of names as MLX reports
/// them (a malformed or truncated file is MLX's error).
pub fn load_safetensors(path: &Path) -> Result<Vec<(String, Array)>> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| MlxError(e.to_string()))?;
    let mut found: Vec<(String, Array)> = Vec::new();
    unsafe extern "C" fn collect(ctx: *mut c_void, name: *const std::ffi::c_char, raw: *mut RawArray) {
        // SAFETY: `ctx` is the Vec below; `name` is NUL-terminated; we own `raw`.
        let found = unsafe { &mut *(ctx as *mut Vec<(String, Array)>) };
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
        found.push((name, Array { raw }));
    }
    // SAFETY: the callback only runs during this call, while `found` is borrowed.
    status(unsafe { ffi::mlxs_load_safetensors(c_path.as_ptr(), collect, (&mut found as *mut Vec<_>).cast()) })?;
    Ok(found)
}
