"""Columns of a real table: their kinds (the public schema), the input checks, and values <-> states.

A column's kind comes from its dtype (the schema is treated as public, as in every DP synthesiser); the states
come from released statistics only (:mod:`causalsynth.tools.privacy.domain`). Encoding maps each row to a state
(a row-wise map: one row changed changes one encoded row); decoding turns sampled states back into typed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.errors import DataError
from causalsynth.tools.privacy.schema import NULL_STATE, OTHER_STATE, ColumnSpec, Kind

#: Numeric kinds whose values are whole units (a date is a day count): a value ``k`` stands for ``[k, k + 1)``.
DISCRETE = frozenset({"integer", "date"})

#: A category column with more distinct values than this is refused (an identifier or free text, not a variable).
MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class Column:
    """A column's public description: its name and kind."""

    name: str
    kind: Kind


def prepare(
    table: pd.DataFrame, source: str, max_categories: int = MAX_CATEGORIES
) -> tuple[pd.DataFrame, list[Column]]:
    """Check a table and give each column its kind; dates become days since 1970, booleans strings.

    Raises:
        DataError: an empty table, a single row, a column of nulls only, a constant column, a category column
            with more than ``max_categories`` values, or a column name a spec cannot hold; every problem at once.
    """
    if table.shape[1] == 0 or len(table) == 0:
        raise DataError(f"{source}: the table is empty (no rows or no columns)")
    if len(table) < 2:
        raise DataError(f"{source}: the table has a single row; fitting needs at least 2")
    problems: list[str] = []
    out: dict[str, pd.Series] = {}
    columns: list[Column] = []
    for raw_name in table.columns:
        name = str(raw_name)
        col = table[raw_name]
        if not name.strip() or name.startswith("x-"):
            problems.append(f"column {name!r}: a spec cannot name a variable this way")
            continue
        kind, values = _kind(col)
        nonnull = values.dropna()
        if nonnull.empty:
            problems.append(f"column {name}: every value is null")
            continue
        distinct = nonnull.nunique()
        if distinct == 1 and len(nonnull) == len(values):
            problems.append(f"column {name}: every row holds the same value (a constant carries nothing to learn)")
            continue
        if kind == "category" and distinct > max_categories:
            problems.append(
                f"column {name}: {distinct:,} distinct categories (more than {max_categories:,}); "
                "drop it or bin it before fitting"
            )
            continue
        out[name] = values
        columns.append(Column(name, kind))
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))
    return pd.DataFrame(out, index=table.index), columns


def _kind(col: pd.Series) -> tuple[Kind, pd.Series]:
    if pd.api.types.is_bool_dtype(col):
        return "boolean", col.map(lambda v: None if pd.isna(v) else ("true" if v else "false")).astype(object)
    if pd.api.types.is_datetime64_any_dtype(col):
        days = (pd.to_datetime(col) - pd.Timestamp(0)).dt.total_seconds() / 86400.0
        return "date", days.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        values = col.astype(float)
        finite = values.dropna()
        integral = pd.api.types.is_integer_dtype(col) or bool(np.all(np.mod(finite, 1) == 0))
        return ("integer" if integral else "float"), values
    text = col.map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    nonnull = text.dropna()
    if len(nonnull) and nonnull.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all():
        stamps = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        if stamps.notna().sum() == len(nonnull):
            return "date", (stamps - pd.Timestamp(0)).dt.total_seconds() / 86400.0
    if len(nonnull) and set(nonnull.str.lower()) <= {"true", "false"}:
        return "boolean", text.map(lambda v: None if v is None else v.lower()).astype(object)
    return "category", text


def encode(values: pd.Series, spec: ColumnSpec, fallback: str) -> NDArray[np.int64]:
    """State codes of a prepared column under ``spec`` (states in ``state_names`` order).

    Values outside every state go to the ``<other>`` state (categories) or the nearest bin (numbers); nulls to
    the null state, else to ``fallback``. A row-wise map, so its stability is 1.
    """
    names = state_names(spec)
    index = {s: i for i, s in enumerate(names)}
    null_code = index[spec.null_state] if spec.null_state else index[fallback]
    isnull = values.isna().to_numpy()
    if spec.bins:
        cuts = np.asarray([b.low for b in spec.bins[1:]], dtype=float)
        x = values.to_numpy(dtype=float, na_value=np.nan)
        codes = np.searchsorted(cuts, np.nan_to_num(x), side="right").astype(np.int64)
        codes = np.asarray([index[spec.bins[c].state] for c in range(len(spec.bins))], dtype=np.int64)[codes]
    else:
        inverse = {v: s for s, v in (spec.categories or {}).items()}
        other = index.get(OTHER_STATE, index[fallback])
        codes = np.asarray(
            [other if v is None else index.get(inverse.get(v, v), other) for v in values.astype(object)],
            dtype=np.int64,
        )
    codes[isnull] = null_code
    return codes


def state_names(spec: ColumnSpec) -> list[str]:
    """The states of a column, in the order the network uses."""
    names = [b.state for b in spec.bins] if spec.bins else list(spec.categories or {})
    return names + ([spec.null_state] if spec.null_state else [])


def decode_frame(
    data: pd.DataFrame, columns: Mapping[str, ColumnSpec], seed: int, *, first: int = 0, total: int | None = None
) -> pd.DataFrame:
    """Replace each described column's states by values drawn inside their bins (seeded); other columns stay.

    ``first``/``total``: ``data`` is rows ``first ..`` of a ``total``-row sample (a shard); the values drawn are
    those the whole sample's decoding gives these rows (each binned column's stream skips ahead exactly).
    """
    rng = np.random.default_rng([seed, 0x0DEC0DE])
    total = len(data) if total is None else total
    out = data.copy()
    for name, spec in columns.items():
        if name in out.columns:
            skip = bool(spec.bins)  # a binned column draws one uniform per row, in row order
            if skip:
                rng.bit_generator.advance(first)  # type: ignore[attr-defined]
            out[name] = decode(out[name].astype(str).to_numpy(), spec, rng)
            if skip:
                rng.bit_generator.advance(total - first - len(data))  # type: ignore[attr-defined]
    return out


def decode(states: NDArray[Any], spec: ColumnSpec, rng: np.random.Generator) -> pd.Series:
    """Typed values of one column's states: integers stay integers, values stay inside their bin, nulls are nulls."""
    isnull = states == spec.null_state if spec.null_state else np.zeros(len(states), dtype=bool)
    if not spec.bins:
        mapping = {s: v for s, v in (spec.categories or {}).items()}
        raw = [None if n else mapping.get(s, s) for s, n in zip(states, isnull, strict=True)]
        if spec.kind == "boolean":
            return pd.Series([None if v is None else v == "true" for v in raw], dtype="boolean")
        return pd.Series(raw, dtype="string")
    by_state = {b.state: b for b in spec.bins}
    low = np.asarray([by_state[s].low if s in by_state else np.nan for s in states], dtype=float)
    high = np.asarray([by_state[s].high if s in by_state else np.nan for s in states], dtype=float)
    closed = np.asarray([by_state[s].closed if s in by_state else False for s in states], dtype=bool)
    u = rng.random(len(states))
    shaped = np.zeros(len(states), dtype=bool)
    inside = np.full(len(states), np.nan)
    for b in spec.bins:
        if b.points is not None:
            rows = states == b.state
            grid = np.linspace(0.0, 1.0, len(b.points))
            inside[rows] = np.interp(u[rows], grid, np.asarray(b.points, dtype=float))
            shaped |= rows
    if spec.kind in DISCRETE:
        first = np.ceil(low)
        last = np.where(closed, np.floor(high), np.ceil(high) - 1)
        last = np.maximum(last, first)
        values = first + np.floor(u * (last - first + 1))
        values = np.where(shaped, np.floor(inside), values)
        values = np.clip(values, first, last)
    else:
        top = np.where(closed, high, np.nextafter(high, -np.inf))  # an open bin's values stay below its high
        values = np.where(shaped, np.clip(inside, low, np.maximum(top, low)), low + u * (high - low))
        if spec.decimals is not None:
            values = np.clip(np.round(values, spec.decimals), low, high)
    values[isnull] = np.nan
    if spec.kind == "integer":
        return pd.Series(values, dtype="Float64").round().astype("Int64")
    if spec.kind == "date":
        stamps = pd.to_datetime(pd.Series(values), unit="D", errors="coerce")
        return stamps.dt.strftime("%Y-%m-%d").astype("string").where(~pd.Series(isnull), None)
    return pd.Series(values, dtype="Float64")


def bin_label(low: float, high: float, closed: bool, kind: Kind) -> str:
    """A state name for a bin that reads back from text, e.g. ``18 to 30`` (``minus 5 to 0``)."""

    def fmt(x: float) -> str:
        text = str(int(x)) if kind in DISCRETE and float(x).is_integer() else f"{abs(x):.6g}"
        text = text.lstrip("-")
        return f"minus {text}" if x < 0 else text

    return f"{fmt(low)} to {fmt(high)}"


__all__ = ["NULL_STATE", "OTHER_STATE", "Column", "decode", "decode_frame", "encode", "prepare", "state_names"]


def states_frame(data: pd.DataFrame, columns: Mapping[str, ColumnSpec]) -> pd.DataFrame:
    """Decoded values back to their states (for ``verify`` on a decoded sample); state columns are kept as they are."""
    out = data.copy()
    for name, spec in columns.items():
        if name not in out.columns:
            continue
        col = out[name]
        names = state_names(spec)
        as_text = col.astype("string")
        if as_text.isin(names).all():
            continue
        if spec.bins:
            values = pd.to_numeric(col, errors="coerce") if spec.kind != "date" else _days(col)
        else:
            values = col.map(lambda v: None if pd.isna(v) else (("true" if v else "false") if isinstance(v, bool)
                                                                  else str(v))).astype(object)  # fmt: skip
        fallback = OTHER_STATE if OTHER_STATE in names else names[0]
        out[name] = np.asarray(names, dtype=object)[encode(values, spec, fallback)]
    return out


def _days(col: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(col, errors="coerce")
    return (stamps - pd.Timestamp(0)).dt.total_seconds() / 86400.0
