"""The model owner: load, generate, unload, and the prompt (KV) cache.

MLX is not thread-safe, so every method of ``Engine`` runs on the one MLX worker
thread that ``service.Service`` owns; nothing else touches the model. MLX and mlx-lm
are imported lazily (``warm_up``) so that the HTTP server can come up while they load.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import cpu
from .answer import Answer
from .constrain import input_only_processor
from .deadline import DeadlineExceeded, run_with_deadline
from .errors import ApiError, Cancelled
from .model_dir import context_length_of

log = logging.getLogger("local_mlx_sidecar")

# How many tokens mlx-lm's repetition penalty looks back (its default).
REPETITION_CONTEXT = 20

# A chat template renders in milliseconds; one that runs this long is looping.
RENDER_DEADLINE_SECONDS = 5.0


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

        answer = Answer(text, p.stop, on_text)
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
