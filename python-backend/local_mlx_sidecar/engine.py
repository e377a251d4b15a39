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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cpu
from .constrain import input_only_processor
from .deadline import DeadlineExceeded, run_with_deadline
from .text import OPEN, StopFilter, ThinkFilter, Trim

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

# What a model folder may ask for, checked before mlx-lm reads it (a hostile repo must
# fail fast with a 400, not balloon or wedge the sidecar).
MAX_CONFIG_BYTES = 8 * 2**20  # real configs are kilobytes; per-layer quantization: ~1 MB
# A chat template renders in milliseconds; one that runs this long is looping.
RENDER_DEADLINE_SECONDS = 5.0
# config.json's size fields, under the names model families use (text_config too).
_LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
_WIDTH = ("hidden_size", "d_model", "n_embd")
_VOCAB = ("vocab_size", "n_vocab", "padded_vocab_size")
# Every layer holds at least a width x width matrix and the embedding vocab x width, at
# no less than 1 bit a parameter (mlx quantizes to 2 bits at the least): weight files
# smaller than that cannot hold the model the config describes.
_BITS_PER_PARAMETER_AT_LEAST = 1


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
    messages: list[dict[str, str]]  # {"role": "system"|"user"|"assistant", "content": str}
    max_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    enable_thinking: bool = False
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    constrain_to_input: bool = False


@dataclass
class GenerationResult:
    response: str
    tokens_generated: int
    reasoning: str | None
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
        size = config.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ApiError(
                400,
                f"{path}/config.json is {size / 2**20:.0f} MiB, more than the "
                f"{MAX_CONFIG_BYTES // 2**20} MiB a model config can need",
            )
        try:
            cfg = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"{path}/config.json is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError(400, f"{path}/config.json is nested too deeply to be a config") from None
        if not isinstance(cfg, dict) or "model_type" not in cfg:
            raise ApiError(400, f"{path}/config.json has no model_type")
        weights = sorted(p.glob("model*.safetensors"))
        if not weights:
            raise ApiError(400, f"{path} is not a model folder: no model*.safetensors weight files")
        for w in weights:
            if not w.exists():  # a snapshot symlink whose blob is missing
                raise ApiError(400, f"weight file {w} is a broken link (blob missing)")
        _check_sizes(cfg, sum(w.stat().st_size for w in weights), path)
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


def _check_sizes(cfg: dict, weight_bytes: int, path: str) -> None:
    """400 naming the field if config.json describes a model its weight files cannot hold.

    mlx-lm builds one Python object per layer before it reads a weight: a config that
    claims a million layers grows the process by gigabytes before any check of the
    weights could fail.
    """
    for where, section in (("", cfg), ("text_config.", cfg.get("text_config"))):
        if not isinstance(section, dict):
            continue
        sizes = {}
        for names in (_LAYERS, _WIDTH, _VOCAB):
            for name in names:
                value = section.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ApiError(
                        400, f"{path}/config.json: {where}{name} must be a positive integer"
                    )
                sizes[names] = (f"{where}{name}", value)
        if _WIDTH not in sizes:
            continue
        width_name, width = sizes[_WIDTH]
        # Parameters per layer, and per vocabulary entry.
        for names, per_unit in ((_LAYERS, width * width), (_VOCAB, width)):
            if names not in sizes:
                continue
            name, value = sizes[names]
            needed = value * per_unit * _BITS_PER_PARAMETER_AT_LEAST // 8
            if needed > weight_bytes:
                raise ApiError(
                    400,
                    f"{path}/config.json: {name} = {value} with {width_name} = {width} "
                    f"describes at least {_bytes(needed)} of weights, but the weight files "
                    f"hold {_bytes(weight_bytes)}; the config does not match the weights",
                )


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def context_length_of(config: dict) -> int | None:
    for cfg in (config, config.get("text_config") or {}):
        if not isinstance(cfg, dict):
            continue
        for key in _CONTEXT_KEYS:
            v = cfg.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def prompt_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    """The original API's `prompt` (+ `system`) as a conversation: an empty system is none."""
    messages = [{"role": "user", "content": prompt}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with its system messages put before the first user message."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    first_user = next((m for m in rest if m["role"] == "user"), None)
    if first_user is None:
        return [{"role": "user", "content": system}, *rest]
    first_user["content"] = f"{system}\n\n{first_user['content']}"
    return rest


def _with_history(proc: Callable[[Any, Any], Any], history: Any) -> Callable[[Any, Any], Any]:
    """A logits processor that also sees ``history``, the tokens before those fed."""
    import mlx.core as mx

    def wrapped(tokens: Any, logits: Any) -> Any:
        return proc(mx.concatenate([history, tokens]), logits)

    return wrapped


def _prefill_progress(
    on_prefill: Callable[[int, int], None] | None, cancel: threading.Event
) -> Callable[[int, int], None]:
    """mlx-lm's pre-fill callback: report the step, and stop if cancelled."""

    def progress(done: int, total: int) -> None:
        if on_prefill:
            on_prefill(done, total)
        if cancel.is_set():
            log.info("generation cancelled during pre-fill, after %d of %d tokens", done, total)
            raise Cancelled()

    return progress


class _Answer:
    """Answer text on its way out: think blocks out, then stop strings, then the
    whitespace the stop string left at the end; each piece kept and given to ``on_text``."""

    def __init__(self, prompt: str, stop: list[str], on_text: Callable[[str], None] | None) -> None:
        self.think = ThinkFilter(inside=prompt.rstrip().endswith(OPEN))
        self.stopper = StopFilter(stop)
        self.trim = Trim()
        self.pieces: list[str] = []
        self.on_text = on_text

    def feed(self, text: str) -> None:
        self._emit(self.stopper.feed(self.think.feed(text)))

    def finish(self) -> None:
        """The text the filters held back, unless a stop string ended the answer."""
        if not self.stopper.stopped:
            self._emit(self.stopper.feed(self.think.finish()))
            self._emit(self.stopper.finish())

    def _emit(self, piece: str) -> None:
        piece = self.trim.feed(piece)
        if piece:
            self.pieces.append(piece)
            if self.on_text:
                self.on_text(piece)


class Engine:
    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.path: str | None = None
        self.context_length: int | None = None
        self.weights: str | None = None  # how the loaded weights are stored ("4-bit", ...)
        self.prefill_step = cpu.PREFILL_STEP_GPU  # tokens per pre-fill step (a cancel point)
        self.blas: str | None = None  # the BLAS MLX's matmuls run with (after warm_up)
        self._cache: list[Any] | None = None  # KV cache holding exactly _cache_tokens
        self._cache_tokens: list[int] = []

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Import MLX and mlx-lm (a few seconds) before the first request needs them."""
        t = time.perf_counter()
        import mlx.core
        import mlx_lm  # noqa: F401
        import mlx_lm.generate  # noqa: F401
        import mlx_lm.models.cache  # noqa: F401
        import mlx_lm.sample_utils  # noqa: F401

        log.info("mlx and mlx-lm imported in %.2f s", time.perf_counter() - t)
        self.blas = cpu.blas_in_use()
        log.info("MLX runs on the %s; BLAS: %s", mlx.core.default_device(), self.blas)

    def load(self, real_path: str) -> None:
        """Release the current model, then load the one at ``real_path`` (validated)."""
        import mlx.core as mx
        import mlx_lm

        self.unload()
        t = time.perf_counter()
        log.info("loading model from %s", real_path)
        error = None
        try:
            model, tokenizer, config = mlx_lm.load(real_path, return_config=True)
            why = cpu.prepare(model)
        except Exception as e:  # corrupt weights, unknown model_type, bad tokenizer...
            error = f"could not load the model at {real_path}: {type(e).__name__}: {e}"
        if error is not None:
            self._release()
            log.warning("%s", error)
            raise ApiError(400, error)
        self.model, self.tokenizer, self.path = model, tokenizer, real_path
        self.weights = cpu.weights_dtype(model)
        self.prefill_step = cpu.prefill_step(mx.default_device() == mx.cpu, self.weights)
        self.context_length = context_length_of(config)
        if not self.context_length:
            limit = getattr(getattr(tokenizer, "_tokenizer", None), "model_max_length", None)
            if isinstance(limit, int) and 0 < limit < 10_000_000:
                self.context_length = limit
        log.info(
            "model loaded in %.2f s (context %s tokens; weights %s: %s; BLAS: %s)",
            time.perf_counter() - t,
            self.context_length,
            self.weights,
            why,
            self.blas,
        )

    def unload(self) -> None:
        was = self.path
        self.model = self.tokenizer = self.path = None
        self.context_length = None
        self.weights = None
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
    def render(self, messages: list[dict[str, str]], enable_thinking: bool = False) -> str:
        """The text the model sees: the chat template (thinking as asked), if it has one.

        The template is the model repository's code: it runs under a deadline
        (``deadline.py``), and one that fails or runs over is a 400 naming it.
        """
        tok = self.tokenizer
        if not getattr(tok, "has_chat_template", False):
            return "\n\n".join(m["content"] for m in messages)
        try:
            return self._apply_template(messages, enable_thinking)
        except ApiError:
            raise
        except Exception as e:
            if not any(m["role"] == "system" for m in messages):
                raise ApiError(400, f"the model's chat template failed: {e}") from None
        # Some templates reject a system role: fold it into the first user message.
        try:
            return self._apply_template(_fold_system(messages), enable_thinking)
        except ApiError:
            raise
        except Exception as e:
            raise ApiError(400, f"the model's chat template failed: {e}") from None

    def _apply_template(self, messages: list[dict[str, str]], enable_thinking: bool = False) -> str:
        kwargs = dict(tokenize=False, add_generation_prompt=True, enable_thinking=enable_thinking)
        try:
            return run_with_deadline(
                RENDER_DEADLINE_SECONDS, self.tokenizer.apply_chat_template, messages, **kwargs
            )
        except DeadlineExceeded:
            raise ApiError(
                400,
                f"the model's chat template (tokenizer_config.json: chat_template) did not "
                f"finish rendering within {RENDER_DEADLINE_SECONDS:g} s: it loops; "
                "this model folder cannot be used",
            ) from None

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
        on_prefill: Callable[[int, int], None] | None = None,
    ) -> GenerationResult:
        """Generate an answer; call ``on_start`` once the request is accepted (checked
        against the model), ``on_prefill`` with (tokens pre-filled, prompt tokens) after
        each pre-fill step and ``on_text`` with each piece of answer text. ``cancel`` is
        seen between pre-fill steps and between generated tokens."""
        import mlx.core as mx
        from mlx_lm.generate import stream_generate

        if self.model is None:
            raise ApiError(409, "no model loaded: POST /load first")
        if cancel.is_set():
            raise Cancelled()
        text, tokens, max_tokens = self._prompt(p)
        n = len(tokens)
        if on_start:
            on_start()

        cache, reused = self._take_cache(tokens)
        log.info(
            "generating: %d prompt tokens (%d from the cache), at most %d new",
            n,
            reused,
            max_tokens,
        )
        if p.seed is not None:
            mx.random.seed(p.seed)
        sampler, processors = self._sampling(p, tokens, reused)

        answer = _Answer(text, p.stop, on_text)
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
                prefill_step_size=self.prefill_step,
                prompt_progress_callback=_prefill_progress(on_prefill, cancel),
            ):
                last = r
                answer.feed(r.text)
                if answer.stopper.stopped:
                    break
                if cancel.is_set():
                    raise Cancelled()
            answer.finish()
        except BaseException as e:
            self._cache, self._cache_tokens = None, []
            if isinstance(e, Cancelled):
                done = last.generation_tokens if last is not None else 0
                log.info("generation cancelled after %d tokens", done)
            raise
        self._keep_cache(cache, tokens)
        assert last is not None  # stream_generate always yields a final response
        generated = last.generation_tokens - (1 if last.finish_reason == "stop" else 0)
        finish = "stop" if answer.stopper.stopped else last.finish_reason or "length"
        return GenerationResult(
            response="".join(answer.pieces),
            tokens_generated=generated,
            reasoning=answer.think.reasoning if p.enable_thinking else None,
            prompt_tokens=n,
            cached_tokens=reused,
            finish_reason=finish,
            prompt_tps=float(last.prompt_tps),
            generation_tps=float(last.generation_tps),
            peak_memory=float(last.peak_memory),
        )

    def _prompt(self, p: GenerateParams) -> tuple[str, list[int], int]:
        """The rendered prompt, its tokens, and the budget that fits in the context."""
        text = self.render(p.messages, p.enable_thinking)
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
        return text, tokens, max_tokens

    def _sampling(self, p: GenerateParams, tokens: list[int], reused: int) -> tuple[Any, list[Any]]:
        """The sampler and logits processors of ``p``, the penalty seeing the ``reused``
        prompt tokens the cache holds."""
        import mlx.core as mx
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

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
            # The words a clean-up may use: the last user message's (the transcript, or
            # the whole template when the transcript sits inside it).
            source = next((m["content"] for m in reversed(p.messages) if m["role"] == "user"), "")
            processors = [*processors, input_only_processor(self.tokenizer, source)]
        return sampler, processors

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
