//! The C functions of shim/mlx_shim.cpp, declared once; in a build without libmlx the
//! same names exist as stubs that are never reached ([`crate::mlx_available`] is false).
#![allow(dead_code)]

use std::ffi::{c_char, c_void};

/// An MLX array owned by the C++ side (`new mlx::core::array`).
#[repr(C)]
pub struct RawArray {
    _private: [u8; 0],
}

pub type FoundTensor = unsafe extern "C" fn(*mut c_void, *const c_char, *mut RawArray);

macro_rules! shim {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        #[cfg(mlx)]
        extern "C" {
            $(pub fn $name($($arg: $ty),*) $(-> $ret)?;)*
        }
        $(
            #[cfg(not(mlx))]
            #[allow(clippy::missing_safety_doc, clippy::too_many_arguments, unused_variables)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                unreachable!("local-mlx-engine was built without libmlx")
            }
        )*
    };
}

shim! {
    fn mlxs_last_error() -> *const c_char;
    fn mlxs_version() -> *const c_char;
    fn mlxs_free(a: *mut RawArray);
    fn mlxs_clone(a: *const RawArray) -> *mut RawArray;
    fn mlxs_use_cpu() -> i32;
    fn mlxs_peak_memory() -> usize;
    fn mlxs_active_memory() -> usize;
    fn mlxs_clear_cache();
    fn mlxs_ndim(a: *const RawArray) -> i32;
    fn mlxs_shape(a: *const RawArray, out: *mut i32);
    fn mlxs_dtype(a: *const RawArray) -> i32;
    fn mlxs_from_data(data: *const c_void, dtype: i32, shape: *const i32, ndim: i32) -> *mut RawArray;
    fn mlxs_alloc(dtype: i32, shape: *const i32, ndim: i32) -> *mut RawArray;
    fn mlxs_data_mut(a: *mut RawArray) -> *mut c_void;
    fn mlxs_data(a: *mut RawArray, dtype: i32) -> *const c_void;
    fn mlxs_load_safetensors(path: *const c_char, found: FoundTensor, ctx: *mut c_void) -> i32;
    fn mlxs_eval(arrays: *const *mut RawArray, n: i32) -> i32;
    fn mlxs_read(a: *const RawArray, out: *mut c_void, bytes: usize) -> i32;
    fn mlxs_zeros(shape: *const i32, ndim: i32, dtype: i32) -> *mut RawArray;
    fn mlxs_astype(a: *const RawArray, dtype: i32) -> *mut RawArray;
    fn mlxs_add(a: *const RawArray, b: *const RawArray) -> *mut RawArray;
    fn mlxs_subtract(a: *const RawArray, b: *const RawArray) -> *mut RawArray;
    fn mlxs_multiply(a: *const RawArray, b: *const RawArray) -> *mut RawArray;
    fn mlxs_sigmoid(a: *const RawArray) -> *mut RawArray;
    fn mlxs_matmul(a: *const RawArray, b: *const RawArray) -> *mut RawArray;
    fn mlxs_reshape(a: *const RawArray, shape: *const i32, ndim: i32) -> *mut RawArray;
    fn mlxs_transpose(a: *const RawArray, axes: *const i32, n: i32) -> *mut RawArray;
    fn mlxs_slice(a: *const RawArray, start: *const i32, stop: *const i32, n: i32) -> *mut RawArray;
    fn mlxs_slice_update(src: *const RawArray, update: *const RawArray, start: *const i32, stop: *const i32, n: i32) -> *mut RawArray;
    fn mlxs_concatenate(a: *const RawArray, b: *const RawArray, axis: i32) -> *mut RawArray;
    fn mlxs_take(a: *const RawArray, indices: *const RawArray, axis: i32) -> *mut RawArray;
    fn mlxs_where(cond: *const RawArray, x: *const RawArray, y: *const RawArray) -> *mut RawArray;
    fn mlxs_argmax(a: *const RawArray, axis: i32, keepdims: bool) -> *mut RawArray;
    fn mlxs_logsumexp(a: *const RawArray, axis: i32, keepdims: bool) -> *mut RawArray;
    fn mlxs_rms_norm(x: *const RawArray, weight: *const RawArray, eps: f32) -> *mut RawArray;
    fn mlxs_rope(x: *const RawArray, dims: i32, traditional: bool, base: f32, scale: f32, offset: i32) -> *mut RawArray;
    fn mlxs_sdpa(q: *const RawArray, k: *const RawArray, v: *const RawArray, scale: f32, causal: bool) -> *mut RawArray;
    fn mlxs_quantized_matmul(x: *const RawArray, w: *const RawArray, scales: *const RawArray, biases: *const RawArray, transpose: bool, group_size: i32, bits: i32, mode: *const c_char) -> *mut RawArray;
    fn mlxs_dequantize(w: *const RawArray, scales: *const RawArray, biases: *const RawArray, group_size: i32, bits: i32, mode: *const c_char, dtype: i32) -> *mut RawArray;
}
