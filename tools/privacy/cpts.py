"""CPTs from counts: noisy counts through OpenDP under DP, exact ones without; both smoothed towards the child's
marginal so that parent configurations with little mass fall back to it instead of to noise.
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
    """``P(child | parents)`` rows from a flat count vector: negatives clipped, ``pseudo`` counts of the
    child's marginal added to each row.
    """
    table = np.clip(np.asarray(counts, dtype=float), 0, None).reshape(-1, card)
    marginal = table.sum(axis=0) + 1e-9
    marginal = marginal / marginal.sum()
    smoothed = table + pseudo * marginal
    return smoothed / smoothed.sum(axis=1, keepdims=True)
