"""Every endpoint, the original API's fields and the extensions, over HTTP to a real process."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from conftest import Sidecar, chat

SEED_GENERATE = {"messages": chat("Fix this: hello world"), "max_tokens": 12, "temperature": 0.7}


def test_status_seed_fields(shared: Sidecar, tiny: Path) -> None:
    st = shared.status()
    assert st["status"] == "running"
    assert st["model_loaded"] is True
    assert st["model_path"] == str(tiny)
    # Extensions.
    assert st["state"] == "ready"
    assert st["mlx_ready"] is True
    assert st["generating"] is False and st["queued"] == 0
    assert isinstance(st["context_length"], int) and st["context_length"] > 0
    assert st["active_memory_bytes"] > 0
    assert isinstance(st["pid"], int)


def test_status_of_a_fresh_server(spawn) -> None:
    s = spawn()
    st = s.status()
    assert (st["status"], st["model_loaded"], st["model_path"], st["state"]) == (
        "running",
        False,
        None,
        "idle",
    )


def test_load_of_the_loaded_model_returns_at_once(shared: Sidecar, tiny: Path) -> None:
    t = time.monotonic()
    body = shared.load(tiny)
    assert time.monotonic() - t < 0.5
    assert body["status"] == "loaded" and body["model_path"] == str(tiny)
    assert body["context_length"] == shared.status()["context_length"]
    assert shared.stderr().count("loading model from") == 1


def test_generate_seed_request(shared: Sidecar) -> None:
    r = shared.generate(**SEED_GENERATE)
    assert isinstance(r["response"], str)
    assert 0 <= r["tokens_generated"] <= 12
    assert "<think>" not in r["response"] and "</think>" not in r["response"]
    assert r["response"] == r["response"].strip()
    # Extensions.
    assert r["finish_reason"] in ("stop", "length")
    if r["finish_reason"] == "length":
        assert r["tokens_generated"] == 12
    assert r["prompt_tokens"] > 0 and 0 <= r["cached_tokens"] < r["prompt_tokens"]
    assert r["prompt_tps"] > 0 and r["generation_tps"] >= 0 and r["peak_memory"] > 0


def test_generate_defaults(shared: Sidecar) -> None:
    r = shared.generate(messages=chat("hello"))
    assert r["tokens_generated"] <= 150


def test_generate_with_system_and_overrides(shared: Sidecar) -> None:
    r = shared.generate(
        messages=chat("the transcript", "Clean up the transcript."),
        max_tokens=5,
        temperature=0.0,
        top_p=0.5,
        repetition_penalty=1.0,
    )
    assert r["tokens_generated"] <= 5
    plain = shared.generate(messages=chat("the transcript"), max_tokens=5, temperature=0.0)
    assert r["prompt_tokens"] > plain["prompt_tokens"]  # the system message is in the prompt


def test_unknown_fields_are_ignored(shared: Sidecar) -> None:
    r = shared.generate(messages=chat("hi"), max_tokens=2, something_new=True)
    assert r["tokens_generated"] <= 2


def test_greedy_generation_is_repeatable_with_and_without_cache_reuse(shared: Sidecar) -> None:
    """Reusing the KV cache must not change the answer: the first request pre-fills its
    whole prompt (fresh system prompt), the repeat reuses all but one token of it."""
    system = f"Session {secrets.token_hex(4)}: rewrite the text."
    body = dict(messages=chat("one two three four", system), max_tokens=16, temperature=0.0)
    first = shared.generate(**body)
    again = shared.generate(**body)
    assert again["cached_tokens"] == again["prompt_tokens"] - 1
    assert again["response"] == first["response"]
    assert again["tokens_generated"] == first["tokens_generated"]


def test_kv_cache_reuse_for_a_repeated_system_prompt(shared: Sidecar) -> None:
    system = (
        f"[{secrets.token_hex(4)}] You are a careful editor. Correct grammar, spelling and "
        "punctuation of the dictated text the user sends. Keep the meaning, keep the "
        "language, do not add anything, and answer with the corrected text only."
    )
    # Without a system message: the user turn and the template around it.
    plain = shared.generate(messages=chat("and now a second one"), max_tokens=1)
    first = shared.generate(messages=chat("this is the first transcript", system), max_tokens=4)
    second = shared.generate(messages=chat("and now a second one", system), max_tokens=4)
    # The first request shares little with the one before it; the second shares the
    # whole system message with the first and pre-fills only the new user turn.
    assert first["cached_tokens"] < 10
    assert second["prompt_tokens"] - second["cached_tokens"] <= plain["prompt_tokens"]
    assert second["cached_tokens"] >= second["prompt_tokens"] - plain["prompt_tokens"] > 30


def _stream(s: Sidecar, **body) -> tuple[int, str, list[dict]]:
    with s.client.stream("POST", "/generate", json={**body, "stream": True}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
        return r.status_code, r.headers["content-type"], lines


def test_stream(shared: Sidecar) -> None:
    status, ctype, events = _stream(shared, messages=chat("tell me something"), max_tokens=20)
    assert status == 200 and ctype.startswith("application/x-ndjson")
    *tokens, done = events
    assert all(e["event"] == "token" and e["text"] for e in tokens)
    assert done["event"] == "done"
    assert "".join(e["text"] for e in tokens) == done["response"]
    assert set(done) == {
        "event",
        "response",
        "tokens_generated",
        "reasoning",
        "prompt_tokens",
        "cached_tokens",
        "finish_reason",
        "prompt_tps",
        "generation_tps",
        "peak_memory",
    }
    assert done["tokens_generated"] <= 20


def test_stream_and_plain_give_the_same_answer(shared: Sidecar) -> None:
    body = dict(messages=chat("same answer please"), max_tokens=16, temperature=0.0)
    plain = shared.generate(**body)
    _, _, events = _stream(shared, **body)
    assert events[-1]["response"] == plain["response"]


def test_stream_errors_before_start_are_plain_http(spawn) -> None:
    s = spawn()
    with s.client.stream("POST", "/generate", json={"messages": chat("x"), "stream": True}) as r:
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/json"
        r.read()
        assert r.json() == {"detail": "no model loaded: POST /load first"}


def test_unload_then_generate_is_409_then_reload(spawn, tiny: Path) -> None:
    s = spawn()
    s.load(tiny)
    s.generate(messages=chat("hi"), max_tokens=2)
    r = s.client.post("/unload")
    assert r.status_code == 200 and r.json() == {"status": "unloaded", "model_loaded": False}
    st = s.status()
    assert (st["model_loaded"], st["model_path"], st["state"]) == (False, None, "idle")
    r = s.client.post("/generate", json={"messages": chat("hi")})
    assert r.status_code == 409 and r.json()["detail"] == "no model loaded: POST /load first"
    r = s.client.post("/unload")  # unloading nothing is fine
    assert r.status_code == 200
    s.load(tiny)
    assert s.generate(messages=chat("hi"), max_tokens=2)["tokens_generated"] <= 2


def test_load_another_model_replaces_it(spawn, tiny: Path, long_tiny: Path) -> None:
    s = spawn()
    s.load(tiny)
    body = s.load(long_tiny)
    assert body["context_length"] == 32768
    st = s.status()
    assert st["model_path"] == str(long_tiny) and st["context_length"] == 32768
    log = s.stderr()
    # The old model was released before the new one was loaded.
    assert log.index(f"model unloaded: {tiny}") < log.index(f"loading model from {long_tiny}")


@pytest.mark.smol
def test_smol_answers_in_english(spawn, smol: Path) -> None:
    s = spawn()
    s.load(smol)
    r = s.generate(messages=chat("What is the capital of France?"), max_tokens=12, temperature=0.0)
    assert "paris" in r["response"].lower(), r
    assert r["finish_reason"] in ("stop", "length")
