"""Each column's states, from released statistics only.

Numeric bins come from a noisy histogram over public cells (post-processed into bounds and quantile cuts);
categories and the null state from a Gaussian-threshold release (rare ones merged into one state).

Without DP (``exact_*``) the same specs come from exact statistics of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from causalsynth.tools.privacy.columns import Column, bin_label
from causalsynth.tools.privacy.mechanisms import noisy_histogram, thresholded_counts
from causalsynth.tools.privacy.schema import NULL_STATE, OTHER_STATE, BinSpec, ColumnSpec

NUMERIC = {"integer", "float", "date"}
_VALUE = "<value>"


@dataclass(frozen=True)
class PublicBounds:
    """What the user states as public about a column: numeric bounds, or the full category list."""

    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] | None = None


def histogram_queries(column: Column) -> int:
    """Noisy histograms a column needs for its bins: one per numeric column."""
    return 1 if column.kind in NUMERIC else 0


Measure = Callable[[str, Any], Any]


def private_domain(
    columns: Sequence[Column], bounds: Mapping[str, PublicBounds], bins: int, measure: Measure,
    rho_of: Callable[[str], tuple[float, float]],
) -> dict[str, ColumnSpec]:  # fmt: skip
    """Column specs from DP releases.

    ``measure(step, measurement)`` spends through the accountant; ``rho_of(step)`` gives a step's per-query
    ``(rho, delta)``.
    """
    released: dict[str, dict[str, int]] = {}
    rho, delta = rho_of("domain")
    for col in columns:
        released[col.name] = measure("domain", thresholded_counts(_keys_of(col), rho, delta))
    specs: dict[str, ColumnSpec] = {}
    h_rho = rho_of("bins")[0] if any(c.kind in NUMERIC for c in columns) else 0.0
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for col in columns:
        if col.kind in NUMERIC:
            b = bounds.get(col.name, PublicBounds())
            edges = cell_edges(b.low, b.high, col.kind)
            noisy = measure("bins", noisy_histogram(_cells_of(col.name, edges), h_rho))
            histograms[col.name] = (edges, np.asarray(noisy, dtype=float))
    for col in columns:
        b = bounds.get(col.name, PublicBounds())
        has_null = NULL_STATE in released[col.name]
        if col.kind in NUMERIC:
            edges, noisy = histograms[col.name]
            low, high, cuts = cuts_from_histogram(edges, noisy, bins, np.sqrt(1 / (2 * h_rho)), col.kind)
            specs[col.name] = numeric_spec(col, low, high, cuts, has_null)
        else:
            if b.categories is not None:
                cats = list(b.categories)
            elif col.kind == "boolean":
                cats = ["false", "true"]
            else:
                cats = sorted(k for k in released[col.name] if k != NULL_STATE) + [OTHER_STATE]
            specs[col.name] = category_spec(col, cats, has_null)
    return specs


def _keys_of(col: Column) -> Callable[[pd.DataFrame], dict[str, int]]:
    def keys(table: pd.DataFrame) -> dict[str, int]:
        values = table[col.name]
        if col.kind in NUMERIC:
            nulls = int(values.isna().sum())
            return {NULL_STATE: nulls, _VALUE: len(values) - nulls}
        counts = values.fillna(NULL_STATE).astype(str).value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    return keys


def _cells_of(name: str, edges: np.ndarray) -> Callable[[pd.DataFrame], list[int]]:
    def cells(table: pd.DataFrame) -> list[int]:
        x = table[name].dropna().to_numpy(dtype=float)
        index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        return [int(c) for c in np.bincount(index, minlength=len(edges) - 1)]

    return cells


#: Chance that one level of the bound search lets an empty run of cells through (a spurious bound far from the data).
#: At 1% per level three levels put about 3% of columns' bounds far out (seen in tests); 0.1% costs a little
#: sensitivity in sparse tails.
FALSE_RUN = 0.001


def cuts_from_histogram(edges: np.ndarray, noisy: np.ndarray, bins: int, sigma: float, kind: str,
                        groups: Sequence[int] = (1, 6, 18)) -> tuple[float, float, list[float]]:  # fmt: skip
    """Bounds and bin cuts from a noisy histogram (post-processing only).

    The bounds are the outermost runs of cells that stand out of the noise, looked for at several widths
    (``groups``: single cells, runs of 6 and of 18, i.e. a third of a decade and a decade on the log grid), since
    spread data stands out only in wide runs; each level's threshold lets an empty run through with chance
    ``FALSE_RUN``.
    Within the outermost run found at a coarse level, a finer survivor moves the bound in. The cuts are quantiles
    of the noisy counts between the bounds (running cumulative maximum, so the CDF is monotone; no clipping,
    which would bias towards uniform).
    """
    n = len(noisy)
    lo_cell, hi_cell, coarser = n, -1, n
    for width in sorted(groups, reverse=True):
        padded = np.concatenate([noisy, np.zeros((-n) % width)])
        sums = padded.reshape(-1, width).sum(axis=1)
        alive = np.flatnonzero(sums >= sigma * np.sqrt(width) * float(norm.isf(FALSE_RUN / len(sums))))
        if len(alive) == 0:
            continue
        first, last = int(alive[0]) * width, min(n, (int(alive[-1]) + 1) * width) - 1
        if lo_cell == n:  # the coarsest level that finds anything sets the bounds
            lo_cell, hi_cell = first, last
        else:  # a finer level may only move a bound inside the outermost coarse run
            if lo_cell <= first < lo_cell + coarser:
                lo_cell = first
            if hi_cell - coarser < last <= hi_cell:
                hi_cell = last
        coarser = width
    if hi_cell < lo_cell:  # nothing stands out of the noise at any width: the largest cell
        lo_cell = hi_cell = int(np.argmax(noisy))
    low, high = float(edges[lo_cell]), float(edges[hi_cell + 1])
    inside = noisy[lo_cell : hi_cell + 1]
    cdf = np.clip(np.maximum.accumulate(np.concatenate([[0.0], np.cumsum(inside)])), 0, None)
    cdf = cdf / cdf[-1] if cdf[-1] > 0 else np.linspace(0, 1, len(cdf))
    cell_edges = edges[lo_cell : hi_cell + 2]
    cuts = [float(np.interp(q, cdf, cell_edges)) for q in (i / bins for i in range(1, bins))]
    if kind in {"integer", "date"}:
        cuts = [float(np.round(c)) for c in cuts]
        high = high - 1 if high - 1 >= low else high  # integer cells are [k, k+step): the largest value is below
    return low, high, cuts


def numeric_spec(col: Column, low: float, high: float, cuts: Sequence[float], has_null: bool) -> ColumnSpec:
    """Bins ``[low, c1), [c1, c2), ..., [ck, high]`` from sorted cut points (duplicates and outliers dropped)."""
    if high < low:
        low, high = high, low
    inner = sorted({float(c) for c in cuts if low < c <= high})
    edges = [low, *inner]
    bins = []
    for i, lo in enumerate(edges):
        last = i == len(edges) - 1
        hi = high if last else edges[i + 1]
        bins.append(BinSpec(state=bin_label(lo, hi, last, col.kind), low=lo, high=hi, closed=last))
    return ColumnSpec(kind=col.kind, bins=bins, null_state=NULL_STATE if has_null else None)


def cell_edges(low: float | None, high: float | None, kind: str, size: int = 256) -> np.ndarray:
    """Public histogram cell edges, chosen without looking at the data.

    Even steps between public bounds; else 30-day cells from 1900 to 2100 for dates and a signed log grid with two
    cells per unit of the leading digit (0.01 to 1e9) for numbers; integer columns get integer edges.
    """
    integer = kind in {"integer", "date"}
    if kind == "date" and (low is None or high is None):
        first = -25567.0 if low is None else np.floor(low)  # 1900-01-01, in days since 1970
        last = 47482.0 if high is None else np.floor(high) + 1  # 2100-01-01
        return np.unique(np.concatenate([np.arange(first, last, 30.0), [last]]))
    if low is not None and high is not None:
        if integer and high - low <= 4096:
            return np.arange(np.floor(low), np.floor(high) + 2, dtype=float)
        grid = np.linspace(low, high, size + 1)
    else:
        mantissa = np.arange(1.0, 10.0, 0.5)
        positive = np.unique(np.round(np.outer(10.0 ** np.arange(-2, 9), mantissa).ravel(), 10))
        grid = np.concatenate([-positive[::-1], [0.0], positive])
        if low is not None:
            grid = np.concatenate([[low], grid[grid > low]])
        if high is not None:
            grid = np.concatenate([grid[grid < high], [high]])
    if integer:
        grid = np.unique(np.round(grid))
    return np.unique(grid)


def category_spec(col: Column, categories: Sequence[str], has_null: bool) -> ColumnSpec:
    """States for categories (each decodes to itself; ``<other>`` stays ``<other>``)."""
    values = {str(c): str(c) for c in categories if str(c).strip() and c != NULL_STATE}
    if not values:
        values = {OTHER_STATE: OTHER_STATE}
    return ColumnSpec(kind=col.kind, categories=values, null_state=NULL_STATE if has_null else None)


def exact_domain(table: pd.DataFrame, columns: Sequence[Column], bounds: Mapping[str, PublicBounds],
                 bins: int) -> dict[str, ColumnSpec]:  # fmt: skip
    """Column specs from exact statistics (no DP: ``--no-dp``)."""
    specs: dict[str, ColumnSpec] = {}
    for col in columns:
        values = table[col.name]
        has_null = bool(values.isna().any())
        b = bounds.get(col.name, PublicBounds())
        if col.kind in NUMERIC:
            x = values.dropna().to_numpy(dtype=float)
            low = b.low if b.low is not None else float(x.min())
            high = b.high if b.high is not None else float(x.max())
            cuts = np.quantile(x, [i / bins for i in range(1, bins)]).tolist()
            specs[col.name] = numeric_spec(col, low, high, cuts, has_null)
        else:
            cats = list(b.categories) if b.categories is not None else sorted(values.dropna().astype(str).unique())
            specs[col.name] = category_spec(col, cats, has_null)
    return specs
