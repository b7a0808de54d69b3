"""Count-table helpers for CPTs.

A row's flat cell index, count tables, the projection onto non-negative counts, and state draws from CPT rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray


def joint_index(codes: Sequence[NDArray[np.int64]], cards: Sequence[int]) -> NDArray[np.int64]:
    """Flat cell index of each row in the table ``(parent_1, ..., parent_k, child)``, last varying fastest."""
    index = np.zeros(len(codes[0]), dtype=np.int64)
    for c, k in zip(codes, cards, strict=True):
        index = index * k + c
    return index


def joint_counts(codes: Sequence[NDArray[np.int64]], cards: Sequence[int]) -> NDArray[np.int64]:
    """The flat count table of the rows over the columns coded ``codes`` (last varying fastest)."""
    return np.bincount(joint_index(codes, cards), minlength=int(np.prod(cards)))


def draw_states(cpt: NDArray[np.float64], rows: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.int64]:
    """One state per entry of ``rows`` (indices into the CPT's rows), drawn from that row by inverse CDF."""
    cumulative = np.cumsum(cpt, axis=1)
    u = rng.random(len(rows))
    return np.minimum((u[:, None] > cumulative[rows]).sum(axis=1), cpt.shape[1] - 1).astype(np.int64)


def project_to_simplex(values: NDArray[np.float64], total: float) -> NDArray[np.float64]:
    """The closest (Euclidean) vector to ``values`` with non-negative entries summing to ``total``."""
    if total <= 0:
        return np.zeros_like(values)
    ordered = np.sort(values)[::-1]
    cumulative = np.cumsum(ordered) - total
    index = np.arange(1, len(values) + 1)
    kept = np.nonzero(ordered - cumulative / index > 0)[0]
    if len(kept) == 0:  # a total below the values' rounding (a noisy sum of ~1e-16): all of it on the largest
        out = np.zeros_like(values, dtype=np.float64)
        out[int(np.argmax(values))] = total
        return out
    k = int(kept[-1])
    shift = cumulative[k] / (k + 1)
    return np.maximum(values - shift, 0.0)


def pooled(parents: Mapping[str, Sequence[str]], cpts: Mapping[str, NDArray[np.float64]], cards: Mapping[str, int],
           column: str, states: Sequence[int], weight: float) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """The CPTs with ``column``'s ``states`` drawn together: ``weight`` of each one's own numbers, the rest their mean.

    In ``column``'s CPT each row keeps its mass on those states and spreads it by ``weight x own + (1 - weight) x
    mean``; in each child's CPT the rows of those states move the same way toward their mean row. Every row stays a
    distribution.
    """
    index = list(states)
    out = dict(cpts)
    own = cpts[column].copy()
    part = own[:, index]
    own[:, index] = weight * part + (1.0 - weight) * part.mean(axis=1, keepdims=True)
    out[column] = own
    for child, ps in parents.items():
        if column not in ps:
            continue
        axis = list(ps).index(column)
        table = cpts[child].reshape([cards[p] for p in ps] + [cards[child]]).copy()
        rows = np.moveaxis(table, axis, 0)  # a view: writing it writes the table
        rows[index] = weight * rows[index] + (1.0 - weight) * rows[index].mean(axis=0, keepdims=True)
        out[child] = table.reshape(cpts[child].shape)
    return out
