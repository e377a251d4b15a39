"""The think-block filter, alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from local_mlx_sidecar.text import ThinkFilter, strip_think

CASES = [
    ("Hello world", "Hello world"),
    ("<think>\n\n</think>\n\nHello", "Hello"),
    ("<think>plan: say hi</think>Hi there.", "Hi there."),
    ("  \n <think>x</think> Hi", "Hi"),
    ("  \n Hi  \n", "Hi"),
    ("<think>only thinking", ""),
    ("a < b and <th is not a tag", "a < b and <th is not a tag"),
    ("ends with <thi", "ends with <thi"),
    ("<thi", "<thi"),
    ("", ""),
    # Only a block the model opens at the very start is thinking; elsewhere the tags
    # are the user's text (a transcript that mentions them, echoed back).
    ("I <think> we should meet tomorrow.", "I <think> we should meet tomorrow."),
    (
        "Type the tag <think> into the form, then </think> close it.",
        "Type the tag <think> into the form, then </think> close it.",
    ),
    ("Hi<think>secret</think> there", "Hi<think>secret</think> there"),
    ("Answer<think>never closed", "Answer<think>never closed"),
    ("</think>stray close", "</think>stray close"),
    ("<think>a</think>x</think>y<think>z</think>w", "x</think>y<think>z</think>w"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_prompt_that_opened_the_block() -> None:
    assert strip_think("reasoning...</think>\n\nThe answer.", inside=True) == "The answer."
    text = "reasoning</think> Type <think> then </think>."
    assert strip_think(text, inside=True) == "Type <think> then </think>."
    assert strip_think("still reasoning", inside=True) == ""


def test_the_removed_block_is_kept_as_thinking() -> None:
    f = ThinkFilter()
    pieces = ["<th", "ink>step 1, ", "step 2</th", "ink>\n\nThe answer."]
    answer = "".join(f.feed(p) for p in pieces) + f.finish()
    assert (answer, f.thinking) == ("The answer.", "step 1, step 2")
    f = ThinkFilter()
    assert f.feed("I <think> so.") + f.finish() == "I <think> so."
    assert f.thinking == ""


@pytest.mark.parametrize("text,expected", CASES)
def test_any_split_gives_the_same_answer(text: str, expected: str) -> None:
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            f = ThinkFilter()
            out = f.feed(text[:i]) + f.feed(text[i:j]) + f.feed(text[j:]) + f.finish()
            assert out == expected, (i, j)


pieces = st.lists(
    st.sampled_from(["<think>", "</think>", "<", "<th", "ink>", "</", "a", " ", "\n", "é", "b c"]),
    max_size=20,
)


@given(pieces)
@settings(max_examples=300, deadline=None)
def test_streaming_equals_whole(chunks: list[str]) -> None:
    f = ThinkFilter()
    streamed = "".join(f.feed(c) for c in chunks) + f.finish()
    whole = strip_think("".join(chunks))
    assert streamed == whole
    assert whole == whole.strip()
