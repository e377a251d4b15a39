"""The engine in-process: what the model is actually fed when the KV cache is reused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import chat
from local_mlx_sidecar import cpu
from local_mlx_sidecar.engine import Engine, GenerateParams
from local_mlx_sidecar.errors import Cancelled
from local_mlx_sidecar.model_dir import validate_model_dir


class CountingModel:
    """Forwards to the real model and counts the tokens each call feeds it."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.fed = 0

    def __call__(self, inputs: Any, *args: Any, **kw: Any) -> Any:
        self.fed += int(inputs.shape[-1])
        return self._model(inputs, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def engine(tiny: Path) -> Iterator[Engine]:
    e = Engine()
    e.warm_up()
    e.load(validate_model_dir(str(tiny)))
    e.model = CountingModel(e.model)
    yield e
    e.unload()


def _run(
    e: Engine, prompt: str = "x", system: str | None = None, **kw: Any
) -> tuple[dict[str, Any], int]:
    p = dict(
        messages=chat(prompt, system),
        max_tokens=1,
        temperature=0.0,
        top_p=0.8,
        repetition_penalty=1.15,
    )
    p.update(kw)
    before = e.model.fed
    r = e.generate(GenerateParams(**p), threading.Event())
    return r.__dict__, e.model.fed - before


SYSTEM = (
    "You clean up dictated text: fix grammar, spelling and punctuation; answer with the text only."
)


def test_second_request_prefills_only_the_new_tokens(engine: Engine) -> None:
    _run(engine, prompt="something unrelated", system="another system prompt entirely")
    first, fed_first = _run(engine, prompt="the first transcript", system=SYSTEM)
    second, fed_second = _run(engine, prompt="a different second transcript", system=SYSTEM)
    # max_tokens=1: mlx-lm feeds the prompt suffix, then one more token for the next step.
    assert fed_first == first["prompt_tokens"] - first["cached_tokens"] + 1
    assert fed_second == second["prompt_tokens"] - second["cached_tokens"] + 1
    # Exactly the tokens the two prompts share were reused: the system turn and more.
    t1 = engine.tokenize(engine.render(chat("the first transcript", SYSTEM)))
    t2 = engine.tokenize(engine.render(chat("a different second transcript", SYSTEM)))
    common = next(i for i, (a, b) in enumerate(zip(t1, t2)) if a != b)
    assert second["cached_tokens"] == common
    assert common > len(engine.tokenize(SYSTEM)) > 20
    assert fed_second < fed_first


def test_identical_request_reuses_all_but_one_token(engine: Engine) -> None:
    a, _ = _run(engine, prompt="same", system=SYSTEM, max_tokens=6)
    b, fed = _run(engine, prompt="same", system=SYSTEM, max_tokens=6)
    assert b["cached_tokens"] == b["prompt_tokens"] - 1
    assert b["response"] == a["response"]


def test_cancelled_generation_drops_the_cache(engine: Engine) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(t: str) -> None:
        seen.append(t)
        cancel.set()

    params = GenerateParams(
        messages=chat("cancel me", SYSTEM),
        max_tokens=50,
        temperature=0.7,
        top_p=0.8,
        repetition_penalty=1.15,
    )
    with pytest.raises(Cancelled):
        engine.generate(params, cancel, on_text=on_text)
    r, fed = _run(engine, prompt="after", system=SYSTEM)
    assert r["cached_tokens"] == 0 and fed == r["prompt_tokens"] + 1


def test_render_uses_the_template_with_thinking_off(engine: Engine) -> None:
    text = engine.render(chat("hello", "sys"))
    assert "hello" in text and "sys" in text
    assert text.index("sys") < text.index("hello")
    # The Qwen3-style template closes an empty think block when thinking is off.
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_cancel_during_prefill_stops_it_after_one_step(engine: Engine) -> None:
    # A long prompt (Handy's is ~400 tokens) pre-fills in steps; a cancel seen after the
    # first step feeds the model no more (before: one step of 2048 tokens, all of it).
    seen: list[tuple[int, int]] = []
    cancel = threading.Event()

    def on_prefill(done: int, total: int) -> None:
        seen.append((done, total))
        if done > 0:
            cancel.set()

    params = GenerateParams(
        messages=chat("many words " * 200, None),
        max_tokens=4,
        temperature=0.0,
        top_p=1.0,
        repetition_penalty=1.0,
    )
    before = engine.model.fed
    with pytest.raises(Cancelled):
        engine.generate(params, cancel, on_prefill=on_prefill)
    total = seen[0][1]
    assert total > 3 * engine.prefill_step, "the prompt needs several steps"
    assert engine.model.fed - before <= engine.prefill_step, seen
    assert seen[-1][0] <= engine.prefill_step


def test_prefill_steps_are_short_on_a_cpu_and_mlx_lms_own_on_a_gpu() -> None:
    assert cpu.prefill_step(on_cpu=True, weights="float32") == cpu.PREFILL_STEP_CPU_FP32
    assert cpu.prefill_step(on_cpu=True, weights="4-bit/8-bit") == cpu.PREFILL_STEP_CPU_QUANTIZED
    assert cpu.prefill_step(on_cpu=False, weights="4-bit") == cpu.PREFILL_STEP_GPU
    assert cpu.PREFILL_STEP_CPU_QUANTIZED < cpu.PREFILL_STEP_CPU_FP32 < cpu.PREFILL_STEP_GPU
