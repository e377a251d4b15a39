// The engine's whole view of MLX: a flat C API over exactly the MLX C++ operations the
// models need, compiled by build.rs against the installed mlx-cpu / mlx-metal wheel.
//
// Why our own shim and not mlx-c: mlx-c is ~26 C++ files that need cmake, ninja and two
// patches to build against MLX 0.32.4 (GCC 12 has no std::format; gather_qmm's new
// argument); this one file needs only the C++ compiler `cc` finds, compiles in seconds
// and covers the ~30 calls we use. Every call catches C++ exceptions and returns
// NULL / -1, leaving the message for mlxs_last_error() (thread-local: each thread sees
// its own). Arrays cross the boundary as heap-allocated mlx::core::array handles that
// Rust frees with mlxs_free.
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "mlx/mlx.h"

namespace mx = mlx::core;

struct mlxs_array {
  mx::array a;
};

namespace {

thread_local std::string last_error;

// The dtype codes shared with src/ffi.rs (Dtype).
const mx::Dtype DTYPES[] = {
    mx::bool_,   mx::uint8,   mx::uint16,  mx::uint32, mx::uint64,
    mx::int8,    mx::int16,   mx::int32,   mx::int64,  mx::float16,
    mx::float32, mx::float64, mx::bfloat16};
constexpr int N_DTYPES = sizeof(DTYPES) / sizeof(DTYPES[0]);

int code_of(mx::Dtype d) {
  for (int i = 0; i < N_DTYPES; i++) {
    if (DTYPES[i] == d) return i;
  }
  return -1;
}

mx::Dtype dtype_of(int code) {
  if (code < 0 || code >= N_DTYPES) {
    throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  }
  return DTYPES[code];
}

mx::Shape shape_of(const int* dims, int n) { return mx::Shape(dims, dims + n); }

mlxs_array* wrap(mx::array a) { return new mlxs_array{std::move(a)}; }

// Run `f`, turning a C++ exception into NULL + last_error.
template <typename F>
mlxs_array* guard(F f) {
  try {
    return wrap(f());
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception in MLX";
  }
  return nullptr;
}

template <typename F>
int guard_status(F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception in MLX";
  }
  return -1;
}

}  // namespace

extern "C" {

const char* mlxs_last_error() { return last_error.c_str(); }
const char* mlxs_version() { return mx::version(); }
void mlxs_free(mlxs_array* a) { delete a; }
// A second handle to the same array (MLX arrays are reference-counted).
mlxs_array* mlxs_clone(const mlxs_array* a) { return guard([&] { return a->a; }); }

int mlxs_use_cpu() {
  return guard_status([] { mx::set_default_device(mx::Device::cpu); });
}
size_t mlxs_peak_memory() { return mx::get_peak_memory(); }
size_t mlxs_active_memory() { return mx::get_active_memory(); }
void mlxs_clear_cache() { mx::clear_cache(); }

int mlxs_ndim(const mlxs_array* a) { return static_cast<int>(a->a.ndim()); }
void mlxs_shape(const mlxs_array* a, int* out) {
  for (size_t i = 0; i < a->a.ndim(); i++) out[i] = a->a.shape(i);
}
int mlxs_dtype(const mlxs_array* a) { return code_of(a->a.dtype()); }

mlxs_array* mlxs_from_data(const void* data, int dtype, const int* shape, int ndim) {
  return guard([&] {
    mx::Dtype d = dtype_of(dtype);
    mx::Shape s = shape_of(shape, ndim);
    size_t n = 1;
    for (int x : s) n *= x;
    mx::array out = mx::zeros(s, d);
    out.eval();
    std::memcpy(out.data<void>(), data, n * d.size());
    return out;
  });
}

// A new array of `shape` and `dtype` whose memory MLX allocates and the caller then
// fills through mlxs_data_mut (no copy: MLX's CPU allocator cannot adopt a foreign
// buffer, mx::array(void*, ...) would copy it).
mlxs_array* mlxs_alloc(int dtype, const int* shape, int ndim) {
  return guard([&] {
    mx::Dtype d = dtype_of(dtype);
    mx::Shape s = shape_of(shape, ndim);
    size_t n = 1;
    for (int x : s) n *= x;
    return mx::array(mx::allocator::malloc(n * d.size()), s, d);
  });
}

// The writable memory of an array made by mlxs_alloc (uninitialized until written).
void* mlxs_data_mut(mlxs_array* a) { return a->a.data<void>(); }

// The elements of `a`, evaluated, in place (row-major): NULL with the error if `a` is
// not row-contiguous or not `dtype`. The pointer lives as long as `a`.
const void* mlxs_data(mlxs_array* a, int dtype) {
  try {
    a->a.eval();
    if (a->a.dtype() != dtype_of(dtype)) {
      throw std::invalid_argument("the array's element type is not the one asked for");
    }
    if (!a->a.flags().row_contiguous || a->a.data_size() != a->a.size()) {
      throw std::invalid_argument("the array is not row-contiguous");
    }
    return a->a.data<void>();
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception in MLX";
  }
  return nullptr;
}

// Calls `found(ctx, name, array)` for each tensor of a .safetensors file (the callee
// owns the array). Returns 0, or -1 with the error (a truncated or malformed file).
int mlxs_load_safetensors(const char* path,
                          void (*found)(void*, const char*, mlxs_array*), void* ctx) {
  return guard_status([&] {
    auto loaded = mx::load_safetensors(std::string(path), mx::Device::cpu);
    for (auto& [name, array] : loaded.first) found(ctx, name.c_str(), wrap(array));
  });
}

int mlxs_eval(mlxs_array* const* arrays, int n) {
  return guard_status([&] {
    std::vector<mx::array> v;
    for (int i = 0; i < n; i++) v.push_back(arrays[i]->a);
    mx::eval(v);
  });
}

// Evaluate `a` and copy its elements, row-major, into `out` (`bytes` long).
int mlxs_read(const mlxs_array* a, void* out, size_t bytes) {
  return guard_status([&] {
    mx::array c = mx::contiguous(a->a);
    c.eval();
    if (c.nbytes() != bytes) {
      throw std::invalid_argument("read of " + std::to_string(bytes) + " bytes from an array of " +
                                  std::to_string(c.nbytes()));
    }
    std::memcpy(out, c.data<void>(), bytes);
  });
}

mlxs_array* mlxs_zeros(const int* shape, int ndim, int dtype) {
  return guard([&] { return mx::zeros(shape_of(shape, ndim), dtype_of(dtype)); });
}
mlxs_array* mlxs_astype(const mlxs_array* a, int dtype) {
  return guard([&] { return mx::astype(a->a, dtype_of(dtype)); });
}
mlxs_array* mlxs_add(const mlxs_array* a, const mlxs_array* b) {
  return guard([&] { return mx::add(a->a, b->a); });
}
mlxs_array* mlxs_subtract(const mlxs_array* a, const mlxs_array* b) {
  return guard([&] { return mx::subtract(a->a, b->a); });
}
mlxs_array* mlxs_multiply(const mlxs_array* a, const mlxs_array* b) {
  return guard([&] { return mx::multiply(a->a, b->a); });
}
mlxs_array* mlxs_sigmoid(const mlxs_array* a) {
  return guard([&] { return mx::sigmoid(a->a); });
}
mlxs_array* mlxs_matmul(const mlxs_array* a, const mlxs_array* b) {
  return guard([&] { return mx::matmul(a->a, b->a); });
}
mlxs_array* mlxs_reshape(const mlxs_array* a, const int* shape, int ndim) {
  return guard([&] { return mx::reshape(a->a, shape_of(shape, ndim)); });
}
mlxs_array* mlxs_transpose(const mlxs_array* a, const int* axes, int n) {
  return guard([&] { return mx::transpose(a->a, std::vector<int>(axes, axes + n)); });
}
mlxs_array* mlxs_slice(const mlxs_array* a, const int* start, const int* stop, int n) {
  return guard([&] { return mx::slice(a->a, shape_of(start, n), shape_of(stop, n)); });
}
mlxs_array* mlxs_slice_update(const mlxs_array* src, const mlxs_array* update, const int* start,
                              const int* stop, int n) {
  return guard(
      [&] { return mx::slice_update(src->a, update->a, shape_of(start, n), shape_of(stop, n)); });
}
mlxs_array* mlxs_concatenate(const mlxs_array* a, const mlxs_array* b, int axis) {
  return guard([&] { return mx::concatenate({a->a, b->a}, axis); });
}
mlxs_array* mlxs_take(const mlxs_array* a, const mlxs_array* indices, int axis) {
  return guard([&] { return mx::take(a->a, indices->a, axis); });
}
mlxs_array* mlxs_where(const mlxs_array* cond, const mlxs_array* x, const mlxs_array* y) {
  return guard([&] { return mx::where(cond->a, x->a, y->a); });
}
mlxs_array* mlxs_argmax(const mlxs_array* a, int axis, bool keepdims) {
  return guard([&] { return mx::argmax(a->a, axis, keepdims); });
}
mlxs_array* mlxs_logsumexp(const mlxs_array* a, int axis, bool keepdims) {
  return guard([&] { return mx::logsumexp(a->a, axis, keepdims); });
}
mlxs_array* mlxs_rms_norm(const mlxs_array* x, const mlxs_array* weight, float eps) {
  return guard([&] { return mx::fast::rms_norm(x->a, weight->a, eps); });
}
mlxs_array* mlxs_rope(const mlxs_array* x, int dims, bool traditional, float base, float scale,
                      int offset) {
  return guard([&] { return mx::fast::rope(x->a, dims, traditional, base, scale, offset); });
}
mlxs_array* mlxs_sdpa(const mlxs_array* q, const mlxs_array* k, const mlxs_array* v, float scale,
                      bool causal) {
  return guard([&] {
    return mx::fast::scaled_dot_product_attention(q->a, k->a, v->a, scale, causal ? "causal" : "");
  });
}
// `biases` may be NULL. Mode "affine" is the one mlx-lm's 4/8-bit checkpoints use.
mlxs_array* mlxs_quantized_matmul(const mlxs_array* x, const mlxs_array* w,
                                  const mlxs_array* scales, const mlxs_array* biases,
                                  bool transpose, int group_size, int bits, const char* mode) {
  return guard([&] {
    std::optional<mx::array> b;
    if (biases) b = biases->a;
    return mx::quantized_matmul(x->a, w->a, scales->a, b, transpose, group_size, bits, mode);
  });
}
// `dtype` < 0: MLX's default (the scales' dtype).
mlxs_array* mlxs_dequantize(const mlxs_array* w, const mlxs_array* scales,
                            const mlxs_array* biases, int group_size, int bits, const char* mode,
                            int dtype) {
  return guard([&] {
    std::optional<mx::array> b;
    if (biases) b = biases->a;
    std::optional<mx::Dtype> d;
    if (dtype >= 0) d = dtype_of(dtype);
    return mx::dequantize(w->a, scales->a, b, group_size, bits, mode, std::nullopt, d);
  });
}

}  // extern "C"
