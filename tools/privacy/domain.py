"""Each column's states, from released statistics only.

Numeric bins come from a noisy histogram over public cells (post-processed into bounds and quantile cuts);
categories and the null state from a Gaussian-threshold release (rare ones merged into one state).

Without DP (``exact_*``) the same specs come from exact statistics of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from causalsynth.tools.privacy.columns import DISCRETE, Column, bin_label, encode
from causalsynth.tools.privacy.cpts import project_to_simplex
from causalsynth.tools.privacy.mechanisms import (
    gaussian_scale,
    noisy_histogram,
    threshold_count,
    threshold_scale,
    thresholded_counts,
)
from causalsynth.tools.privacy.schema import NULL_STATE, OTHER_STATE, BinSpec, ColumnSpec
from causalsynth.tools.privacy.vocabularies import Completion, completion

NUMERIC = {"integer", "float", "date"}
_VALUE = "<value>"


@dataclass(frozen=True)
class PublicBounds:
    """What the user states as public about a column: numeric bounds, or the full category list."""

    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] | None = None


def thresholded(column: Column, bounds: Mapping[str, PublicBounds]) -> bool:
    """Whether a column's values are unknown keys (a category column without a public list): a thresholded release.

    Other columns' keys are public (null or not), so their null count is a plain noisy histogram.
    """
    return column.kind == "category" and bounds.get(column.name, PublicBounds()).categories is None


def histogram_queries(column: Column) -> int:
    """Queries a column needs for its bins (one in each of "bounds", "spikes", "zoom", "bins"): one if numeric."""
    return 1 if column.kind in NUMERIC else 0


Measure = Callable[[str, Any], Any]


@dataclass
class DomainRelease:
    """The column specs and the released statistics they came from (reused later as measurements)."""

    specs: dict[str, ColumnSpec]
    counts: dict[str, dict[str, int]]  # per column, the released noisy counts (categories and nulls)
    #: per column, the noise scale of those counts (a numeric column's null count: that of its releases together)
    sigma_counts: dict[str, float]
    rows: float  # a row-count estimate from the releases (post-processing)
    #: per column, the second category release's noisy counts and their noise scale (the columns it covered)
    second: dict[str, tuple[dict[str, int], float]] = field(default_factory=dict)
    #: per thresholded column, the lowest count its category releases could name (the Gaussian threshold)
    thresholds: dict[str, int] = field(default_factory=dict)
    #: per thresholded column whose unexplained rows a public list took (:mod:`vocabularies`), the values it added
    completed: dict[str, Completion] = field(default_factory=dict)


#: Points of a bin's inverse CDF stored for decoding (evenly spaced probabilities 0, 1/m, ..., 1).
POINTS = 8


def private_domain(
    columns: Sequence[Column], bounds: Mapping[str, PublicBounds], bins: int | Callable[[float], int],
    measure: Measure, rho_of: Callable[[str], tuple[float, float]],
) -> DomainRelease:  # fmt: skip
    """Column specs from DP releases.

    ``measure(step, measurement)`` spends through the accountant; ``rho_of(step)`` gives a step's per-query
    ``(rho, delta)``; ``bins`` is the number of bins per numeric column, or a rule giving it from the (noisy)
    number of rows.
    """
    released: dict[str, dict[str, int]] = {}
    n_rho = rho_of("nulls")[0]
    n_sigma = gaussian_scale(n_rho) if n_rho > 0 else 0.0
    null_counts: dict[str, list[tuple[float, float]]] = {}  # per column the null release measured: (count, scale)
    for col in columns:
        if not thresholded(col, bounds):
            nulls, values = measure("nulls", noisy_histogram(_nulls_of(col.name), n_rho))
            released[col.name] = {_VALUE: int(values), NULL_STATE: int(nulls)}  # whether a null state: below
            null_counts[col.name] = [(float(nulls), n_sigma)]
    rho, delta = rho_of("domain")
    keyed = [c for c in columns if thresholded(c, bounds)]
    for col in keyed:
        released[col.name] = measure("domain", thresholded_counts(_keys_of(col), rho, delta))
    complete = [c.name for c in columns if not thresholded(c, bounds)]
    rows = _rows_estimate(released, complete)
    t_sigma = threshold_scale(rho, delta) if rho > 0 else 0.0
    # the row estimate's noise: a mean of the complete histograms' totals (each two noisy cells), else one total
    rows_sd = n_sigma * float(np.sqrt(2.0 / len(complete))) if complete else float(np.sqrt(2.0)) * t_sigma
    second: dict[str, dict[str, int]] = {}
    t_sigma2 = 0.0
    rho2, delta2 = rho_of("domain2")
    if keyed and rho2 > 0:  # the second release, on the columns the first left rows unexplained in (else see _widest)
        short = [c for c in keyed if _unreleased_mass(released[c.name], rows, t_sigma, rows_sd)]
        short.sort(key=lambda c: -_deficit_z(released[c.name], rows, t_sigma, rows_sd))
        chosen = short[:SECOND_COLUMNS] or _widest(keyed, released)
        joint = measure("domain2", thresholded_counts(_joint_keys_of(chosen), rho2, delta2, len(chosen)))
        second = {c.name: {} for c in chosen}
        for key, count in joint.items():
            index, _, value = key.partition(_SEP)
            second[chosen[int(index)].name][value] = int(count)
        t_sigma2 = threshold_scale(rho2, delta2, len(chosen))
    k = bins if isinstance(bins, int) else bins(rows)
    specs: dict[str, ColumnSpec] = {}
    numeric = [c for c in columns if c.kind in NUMERIC]
    b_rho = rho_of("bounds")[0] if numeric else 0.0
    b_sigma = gaussian_scale(b_rho) if b_rho > 0 else 0.0
    coarse: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    groups: dict[str, tuple[int, ...]] = {}
    for col in numeric:  # first the range, on a public grid
        b = bounds.get(col.name, PublicBounds())
        edges = cell_edges(b.low, b.high, col.kind)
        noisy = measure("bounds", noisy_histogram(_cells_of(col.name, edges), b_rho))
        coarse[col.name] = (edges, _null_cell(noisy, null_counts[col.name], b_sigma))
        groups[col.name] = LOG_GROUPS if _log_grid(b, col.kind) else EVEN_GROUPS
    s_rho, s_delta = rho_of("spikes") if numeric else (0.0, 0.0)
    spikes: dict[str, dict[float, int]] = {}
    for col in numeric if s_rho > 0 else []:  # values many rows hold exactly (a point mass: 0, 100, a default)
        out = measure("spikes", thresholded_counts(_values_of(col.name), s_rho, s_delta))
        spikes[col.name] = {float(v): int(c) for v, c in out.items()}
    h_rho = rho_of("bins")[0] if numeric else 0.0
    z_rho = rho_of("zoom")[0] if numeric else 0.0
    h_sigma, z_sigma = (gaussian_scale(r) if r > 0 else 0.0 for r in (h_rho, z_rho))
    histograms: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}  # cells, shape counts, their noise scale
    ranges: dict[str, tuple[float, float]] = {}
    zooms: dict[str, _Zoom] = {}
    for col in numeric:  # then the shape, on cells inside the released range (their edges are post-processing)
        edges, noisy = coarse[col.name]
        low, high, _ = cuts_from_histogram(edges, noisy, k, b_sigma, col.kind, groups[col.name])
        b = bounds.get(col.name, PublicBounds())
        points_ = list(spikes.get(col.name, {}))  # a released spike is inside the range
        low = float(b.low) if b.low is not None else min([low, *points_])  # public bounds are the range, not searched
        high = float(b.high) if b.high is not None else max([high, *points_])
        fine = fine_edges(low, high, col.kind, edges, noisy)
        zoom_ = measure("zoom", noisy_histogram(_cells_of(col.name, fine), z_rho))
        zoom = _null_cell(zoom_, null_counts[col.name], z_sigma)
        zooms[col.name] = _zoomed(col, fine, zoom, low, high, b, spikes.get(col.name, {}), z_rho)
    for col in numeric:
        z = zooms[col.name]
        cells_ = measure("bins", noisy_histogram(_cells_of(col.name, z.cells), h_rho))
        cells = _null_cell(cells_, null_counts[col.name], h_sigma)
        if z.counts is None:  # new cells: the second release alone is the shape
            shape, shape_rho = cells, h_rho
        elif z_rho + h_rho > 0:  # the same cells: both releases, weighted by their rho
            shape, shape_rho = (z_rho * z.counts + h_rho * cells) / (z_rho + h_rho), z_rho + h_rho
        else:
            shape, shape_rho = cells, 0.0
        shape_sigma = gaussian_scale(shape_rho) if shape_rho > 0 else 0.0
        first, last = _occupied(shape, shape_sigma)
        b = bounds.get(col.name, PublicBounds())
        ranges[col.name] = _cut_range(z.low, z.high, z.cells, first, last, b, list(spikes.get(col.name, {})), col.kind)
        histograms[col.name] = (z.cells, shape, shape_sigma)
    sigmas = {c.name: t_sigma for c in keyed}
    for name, parts in null_counts.items():  # a null state only where the nulls stand out of the noise
        nulls, sigmas[name] = _combined(parts)
        if nulls > NULL_NOISE * sigmas[name]:
            released[name][NULL_STATE] = round(nulls)
        else:
            del released[name][NULL_STATE]
    released_all: dict[str, dict[str, int]] = {}
    for name, counts in released.items():  # the keys either release named; the second's counts where it has one
        released_all[name] = {**counts, **second.get(name, {})}
    completed: dict[str, Completion] = {}
    for col in columns:
        b = bounds.get(col.name, PublicBounds())
        has_null = NULL_STATE in released_all[col.name]
        if col.kind in NUMERIC:
            edges, noisy, shape_sigma = histograms[col.name]
            low, high = ranges[col.name]
            zoomed = zooms[col.name].counts is None
            spikes_ = spikes.get(col.name, {})
            specs[col.name] = spiked_spec(col, low, high, edges, noisy, spikes_, k, has_null, shape_sigma, zoomed)
        else:
            if b.categories is not None:
                cats = list(b.categories)
            elif col.kind == "boolean":
                cats = ["false", "true"]
            else:
                cats = sorted(k for k in released_all[col.name] if k != NULL_STATE)
                final, sigma_final = (
                    (released_all[col.name], t_sigma2) if col.name in second else (released[col.name], t_sigma)
                )
                # a column is known to hold two values (fit refuses a constant one before any release): where one
                # category alone was released, the rest of its rows are a rare category even when too few to show
                # (HealthInsurance at epsilon 0.3: health's 452 "no" in 6,161 rows, else a constant target)
                unexplained = _unreleased_mass(final, rows, sigma_final, rows_sd)
                listed = completion(cats) if unexplained else None
                if listed is not None:  # the unexplained rows hold the list's other values (post-processing)
                    completed[col.name] = listed
                    cats = sorted([*cats, *listed.added])
                elif unexplained or len(cats) + has_null < 2:
                    cats.append(OTHER_STATE)
            specs[col.name] = category_spec(col, cats, has_null)
    again = {name: (counts, t_sigma2) for name, counts in second.items()}
    lowest = {c.name: threshold_count(rho, delta) for c in keyed if rho > 0}
    if second:
        lowest.update(dict.fromkeys(second, threshold_count(rho2, delta2, len(second))))
    return DomainRelease(specs, released, sigmas, rows, again, lowest, completed)


def domain_notes(release: DomainRelease) -> list[str]:
    """What the private domain left out, in words (post-processing of the releases).

    Per category column whose releases left rows unexplained: how many categories were named and about what part
    of the rows the ``rare category`` state stands for. Once, where a column measured by the null release has no
    null state: the null count a null state needs (a column's own noisy count is not a reliable sign: among 40
    columns without nulls, about one stands 2 noise scales out).
    """
    notes = []
    rows = max(release.rows, 1.0)
    for name, spec in release.specs.items():
        if spec.categories is not None and OTHER_STATE in spec.categories and name in release.thresholds:
            counts = {**release.counts.get(name, {}), **release.second.get(name, ({}, 0.0))[0]}
            named = len(spec.categories) - 1
            share = max(0.0, rows - float(sum(counts.values()))) / rows
            notes.append(
                f"{name}: {named} categor{'y' if named == 1 else 'ies'} named; about {share:.0%} of the rows hold "
                f"values seen fewer than about {release.thresholds[name]:,} times, sampled as {OTHER_STATE!r} "
                f"(a public category list for {name} in --bounds names every value)"
            )
    for name, listed in release.completed.items():
        named = len(release.specs[name].categories or {}) - len(listed.added)
        notes.append(
            f"{name}: the {named} categories named are all in a public list, {listed.vocabulary.name}; its "
            f"{len(listed.added)} other values ({_listed(listed.added)}) were added as states for the rows no name "
            f"explained (public knowledge, no budget; a public category list for {name} in --bounds replaces it)"
        )
    measured = [n for n, counts in release.counts.items() if _VALUE in counts]  # by the null release
    without = [n for n in measured if release.specs[n].null_state is None]
    sigma = max((release.sigma_counts[n] for n in without), default=0.0)
    if without and sigma > 0:
        need = NULL_NOISE * sigma
        notes.append(
            f"nulls: a column keeps a {NULL_STATE!r} state only when its noisy null count is over {need:,.0f} of "
            f"about {rows:,.0f} rows ({need / rows:.1%}): a column with fewer nulls is sampled without them"
        )
    return notes


def _listed(values: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(values[:most])
    return shown if len(values) <= most else f"{shown}, ..."


#: The zoom histogram (on cells of equal mass by the range histogram) calls for new cells when one of its cells
#: holds more than this part of the rows: the range histogram's cells were far too wide for the data (integer
#: years 1963 to 2015 inside the cell 1000 to 2000).
ZOOM_SHARE = 0.2
#: ... and that cell's count stands this many noise scales above an equal share (sparse columns' noise alone
#: often puts a fifth of the noisy total in one cell).
ZOOM_NOISE = 4.0


@dataclass(frozen=True)
class _Zoom:
    """Where a numeric column's second shape release counts: ``cells`` over ``[low, high]``.

    ``counts``: the zoom release's counts on the same cells (``None`` when the cells are new).
    """

    cells: np.ndarray
    low: float
    high: float
    counts: np.ndarray | None


def _zoomed(col: Column, fine: np.ndarray, zoom: np.ndarray, low: float, high: float, b: PublicBounds,
            spikes: Mapping[float, int], z_rho: float) -> _Zoom:  # fmt: skip
    """The second shape release's cells, from the zoom release's counts on ``fine`` (post-processing).

    Where one zoom cell that can be split (wider than one integer) clearly holds more than ``ZOOM_SHARE`` of the
    rows besides its released spikes, new cells of equal mass by the zoom counts; else the same cells (the two
    releases are then averaged). The new cells span the run of cells around the largest that the counts'
    projection onto non-negative counts keeps, widened to every cell that stands out of the noise, and to the end
    on a side whose cells together hold more than ``TRIM_MASS`` of the rows (see :func:`_uncut`).
    """
    rest = zoom.copy()
    for value, count in spikes.items():  # a point mass is released on its own: it needs no finer cells
        rest[int(np.clip(np.searchsorted(fine, value, side="right") - 1, 0, len(rest) - 1))] -= count
    total = float(zoom.sum())
    sigma = gaussian_scale(z_rho) if z_rho > 0 else 0.0
    widths = np.diff(fine)
    splittable = widths > 1 if col.kind in DISCRETE else widths > 0
    candidates = np.where(splittable, rest, -np.inf)
    top = int(np.argmax(candidates)) if len(rest) else 0
    if (
        total <= 0
        or len(fine) <= 2
        or not np.isfinite(candidates[top])
        or rest[top] <= ZOOM_SHARE * total
        or rest[top] - total / len(zoom) <= ZOOM_NOISE * sigma
    ):
        return _Zoom(fine, low, high, zoom)
    held = project_to_simplex(zoom, total) > 0
    first = last = top  # the run of cells the projection keeps around the largest one
    while first > 0 and held[first - 1]:
        first -= 1
    while last < len(held) - 1 and held[last + 1]:
        last += 1
    first, last = _beyond_gaps(rest, first, last, ZOOM_NOISE * sigma)
    standing = np.flatnonzero(rest > ZOOM_NOISE * sigma)
    if len(standing):
        first, last = min(first, int(standing[0])), max(last, int(standing[-1]))
    first, last = _uncut(rest, first, last, TRIM_MASS * total, TRIM_NOISE * sigma)
    low, high = _cut_range(low, high, fine, first, last, b, list(spikes), col.kind)
    return _Zoom(fine_edges(low, high, col.kind, fine, zoom), low, high, None)


def _beyond_gaps(counts: np.ndarray, first: int, last: int, scale: float) -> tuple[int, int]:
    """``[first, last]`` widened to the furthest run of cells beyond it whose sum stands ``scale * sqrt(cells)``.

    The projection's run ends at the first cell it empties, and one noisy cell inside the data can be that cell
    (wa_churn's monthly_charges, 1 fit in 100 at epsilon 1: its range cut to [18.9, 66.7], half the rows outside);
    rows beyond such a gap stand out together, while noise-only cells do not.
    """
    return first - _reach(counts[:first][::-1], scale), last + _reach(counts[last + 1 :], scale)


def _uncut(counts: np.ndarray, first: int, last: int, mass: float, scale: float) -> tuple[int, int]:
    """``[first, last]`` back to the histogram's end on each side whose cells together hold more than ``mass`` rows.

    A side is cut only where its sum is within ``scale * sqrt(cells)`` of at most ``mass`` rows. The zoom's other
    rules keep rows that stand out (4 noise scales, in a cell or a run), and rows spread thin do not: loans'
    ``loan_amount`` at epsilon 1 (zoom noise 175 per cell, about 200 rows per cell), 1 release in 200, had its
    range cut to ``[9506, 11138]`` around the 10,000 spike, 13% of the rows; its two sides' noisy sums were 1,246
    and 2,900 rows.
    """
    if first > 0 and float(counts[:first].sum()) > mass + scale * np.sqrt(first):
        first = 0
    beyond = len(counts) - 1 - last
    if beyond > 0 and float(counts[last + 1 :].sum()) > mass + scale * np.sqrt(beyond):
        last = len(counts) - 1
    return first, last


def _reach(outward: np.ndarray, scale: float, cells: int | None = None) -> int:
    """The cells beyond a bound that the furthest run standing out of the noise reaches (0 if none).

    ``outward``: the cells beyond the bound, nearest first (at most ``cells`` of them are read); a run stands out
    when its sum is positive and at least ``scale * sqrt(its cells)``.
    """
    sums = np.cumsum(outward[:cells])
    k = np.arange(1, len(sums) + 1)
    ok = np.flatnonzero((sums > 0) & (sums >= scale * np.sqrt(k)))
    return int(ok[-1]) + 1 if len(ok) else 0


def _cut_range(low: float, high: float, cells: np.ndarray, first: int, last: int, b: PublicBounds,
               spikes: Sequence[float], kind: str) -> tuple[float, float]:  # fmt: skip
    """The range cut to the occupied ``cells[first:last + 1]`` (public bounds and released spikes stay inside)."""
    if b.low is None:
        low = min([max(low, float(cells[first])), *spikes])
    if b.high is None:
        top = float(cells[last + 1]) - (1.0 if kind in DISCRETE else 0.0)
        high = max([max(min(high, top), low), *spikes])
    return low, high


def spike_end(value: float, kind: str) -> float:
    """The upper end of a spike's own bin ``[value, end)``: the next integer, or the next 6-significant-digit tick."""
    if kind in DISCRETE:
        return float(value) + 1.0
    tick = 10.0 ** (np.floor(np.log10(abs(value))) - 5) if value != 0 else 1e-6
    return float(value) + float(tick)


def spiked_spec(col: Column, low: float, high: float, edges: np.ndarray, noisy: np.ndarray,
                spikes: Mapping[float, int], bins: int, has_null: bool, sigma: float = 0.0, zoomed: bool = False,
                ) -> ColumnSpec:  # fmt: skip
    """A numeric column's bins from its noisy shape histogram and its released spikes (post-processing only).

    Each released spike inside ``[low, high]`` (at most ``bins - 1``, the largest first) gets its own bin
    ``[value, spike_end)`` that decodes to exactly that value; its released count is taken out of the histogram
    cell that holds it, and the other bins are quantiles of what remains. ``sigma``: the histogram's noise scale
    per cell (an inner bin whose cells hold mostly noise decodes uniformly, see :func:`noisy_points`). ``zoomed``:
    the cells are the zoom release's new ones, so the range ends on a zoom cell's edge, maybe far past the rows;
    the outer bins' noise-only cells there are cut (:func:`_noise_tail_cut`).
    """
    chosen = sorted(sorted((v for v in spikes if low <= v <= high), key=lambda v: -spikes[v])[: max(bins - 1, 0)])
    rest = np.asarray(noisy, dtype=float).copy()
    for v in chosen:
        cell = int(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(rest) - 1))
        rest[cell] -= spikes[v]
    ends = {v: spike_end(v, col.kind) for v in chosen}
    cuts = [c for c in quantile_cuts(edges, rest, max(bins - len(chosen), 1), col.kind)
            if not any(v <= c <= ends[v] for v in chosen)]  # fmt: skip
    integer = col.kind in DISCRETE
    for v in chosen:  # an integer range's top is a value of its own: a spike just under it must not swallow it
        cuts += [v] + ([ends[v]] if (ends[v] <= high if integer else ends[v] < high) else [])
    spec = numeric_spec(col, low, high, cuts, has_null)
    points: list[list[float] | None] = []
    inner = range(1, len(spec.bins or []) - 1)
    for i, bin_ in enumerate(spec.bins or []):
        spike = next((v for v in chosen if bin_.low == v and bin_.high <= ends[v]), None)
        if spike is not None:
            points.append([float(spike)] * (POINTS + 1))
        elif i in inner:
            points.append(noisy_points(edges, rest, bin_.low, bin_.high, bin_.closed, col.kind, sigma))
        elif zoomed:  # an outer bin's points say where the rows end (see _trimmed): its noise-only outer cells dropped
            ends_ = (i == 0, i == len(spec.bins or []) - 1)
            points.append(noisy_points(edges, rest, bin_.low, bin_.high, bin_.closed, col.kind, sigma, ends_))
        else:
            points.append(noisy_points(edges, rest, bin_.low, bin_.high, bin_.closed, col.kind))
    return _trimmed(with_points(spec, points))


def _trimmed(spec: ColumnSpec) -> ColumnSpec:
    """The outer bins cut to where their decoding points reach (post-processing).

    The released range is cut to the occupied shape cells; the points say where inside them the values fall
    (integer kinds: the integers they floor to).
    """
    assert spec.bins is not None
    bins = list(spec.bins)
    integer = spec.kind in DISCRETE
    first = bins[0]
    if first.points is not None:
        low = float(np.floor(first.points[0])) if integer else float(first.points[0])
        top = first.high - 1 if integer and not first.closed else first.high  # the bin's largest value
        if first.low < low <= top:
            bins[0] = first.model_copy(update={"low": low})
    last = bins[-1]  # the first bin, changed, when it is the only one
    if last.points is not None:
        high = float(np.floor(last.points[-1])) if integer else float(last.points[-1])
        if last.low <= high < last.high:
            bins[-1] = last.model_copy(update={"high": high})
    relabelled = [
        BinSpec.model_validate({**b.model_dump(), "state": bin_label(b.low, b.high, b.closed, spec.kind)}) for b in bins
    ]
    return spec.model_copy(update={"bins": relabelled})


def with_points(spec: ColumnSpec, points: Sequence[list[float] | None]) -> ColumnSpec:
    """``spec`` with each bin's decoding points (``None``: uniform)."""
    assert spec.bins is not None
    bins = [b.model_copy(update={"points": p}) for b, p in zip(spec.bins, points, strict=True)]
    return spec.model_copy(update={"bins": [BinSpec.model_validate(b.model_dump()) for b in bins]})


def _support(low: float, high: float, closed: bool, kind: str) -> tuple[float, float]:
    """The continuous interval a bin's values fill (integer ``k`` stands for ``[k, k + 1)``)."""
    if kind in DISCRETE:
        first = float(np.ceil(low))
        last = float(np.floor(high)) if closed else float(np.ceil(high)) - 1
        return first, max(last, first) + 1
    return low, high


def _inverse_cdf(knots: np.ndarray, mass: np.ndarray, m: int = POINTS) -> list[float] | None:
    """``m + 1`` points of the inverse of the piecewise-linear CDF with ``mass`` on ``[knots[i], knots[i+1])``."""
    total = float(mass.sum())
    if total <= 0 or len(knots) < 2:
        return None
    cdf = np.concatenate([[0.0], np.cumsum(mass)]) / total
    probs = np.linspace(0.0, 1.0, m + 1)
    # the inverse of a non-decreasing CDF: the first knot position where it reaches each probability
    points = np.empty(m + 1)
    for i, q in enumerate(probs):  # probability 0: where the first cell holding mass starts (not the first knot)
        j = min(int(np.searchsorted(cdf, q, side="right" if i == 0 else "left")), len(cdf) - 1)
        if j == 0:
            points[i] = knots[0]
        else:
            lo, hi = cdf[j - 1], cdf[j]
            frac = 0.0 if hi <= lo else (q - lo) / (hi - lo)
            points[i] = knots[j - 1] + frac * (knots[j] - knots[j - 1])
    return _tidy(points, knots[0], knots[-1])


def _tidy(points: np.ndarray, low: float, high: float) -> list[float]:
    """Points rounded to 6 decimals, inside ``[low, high]``, non-decreasing."""
    rounded = np.clip(np.round(np.asarray(points, dtype=float), 6), low, high)
    return [float(x) for x in np.maximum.accumulate(rounded)]


#: An inner bin's decoding points are read from the noisy cells only where its rows stand this many noise scales
#: (of their sum) above zero; below, the cells are mostly noise and the bin decodes uniformly. A sparse income (1,050
#: rows, 7 bins, a noise scale of about 120 per cell) put a bin's half of the rows in one noisy cell: the sample's
#: median 1.75 times the data's. Outer bins keep their points: the projection's empty cells are where rows end.
POINTS_NOISE = 2.0


def noisy_points(edges: np.ndarray, noisy: np.ndarray, low: float, high: float, closed: bool, kind: str,
                 sigma: float = 0.0, outer: tuple[bool, bool] | None = None) -> list[float] | None:  # fmt: skip
    """A bin's decoding points from the released noisy histogram (post-processing only).

    The noisy cell counts overlapping the bin are split pro rata at the bin's ends and projected onto the
    non-negative counts with the same total (small cells, mostly noise, go to zero); ``None`` (uniform) when the
    bin lies inside one cell, holds no mass, or its sum does not stand ``POINTS_NOISE`` noise scales (``sigma``
    per cell) above zero.

    ``outer``: the bin is the range's first / last one (its low / high end is where the released range ends, not a
    cut). Its points are kept whatever its sum, and its cells past where its rows end hold no mass
    (:func:`_noise_tail_cut`).
    """
    a, b = _support(low, high, closed, kind)
    inner = edges[(edges > a) & (edges < b)]
    knots = np.concatenate([[a], inner, [b]])
    if len(knots) < 3:
        return None
    mass = np.zeros(len(knots) - 1)
    share = 0.0  # the sum of squared parts of cells inside the bin: the variance of its sum, in sigma^2
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        if hi <= a or lo >= b or hi <= lo:
            continue
        part = 0.0
        for j in range(len(knots) - 1):
            overlap = min(hi, knots[j + 1]) - max(lo, knots[j])
            if overlap > 0:
                mass[j] += noisy[i] * overlap / (hi - lo)
                part += overlap / (hi - lo)
        share += part**2
    if outer is not None:
        cut = _noise_tail_cut(mass, sigma, *outer)
        mass = cut if cut.sum() > 0 else mass
    elif float(mass.sum()) <= POINTS_NOISE * sigma * np.sqrt(share):
        return None
    return _inverse_cdf(knots, project_to_simplex(mass, float(mass.sum())))


#: A cell counts as holding an outer bin's rows where its squared noisy count stands above this many noise
#: variances' worth of log-likelihood (:func:`_noise_tail_cut`): 1 is a cell at sqrt(2) noise scales.
TAIL_COST = 1.0


def _noise_tail_cut(mass: np.ndarray, sigma: float, low_end: bool, high_end: bool) -> np.ndarray:
    """An outer bin's cell masses with the cells past where its rows end set to 0 (post-processing).

    Read from the bin's inside towards its released end, the rows end after the cell that maximises a penalised
    likelihood: a cell counted as holding rows gains ``max(x, 0)^2 / (2 sigma^2)`` (its fit as free, against as
    noise about 0) and costs ``TAIL_COST``. Noise alone gains a quarter on average, so a run of empty cells is cut
    and a lone noisy cell far out does not pay for the empty ones before it; a cell of rows standing a few noise
    scales out does. Unchanged without noise (``sigma`` 0) or where no run of cells gains.

    The released range's end is a whole cell of a coarser release, and a zoomed column's data can end in the first
    of its shape cells: the projection onto non-negative counts kept noise in the empty rest, and the inverse
    CDF's last point lay there (integer years 1963-2015 in a range cut to 2100: an eighth of the last bin's rows
    decoded over 2016-2100; fewer than 95% of the years inside 1940-2040 in 3 fits of about 110, 0.89 the worst).
    The bin's rows are not lost: only where inside it they decode.
    """
    out = np.asarray(mass, dtype=float).copy()
    if sigma <= 0:
        return out
    for at_end, flip in ((high_end, False), (low_end, True)):
        if not at_end or len(out) == 0:
            continue
        view = out[::-1] if flip else out  # nearest the bin's inside first, its released end last (a view of out)
        gain = np.cumsum(np.maximum(view, 0.0) ** 2 / (2 * sigma**2) - TAIL_COST)
        if gain.max() > 0:  # else no cell's rows stand out: the noise cannot tell where they end
            view[int(np.argmax(gain)) + 1 :] = 0.0
    return out


def exact_points(x: np.ndarray, low: float, high: float, closed: bool, kind: str) -> list[float] | None:
    """A bin's decoding points from its exact values (no DP)."""
    a, b = _support(low, high, closed, kind)
    if len(x) == 0 or b <= a:
        return None
    if kind in DISCRETE:
        knots = np.arange(a, b + 1)
        mass = np.bincount(np.clip(np.floor(x) - a, 0, len(knots) - 2).astype(np.int64), minlength=len(knots) - 1)
        return _inverse_cdf(knots.astype(float), mass.astype(float))
    qs = np.quantile(x, np.linspace(0.0, 1.0, POINTS + 1))
    qs[0], qs[-1] = a, b
    return _tidy(qs, a, b)


#: A category column keeps a ``rare category`` state when the rows its released keys leave unexplained exceed this
#: many noise scales (of the row estimate less the released counts); else suppressed keys' rows, if any, are few
#: and go to a released category (a state that would hold only noise costs every table it is in).
OTHER_NOISE = 2.0


def _rows_estimate(released: Mapping[str, Mapping[str, int]], complete: Sequence[str]) -> float:
    """The row count from the releases (post-processing).

    The mean total of the complete (null / value) histograms, whose noise is unbiased; else the largest total of
    the thresholded releases (which miss suppressed keys).
    """
    if complete:
        return max(1.0, float(np.mean([sum(released[n].values()) for n in complete])))
    return max((float(sum(r.values())) for r in released.values()), default=1.0)


def _unreleased_mass(counts: Mapping[str, int], rows: float, sigma: float, rows_sd: float) -> bool:
    """Whether the released counts of a column leave enough rows unexplained to keep a ``rare category`` state."""
    return _deficit_z(counts, rows, sigma, rows_sd) > OTHER_NOISE


def _deficit_z(counts: Mapping[str, int], rows: float, sigma: float, rows_sd: float) -> float:
    """The rows a column's released counts leave unexplained, in noise scales.

    ``sigma``: each released count's noise scale; ``rows_sd``: the row estimate's. (Taken as two null releases'
    noise whatever the number of totals the estimate averages, 43 on loans, it read ``loan_purpose``'s 590 rows in
    six suppressed categories, 6% of the rows, as 1.8 noise scales, and gave them to the named categories.)
    """
    deficit = rows - float(sum(counts.values()))
    return deficit / float(np.sqrt(len(counts) * sigma**2 + rows_sd**2))


#: A column gets a null state when its noisy null count exceeds this many noise scales.
NULL_NOISE = 3.0


def _null_cell(noisy: Sequence[int], counts: list[tuple[float, float]], sigma: float) -> np.ndarray:
    """A numeric histogram's cells without its last one, the nulls, which joins ``counts`` (with its scale)."""
    cells = np.asarray(noisy, dtype=float)
    if sigma > 0:
        counts.append((float(cells[-1]), sigma))
    return cells[:-1]


def _combined(counts: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Independent noisy counts of one quantity as one: their inverse-variance mean and its noise scale."""
    weights = [1.0 / s**2 for _, s in counts if s > 0]
    if not weights:
        return (counts[0][0] if counts else 0.0), 0.0
    mean = sum(c / s**2 for c, s in counts if s > 0) / sum(weights)
    return mean, float(1.0 / np.sqrt(sum(weights)))


def _nulls_of(name: str) -> Callable[[pd.DataFrame], list[int]]:
    def counts(table: pd.DataFrame) -> list[int]:
        nulls = int(table[name].isna().sum())
        return [nulls, len(table) - nulls]

    return counts


def _keys_of(col: Column) -> Callable[[pd.DataFrame], dict[str, int]]:
    def keys(table: pd.DataFrame) -> dict[str, int]:
        values = table[col.name]
        if col.kind in NUMERIC:
            nulls = int(values.isna().sum())
            return {NULL_STATE: nulls, _VALUE: len(values) - nulls}
        counts = values.fillna(NULL_STATE).astype(str).value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    return keys


#: The second category release covers at most this many columns (those whose first release left the most rows
#: unexplained), so that its budget is not spread thin.
SECOND_COLUMNS = 2


def _widest(keyed: Sequence[Column], released: Mapping[str, Mapping[str, int]]) -> list[Column]:
    """The second category release's column when no first release left rows unexplained beyond its noise.

    The column naming the most categories (post-processing of the released names; the first such on a tie): a
    long-tailed column is the likeliest to hold a category under the first threshold that its noise hides: on
    HealthInsurance at epsilon 1, ``education``'s ``phd`` (95 of 6,161 rows; 6 other values named) sits under the
    first release's threshold of about 150 rows and left too few rows to stand out. The release had gone to all 9
    category columns jointly, whose threshold (noise growing with the root of the columns) is above the first's: it
    could name nothing. On one column its threshold is about half the first's; ``phd`` is now named in 15 of 30
    fits (1 of 30 before), and the 2-way TVD is 0.0335 over 80 fits against 0.0338 over 70.
    """
    return [max(keyed, key=lambda c: sum(k != NULL_STATE for k in released[c.name]))]


def _values_of(name: str) -> Callable[[pd.DataFrame], dict[str, int]]:
    """Counts of a numeric column's exact values (keys: the values' shortest round-trip text)."""

    def keys(table: pd.DataFrame) -> dict[str, int]:
        counts = table[name].dropna().astype(float).value_counts()
        return {repr(float(k)): int(v) for k, v in zip(counts.index.to_numpy(float), counts.to_numpy(), strict=True)}

    return keys


#: Separates a column's index from its value in the keys of the second (joint) category release.
_SEP = "\x1f"


def _joint_keys_of(cols: Sequence[Column]) -> Callable[[pd.DataFrame], dict[str, int]]:
    """Key counts of several category columns in one map (``index<SEP>value``): each row holds one key per column."""
    parts = [_keys_of(c) for c in cols]

    def keys(table: pd.DataFrame) -> dict[str, int]:
        return {f"{i}{_SEP}{k}": v for i, part in enumerate(parts) for k, v in part(table).items()}

    return keys


def _cells_of(name: str, edges: np.ndarray) -> Callable[[pd.DataFrame], list[int]]:
    """Counts of a numeric column's values in the cells of ``edges``, then of its nulls.

    The end cells take what is beyond them. A row adds one to one cell, so the null count costs no sensitivity.
    """

    def cells(table: pd.DataFrame) -> list[int]:
        column = table[name]
        x = column.dropna().to_numpy(dtype=float)
        index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        return [*(int(c) for c in np.bincount(index, minlength=len(edges) - 1)), int(column.isna().sum())]

    return cells


#: Chance that one level of the bound search lets an empty run of cells through (a spurious bound far from the data).
#: At 1% per level three levels put about 3% of columns' bounds far out (seen in tests); 0.1% costs a little
#: sensitivity in sparse tails.
FALSE_RUN = 0.001


#: Widths (in cells) at which the bound search looks for runs that stand out: on the signed log grid a cell, and
#: a decade (3 cells); on even grids (public bounds, dates) a cell and runs of 6 and 18.
LOG_GROUPS = (1, 3)
EVEN_GROUPS = (1, 6, 18)


def _log_grid(b: PublicBounds, kind: str) -> bool:
    """Whether a numeric column's range histogram is on the public signed log grid (no public bounds, not a date)."""
    return kind != "date" and (b.low is None or b.high is None)


def cuts_from_histogram(edges: np.ndarray, noisy: np.ndarray, bins: int, sigma: float, kind: str,
                        groups: Sequence[int] = EVEN_GROUPS) -> tuple[float, float, list[float]]:  # fmt: skip
    """Bounds and bin cuts from a noisy histogram (post-processing only).

    The bounds are the outermost runs of cells that stand out of the noise, looked for at several widths
    (``groups``: single cells, runs of 6 and of 18, i.e. a third of a decade and a decade on the log grid), since
    spread data stands out only in wide runs; each level's threshold lets an empty run through with chance
    ``FALSE_RUN``.
    A finer level's survivors move a bound out (a narrow peak next to the range stands out only in single cells;
    one far from it is taken for noise), or in within the outermost coarse run, unless the cells it would cut off
    hold more than noise together (a spread-out tail of real rows stays inside). The cuts are quantiles of the
    noisy counts between the bounds (running cumulative maximum, so the CDF is monotone; no clipping,
    which would bias towards uniform).
    """
    n = len(noisy)
    lo_cell, hi_cell, coarser = n, -1, n
    fallback: tuple[int, int] | None = None
    for width in sorted(groups, reverse=True):
        padded = np.concatenate([noisy, np.zeros((-n) % width)])
        sums = padded.reshape(-1, width).sum(axis=1)
        if fallback is None:  # nothing stands out anywhere: the coarsest level's largest run
            top = int(np.argmax(sums))
            fallback = (top * width, min(n, (top + 1) * width) - 1)
        alive = np.flatnonzero(sums >= sigma * np.sqrt(width) * float(norm.isf(FALSE_RUN / len(sums))))
        if len(alive) == 0:
            continue
        starts = alive * width
        ends = np.minimum(n, (alive + 1) * width) - 1
        if lo_cell == n:  # the coarsest level that finds anything sets the bounds
            lo_cell, hi_cell = int(starts[0]), int(ends[-1])
        else:  # a finer level moves a bound out to a run next to it, or in inside the outermost coarse run
            below = starts[(starts < lo_cell) & (starts >= lo_cell - coarser)]
            inside = starts[starts >= lo_cell]
            if len(below):
                lo_cell = int(below.min())
            elif len(inside) and inside[0] < lo_cell + coarser and _empty(noisy[lo_cell : int(inside[0])], sigma):
                lo_cell = int(inside[0])
            above = ends[(ends > hi_cell) & (ends <= hi_cell + coarser)]
            under = ends[ends <= hi_cell]
            if len(above):
                hi_cell = int(above.max())
            elif (
                len(under) and under[-1] > hi_cell - coarser and _empty(noisy[int(under[-1]) + 1 : hi_cell + 1], sigma)
            ):
                hi_cell = int(under[-1])
        coarser = width
    if hi_cell < lo_cell:  # nothing stands out of the noise at any width
        lo_cell, hi_cell = fallback if fallback is not None else (int(np.argmax(noisy)),) * 2
    lo_cell, hi_cell = _extended(noisy, lo_cell, hi_cell, sigma)
    low, high = float(edges[lo_cell]), float(edges[hi_cell + 1])
    inside = noisy[lo_cell : hi_cell + 1]
    cdf = np.clip(np.maximum.accumulate(np.concatenate([[0.0], np.cumsum(inside)])), 0, None)
    cdf = cdf / cdf[-1] if cdf[-1] > 0 else np.linspace(0, 1, len(cdf))
    cell_edges = edges[lo_cell : hi_cell + 2]
    cuts = [float(np.interp(q, cdf, cell_edges)) for q in (i / bins for i in range(1, bins))]
    if kind in DISCRETE:
        cuts = [float(np.round(c)) for c in cuts]
        high = high - 1 if high - 1 >= low else high  # integer cells are [k, k+step): the largest value is below
    return low, high, cuts


#: A bound moves out over the next ``1..EXTEND_CELLS`` cells when their sum stands ``EXTEND_Z`` noise scales above
#: zero (one-sided: rows left outside the range are clipped into its end cells, a worse loss than a few empty
#: cells inside it, which the shape histogram's trim and the quantile bins absorb). At 2 scales the six tries of
#: each step and the repeated steps moved an empty bound out in about 1 fit in 8 (a column of 20-100 got the low
#: bound 0.5); at 3, none in 25, and wa_churn at epsilon 0.3 (10 fits) kept its 1-way TVD (0.0394 -> 0.0377).
EXTEND_CELLS = 6
EXTEND_Z = 3.0


def _extended(noisy: np.ndarray, lo: int, hi: int, sigma: float) -> tuple[int, int]:
    """``[lo, hi]`` widened over neighbouring runs of cells that hold rows (post-processing, see ``EXTEND_Z``).

    Spread tails stand out of the noise in no run the bound search tries at a low budget (wa_churn's tenure below
    10 at epsilon 0.3, a fifth of its rows); here a run next to a bound needs only to be positive, not to stand out
    among all runs.
    """
    while (k := _reach(noisy[:lo][::-1], EXTEND_Z * sigma, EXTEND_CELLS)) > 0:
        lo -= k
    while (k := _reach(noisy[hi + 1 :], EXTEND_Z * sigma, EXTEND_CELLS)) > 0:
        hi += k
    return lo, hi


#: Cells of the second (shape) histogram of a numeric column, evenly spread over its released range.
FINE_CELLS = 32


def fine_edges(low: float, high: float, kind: str, edges: np.ndarray | None = None, noisy: np.ndarray | None = None
               ) -> np.ndarray:  # fmt: skip
    """The second histogram's cells over ``[low, high]``: equal-mass cells by the first (noisy) histogram.

    Post-processing of the first release: its counts inside the range, projected onto non-negative counts, give a
    CDF whose ``1/FINE_CELLS`` quantiles are the cells' edges, so a heavy tail gets wide cells and the bulk narrow
    ones. Integer kinds with a short range get one cell per integer.
    """
    integer = kind in DISCRETE
    top = high + 1 if integer else high
    if integer and high - low + 1 <= FINE_CELLS:
        return np.arange(np.floor(low), np.floor(high) + 2, dtype=float)
    if top <= low:
        return np.array([low, low + 1.0])
    grid = np.linspace(low, top, FINE_CELLS + 1)
    if edges is not None and noisy is not None:
        knots = np.unique(np.clip(edges, low, top))
        mass = np.zeros(len(knots) - 1)
        for i in range(len(edges) - 1):  # the first histogram's cells, cut to the range
            lo, hi = edges[i], edges[i + 1]
            for j in range(len(knots) - 1):
                overlap = min(hi, knots[j + 1]) - max(lo, knots[j])
                if overlap > 0 and hi > lo:
                    mass[j] += noisy[i] * overlap / (hi - lo)
        total = float(mass.sum())
        if total > 0 and len(knots) > 1:
            cdf = np.concatenate([[0.0], np.cumsum(project_to_simplex(mass, total))]) / total
            grid = np.interp(np.linspace(0, 1, FINE_CELLS + 1), cdf, knots)
    grid = np.concatenate([[low], grid[1:-1], [top]])
    if integer:
        grid = np.round(grid)
    return np.unique(grid)


def quantile_cuts(edges: np.ndarray, noisy: np.ndarray, bins: int, kind: str) -> list[float]:
    """Cut points at the ``1/bins`` quantiles of a noisy histogram projected onto non-negative counts."""
    total = float(noisy.sum())
    mass = project_to_simplex(noisy, total) if total > 0 else np.ones(len(noisy))
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    cdf = cdf / cdf[-1] if cdf[-1] > 0 else np.linspace(0, 1, len(cdf))
    cuts = [float(np.interp(q, cdf, edges)) for q in (i / bins for i in range(1, bins))]
    return [float(np.round(c)) for c in cuts] if kind in DISCRETE else cuts


def _occupied(noisy: np.ndarray, sigma: float) -> tuple[int, int]:
    """The first and last cells of a noisy histogram once outer runs that hold almost no rows are cut off.

    A range found on the coarse grid can overhang the data by most of a cell (ages 18 to 79 in ``[10, 100]``); the
    shape histogram's cells show where the rows stop (post-processing). A run is cut off only when even its upper
    bound (its sum plus ``TRIM_NOISE`` noise scales) is below ``TRIM_MASS`` of the rows: where the noise is too
    large to tell, the range stays as released.
    """
    limit = TRIM_MASS * max(float(noisy.sum()), 0.0)

    def little(cells: np.ndarray) -> bool:
        return float(cells.sum()) + TRIM_NOISE * sigma * np.sqrt(len(cells)) <= limit

    first, last = 0, len(noisy) - 1
    while first < last and little(noisy[: first + 1]):
        first += 1
    while last > first and little(noisy[last:]):
        last -= 1
    return first, last


#: An outer run of shape cells is cut off when its sum plus this many noise scales is below this part of the rows
#: (at 1%, 12,000 ages from 18 to 79 kept a range to 93-99 in 3 of 20 fits; at 2%, 0 of 20).
TRIM_NOISE = 2.0
TRIM_MASS = 0.02


def _empty(cells: np.ndarray, sigma: float, z: float = 3.0) -> bool:
    """Whether a run of noisy cells is consistent with no rows at all (its sum within ``z`` noise scales of 0)."""
    return len(cells) == 0 or float(cells.sum()) < z * sigma * np.sqrt(len(cells))


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

    Even steps between public bounds; else 30-day cells from 1900 to 2100 for dates and a signed log grid with
    three cells per decade (1, 2, 5; 0.01 to 1e10) for numbers; integer columns get integer edges (one per
    integer up to 4).
    """
    integer = kind in DISCRETE
    if kind == "date" and (low is None or high is None):
        first = -25567.0 if low is None else np.floor(low)  # 1900-01-01, in days since 1970
        last = 47482.0 if high is None else np.floor(high) + 1  # 2100-01-01
        return np.unique(np.concatenate([np.arange(first, last, 30.0), [last]]))
    if low is not None and high is not None:
        if integer and high - low <= 4096:
            return np.arange(np.floor(low), np.floor(high) + 2, dtype=float)
        grid = np.linspace(low, high, size + 1)
    else:
        positive = np.unique(np.round(np.outer(10.0 ** np.arange(-2, 10), [1.0, 2.0, 5.0]).ravel(), 10))
        if integer:  # small counts (0 to 4) get a cell per integer; 5 to 9 share one
            positive = np.unique(np.concatenate([np.arange(1.0, 5.0), positive[positive >= 5]]))
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
            spec = numeric_spec(col, low, high, cuts, has_null)
            assert spec.bins is not None
            code = encode(values, spec, spec.bins[0].state)[~values.isna().to_numpy()]
            points = [exact_points(x[code == i], b.low, b.high, b.closed, col.kind) for i, b in enumerate(spec.bins)]
            specs[col.name] = with_points(spec, points)
        else:
            cats = list(b.categories) if b.categories is not None else sorted(values.dropna().astype(str).unique())
            specs[col.name] = category_spec(col, cats, has_null)
    return specs
