"""The answer on its way out of the model: the streaming filters of ``text`` chained in
their one order (think blocks, stop strings, the whitespace a stop string leaves)."""

from __future__ import annotations

from collections.abc import Callable

from .text import OPEN, StopFilter, ThinkFilter, Trim


class Answer:
    """Answer text on its way out: think blocks out, then stop strings, then the
    whitespace the stop string left at the end; each piece kept and given to ``on_text``."""

    def __init__(self, prompt: str, stop: list[str], on_text: Callable[[str], None] | None) -> None:
        self.think = ThinkFilter(inside=prompt.rstrip().endswith(OPEN))
        self.stopper = StopFilter(stop)
        self.trim = Trim()
        self.pieces: list[str] = []
        self.on_text = on_text

    def feed(self, text: str) -> None:
        self._emit(self.stopper.feed(self.think.feed(text)))

    def finish(self) -> None:
        """The text the filters held back, unless a stop string ended the answer."""
        if not self.stopper.stopped:
            self._emit(self.stopper.feed(self.think.finish()))
            self._emit(self.stopper.finish())

    def _emit(self, piece: str) -> None:
        piece = self.trim.feed(piece)
        if piece:
            self.pieces.append(piece)
            if self.on_text:
                self.on_text(piece)
