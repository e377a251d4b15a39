"""`/generate` with a conversation (`messages`) and the extensions that go with it:
`enable_thinking` (+ `reasoning`), `stop`, `seed`; over HTTP to a real sidecar."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Sidecar, chat
from local_mlx_sidecar.text import StopFilter, ThinkFilter

SYSTEM = (
    "You clean up dictated text: fix grammar, spelling and punctuation; answer with the text only."
)


def _post(s: Sidecar, **body: Any) -> tuple[int, dict[str, Any]]:
    r = s.client.post("/generate", json=body)
    return r.status_code, r.json()


def _chat(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _four_turns(system: str, user: str, assistant: str, again: str) -> list[dict[str, str]]:
    roles = ("system", "user", "assistant", "user")
    return [{"role": r, "content": c} for r, c in zip(roles, (system, user, assistant, again))]


def test_the_kv_prefix_is_reused_for_the_same_system_message(shared: Sidecar) -> None:
    shared.generate(messages=[{"role": "user", "content": "something else entirely"}], max_tokens=1)
    first = shared.generate(messages=_chat(SYSTEM, "the first transcript"), max_tokens=2)
    second = shared.generate(messages=_chat(SYSTEM, "a different second one"), max_tokens=2)
    assert first["cached_tokens"] < 10
    assert second["cached_tokens"] > 20, second


def test_a_longer_conversation_and_streaming(shared: Sidecar) -> None:
    messages = _four_turns("Be brief.", "Hi.", "Hello!", "How are you?")
    whole = shared.generate(messages=messages, max_tokens=10, temperature=0)
    with shared.client.stream(
        "POST",
        "/generate",
        json={"messages": messages, "max_tokens": 10, "temperature": 0, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [json.loads(line) for line in r.iter_lines() if line]
    *tokens, done = events
    assert done["event"] == "done" and done["response"] == whole["response"]
    assert "".join(e["text"] for e in tokens) == done["response"]
    assert (
        whole["prompt_tokens"]
        > shared.generate(messages=messages[-1:], max_tokens=1)["prompt_tokens"]
    )


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"messages": []}, "`messages` is empty"),
        ({"messages": chat("x"), "stop": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"messages": chat("x"), "stop": [""]}, "non-empty"),
        ({"messages": chat("x"), "seed": -1}, "seed must be between"),
        ({"messages": chat("x"), "seed": 2**64}, "seed must be between"),
    ],
)
def test_bad_conversations_are_400_naming_what_is_wrong(
    shared: Sidecar, body: dict, needle: str
) -> None:
    status, answer = _post(shared, **body)
    assert status == 400, answer
    assert needle in answer["detail"], answer
    assert shared.status()["model_loaded"] is True


@pytest.mark.parametrize(
    "body,field",
    [
        ({"messages": [{"role": "tool", "content": "y"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "y"}, "hi"]}, "messages.1"),
        ({"messages": {"role": "user", "content": "y"}}, "messages"),
        ({"messages": chat("x"), "enable_thinking": "yes"}, "enable_thinking"),
        ({"messages": chat("x"), "stop": "END"}, "stop"),
        ({"messages": chat("x"), "stop": [3]}, "stop.0"),
        ({"messages": chat("x"), "seed": "7"}, "seed"),
        ({"messages": chat("x"), "seed": 1.5}, "seed"),
    ],
)
def test_mistyped_conversation_fields_are_422_naming_the_field(
    shared: Sidecar, body: dict, field: str
) -> None:
    status, answer = _post(shared, **body)
    assert status == 422, answer
    assert any(e["field"] == field for e in answer["errors"]), answer
    assert field in answer["detail"]


def test_thinking_renders_the_template_with_it_and_keeps_think_text_out_of_the_answer(
    shared: Sidecar,
) -> None:
    off = shared.generate(messages=_chat(SYSTEM, "hello"), max_tokens=30, temperature=0)
    on = shared.generate(
        messages=_chat(SYSTEM, "hello"), max_tokens=30, temperature=0, enable_thinking=True
    )
    # With thinking off the Qwen3 template closes an empty think block itself.
    assert on["prompt_tokens"] < off["prompt_tokens"]
    assert off["reasoning"] is None
    assert isinstance(on["reasoning"], str)
    for answer in (on, off):
        assert "<think>" not in answer["response"] and "</think>" not in answer["response"]


def test_a_stop_string_ends_the_answer_before_it(shared: Sidecar) -> None:
    body = {"messages": _chat(SYSTEM, "tell me a long story"), "max_tokens": 40, "temperature": 0}
    full = shared.generate(**body)
    text = full["response"]
    assert full["finish_reason"] == "length" and len(text) > 20, full
    # A stop string from the middle of the answer: the first place it occurs counts.
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assume_cut = text[: text.index(stop)].rstrip()
    cut = shared.generate(**body, stop=["never-in-the-answer-\u2603", stop])
    assert cut["finish_reason"] == "stop"
    assert cut["response"] == assume_cut
    assert stop not in cut["response"]
    assert cut["tokens_generated"] < full["tokens_generated"]
    with shared.client.stream(
        "POST", "/generate", json={**body, "stop": [stop], "stream": True}
    ) as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    *tokens, done = events
    assert done["response"] == assume_cut == "".join(e["text"] for e in tokens)
    assert done["finish_reason"] == "stop"


def test_the_same_seed_samples_the_same_answer(shared: Sidecar) -> None:
    body = {
        "messages": _chat(SYSTEM, "say anything"),
        "max_tokens": 20,
        "temperature": 1.0,
        "top_p": 1.0,
    }
    first = shared.generate(**body, seed=1234)["response"]
    again = shared.generate(**body, seed=1234)["response"]
    others = {shared.generate(**body, seed=s)["response"] for s in (1, 2, 3)}
    assert first == again
    assert others != {first}, "different seeds sampled the same text every time"


def test_stop_filter_holds_back_a_possible_start_of_a_stop_string() -> None:
    f = StopFilter(["END", "\n\n"])
    assert f.feed("Hello E") == "Hello "
    assert f.feed("N") == ""
    assert f.feed("D and more") == ""
    assert f.stopped and f.finish() == ""
    f = StopFilter(["END"])
    assert f.feed("Hello EN") == "Hello "
    assert f.feed("VY") == "ENVY"
    assert f.finish() == "" and not f.stopped
    f = StopFilter(["xyz"])
    assert f.feed("ab xy") == "ab "
    assert f.finish() == "xy", "a partial stop string at the end is plain text"


def test_think_filter_keeps_the_think_text_apart() -> None:
    f = ThinkFilter()
    out = f.feed("<think>plan: ") + f.feed("say hi</th") + f.feed("ink>Hi!") + f.finish()
    assert out == "Hi!"
    assert f.reasoning == "plan: say hi"
    f = ThinkFilter(inside=True)
    assert f.feed("still thinking") + f.finish() == ""
    assert f.reasoning == "still thinking"


@pytest.mark.smol
def test_smol_answers_a_four_turn_conversation(spawn, smol) -> None:
    s = spawn()
    s.load(smol)
    messages = _four_turns(
        "You are a helpful assistant. Answer in one short sentence.",
        "My name is Anna and I live in Paris.",
        "Nice to meet you, Anna!",
        "What is my name?",
    )
    r = s.generate(messages=messages, max_tokens=16, temperature=0)
    assert r["tokens_generated"] > 0
    assert "anna" in r["response"].lower(), r
