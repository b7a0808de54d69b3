"""CPTs from counts: noisy counts through OpenDP under DP, exact ones without.

Both are smoothed towards the child's marginal so that parent configurations with little mass fall back to it
instead of to noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def joint_index(codes: Sequence[NDArray[np.int64]], cards: Sequence[int]) -> NDArray[np.int64]:
    """Flat cell index of each row in the table ``(parent_1, ..., parent_k, child)``, last varying fastest."""
    index = np.zeros(len(codes[0]), dtype=np.int64)
    for c, k in zip(codes, cards, strict=True):
        index = index * k + c
    return index


def cpt_from_counts(counts: NDArray[np.float64], card: int, pseudo: float) -> NDArray[np.float64]:
    """``P(child | parents)`` rows from a flat count vector.

    Each row of noisy counts is projected onto the non-negative counts with the same total (Euclidean projection
    onto a scaled simplex): unlike clipping negatives, this does not hand every empty state a share of the noise.
    Then ``pseudo`` counts of the child's marginal are added to each row, so rows with little mass fall back to it.
    """
    table = np.asarray(counts, dtype=float).reshape(-1, card)
    projected = np.stack([project_to_simplex(row, max(float(row.sum()), 0.0)) for row in table])
    marginal = projected.sum(axis=0) + 1e-9
    marginal = marginal / marginal.sum()
    smoothed = projected + pseudo * marginal
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def project_to_simplex(values: NDArray[np.float64], total: float) -> NDArray[np.float64]:
    """The closest (Euclidean) vector to ``values`` with non-negative entries summing to ``total``."""
    if total <= 0:
        return np.zeros_like(values)
    ordered = np.sort(values)[::-1]
    cumulative = np.cumsum(ordered) - total
    index = np.arange(1, len(values) + 1)
    k = int(np.nonzero(ordered - cumulative / index > 0)[0][-1])
    shift = cumulative[k] / (k + 1)
    return np.maximum(values - shift, 0.0)
