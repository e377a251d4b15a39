"""The model owner: load, generate, unload, and the prompt (KV) cache.

MLX is not thread-safe, so every method of ``Engine`` runs on the one MLX worker
thread that ``service.Service`` owns; nothing else touches the model. MLX and mlx-lm
are imported lazily (``warm_up``) so that the HTTP server can come up while they load.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .constrain import input_only_processor
from .text import OPEN, ThinkFilter

log = logging.getLogger("local_mlx_sidecar")

# Keys under which model configs give the trained context length, in order of trust.
_CONTEXT_KEYS = (
    "max_position_embeddings",
    "max_sequence_length",
    "seq_length",
    "n_positions",
    "max_seq_len",
    "n_ctx",
)
# How many tokens mlx-lm's repetition penalty looks back (its default).
REPETITION_CONTEXT = 20


class ApiError(Exception):
    """An error with the HTTP status and the message the client gets."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Cancelled(Exception):
    """The client went away or the server is shutting down."""


@dataclass
class GenerateParams:
    prompt: str
    system: str | None
    max_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    constrain_to_input: bool = False


@dataclass
class GenerationResult:
    response: str
    tokens_generated: int
    prompt_tokens: int
    cached_tokens: int
    finish_reason: str
    prompt_tps: float
    generation_tps: float
    peak_memory: float


def validate_model_dir(path: str) -> str:
    """Check that ``path`` is a local model folder mlx-lm can load; return its real path.

    Raises ApiError(400) naming the path and what is missing. Never touches the network:
    mlx-lm would treat a path that does not exist as a Hub repo id and download it.
    """
    if not path or not path.strip():
        raise ApiError(400, "model_path is empty")
    try:
        p = Path(path)
        if not p.exists():
            raise ApiError(400, f"model_path does not exist: {path}")
        if not p.is_dir():
            raise ApiError(400, f"model_path is not a directory: {path}")
        config = p / "config.json"
        if not config.is_file():
            raise ApiError(400, f"{path} is not a model folder: config.json is missing")
        try:
            cfg = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"{path}/config.json is not valid JSON: {e}") from None
        if not isinstance(cfg, dict) or "model_type" not in cfg:
            raise ApiError(400, f"{path}/config.json has no model_type")
        weights = sorted(p.glob("model*.safetensors"))
        if not weights:
            raise ApiError(400, f"{path} is not a model folder: no model*.safetensors weight files")
        for w in weights:
            if not w.exists():  # a snapshot symlink whose blob is missing
                raise ApiError(400, f"weight file {w} is a broken link (blob missing)")
        names = [c.name for c in p.iterdir()]
        if not any(n.startswith(("tokenizer", "vocab")) or n.endswith(".tiktoken") for n in names):
            raise ApiError(
                400,
                f"{path} is not a model folder: no tokenizer files "
                "(tokenizer.json, tokenizer.model, tokenizer_config.json, ...)",
            )
        return os.path.realpath(p)
    except ApiError:
        raise
    except (OSError, ValueError) as e:  # ENAMETOOLONG, embedded NUL byte, EACCES, ...
        raise ApiError(400, f"model_path {path!r} cannot be used: {e}") from None


def context_length_of(config: dict) -> int | None:
    for cfg in (config, config.get("text_config") or {}):
        if not isinstance(cfg, dict):
            continue
        for key in _CONTEXT_KEYS:
            v = cfg.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def _with_history(proc: Callable[[Any, Any], Any], history: Any) -> Callable[[Any, Any], Any]:
    """A logits processor that also sees ``history``, the tokens before those fed."""
    import mlx.core as mx

    def wrapped(tokens: Any, logits: Any) -> Any:
        return proc(mx.concatenate([history, tokens]), logits)

    return wrapped


class Engine:
    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.path: str | None = None
        self.context_length: int | None = None
        self._cache: list[Any] | None = None  # KV cache holding exactly _cache_tokens
        self._cache_tokens: list[int] = []

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Import MLX and mlx-lm (a few seconds) before the first request needs them."""
        t = time.perf_counter()
        import mlx.core  # noqa: F401
        import mlx_lm  # noqa: F401
        import mlx_lm.generate  # noqa: F401
        import mlx_lm.models.cache  # noqa: F401
        import mlx_lm.sample_utils  # noqa: F401

        log.info("mlx and mlx-lm imported in %.2f s", time.perf_counter() - t)

    def load(self, real_path: str) -> None:
        """Release the current model, then load the one at ``real_path`` (validated)."""
        import mlx_lm

        self.unload()
        t = time.perf_counter()
        log.info("loading model from %s", real_path)
        error = None
        try:
            model, tokenizer, config = mlx_lm.load(real_path, return_config=True)
        except Exception as e:  # corrupt weights, unknown model_type, bad tokenizer...
            error = f"could not load the model at {real_path}: {type(e).__name__}: {e}"
        if error is not None:
            self._release()
            log.warning("%s", error)
            raise ApiError(400, error)
        self.model, self.tokenizer, self.path = model, tokenizer, real_path
        self.context_length = context_length_of(config)
        if not self.context_length:
            limit = getattr(getattr(tokenizer, "_tokenizer", None), "model_max_length", None)
            if isinstance(limit, int) and 0 < limit < 10_000_000:
                self.context_length = limit
        log.info(
            "model loaded in %.2f s (context %s tokens)",
            time.perf_counter() - t,
            self.context_length,
        )

    def unload(self) -> None:
        was = self.path
        self.model = self.tokenizer = self.path = None
        self.context_length = None
        self._release()
        if was:
            log.info("model unloaded: %s", was)

    def _release(self) -> None:
        import mlx.core as mx

        self._cache = None
        self._cache_tokens = []
        gc.collect()
        mx.clear_cache()

    # -- prompt ----------------------------------------------------------------------
    def render(self, prompt: str, system: str | None) -> str:
        """The text the model sees: the chat template with thinking off, if it has one."""
        tok = self.tokenizer
        if not getattr(tok, "has_chat_template", False):
            return f"{system}\n\n{prompt}" if system else prompt
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        kwargs = dict(tokenize=False, add_generation_prompt=True, enable_thinking=False)
        try:
            return tok.apply_chat_template(messages, **kwargs)
        except Exception as e:
            if not system:
                raise ApiError(400, f"the model's chat template failed: {e}") from None
        # Some templates reject a system role: fold it into the user message.
        merged = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
        try:
            return tok.apply_chat_template(merged, **kwargs)
        except Exception as e:
            raise ApiError(400, f"the model's chat template failed: {e}") from None

    def tokenize(self, text: str) -> list[int]:
        tok = self.tokenizer
        return list(tok.encode(text, add_special_tokens=not tok.has_chat_template))

    # -- generation ------------------------------------------------------------------
    def generate(
        self,
        p: GenerateParams,
        cancel: threading.Event,
        on_start: Callable[[], None] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> GenerationResult:
        """Generate an answer; call ``on_start`` once the request is accepted (checked
        against the model) and ``on_text`` with each piece of answer text."""
        import mlx.core as mx
        from mlx_lm.generate import stream_generate
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        if self.model is None:
            raise ApiError(409, "no model loaded: POST /load first")
        if cancel.is_set():
            raise Cancelled()
        text = self.render(p.prompt, p.system)
        tokens = self.tokenize(text)
        n = len(tokens)
        if n == 0:
            raise ApiError(400, "the prompt is empty")
        ctx = self.context_length
        if ctx and n >= ctx:
            raise ApiError(
                400,
                f"the prompt is {n} tokens long, longer than the model's context of "
                f"{ctx} tokens (leaving no room to generate)",
            )
        max_tokens = min(p.max_tokens, ctx - n) if ctx else p.max_tokens
        if on_start:
            on_start()

        cache, reused = self._take_cache(tokens)
        sampler = make_sampler(temp=p.temperature, top_p=p.top_p)
        processors = make_logits_processors(
            repetition_penalty=p.repetition_penalty,
            repetition_context_size=REPETITION_CONTEXT,
        )
        if reused and processors:
            # mlx-lm only sees the tokens we feed; let the penalty see the cached ones too,
            # so that a reused prefix gives the same result as a fresh prompt.
            history = mx.array(tokens[max(0, reused - REPETITION_CONTEXT) : reused])
            processors = [_with_history(proc, history) for proc in processors]
        if p.constrain_to_input:
            processors = [*processors, input_only_processor(self.tokenizer, p.prompt)]

        def progress(_done: int, _total: int) -> None:
            if cancel.is_set():
                raise Cancelled()

        filt = ThinkFilter(inside=text.rstrip().endswith(OPEN))
        pieces: list[str] = []

        def emit(piece: str) -> None:
            if piece:
                pieces.append(piece)
                if on_text:
                    on_text(piece)

        mx.reset_peak_memory()
        last = None
        try:
            for r in stream_generate(
                self.model,
                self.tokenizer,
                mx.array(tokens[reused:]),
                max_tokens=max_tokens,
                sampler=sampler,
                logits_processors=processors,
                prompt_cache=cache,
                prompt_progress_callback=progress,
            ):
                last = r
                emit(filt.feed(r.text))
                if cancel.is_set():
                    raise Cancelled()
            emit(filt.finish())
        except BaseException:
            self._cache, self._cache_tokens = None, []
            raise
        self._keep_cache(cache, tokens)
        assert last is not None  # stream_generate always yields a final response
        generated = last.generation_tokens - (1 if last.finish_reason == "stop" else 0)
        return GenerationResult(
            response="".join(pieces),
            tokens_generated=generated,
            prompt_tokens=n,
            cached_tokens=reused,
            finish_reason=last.finish_reason or "length",
            prompt_tps=float(last.prompt_tps),
            generation_tps=float(last.generation_tps),
            peak_memory=float(last.peak_memory),
        )

    def _take_cache(self, tokens: list[int]) -> tuple[list[Any], int]:
        """The KV cache to generate with and how many leading prompt tokens it holds.

        The cache of the previous request holds that request's prompt. Its longest common
        prefix with this prompt (at least one token is always left to process) is kept;
        the rest is trimmed. A cache that cannot be trimmed is replaced by a fresh one.
        """
        from mlx_lm.models.cache import (
            can_trim_prompt_cache,
            make_prompt_cache,
            trim_prompt_cache,
        )

        cache, old = self._cache, self._cache_tokens
        self._cache, self._cache_tokens = None, []
        if cache is not None and old:
            common = 0
            for a, b in zip(old, tokens):
                if a != b:
                    break
                common += 1
            common = min(common, len(tokens) - 1)
            drop = len(old) - common
            if common > 0 and (drop == 0 or can_trim_prompt_cache(cache)):
                if drop == 0 or trim_prompt_cache(cache, drop) == drop:
                    return cache, common
        return make_prompt_cache(self.model), 0

    def _keep_cache(self, cache: list[Any], tokens: list[int]) -> None:
        """Keep the cache for the next request, trimmed back to this prompt."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        offset = getattr(cache[0], "offset", None) if cache else None
        if not isinstance(offset, int) or offset < len(tokens):
            return
        extra = offset - len(tokens)
        if extra and (not can_trim_prompt_cache(cache) or trim_prompt_cache(cache, extra) != extra):
            return
        self._cache, self._cache_tokens = cache, tokens
