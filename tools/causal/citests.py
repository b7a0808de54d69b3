"""Conditional independences implied by a DAG, and a fast G-test of them on integer-coded data.

Implied CIs: for every non-adjacent pair (X, Y) we test ``X _||_ Y | Z`` with one separating set Z. The
candidates are the parents of whichever of the two is not an ancestor of the other (local Markov) and a
minimal d-separator found by networkx; each candidate is confirmed with ``networkx.is_d_separator`` and the
one with the fewest strata wins (fewer strata, more data per stratum, better-calibrated tests).

The G-test: ``G = 2 * sum O log(O / E)`` within each stratum of Z, with E from the stratum's margins.
Sparse strata are handled by adjusting the degrees of freedom: a stratum contributes
``(r - 1)(c - 1)`` where r and c count the X and Y states actually observed in it, so empty strata and
structural zeros (deterministic nodes, rare states) add nothing. A test left with zero degrees of freedom
cannot reject and is reported as untestable, outside the FPR's denominator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from causalsynth.tools.causal.network import Network

#: Above this many cells the stratum index is compressed to the strata actually present.
_DENSE_CELLS = 1 << 22


@dataclass(frozen=True)
class CIStatement:
    """``x _||_ y | z`` (implied) or ``x`` and ``y`` adjacent (``implied=False``, expected dependent)."""

    x: str
    y: str
    z: tuple[str, ...]
    implied: bool

    def __str__(self) -> str:
        rel = "_||_" if self.implied else "dependent on"
        given = f" | {', '.join(self.z)}" if self.z else ""
        return f"{self.x} {rel} {self.y}{given}"


@dataclass(frozen=True)
class GTestResult:
    """Outcome of one G-test."""

    statistic: float
    dof: int
    p_value: float

    @property
    def testable(self) -> bool:
        """False when no stratum had two observed states of both variables."""
        return self.dof > 0


def implied_cis(network: Network, observed: frozenset[str] | None = None) -> list[CIStatement]:
    """One CI statement per non-adjacent pair, with the separating set of fewest strata.

    With ``observed``, only statements testable on those variables: pairs of observed variables that some set of
    observed variables d-separates (a pair joined only through latent variables has none and is left out).
    """
    if observed is not None and observed >= set(network.names):
        observed = None
    return list(_implied_cis(network, observed))


def adjacencies(network: Network) -> list[CIStatement]:
    """One marginal-dependence statement per edge (used to measure power)."""
    return [CIStatement(a, b, (), implied=False) for a, b in network.edges()]


@lru_cache(maxsize=32)
def _implied_cis(network: Network, observed: frozenset[str] | None) -> tuple[CIStatement, ...]:
    graph = network.graph
    cards = {name: network.node(name).card for name in network.names}
    descendants = {name: nx.descendants(graph, name) for name in network.names}
    names = network.names if observed is None else tuple(v for v in network.names if v in observed)

    def strata(z: set[str]) -> tuple[int, int, list[str]]:
        return int(np.prod([cards[v] for v in z])), len(z), sorted(z)

    out = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            if graph.has_edge(x, y) or graph.has_edge(y, x):
                continue
            # Local Markov: if b is not a descendant of a, then a _||_ b | Pa(a). Valid by theorem, no check needed.
            candidates = [set(graph.predecessors(a)) for a, b in ((x, y), (y, x)) if b not in descendants[a]]
            if observed is not None:
                candidates = [c for c in candidates if c <= observed]
            best = min(candidates, key=strata) if candidates else None
            if best is None or best:  # a minimal d-separator may need fewer strata; an empty set cannot be beaten
                minimal = nx.find_minimal_d_separator(graph, x, y, restricted=observed)
                if minimal is not None and (best is None or strata(set(minimal)) < strata(best)):
                    best = set(minimal)
            if best is None:
                continue  # only latent variables separate x and y
            out.append(CIStatement(x, y, tuple(v for v in names if v in best), implied=True))
    return tuple(out)


def test_statement(codes: Mapping[str, NDArray[Any]], cards: Mapping[str, int], statement: CIStatement) -> GTestResult:
    """G-test of one statement on integer-coded columns."""
    return g_test(
        codes[statement.x],
        codes[statement.y],
        [codes[v] for v in statement.z],
        cards[statement.x],
        cards[statement.y],
        [cards[v] for v in statement.z],
    )


def g_test(
    x: NDArray[Any], y: NDArray[Any], z: Sequence[NDArray[Any]], rx: int, ry: int, zcards: Sequence[int]
) -> GTestResult:
    """G-test of ``x _||_ y | z`` on integer codes (``0 <= x < rx``, ...), with adjusted degrees of freedom."""
    n = len(x)
    if z:
        zi = z[0].astype(np.intp)
        for codes, card in zip(z[1:], zcards[1:], strict=True):
            zi *= card
            zi += codes
        nz = int(np.prod(zcards, dtype=np.float64))
        if nz * rx * ry > _DENSE_CELLS:
            present, zi = np.unique(zi, return_inverse=True)
            nz = len(present)
    else:
        zi = np.zeros(n, dtype=np.intp)
        nz = 1
    cell = (zi * rx + x) * ry + y
    counts = np.bincount(cell, minlength=nz * rx * ry).reshape(nz, rx, ry).astype(np.float64)
    n_z = counts.sum(axis=(1, 2))
    counts = counts[n_z > 0]
    n_z = n_z[n_z > 0]
    rows = counts.sum(axis=2)
    cols = counts.sum(axis=1)
    expected = rows[:, :, None] * cols[:, None, :] / n_z[:, None, None]
    observed = counts > 0
    stat = 2.0 * float(np.sum(counts[observed] * np.log(counts[observed] / expected[observed])))
    dof = int(np.sum(np.clip((rows > 0).sum(axis=1) - 1, 0, None) * np.clip((cols > 0).sum(axis=1) - 1, 0, None)))
    stat = max(stat, 0.0)
    p_value = float(chi2.sf(stat, dof)) if dof > 0 else 1.0
    return GTestResult(stat, dof, p_value)


def goodness_of_fit(counts: NDArray[Any], probs: NDArray[np.float64]) -> GTestResult:
    """G-test of observed state counts against exact probabilities; a count in a zero-probability state fails."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    if n == 0:
        return GTestResult(0.0, 0, 1.0)
    if np.any(counts[probs <= 0] > 0):
        return GTestResult(float("inf"), max(int((probs > 0).sum()) - 1, 1), 0.0)
    support = probs > 0
    expected = n * probs[support]
    obs = counts[support]
    nz = obs > 0
    stat = max(2.0 * float(np.sum(obs[nz] * np.log(obs[nz] / expected[nz]))), 0.0)
    dof = int(support.sum()) - 1
    return GTestResult(stat, dof, float(chi2.sf(stat, dof)) if dof > 0 else 1.0)
