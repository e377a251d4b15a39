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
the same answer. The dropped think text is kept in ``reasoning`` (for a request that
asked for thinking).

``StopFilter`` ends the answer at the first of the request's stop strings, holding back
a tail that may be the start of one, the same way.
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
        self.inside = inside
        self._buf = ""
        self._trim = Trim()
        self._thought: list[str] = []

    def feed(self, text: str) -> str:
        self._buf += text
        out: list[str] = []
        while self._buf:
            if self.inside:
                i = self._buf.find(CLOSE)
                if i < 0:
                    keep = _partial_suffix(self._buf, CLOSE)
                    self._thought.append(self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep :]
                    break
                self._thought.append(self._buf[:i])
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
        return self._trim.feed("".join(out))

    def finish(self) -> str:
        if self.inside:
            self._thought.append(self._buf)
            rest = ""
        else:
            rest = self._buf  # a dangling partial tag is plain text
        self._buf = ""
        return self._trim.feed(rest)

    @property
    def reasoning(self) -> str:
        """The text of every think block so far, trimmed."""
        return "".join(self._thought).strip()


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
