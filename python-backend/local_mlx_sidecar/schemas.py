"""The JSON of every endpoint, field for field (the original API's fields first, then our extensions).

Requests are validated strictly: a field of the wrong JSON type (``"150"`` for
``max_tokens``, ``true`` for a number) is a 422 naming the field, never coerced.
Unknown fields are ignored. Ranges are checked by the route and answered with 400.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LIMITS_ENV = "LOCAL_MLX_LIMITS"
# The limits and defaults, by the names the Rust core sends in LIMITS_ENV at spawn (one
# JSON object, `SidecarLimits` in sidecar/client.rs), so the core's checks are ours.
# Run on its own (tests, by hand), the server uses these, the original API's numbers.
STANDALONE_LIMITS: dict[str, float] = {
    "max_tokens_cap": 8192,  # the largest max_tokens accepted (400 above it)
    "max_stop": 4,  # stop strings per request, as OpenAI allows
    "max_temperature": 2.0,  # temperature is in [0, max_temperature]
    "max_repetition_penalty": 10.0,  # repetition_penalty is in (0, max_repetition_penalty]
    # Defaults for callers that leave a field out (the core sends every value).
    "default_max_tokens": 150,
    "default_temperature": 0.7,
    "default_top_p": 0.8,
    "default_repetition_penalty": 1.0,  # none, as OpenAI and mlx_lm.server (docs/QUALITY.md)
}


def limits_from(environ: Mapping[str, str]) -> dict[str, float]:
    """The limits the core passed in ``LIMITS_ENV``, else ``STANDALONE_LIMITS``.

    A value that is not exactly those names with numbers is refused: a sidecar checking
    other numbers than its core's would answer 400 to requests the core let through.
    """
    raw = environ.get(LIMITS_ENV)
    if not raw:
        return dict(STANDALONE_LIMITS)
    try:
        given = json.loads(raw)
    except ValueError:
        given = None
    if (
        not isinstance(given, dict)
        or set(given) != set(STANDALONE_LIMITS)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in given.values())
    ):
        raise ValueError(
            f"{LIMITS_ENV} must be a JSON object of numbers named {sorted(STANDALONE_LIMITS)}, "
            f"got {raw!r}: the sidecar and local-mlx come from different versions; reinstall"
        )
    return given


_LIMITS = limits_from(os.environ)
MAX_TOKENS_CAP = int(_LIMITS["max_tokens_cap"])
MAX_STOP = int(_LIMITS["max_stop"])
MAX_TEMPERATURE = float(_LIMITS["max_temperature"])
MAX_REPETITION_PENALTY = float(_LIMITS["max_repetition_penalty"])
DEFAULT_MAX_TOKENS = int(_LIMITS["default_max_tokens"])
DEFAULT_TEMPERATURE = float(_LIMITS["default_temperature"])
DEFAULT_TOP_P = float(_LIMITS["default_top_p"])
DEFAULT_REPETITION_PENALTY = float(_LIMITS["default_repetition_penalty"])
# Ours alone (the core has no such limit): all messages together; longer is
# refused before tokenizing.
MAX_PROMPT_CHARS = 1_000_000


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", protected_namespaces=())


class LoadRequest(_Request):
    model_path: str = Field(description="A local model folder (e.g. a Hugging Face snapshot).")


class LoadResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    status: Literal["loaded"]
    model_path: str = Field(description="The path as the request gave it.")
    context_length: int | None = Field(
        None, description="Extension: the model's context, in tokens."
    )


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(_Request):
    messages: list[ChatMessage] = Field(
        description="The conversation; the last user message is the text to answer."
    )
    max_tokens: int = Field(
        DEFAULT_MAX_TOKENS,
        description=f"1..{MAX_TOKENS_CAP}; lowered to what fits in the model's context.",
    )
    temperature: float = Field(DEFAULT_TEMPERATURE, description="0..2; 0 is greedy.")
    top_p: float | None = Field(None, description=f"Extension: (0, 1]; default {DEFAULT_TOP_P}.")
    repetition_penalty: float | None = Field(
        None, description=f"Extension: (0, 10]; default {DEFAULT_REPETITION_PENALTY}."
    )
    stream: bool = Field(False, description="Extension: stream newline-delimited JSON events.")
    enable_thinking: bool = Field(
        False,
        description="Extension: render the chat template with thinking on; the think text "
        "comes back in `reasoning`, never in `response`.",
    )
    stop: list[str] | None = Field(
        None,
        description=f"Extension: up to {MAX_STOP} non-empty strings; the answer ends before "
        "the first one it contains (finish_reason `stop`).",
    )
    seed: int | None = Field(None, description="Extension: seeds MLX's sampler (0..2**64-1).")
    constrain_to_input: bool = Field(
        False,
        description="Extension: emit only the words of the last user message, punctuation and digits.",
    )


class GenerateResponse(BaseModel):
    response: str
    tokens_generated: int
    reasoning: str | None = Field(
        None, description="Extension: with `enable_thinking`, the think text (else null)."
    )
    prompt_tokens: int = Field(description="Extension: tokens in the templated prompt.")
    cached_tokens: int = Field(
        description="Extension: leading prompt tokens reused from the KV cache, not pre-filled."
    )
    finish_reason: Literal["stop", "length"] = Field(
        description="Extension: `stop` (end of turn or a stop string) or `length` (max_tokens or context reached)."
    )
    prompt_tps: float = Field(description="Extension: pre-fill speed, tokens/s.")
    generation_tps: float = Field(description="Extension: generation speed, tokens/s.")
    peak_memory: float = Field(description="Extension: MLX peak memory during the request, GB.")


class UnloadResponse(BaseModel):
    status: Literal["unloaded"]
    model_loaded: Literal[False]


class StatusResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    status: Literal["running"]
    model_loaded: bool
    model_path: str | None
    state: Literal["idle", "loading", "ready"] = Field(
        description="Extension: `ready` only when a model is loaded and no load is under way."
    )
    loading_path: str | None = Field(description="Extension: the model being loaded.")
    generating: bool = Field(description="Extension: a generation is running.")
    queued: int = Field(description="Extension: generations waiting.")
    loads_queued: int = Field(description="Extension: /load requests received and not done.")
    unloads_queued: int = Field(description="Extension: /unload requests received and not done.")
    mlx_ready: bool = Field(description="Extension: MLX and mlx-lm are imported.")
    context_length: int | None = Field(description="Extension: the loaded model's context.")
    weights: str | None = Field(
        default=None,
        description="Extension: how the loaded weights are stored: `4-bit`, `float32`, ... "
        "(on a CPU, quantized weights are dequantized to fp32 when memory allows).",
    )
    blas: str | None = Field(
        default=None,
        description="Extension: the BLAS MLX's matmuls run with (known once MLX is imported).",
    )
    active_memory_bytes: int | None = Field(description="Extension: MLX active memory.")
    peak_memory_bytes: int | None = Field(
        description="Extension: MLX peak memory since the last generation began."
    )
    cache_memory_bytes: int | None = Field(description="Extension: MLX buffer cache.")
    pid: int = Field(description="Extension: this process (uv run is its parent).")


class ErrorResponse(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str = Field(description="The field, e.g. `max_tokens` (`body` for the body itself).")
    message: str


class ValidationErrorResponse(BaseModel):
    detail: str = Field(description="`invalid request: <field>: <message>; ...`")
    errors: list[FieldError]
