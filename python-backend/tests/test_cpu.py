"""fp32 weights on a CPU: the choice, the same answers as 4-bit, and what /status says."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OPENBLAS_ENV, TOKEN, _clean_env, chat
from local_mlx_sidecar import cpu

GiB = 2**30
PROMPTS = [
    "Hello there, how are you?",
    "The capital of France is",
    "um so we should uh meet tomorrow at the the office",
    "1 2 3 4 5",
    "Write a haiku about rain.",
]
# Logits of the two paths differ by float rounding only (the 4-bit path computes in the
# scales' float16): measured at most 0.1 % (tiny) and 0.15 % (smol) of the largest logit.
LOGIT_TOLERANCE = 0.005
GREEDY_TOKENS = 16


def _choice(**kw: Any) -> cpu.WeightsChoice:
    args: dict[str, Any] = dict(
        on_cpu=True,
        quantized=True,
        fast_blas=True,
        mode="auto",
        fp32_bytes=1 * GiB,
        ram_bytes=16 * GiB,
        budget_percent=25.0,
    )
    args.update(kw)
    return cpu.choose_weights(**args)


@pytest.mark.parametrize(
    ("kw", "fp32", "says"),
    [
        ({}, True, "fit the budget"),
        ({"fp32_bytes": 4 * GiB}, True, "fit"),  # exactly 25 %
        ({"fp32_bytes": 4 * GiB + 1}, False, "exceed the budget"),
        ({"budget_percent": 0.0}, False, "exceed"),
        ({"on_cpu": False}, False, "GPU"),
        ({"on_cpu": False, "mode": "fp32"}, False, "GPU"),
        ({"quantized": False, "mode": "fp32"}, False, "not quantized"),
        ({"fast_blas": False}, False, "no optimized BLAS"),
        ({"fast_blas": False, "mode": "fp32"}, True, "=fp32"),
        ({"fp32_bytes": 100 * GiB, "mode": "fp32"}, True, "=fp32"),
        ({"mode": "quantized"}, False, "=quantized"),
        ({"ram_bytes": None}, False, "RAM is unknown"),
    ],
)
def test_the_choice_of_weights(kw: dict[str, Any], fp32: bool, says: str) -> None:
    choice = _choice(**kw)
    assert choice.fp32 is fp32, choice
    assert says in choice.reason, choice


def test_bad_settings_fall_back_to_auto_and_the_default_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="local_mlx_sidecar"):
        assert cpu._env_mode({cpu.WEIGHTS_ENV: "FP32"}) == "fp32"
        assert cpu._env_mode({}) == "auto"
        assert cpu._env_mode({cpu.WEIGHTS_ENV: "fast"}) == "auto"
        assert cpu._env_budget_percent({cpu.BUDGET_ENV: "10"}) == 10.0
        assert cpu._env_budget_percent({cpu.BUDGET_ENV: "150"}) == cpu.DEFAULT_BUDGET_PERCENT
        assert cpu._env_budget_percent({cpu.BUDGET_ENV: "lots"}) == cpu.DEFAULT_BUDGET_PERCENT
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3, warnings
    assert "'fast' is not one of auto|fp32|quantized" in warnings[0]
    assert "not a percentage" in warnings[1]


def _both(path: Path) -> tuple[Any, Any, Any]:
    """The model as stored (quantized) and dequantized by ``cpu.prepare``, and the tokenizer."""
    import mlx_lm

    quantized, tokenizer = mlx_lm.load(str(path))
    fp32, _ = mlx_lm.load(str(path))
    predicted = cpu.fp32_size(fp32)
    reason = cpu.prepare(fp32, {cpu.WEIGHTS_ENV: "fp32"})
    assert reason == f"{cpu.WEIGHTS_ENV}=fp32"
    assert cpu.weights_dtype(quantized).endswith("-bit")
    assert cpu.weights_dtype(fp32) == "float32"
    from mlx.utils import tree_flatten

    # The budget is checked against what the fp32 weights really take.
    assert predicted == sum(a.nbytes for _, a in tree_flatten(fp32.parameters()))
    return quantized, fp32, tokenizer


def _greedy(model: Any, ids: list[int], n: int) -> list[int]:
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    logits = model(mx.array([ids]), cache=cache)
    out = []
    for _ in range(n):
        token = int(mx.argmax(logits[0, -1]).item())
        out.append(token)
        logits = model(mx.array([[token]]), cache=cache)
    return out


def _same_answers(path: Path) -> None:
    import mlx.core as mx

    quantized, fp32, tokenizer = _both(path)
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        a = quantized(mx.array([ids])).astype(mx.float32)
        b = fp32(mx.array([ids]))
        assert b.dtype == mx.float32
        diff, scale = mx.abs(a - b).max().item(), mx.abs(a).max().item()
        assert diff <= LOGIT_TOLERANCE * scale, f"{prompt!r}: logits differ by {diff} (max {scale})"
        assert _greedy(quantized, ids, GREEDY_TOKENS) == _greedy(fp32, ids, GREEDY_TOKENS), prompt


def test_fp32_weights_give_the_same_answers_on_tiny(tiny: Path) -> None:
    _same_answers(tiny)


@pytest.mark.smol
def test_fp32_weights_give_the_same_answers_on_smol(smol: Path) -> None:
    _same_answers(smol)


@pytest.fixture
def sidecar_with(spawn: Any) -> Iterator[Any]:
    def make(**env: str) -> Any:
        return spawn(env=_clean_env(LOCAL_MLX_TOKEN=TOKEN, **env))

    yield make


@pytest.mark.parametrize(
    ("env", "weights"),
    [
        ({cpu.WEIGHTS_ENV: "fp32"}, "float32"),
        ({cpu.WEIGHTS_ENV: "quantized"}, "4-bit"),
        # auto, with no room for fp32 weights
        ({cpu.BUDGET_ENV: "0"}, "4-bit"),
        # auto: fp32 when an optimized BLAS is loaded (the tiny model fits any budget)
        ({}, "float32" if OPENBLAS_ENV else "4-bit"),
    ],
)
def test_status_says_how_the_weights_are_stored_and_which_blas(
    sidecar_with: Any, tiny: Path, env: dict[str, str], weights: str
) -> None:
    s = sidecar_with(**env)
    s.load(tiny)
    st = s.status()
    assert st["weights"] == weights, st
    if OPENBLAS_ENV:
        assert st["blas"].startswith("OpenBLAS ("), st
    else:
        assert st["blas"] and st["blas"] != "OpenBLAS", st
    r = s.generate(messages=chat("Hello"), max_tokens=4, temperature=0)
    assert r["tokens_generated"] > 0, r
    assert f"weights {weights}" in s.stderr(), "the load log says how the weights are stored"
    s.client.post("/unload")
    assert s.status()["weights"] is None
