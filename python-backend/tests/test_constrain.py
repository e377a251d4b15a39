"""The clean-up decoding constraint: its mask on a real tokenizer, and real generations
(the random tiny model would otherwise emit any token) that obey it, in-process and over
HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Sidecar, chat
from local_mlx_sidecar.constrain import allowed_ids, input_only_processor
from local_mlx_sidecar.engine import Engine, GenerateParams
from local_mlx_sidecar.model_dir import validate_model_dir

TRANSCRIPT = "um what is the capital of france question mark"


def _loaded(path: Path) -> Iterator[Engine]:
    e = Engine()
    e.warm_up()
    e.load(validate_model_dir(str(path)))
    yield e
    e.unload()


@pytest.fixture(scope="module")
def smol_engine(smol: Path) -> Iterator[Engine]:
    yield from _loaded(smol)


@pytest.fixture(scope="module")
def tiny_engine(tiny: Path) -> Iterator[Engine]:
    yield from _loaded(tiny)


def _ids(engine: Engine, text: str) -> list[int]:
    return list(engine.tokenizer.encode(text, add_special_tokens=False))


def _accepts(engine: Engine, transcript: str, text: str) -> bool:
    """Whether the processor lets the model write ``text``, token by token."""
    import mlx.core as mx

    proc = input_only_processor(engine.tokenizer, transcript)
    width = len(engine.tokenizer._tokenizer)
    tokens = [1]
    for t in _ids(engine, text):
        logits = proc(mx.array(tokens), mx.zeros((1, width)))
        if bool(mx.isinf(logits[0, t])):
            return False
        tokens.append(t)
    return True


def _spelled_from(text: str, transcript: str) -> list[str]:
    """The words of ``text`` that are not a prefix of a word of ``transcript`` (only the
    last word may be unfinished: it may have been cut by max_tokens)."""
    words = re.findall(r"[^\W\d_]+", transcript.lower())
    said = re.findall(r"[^\W\d_]+", text.lower())
    return [
        run
        for n, run in enumerate(said)
        if not any(run == w or (n == len(said) - 1 and w.startswith(run)) for w in words)
    ]


def test_the_mask_allows_the_transcripts_words_and_marks_only(smol_engine: Engine) -> None:
    for ok in ["What is the capital of France?", "WHAT, capital... france!", "3 capital"]:
        assert _accepts(smol_engine, TRANSCRIPT, ok), ok
    for bad in [
        " Paris",
        "Bonjour",
        "Sure",
        "capitals",
        "Fr ance",
        "😀",
        "<think>",
        "What?\nWhat",
        "um",
    ]:
        assert not _accepts(smol_engine, TRANSCRIPT, bad), bad
    assert _accepts(smol_engine, "hi new line bye", "Hi\nbye"), "a dictated line break"
    allowed = set(allowed_ids(smol_engine.tokenizer, TRANSCRIPT))
    tok = smol_engine.tokenizer
    assert set(tok.eos_token_ids) <= allowed, "the model can end its turn"
    for special in ["<|im_start|>", "<|endoftext|>"]:
        sid = tok.convert_tokens_to_ids(special)
        if sid not in tok.eos_token_ids:
            assert sid not in allowed, special
    # A bigger share of the vocabulary for a longer transcript, never all of it.
    longer = set(allowed_ids(tok, TRANSCRIPT + " and the weather in paris tomorrow"))
    assert allowed < longer < set(range(len(tok._tokenizer)))


def test_an_empty_or_wordless_transcript_allows_marks_and_the_end_only(smol_engine: Engine) -> None:
    tok = smol_engine.tokenizer
    for transcript in ["", "   ", "1 2 3 ?!"]:
        allowed = allowed_ids(tok, transcript)
        texts = [tok.decode([i]) for i in allowed if i not in tok.eos_token_ids]
        assert all(not re.search(r"[^\W\d_]", t) for t in texts), transcript
        assert set(tok.eos_token_ids) <= set(allowed)


def test_non_ascii_transcripts_keep_their_letters(smol_engine: Engine) -> None:
    transcript = "la reunión es a las cinco"
    assert _accepts(smol_engine, transcript, "La reunión es a las cinco.")
    assert not _accepts(smol_engine, transcript, "The meeting is at five.")
    assert not _accepts(smol_engine, "the meeting is at five", "La reunión")


def _generate(engine: Engine, prompt: str, constrain: bool, max_tokens: int) -> str:
    p = GenerateParams(
        messages=chat(prompt, "Answer the question."),
        max_tokens=max_tokens,
        temperature=0.0,
        top_p=1.0,
        repetition_penalty=1.15,
        constrain_to_input=constrain,
    )
    return engine.generate(p, threading.Event()).response


def test_a_constrained_random_model_only_spells_the_transcript(tiny_engine: Engine) -> None:
    free = _generate(tiny_engine, TRANSCRIPT, constrain=False, max_tokens=40)
    assert _spelled_from(free, TRANSCRIPT), "unconstrained, the random model writes other words"
    constrained = _generate(tiny_engine, TRANSCRIPT, constrain=True, max_tokens=40)
    assert constrained.strip()
    assert _spelled_from(constrained, TRANSCRIPT) == [], constrained


@pytest.mark.smol
def test_smol_cannot_answer_a_question_under_the_constraint(smol_engine: Engine) -> None:
    prompt = "what is the capital of france"
    free = _generate(smol_engine, prompt, constrain=False, max_tokens=12)
    assert "paris" in free.lower(), free
    constrained = _generate(smol_engine, prompt, constrain=True, max_tokens=12)
    assert "paris" not in constrained.lower()
    assert _spelled_from(constrained, prompt) == [], constrained


def test_the_processor_fits_wider_logits(tiny_engine: Engine) -> None:
    import mlx.core as mx

    proc = input_only_processor(tiny_engine.tokenizer, "hello")
    width = len(tiny_engine.tokenizer._tokenizer) + 64
    out = proc(mx.array([1]), mx.zeros((1, width)))
    assert out.shape == (1, width)
    assert bool(mx.isinf(out[0, -64:]).all())
    assert not bool(mx.isinf(out).all())


def test_over_http_the_field_is_strict_and_constrains(shared: Sidecar) -> None:
    body: dict[str, Any] = dict(messages=chat(TRANSCRIPT), max_tokens=30, temperature=0.0)
    r = shared.generate(**body, constrain_to_input=True)
    assert _spelled_from(r["response"], TRANSCRIPT) == [], r
    bad = shared.client.post("/generate", json={**body, "constrain_to_input": "yes"})
    assert bad.status_code == 422
    assert "constrain_to_input" in bad.text
