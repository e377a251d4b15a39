"""Removing the model's leading ``<think>…</think>`` block, also while the answer streams.

This is the only place think blocks are removed: the sidecar's answers arrive stripped,
and nothing downstream strips again.

Qwen3 and other reasoning models may open their answer with a think block, sometimes an
empty one, even with thinking turned off. ``ThinkFilter`` takes the text piece by piece
as the model produces it and returns only the answer text:

* a block the model opens at the very start of its answer (after whitespace) is removed
  up to the matching ``</think>``; unterminated, the whole answer was thinking (the model
  ran out of tokens) and the answer is empty;
* if the rendered prompt already opened the block (it ends with ``<think>``), the filter
  starts inside it;
* anywhere else the tags are ordinary text: a transcript that mentions ``<think>`` or
  ``</think>``, echoed by the model, comes back whole;
* leading and trailing whitespace of the answer is dropped.

The removed block's text is kept in ``thinking``, for a caller that asked for the
model's reasoning. A tag split across pieces (``"<thi"`` + ``"nk>"``) at the start is
held back until it is decided. Concatenating every value returned by ``feed`` and
``finish`` gives exactly ``strip_think(whole_text)``, so a streaming client and a
complete-text client receive the same answer.

``StopFilter`` ends the answer at the first of the request's stop strings, holding back
a tail that may be the start of one, the same way.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"

_START, _THINKING, _ANSWER = "start", "thinking", "answer"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ``text`` ends with."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class Trim:
    """Drops leading and trailing whitespace of text that arrives piece by piece."""

    def __init__(self) -> None:
        self._started = False  # some text has been returned
        self._pending_ws = ""  # trailing whitespace held back

    def feed(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._pending_ws + text
        body = text.rstrip()
        self._pending_ws = text[len(body) :]
        return body


class ThinkFilter:
    def __init__(self, inside: bool = False) -> None:
        self._state = _THINKING if inside else _START
        self._buf = ""  # text not yet decided (start of the answer, or a split </think>)
        self._trim = Trim()
        self.thinking = ""  # the removed block's text, without its tags

    def feed(self, text: str) -> str:
        self._buf += text
        if self._state == _START:
            head = self._buf.lstrip()
            if head.startswith(OPEN):
                self._buf = head[len(OPEN) :]
                self._state = _THINKING
            elif head and OPEN.startswith(head):
                return ""  # could still become <think>: wait for more
            elif head:
                self._state = _ANSWER
        if self._state == _THINKING:
            i = self._buf.find(CLOSE)
            if i < 0:
                keep = _partial_suffix(self._buf, CLOSE)
                self.thinking += self._buf[: len(self._buf) - keep]
                self._buf = self._buf[len(self._buf) - keep :]
                return ""
            self.thinking += self._buf[:i]
            self._buf = self._buf[i + len(CLOSE) :]
            self._state = _ANSWER
        if self._state == _ANSWER:
            out, self._buf = self._buf, ""
            return self._trim.feed(out)
        return ""

    def finish(self) -> str:
        if self._state == _THINKING:  # never closed: it was all thinking
            self.thinking += self._buf
            rest = ""
        else:
            rest = self._buf  # an undecided start ("<thi") is plain text
        self._buf = ""
        return self._trim.feed(rest)

    @property
    def reasoning(self) -> str:
        """The removed block's text, trimmed."""
        return self.thinking.strip()


class StopFilter:
    """Passes text through until one of ``stops`` appears; that and the rest are cut."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.stopped = False
        self._buf = ""

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self._buf += text
        hits = [i for s in self.stops if (i := self._buf.find(s)) >= 0]
        if hits:
            out, self._buf = self._buf[: min(hits)], ""
            self.stopped = True
            return out
        keep = max((_partial_suffix(self._buf, s) for s in self.stops), default=0)
        out = self._buf[: len(self._buf) - keep]
        self._buf = self._buf[len(self._buf) - keep :]
        return out

    def finish(self) -> str:
        out, self._buf = self._buf, ""
        return "" if self.stopped else out


def strip_think(text: str, inside: bool = False) -> str:
    f = ThinkFilter(inside)
    return f.feed(text) + f.finish()
