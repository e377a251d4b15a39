"""The CPU backend's speed: which BLAS MLX uses, and fp32 weights where memory allows.

On the CPU, MLX's quantized matmul does not use BLAS: a 4-bit model pre-fills a prompt
at the cost of decoding it token by token. With the quantized layers dequantized to
fp32 at load, matmuls go to BLAS, which is fast when the parent preloaded an optimized
one (the supervisor's ``blas.rs``: OpenBLAS through ``LD_PRELOAD``); with MLX's own
reference BLAS fp32 is no faster, so the weights stay quantized. The fp32 weights take
8x the memory of 4-bit ones, so they are used only within a budget, a share of
physical RAM (``LOCAL_MLX_CPU_FP32_MAX_RAM_PERCENT``, default 25);
``LOCAL_MLX_CPU_WEIGHTS=quantized|fp32|auto`` overrides the choice. On a GPU (Metal)
nothing changes.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("local_mlx_sidecar")

WEIGHTS_ENV = "LOCAL_MLX_CPU_WEIGHTS"
BUDGET_ENV = "LOCAL_MLX_CPU_FP32_MAX_RAM_PERCENT"
DEFAULT_BUDGET_PERCENT = 25.0
MODES = ("auto", "fp32", "quantized")
FP32_BYTES = 4


@dataclass(frozen=True)
class WeightsChoice:
    """Whether to dequantize, and why (for the load log)."""

    fp32: bool
    reason: str


def _env_mode(environ: dict[str, str]) -> str:
    mode = environ.get(WEIGHTS_ENV, "").strip().lower() or "auto"
    if mode not in MODES:
        log.warning(
            "%s=%r is not one of %s; using auto", WEIGHTS_ENV, environ[WEIGHTS_ENV], "|".join(MODES)
        )
        return "auto"
    return mode


def _env_budget_percent(environ: dict[str, str]) -> float:
    raw = environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_PERCENT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        log.warning(
            "%s=%r is not a percentage from 0 to 100; using %g",
            BUDGET_ENV,
            raw,
            DEFAULT_BUDGET_PERCENT,
        )
        return DEFAULT_BUDGET_PERCENT
    return value


def choose_weights(
    *,
    on_cpu: bool,
    quantized: bool,
    fast_blas: bool,
    mode: str,
    fp32_bytes: int,
    ram_bytes: int | None,
    budget_percent: float,
) -> WeightsChoice:
    """The decision, from values only (tested as a table)."""
    if not quantized:
        return WeightsChoice(False, "the model is not quantized")
    if not on_cpu:
        return WeightsChoice(False, "MLX runs on the GPU")
    if mode == "quantized":
        return WeightsChoice(False, f"{WEIGHTS_ENV}=quantized")
    if mode == "fp32":
        return WeightsChoice(True, f"{WEIGHTS_ENV}=fp32")
    if not fast_blas:
        return WeightsChoice(False, "no optimized BLAS is loaded: fp32 would be no faster")
    if ram_bytes is None:
        return WeightsChoice(False, "physical RAM is unknown")
    budget = ram_bytes * budget_percent / 100
    size = f"{fp32_bytes / 2**20:.0f} MiB"
    limit = f"{budget_percent:g} % of RAM, {budget / 2**20:.0f} MiB"
    if fp32_bytes <= budget:
        return WeightsChoice(True, f"fp32 weights ({size}) fit the budget ({limit})")
    return WeightsChoice(
        False, f"fp32 weights ({size}) exceed the budget ({limit}; {BUDGET_ENV} sets it)"
    )


def physical_ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def blas_in_use() -> str:
    """The BLAS this process runs MLX's matmuls with, for /status and the load log."""
    if sys.platform == "darwin":
        return "Accelerate"
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return "unknown"
    names = sorted(os.path.basename(p) for p in paths)
    for marker, label in (
        ("libopenblas", "OpenBLAS"),
        ("libmkl_rt", "MKL"),
        ("libblis", "BLIS"),
    ):
        hit = next((n for n in names if n.startswith(marker)), None)
        if hit:
            return f"{label} ({hit})"
    if any(n.startswith("libblas-") for n in names):
        return "reference BLAS (bundled with mlx, slow: install OpenBLAS)"
    return "unknown"


def is_fast(blas: str) -> bool:
    """Whether ``blas`` (from :func:`blas_in_use`) is an optimized BLAS."""
    return blas.startswith(("OpenBLAS", "MKL", "BLIS", "Accelerate"))


def _quantized_layers(model: Any) -> list[tuple[str, Any]]:
    import mlx.nn as nn

    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding))
    ]


def fp32_size(model: Any) -> int:
    """The model's parameters' bytes in fp32, quantized layers counted dequantized."""
    from mlx.utils import tree_flatten

    quantized = dict(_quantized_layers(model))
    total = 0
    for name, array in tree_flatten(model.parameters()):
        layer, _, leaf = name.rpartition(".")
        if layer in quantized:
            if leaf == "weight":  # uint32 words, each packing 32 / bits values
                rows, words = array.shape
                total += rows * words * 32 // quantized[layer].bits * FP32_BYTES
            elif leaf == "bias":
                total += array.size * FP32_BYTES
            continue  # scales and biases of the quantization go away
        total += array.size * FP32_BYTES
    return total


def dequantize(model: Any) -> None:
    """Replace the quantized linear and embedding layers by fp32 ones, and cast the other
    floating parameters to fp32, in place (the same function up to float rounding)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten, tree_map, tree_unflatten

    def fp32(a: Any) -> Any:
        return None if a is None else a.astype(mx.float32)

    replaced = []
    for name, m in _quantized_layers(model):
        # With fp32 scales the result is fp32 directly, and 4x faster than in float16.
        weight = mx.dequantize(
            m.weight, fp32(m.scales), fp32(m.get("biases")), m.group_size, m.bits, mode=m.mode
        )
        if isinstance(m, nn.QuantizedLinear):
            layer = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in m)
            if "bias" in m:
                layer.bias = fp32(m.bias)
        else:
            layer = nn.Embedding(weight.shape[0], weight.shape[1])
        layer.weight = weight
        replaced.append((name, layer))
        mx.eval(layer.parameters())  # one layer at a time: the peak stays one layer over
    model.update_modules(tree_unflatten(replaced))
    model.update(
        tree_map(
            lambda a: a.astype(mx.float32) if mx.issubdtype(a.dtype, mx.floating) else a,
            model.parameters(),
        )
    )
    mx.eval([a for _, a in tree_flatten(model.parameters())])


def weights_dtype(model: Any) -> str:
    """How the weights are stored: e.g. ``4-bit`` (quantized), ``float32``, ``bfloat16``."""
    from mlx.utils import tree_flatten

    layers = _quantized_layers(model)
    if layers:
        bits = sorted({m.bits for _, m in layers})
        return "/".join(f"{b}-bit" for b in bits)
    dtypes = {str(a.dtype).rpartition(".")[2] for _, a in tree_flatten(model.parameters())}
    return "/".join(sorted(dtypes))


# Pre-fill runs in steps, and a cancel is seen between steps only: a step must take well
# under a second wherever the model runs. Measured on a 2-core CPU with smol: ~5 ms per
# token with fp32 weights and OpenBLAS (64 tokens ≈ 0.3 s); ~95 ms per token with 4-bit
# weights, where a step gains nothing from batching (k tokens cost k×), so 8 tokens
# (≈ 0.8 s). A GPU keeps mlx-lm's own step (its steps are fast and batching pays).
PREFILL_STEP_CPU_FP32 = 64
PREFILL_STEP_CPU_QUANTIZED = 8
PREFILL_STEP_GPU = 2048


def prefill_step(on_cpu: bool, weights: str) -> int:
    """Tokens per pre-fill step for a model whose weights are ``weights``
    (:func:`weights_dtype`) on the CPU or not."""
    if not on_cpu:
        return PREFILL_STEP_GPU
    return PREFILL_STEP_CPU_QUANTIZED if "bit" in weights else PREFILL_STEP_CPU_FP32


def prepare(model: Any, environ: dict[str, str] | None = None) -> str:
    """At load: dequantize ``model`` to fp32 when the choice says so; return why."""
    import mlx.core as mx

    environ = dict(os.environ) if environ is None else environ
    quantized = bool(_quantized_layers(model))
    choice = choose_weights(
        on_cpu=mx.default_device() == mx.cpu,
        quantized=quantized,
        fast_blas=is_fast(blas_in_use()),
        mode=_env_mode(environ),
        fp32_bytes=fp32_size(model) if quantized else 0,
        ram_bytes=physical_ram_bytes(),
        budget_percent=_env_budget_percent(environ),
    )
    if choice.fp32:
        dequantize(model)
    return choice.reason
