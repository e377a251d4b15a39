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
    ("  \n Hi  \n", "Hi"),
    ("Hi<think>secret</think> there", "Hi there"),
    ("Answer<think>never closed", "Answer"),
    ("<think>only thinking", ""),
    ("</think>stray close", "stray close"),
    ("a < b and <th is not a tag", "a < b and <th is not a tag"),
    ("ends with <thi", "ends with <thi"),
    ("x</think>y<think>z</think>w", "xyw"),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_prompt_that_opened_the_block() -> None:
    assert strip_think("reasoning...</think>\n\nThe answer.", inside=True) == "The answer."


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
