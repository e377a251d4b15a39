"""Removing ``<think>…</think>`` blocks from model output, also while it streams.

Qwen3 and other reasoning models may emit a think block, sometimes an empty one, even
with thinking turned off. None of it may reach the answer. ``ThinkFilter`` takes the
text piece by piece as the model produces it and returns only the answer text:

* everything from ``<think>`` to the matching ``</think>`` is dropped, and so is an
  unterminated block at the end (the model ran out of tokens while thinking);
* a stray ``</think>`` tag is dropped;
* if the rendered prompt already opened a block (it ends with ``<think>``), the filter
  starts inside it;
* leading and trailing whitespace of the answer is dropped.

A tag split across pieces (``"<thi"`` + ``"nk>"``) is held back until it is decided.
Concatenating every value returned by ``feed`` and ``finish`` gives exactly
``strip_think(whole_text)``, so a streaming client and a complete-text client receive
the same answer.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ``text`` ends with."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ThinkFilter:
    def __init__(self, inside: bool = False) -> None:
        self.inside = inside
        self._buf = ""
        self._started = False  # some answer text has been returned
        self._pending_ws = ""  # trailing whitespace held back

    def feed(self, text: str) -> str:
        self._buf += text
        out: list[str] = []
        while self._buf:
            if self.inside:
                i = self._buf.find(CLOSE)
                if i < 0:
                    keep = _partial_suffix(self._buf, CLOSE)
                    self._buf = self._buf[len(self._buf) - keep :]
                    break
                self._buf = self._buf[i + len(CLOSE) :]
                self.inside = False
                continue
            hits = [(i, tag) for tag in (OPEN, CLOSE) if (i := self._buf.find(tag)) >= 0]
            if hits:
                i, tag = min(hits)
                out.append(self._buf[:i])
                self._buf = self._buf[i + len(tag) :]
                self.inside = tag == OPEN
                continue
            keep = max(_partial_suffix(self._buf, OPEN), _partial_suffix(self._buf, CLOSE))
            out.append(self._buf[: len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep :]
            break
        return self._shape("".join(out))

    def finish(self) -> str:
        rest = "" if self.inside else self._buf  # a dangling partial tag is plain text
        self._buf = ""
        out = self._shape(rest)
        self._pending_ws = ""
        return out

    def _shape(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._pending_ws + text
        body = text.rstrip()
        self._pending_ws = text[len(body) :]
        return body


def strip_think(text: str, inside: bool = False) -> str:
    f = ThinkFilter(inside)
    return f.feed(text) + f.finish()
