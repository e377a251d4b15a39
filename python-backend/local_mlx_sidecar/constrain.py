"""A clean-up decoding constraint: the model may only spell the transcript's own words.

A clean-up removes fillers and repetitions and re-punctuates; it needs no word the
speaker did not say. ``input_only_processor`` returns an mlx-lm logits processor that
sets the logit of every token that would leave that vocabulary to -inf, so a small
model cannot answer a dictated question, follow a dictated instruction, translate or
invent a sentence, whatever its prompt says. Allowed are:

* the tokenizer's end-of-turn tokens (``eos_token_ids``), always;
* digits, whitespace, punctuation, currency and math signs, anywhere;
* letters only as the transcript's words (hesitations like "um" left out), in any casing: the word being written (the
  letters since the last non-letter) must stay a prefix of a transcript word, and a
  non-letter may only follow a complete transcript word. Checking whole words, not
  tokens, matters: a token-by-token check lets the model glue allowed pieces into a new
  word ("P" + "ar" + "is");
* a line break only if the transcript has one or dictates one ("new line", "paragraph");
* an incomplete UTF-8 piece (byte-level BPE spells "é" in two tokens) only if the
  transcript has non-ASCII characters (its letters are then not checked).

Approach and cost. A token's text (decoded once per tokenizer, cached: O(vocabulary),
about 50k tokens for SmolLM2 and 150k for Qwen3, a fraction of a second to a second on
the first constrained request after a load) is split into its leading letter run, its
other runs and its trailing run. Per request, two things are built in O(vocabulary) set
lookups (tens of milliseconds): the mask of tokens that start a new word or are not
letters at all, and an index of letter-initial tokens by their leading run. Per step,
the processor looks at the word being written, collects the continuations the
transcript's words allow (a few dict lookups per matching word), and applies the mask
with one ``mx.where``: a vector op, negligible next to the model's forward pass.

What it costs in quality (measured in docs/QUALITY.md): number words can become digits
(digits are allowed), but no word the speaker did not say can appear: "doctor" cannot
become "Dr.", "third" cannot become "3rd", "twenty five" cannot become "twenty-five"...
unless those letters are a transcript word.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

_LETTERS = re.compile(r"[^\W\d_]+")
# Sounds, not words: never written even though the speaker said them.
_HESITATIONS = frozenset(
    {"um", "umm", "uh", "uhm", "er", "erm", "ah", "eh", "ehm", "hmm", "euh", "äh", "ähm"}
)
# Unicode categories of the non-letter characters a clean-up may write.
_ALLOWED_CATEGORIES = ("P", "Z", "Nd", "No", "Sc", "Sm", "Cc")


class _Piece:
    """What the constraint needs to know of one token's text."""

    __slots__ = (
        "runs",
        "letter_start",
        "letter_end",
        "only_letters",
        "marks_ok",
        "partial",
        "newline",
    )

    def __init__(self, text: str) -> None:
        self.partial = "\ufffd" in text
        self.newline = "\n" in text
        self.runs = [run.lower() for run in _LETTERS.findall(text)]
        self.letter_start = bool(self.runs) and text[:1].isalpha()
        self.letter_end = bool(self.runs) and text[-1:].isalpha()
        self.only_letters = len(self.runs) == 1 and self.runs[0] == text.lower()
        self.marks_ok = all(
            c.isspace() or unicodedata.category(c).startswith(_ALLOWED_CATEGORIES)
            for c in _LETTERS.sub("", text).replace("\ufffd", "")
        )


# The pieces of the last tokenizer seen (one model is loaded at a time).
_cache: tuple[weakref.ref, list[_Piece | None]] | None = None


def _hf(tokenizer: Any) -> Any:
    """The Hugging Face tokenizer inside mlx-lm's ``TokenizerWrapper`` (or itself)."""
    return getattr(tokenizer, "_tokenizer", tokenizer)


def _pieces(tokenizer: Any) -> list[_Piece | None]:
    """Every token's piece, ``None`` for special tokens; cached per tokenizer."""
    global _cache
    hf = _hf(tokenizer)
    if _cache is not None and _cache[0]() is hf:
        return _cache[1]
    size = len(hf)
    texts = hf.batch_decode([[i] for i in range(size)])
    # SentencePiece drops a token's leading space when it is decoded alone; its
    # vocabulary marks it with "▁", and that space is a word boundary.
    raw = hf.convert_ids_to_tokens(list(range(size)))
    texts = [" " + t if isinstance(r, str) and r.startswith("▁") else t for t, r in zip(texts, raw)]
    special = set(getattr(hf, "all_special_ids", []))
    special.update(getattr(hf, "added_tokens_decoder", {}).keys())
    pieces = [None if i in special else _Piece(t) for i, t in enumerate(texts)]
    _cache = (weakref.ref(hf), pieces)
    return pieces


class _Words:
    """The transcript's words, lower-cased, and all their prefixes."""

    def __init__(self, transcript: str) -> None:
        # Hesitations are never part of a clean-up (seen: SmolLM2 keeping "um").
        self.words = set(_LETTERS.findall(transcript.lower())) - _HESITATIONS
        self.prefixes = {w[:k] for w in self.words for k in range(1, len(w) + 1)}
        self.non_ascii = any(ord(c) > 127 for c in transcript)
        # A dictation is one line unless the speaker asked for more: without this, a
        # small model starts a second line to explain its clean-up in the speaker's words.
        self.lines = "\n" in transcript or bool(self.words & {"line", "paragraph", "newline"})

    def inner_runs_ok(self, piece: _Piece, first: int) -> bool:
        """Runs ``first..`` of ``piece``: whole words, the last one possibly unfinished."""
        runs = piece.runs[first:]
        if not runs:
            return True
        last_ok = runs[-1] in (self.prefixes if piece.letter_end else self.words)
        return last_ok and all(r in self.words for r in runs[:-1])


class _Allowed:
    """The tokens allowed for one transcript: a static mask and a per-word index."""

    def __init__(self, tokenizer: Any, transcript: str) -> None:
        words = _Words(transcript)
        self.vocab = words
        eos = set(getattr(tokenizer, "eos_token_ids", None) or [])
        eos.add(getattr(_hf(tokenizer), "eos_token_id", None))
        self.eos = sorted(i for i in eos if isinstance(i, int))
        # Tokens that begin with a non-letter (they close the word being written).
        self.starters: list[int] = []
        # Letter-initial tokens by their leading run: made only of letters (the word goes
        # on) or with more after it (the word must be complete there).
        self.open: dict[str, list[int]] = defaultdict(list)
        self.closed: dict[str, list[int]] = defaultdict(list)
        # Every letter-initial token: what may follow an incomplete UTF-8 piece.
        self.any_letters: list[int] = []
        for i, p in enumerate(_pieces(tokenizer)):
            if p is None or not p.marks_ok or (p.newline and not words.lines):
                continue
            if p.partial:
                if words.non_ascii:
                    self.starters.append(i)
                continue
            if not p.letter_start:
                if words.inner_runs_ok(p, 0):
                    self.starters.append(i)
                continue
            if words.non_ascii:
                self.any_letters.append(i)
            if p.only_letters:
                self.open[p.runs[0]].append(i)
            elif words.inner_runs_ok(p, 1):
                self.closed[p.runs[0]].append(i)

    def continuations(self, word: str | None) -> list[int]:
        """The letter-initial tokens that keep ``word`` within a transcript word (any,
        when ``word`` is ``None``: it holds an incomplete UTF-8 piece, not checked)."""
        if word is None:
            return self.any_letters
        out: list[int] = []
        for w in self.vocab.words:
            if len(w) <= len(word) or not w.startswith(word):
                continue
            rest = w[len(word) :]
            for k in range(1, len(rest) + 1):
                out += self.open.get(rest[:k], ())
            out += self.closed.get(rest, ())
        return out

    def may_close(self, word: str | None) -> bool:
        """Whether a non-letter may follow ``word``: it is empty or a whole word."""
        return word is None or not word or word in self.vocab.words

    def ids(self, word: str | None) -> list[int]:
        """The tokens allowed after ``word``, the letters written since the last non-letter."""
        closing = self.starters if self.may_close(word) else []
        return self.eos + closing + self.continuations(word)


def allowed_ids(tokenizer: Any, transcript: str, word: str = "") -> list[int]:
    """The token ids the model may emit next while cleaning up ``transcript``, after
    ``word`` (the letters written since the last non-letter)."""
    return sorted(set(_Allowed(tokenizer, transcript).ids(word.lower())))


def input_only_processor(tokenizer: Any, transcript: str) -> Callable[[Any, Any], Any]:
    """An mlx-lm logits processor that keeps the answer within ``transcript``'s words."""
    import mlx.core as mx

    allowed = _Allowed(tokenizer, transcript)
    pieces = _pieces(tokenizer)
    state: dict[str, Any] = {"word": "", "steps": 0}

    def constrain(tokens: Any, logits: Any) -> Any:
        # The first call sees the prompt; each later one sees the token sampled last.
        if state["steps"] and tokens.size:
            last = int(tokens[-1].item())
            p = pieces[last] if last < len(pieces) else None
            if p is not None and p.partial:
                state["word"] = None
            elif p is None or not p.runs:
                state["word"] = ""
            elif p.only_letters and state["word"] is None:
                pass
            elif p.only_letters:
                state["word"] += p.runs[0]
            else:
                state["word"] = p.runs[-1] if p.letter_end else ""
        state["steps"] += 1
        width = logits.shape[-1]
        key = (width, allowed.may_close(state["word"]))
        base = bases.get(key)
        if base is None:
            base = bases[key] = _mask(width, allowed.eos + (allowed.starters if key[1] else []))
        mask = base | _mask(width, allowed.continuations(state["word"]))
        return mx.where(mask, logits, mx.array(-float("inf"), dtype=logits.dtype))

    def _mask(width: int, ids: list[int]) -> Any:
        # Ids past the tokenizer (padded embeddings) are never allowed.
        inside = [i for i in ids if i < width]
        if not inside:
            return mx.zeros((width,), dtype=mx.bool_)
        return (
            mx.zeros((width,), dtype=mx.float32).at[mx.array(inside, dtype=mx.int32)].add(1.0) > 0
        )

    bases: dict[tuple[int, bool], Any] = {}
    return constrain
