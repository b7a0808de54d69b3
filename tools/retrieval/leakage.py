"""Copy detection: does a generated text repeat ``n`` or more consecutive tokens of a corpus document?

Retrieval shows corpus passages to the model, and a model may copy them. With a synthetic corpus that is only a
style problem; once a corpus holds real records it is a leak of those records. Tokens are lower-cased runs of
letters and digits, so punctuation and spacing do not hide a copy. Each of the corpus's n-grams is kept (as a
hash) with the chunk it came from; a text copies when one of its n-grams is in that index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-cased letter/digit runs."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Copy:
    """A copied span of a text: its length in tokens, the chunk its first n-gram comes from, and the words.

    The span is a run of overlapping n-grams that are each in the corpus; usually one copied passage, though
    two passages that happen to overlap by ``n - 1`` tokens chain into one span.
    """

    length: int
    source: str
    excerpt: str


class CopyIndex:
    """The n-grams of a corpus (``(chunk id, text)`` pairs)."""

    def __init__(self, documents: Iterable[tuple[str, str]], n: int) -> None:
        if n < 2:
            raise ValueError(f"n must be at least 2, got {n}")
        self.n = n
        self._grams: dict[int, str] = {}
        for source, text in documents:
            toks = tokens(text)
            for i in range(len(toks) - n + 1):
                self._grams.setdefault(hash(tuple(toks[i : i + n])), source)

    def __len__(self) -> int:
        return len(self._grams)

    def longest_copy(self, text: str) -> Copy | None:
        """The longest copied span (at least ``n`` tokens) of the text, else None."""
        toks = tokens(text)
        n = self.n
        best: Copy | None = None
        run_start = -1
        for i in range(len(toks) - n + 2):
            hit = i <= len(toks) - n and hash(tuple(toks[i : i + n])) in self._grams
            if hit and run_start < 0:
                run_start = i
            if not hit and run_start >= 0:
                length = i - run_start + n - 1  # n-grams run_start .. i-1 overlap into one run
                if best is None or length > best.length:
                    source = self._grams[hash(tuple(toks[run_start : run_start + n]))]
                    best = Copy(length, source, " ".join(toks[run_start : run_start + length]))
                run_start = -1
        return best
