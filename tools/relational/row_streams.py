"""One random stream per row, vectorised: what a repair draws for a row depends on nothing but the row.

A repair draws a column again for some rows of a batch. Drawn from one stream in row order, a row's new value would
depend on which other rows the batch holds (a record retried by ``--resume`` in a batch of its own, another batch
size, a Dask shard). :class:`RowStreams` gives each row a stream of its own instead, named by the stream's name
(run seed, table, column, attempt) and the row's primary key, and draws every row's next number at once.

The streams are counter-based: row ``i``'s ``c``-th 64-bit number is the SplitMix64 output for the state
``key_i + (c + 1) * golden`` (``key_i`` mixed from the stream's name and the row's key), so nothing is stored
per row but a counter. Each call on rows advances those rows' counters alone, so a row's draws are the same
whether it is drawn with others or alone, in any order. The methods are the part of ``numpy.random.Generator``
the built-in value providers and map entries use (``random``, ``integers``, ``uniform``, ``triangular``,
``choice``), one value per row; a plugin's provider, which may call any method, gets a real ``Generator`` per row
seeded from the row's stream (:meth:`RowStreams.generators`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_2_53 = float(2**53)


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on ``uint64`` (a bijection that spreads every bit over the word)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def key_words(keys: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
    """Row keys (primary-key values) as ``uint64``: integers as themselves, anything else by a BLAKE2b digest."""
    values = np.asarray(keys, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "integer":
        return values.astype(np.int64).view(np.uint64)
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little") for v in values),
        dtype=np.uint64,
        count=len(values),
    )


class RowStreams:
    """Independent streams for rows, drawn together: ``n`` values per call, value ``i`` from row ``i``'s stream."""

    def __init__(self, name: int, keys: Sequence[Any] | np.ndarray | pd.Series) -> None:
        """Streams named ``name`` (a 64-bit number for seed, table, column and attempt) for rows keyed ``keys``."""
        self._keys = mix(mix(key_words(keys)) ^ np.uint64(name))
        self._counters = np.zeros(len(self._keys), dtype=np.uint64)
        self._rows = np.arange(len(self._keys))

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, positions: np.ndarray) -> RowStreams:
        """The streams of the rows at ``positions``, sharing their counters with this object."""
        view = object.__new__(RowStreams)
        view._keys, view._counters, view._rows = self._keys, self._counters, self._rows[positions]
        return view

    def _next(self) -> np.ndarray:
        """Each row's next 64-bit number."""
        rows = self._rows
        self._counters[rows] += np.uint64(1)
        with np.errstate(over="ignore"):
            return mix(self._keys[rows] + self._counters[rows] * GOLDEN)

    def _size(self, size: Any) -> None:
        n = size[0] if isinstance(size, tuple) and len(size) == 1 else size
        if not isinstance(n, int | np.integer) or n != len(self):
            raise ValueError(f"row streams draw one value per row ({len(self)}), not size={size!r}")

    def random(self, size: Any = None) -> np.ndarray:
        """A uniform float in [0, 1) per row (53 bits)."""
        self._size(size)
        return (self._next() >> np.uint64(11)).astype(np.float64) / _2_53

    def integers(self, low: Any, high: Any = None, size: Any = None) -> np.ndarray:
        """An integer in [low, high) per row (``high`` exclusive, as ``Generator.integers``)."""
        if high is None:
            low, high = 0, low
        low_, high_ = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
        span = high_ - low_
        if np.any(span <= 0):
            raise ValueError("integers: high <= low")
        u = self.random(size)
        return low_ + np.minimum((u * span).astype(np.int64), span - 1)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> np.ndarray:
        """A float in [low, high) per row."""
        low_, high_ = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        return low_ + (high_ - low_) * self.random(size)

    def triangular(self, left: Any, mode: Any, right: Any, size: Any = None) -> np.ndarray:
        """A triangular draw per row, by inverse CDF."""
        a, c, b = (np.asarray(v, dtype=float) for v in (left, mode, right))
        if np.any(b <= a):
            raise ValueError("triangular: left >= right")
        u = self.random(size)
        cut = (c - a) / (b - a)
        low = a + np.sqrt(u * (b - a) * (c - a))
        high = b - np.sqrt((1.0 - u) * (b - a) * (b - c))
        return np.where(u < cut, low, high)

    def choice(self, a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Any:
        """An element of ``a`` (or an index below ``a``, an int) per row, with probabilities ``p`` if given."""
        if not replace:
            raise ValueError("row streams draw each row alone: choice without replacement is not per row")
        n = int(a) if np.ndim(a) == 0 else len(a)
        if p is None:
            index = self.integers(0, n, size)
        else:
            cum = np.cumsum(np.asarray(p, dtype=float))
            if len(cum) != n or np.any(np.asarray(p) < 0) or not np.isclose(cum[-1], 1.0):
                raise ValueError("choice: p must be n probabilities that sum to 1")
            index = np.minimum(np.searchsorted(cum / cum[-1], self.random(size), side="right"), n - 1)
        return index if np.ndim(a) == 0 else np.asarray(a)[index]

    def generators(self) -> list[np.random.Generator]:
        """A numpy ``Generator`` per row, seeded from the row's next number (for code that may call any method)."""
        return [np.random.default_rng(int(word)) for word in self._next()]
