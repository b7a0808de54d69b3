"""Consistent estimates from noisy measurements (post-processing only), in the spirit of MST's Private-PGM step.

A DP fit measures every column's 1-way marginal and one table per family (a child with its parents), each with
known Gaussian noise. The measurements overlap: a family table also measures each of its columns' marginals. Here:

1. each column's marginal is the inverse-variance weighted combination of every measurement of it (its own
   1-way table, the 1-way implied by each family table holding it, the category release), projected onto the
   non-negative counts summing to the row estimate;
2. each family table is projected onto the non-negative counts and raked (iterative proportional fitting) to
   those marginals, so that all tables agree with each other on every shared column;
3. the CPT ``P(child | parents)`` is read off the raked table, shrunk towards the child's marginal in proportion
   to the noise (rows whose parent state holds little mass fall back to the marginal rather than to noise).

In a tree (in-degree <= 1) the model's marginals then equal the combined ones exactly, as in a Private-PGM fit on
a tree; with more parents the family tables are consistent on each column but not on the parents' joint. A DP fit
then starts :mod:`pgm`'s joint fit of all the measurements from these CPTs; a no-DP fit keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.privacy.cpts import draw_states, project_to_simplex


@dataclass(frozen=True)
class Measurement:
    """A noisy count table over ``variables`` (axes in that order), each cell with noise variance ``variance``.

    ``known`` (1-way only): the cells this measurement covers (a category release leaves out suppressed keys).
    """

    variables: tuple[str, ...]
    counts: NDArray[np.float64]
    variance: float
    known: NDArray[np.bool_] | None = None


def implied_marginal(m: Measurement, variable: str) -> tuple[NDArray[np.float64], float]:
    """The 1-way counts of ``variable`` a measurement implies and their per-cell noise variance."""
    axis = m.variables.index(variable)
    others = tuple(i for i in range(m.counts.ndim) if i != axis)
    cells = int(np.prod([m.counts.shape[i] for i in others])) if others else 1
    return m.counts.sum(axis=others) if others else m.counts, m.variance * cells


def combine_marginals(measurements: Sequence[Measurement], cards: Mapping[str, int], total: float
                      ) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """Each variable's marginal counts: inverse-variance weighting per cell, then projected to sum ``total``."""
    num = {v: np.zeros(k) for v, k in cards.items()}
    den = {v: np.zeros(k) for v, k in cards.items()}
    for m in measurements:
        for v in m.variables:
            counts, var = implied_marginal(m, v)
            w = np.full(len(counts), 1.0 / max(var, 1e-12))
            if m.known is not None:
                w = np.where(m.known, w, 0.0)
            num[v] += w * counts
            den[v] += w
    out = {}
    for v, k in cards.items():
        estimate = np.where(den[v] > 0, num[v] / np.maximum(den[v], 1e-300), 0.0)
        out[v] = project_to_simplex(estimate, total) if k else estimate
    return out


def estimate_total(measurements: Sequence[Measurement]) -> float:
    """The row count, as the inverse-variance weighted mean of the totals of the complete measurements."""
    num = den = 0.0
    for m in measurements:
        if m.known is not None:
            continue
        var = m.variance * m.counts.size
        num += float(m.counts.sum()) / var
        den += 1.0 / var
    return max(1.0, num / den) if den > 0 else 1.0


def rake(table: NDArray[np.float64], variables: Sequence[str], marginals: Mapping[str, NDArray[np.float64]],
         iterations: int = 50, tol: float = 1e-6) -> NDArray[np.float64]:  # fmt: skip
    """``table`` projected onto the non-negative counts, then raked to each variable's marginal (IPF).

    A cell the projection emptied gets a tiny floor, so a marginal state with mass the table missed can be filled.
    """
    total = float(sum(marginals[variables[0]]))
    flat = project_to_simplex(table.ravel().astype(float), total).reshape(table.shape)
    out = flat + 1e-6 * max(total, 1.0) / flat.size
    for _ in range(iterations):
        worst = 0.0
        for axis, v in enumerate(variables):
            others = tuple(i for i in range(out.ndim) if i != axis)
            current = out.sum(axis=others) if others else out
            target = marginals[v]
            factor = np.where(current > 0, target / np.maximum(current, 1e-300), 0.0)
            shape = [1] * out.ndim
            shape[axis] = -1
            out = out * factor.reshape(shape)
            worst = max(worst, float(np.abs(current - target).max()))
        if worst <= tol * max(total, 1.0):
            break
    return out


def conditional(table: NDArray[np.float64], marginal: NDArray[np.float64], shrink: float) -> NDArray[np.float64]:
    """``P(child | parents)`` rows (child on the last axis) with ``shrink`` pseudo-counts of the child's marginal."""
    card = table.shape[-1]
    rows = table.reshape(-1, card)
    prior = marginal / marginal.sum() if marginal.sum() > 0 else np.full(card, 1.0 / card)
    smoothed = rows + shrink * prior + 1e-12
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def calibrated_cpts(
    parents: Mapping[str, Sequence[str]], cards: Mapping[str, int], families: Mapping[str, Measurement],
    marginals: Mapping[str, NDArray[np.float64]], shrink: Mapping[str, float], rng: np.random.Generator,
    draws: int = 100_000,
) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.int64]]]:  # fmt: skip
    """CPTs whose model reproduces the combined marginals, also with more than one parent, and draws of it.

    With two parents, the parents' joint in the model is not the one in the child's family table, so CPTs read off
    the tables let the children's marginals drift (and the drift compounds down the DAG). Here the nodes are taken
    in topological order; the parents' joint the model implies is estimated from ``draws`` ancestral draws of the
    model built so far (post-processing: no row is read), the family table is raked to that joint and to the
    child's combined marginal, and the CPT is read off it. In a tree this is the plain raked conditional.
    The draws (state codes per column) made along the way, drawn from the final CPTs, come back with them.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(parents)
    graph.add_edges_from((p, c) for c, ps in parents.items() for p in ps)
    drawn: dict[str, NDArray[np.int64]] = {}
    cpts: dict[str, NDArray[np.float64]] = {}
    for node in nx.lexicographical_topological_sort(graph):
        ps = list(parents[node])
        card = cards[node]
        target = marginals[node]
        if not ps:
            cpt = conditional(target[None, :], target, 0.0)
            index = np.zeros(draws, dtype=np.int64)
        else:
            m = families[node]
            table = rake(m.counts, m.variables, marginals)
            size = int(np.prod([cards[p] for p in ps]))
            index = np.zeros(draws, dtype=np.int64)
            for p in ps:
                index = index * cards[p] + drawn[p]
            total = float(target.sum())
            joint = np.bincount(index, minlength=size) / draws * total
            flat = table.reshape(size, card)
            if len(ps) > 1:
                flat = rake(flat, ("parents", node), {"parents": joint, node: target})
            cpt = conditional(flat, target, shrink[node])
        cpts[node] = cpt
        drawn[node] = draw_states(cpt, index, rng)
    return cpts, drawn


def pooling_weight(measurements: Sequence[Measurement], variable: str, states: Sequence[int]) -> float:
    """How much of each of ``states``' own estimate to keep against their mean (positive-part James-Stein).

    From the measurements' implied counts of ``variable`` in those states (inverse-variance weighted): one minus
    the noise's share of their spread, ``(k - 1) var / sum (x - mean)^2``, clipped to [0, 1]. Noise as large as
    the states' differences gives 0 (all states alike), and so does no measurement of them; a clear spread keeps
    them. Post-processing.
    """
    index = list(states)
    num, den = np.zeros(len(index)), 0.0
    for m in measurements:
        if variable in m.variables and (m.known is None or bool(np.all(m.known[index]))):
            counts, var = implied_marginal(m, variable)
            num += counts[index] / max(var, 1e-12)
            den += 1.0 / max(var, 1e-12)
    if den == 0:  # nothing measured them apart
        return 0.0
    if len(index) < 3:
        return 1.0
    x = num / den
    spread = float(((x - x.mean()) ** 2).sum())
    return float(np.clip(1.0 - (len(index) - 1) / den / max(spread, 1e-300), 0.0, 1.0))
