"""Typed views of a real table and a table compared with it: column kinds, bins, codes and a distance embedding.

Kinds are read from the real (training) table and imposed on the others, so the synthetic table is measured on
the real table's terms: a number column is a number in both, a category keeps the real categories' codes (an
unseen synthetic category gets a code of its own), and a number bin is cut at the real table's quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.errors import DataError

Kind = Literal["numeric", "categorical", "text", "id"]

# Columns an agent run adds to its records: bookkeeping, not data.
RUN_COLUMNS = frozenset({"record_id", "rounds", "llm_calls", "tokens", "history", "references", "rownames"})
MAX_CATEGORIES_AS_NUMBER = 10  # a number column with at most this many distinct values is measured as categories
TEXT_MIN_MEAN_CHARS = 40
MISSING = "<missing>"


@dataclass
class Column:
    """How one column is measured."""

    name: str
    kind: Kind
    categories: list[str] = field(default_factory=list)  # categorical: the real categories, most frequent first
    lo: float = 0.0  # numeric: the real range
    hi: float = 0.0
    edges: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # numeric: inner 5-quantile cut points
    median: float = 0.0

    @property
    def span(self) -> float:
        """The real range, 1 if the column is constant (so normalised distances stay finite)."""
        return self.hi - self.lo if self.hi > self.lo else 1.0


def _as_numbers(values: pd.Series) -> pd.Series | None:
    """The column as floats if every non-missing cell is a number, else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    numbers = pd.to_numeric(text.where(present), errors="coerce")
    if present.any() and bool(numbers[present].notna().all()):
        return numbers.astype(float)
    return None


def infer_columns(real: pd.DataFrame, *, exclude: frozenset[str] = RUN_COLUMNS) -> list[Column]:
    """Decide each real column's kind (ids and run bookkeeping are kept out of the measures)."""
    cols: list[Column] = []
    for name in real.columns:
        s = real[name]
        if name in exclude:
            continue
        numbers = _as_numbers(s)
        nunique = int(s.nunique(dropna=True))
        if numbers is not None and nunique > MAX_CATEGORIES_AS_NUMBER:
            finite = numbers.dropna().to_numpy()
            integral = bool(np.all(np.mod(finite, 1) == 0))
            if integral and nunique == len(s) and _looks_like_id(name):
                cols.append(Column(name, "id"))
                continue
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            inner = np.unique(np.quantile(finite, [0.2, 0.4, 0.6, 0.8])) if finite.size else np.zeros(0)
            median = float(np.median(finite)) if finite.size else 0.0
            cols.append(Column(name, "numeric", lo=lo, hi=hi, edges=inner, median=median))
            continue
        labels = _labels(s)
        if nunique == len(s) and nunique > 50:
            mean_chars = float(labels.str.len().mean())
            cols.append(Column(name, "text" if mean_chars >= TEXT_MIN_MEAN_CHARS else "id"))
            continue
        if nunique > 50 and float(labels.str.len().mean()) >= TEXT_MIN_MEAN_CHARS:
            cols.append(Column(name, "text"))
            continue
        order = labels.value_counts(sort=True)
        cols.append(Column(name, "categorical", categories=[str(c) for c in order.index]))
    return cols


def _looks_like_id(name: str) -> bool:
    low = name.lower()
    return low == "id" or low.endswith("_id") or low.endswith("id") and len(low) > 2 and low[-3] in "_-"


def _labels(values: pd.Series) -> pd.Series:
    """Category labels as text: numbers written without a trailing '.0', missing as one category of its own."""
    numbers = _as_numbers(values)
    if numbers is not None:
        x = numbers.to_numpy(dtype=float)
        missing = np.isnan(x)
        whole = ~missing & (np.mod(np.where(missing, 0, x), 1) == 0)
        text = np.where(whole, np.where(whole, x, 0).astype(np.int64).astype(str), x.astype(str)).astype(object)
        text[missing] = MISSING
        return pd.Series(text, index=values.index, dtype=str)
    out = values.astype("string").fillna(MISSING).astype(str)
    return out.where(out != "", MISSING)


@dataclass
class Encoded:
    """One table on the real table's terms."""

    n: int
    codes: dict[str, NDArray[np.int64]]  # categorical: real category index, len(categories) = unseen; numeric: bin
    numbers: dict[str, NDArray[np.float64]]  # numeric: values, missing filled with the real median
    labels: dict[str, pd.Series]  # categorical: labels as text
    texts: dict[str, list[str]]


class Frame:
    """The real table's columns and the encoders that put any other table on its terms."""

    def __init__(self, real: pd.DataFrame, columns: list[Column]) -> None:
        self.columns = columns
        self.by_name = {c.name: c for c in columns}
        self.measured = [c for c in columns if c.kind in ("numeric", "categorical")]
        self.texts = [c for c in columns if c.kind == "text"]
        self._index = {c.name: {cat: i for i, cat in enumerate(c.categories)} for c in columns if c.categories}

    def card(self, col: Column) -> int:
        """Codes a column can take: real categories + one for unseen, or the number of bins."""
        return len(col.categories) + 1 if col.kind == "categorical" else len(col.edges) + 1

    def encode(self, table: pd.DataFrame, source: str) -> Encoded:
        """Encode ``table``; every measured column must be there."""
        missing = [c.name for c in self.columns if c.kind != "id" and c.name not in table.columns]
        if missing:
            raise DataError(f"{source}: missing column(s) {', '.join(missing)} that the real table has")
        codes: dict[str, NDArray[np.int64]] = {}
        numbers: dict[str, NDArray[np.float64]] = {}
        labels: dict[str, pd.Series] = {}
        texts: dict[str, list[str]] = {}
        for col in self.columns:
            if col.kind == "numeric":
                values = _as_numbers(table[col.name])
                if values is None:
                    bad = table[col.name][pd.to_numeric(table[col.name], errors="coerce").isna()].iloc[0]
                    raise DataError(f"{source}: column {col.name} holds {bad!r}, not a number as in the real table")
                arr = values.fillna(col.median).to_numpy(dtype=float)
                numbers[col.name] = arr
                codes[col.name] = np.searchsorted(col.edges, arr, side="right").astype(np.int64)
            elif col.kind == "categorical":
                lab = _labels(table[col.name]).reset_index(drop=True)
                labels[col.name] = lab
                index = self._index[col.name]
                unseen = len(col.categories)
                codes[col.name] = np.fromiter((index.get(v, unseen) for v in lab), dtype=np.int64, count=len(lab))
            elif col.kind == "text":
                texts[col.name] = table[col.name].astype("string").fillna("").astype(str).tolist()
        return Encoded(len(table), codes, numbers, labels, texts)

    def embed(self, enc: Encoded) -> NDArray[np.float64]:
        """Rows as points: numbers scaled by the real range, categories one-hot at 1/sqrt(2).

        The squared Euclidean distance between two points is then the sum of squared range-normalised number
        differences plus the number of categories that differ (an unseen category is all zeros).
        """
        parts: list[NDArray[np.float64]] = []
        for col in self.measured:
            if col.kind == "numeric":
                parts.append(((enc.numbers[col.name] - col.lo) / col.span)[:, None])
            else:
                k = len(col.categories)
                onehot = np.zeros((enc.n, k), dtype=float)
                c = enc.codes[col.name]
                seen = c < k
                onehot[np.flatnonzero(seen), c[seen]] = np.sqrt(0.5)
                parts.append(onehot)
        if not parts:
            return np.zeros((enc.n, 0))
        return np.hstack(parts)

    def row_keys(self, enc: Encoded) -> NDArray[Any]:
        """One hashable key per row over every measured column (for exact matches)."""
        if not self.measured:
            return np.zeros(enc.n, dtype=np.int64)
        cols: list[NDArray[Any]] = []
        for col in self.measured:
            if col.kind == "numeric":
                cols.append(np.round(enc.numbers[col.name], 6).astype(str))
            else:
                cols.append(enc.labels[col.name].to_numpy(dtype=str))
        frame = pd.DataFrame(dict(enumerate(cols)))
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def build_frame(real: pd.DataFrame, source: str = "real") -> Frame:
    """Type the real table's columns; an empty table is an error."""
    if len(real) == 0:
        raise DataError(f"{source}: no rows")
    return Frame(real, infer_columns(real))
