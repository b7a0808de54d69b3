"""Conditional independences implied by a DAG, and a fast G-test of them on integer-coded data.

Implied CIs: for every non-adjacent pair (X, Y) we test ``X _||_ Y | Z`` with one separating set Z. Two sets:

- ``minimal separators`` (up to :data:`BASIS_ABOVE` non-adjacent pairs): the candidates are the parents of
  whichever of the two is not an ancestor of the other (local Markov) and a minimal d-separator found by
  networkx; the one with the fewest strata wins (fewer strata, more data per stratum, better-calibrated tests).
  One graph search per pair: minutes on networks of several hundred nodes.
- ``local Markov basis`` (larger networks): for each non-adjacent pair, the later node in topological order
  given its own parents, ``V _||_ U | Pa(V)``; true by the local Markov property (every earlier node is a
  non-descendant), so no graph search is needed. Each pair is still tested once, but given the later node's
  parents, which may be more strata than its smallest separator (fewer rows per stratum).

The G-test: ``G = 2 * sum O log(O / E)`` within each stratum of Z, with E from the stratum's margins.
Sparse strata are handled by adjusting the degrees of freedom: a stratum contributes
``(r - 1)(c - 1)`` where r and c count the X and Y states actually observed in it, so empty strata and
structural zeros (deterministic nodes, rare states) add nothing. A test left with zero degrees of freedom
cannot reject and is reported as untestable, outside the FPR's denominator. Statements that share X and Z (all
the basis statements of one later node) are tested together, with one ``numpy.bincount`` over every Y.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.special import xlogy
from scipy.stats import chi2

from causalsynth.tools.causal.network import Network

#: Above this many cells the stratum index is compressed to the strata actually present.
_DENSE_CELLS = 1 << 22
#: Cells (and row entries) of one vectorised batch of G-tests: bounds its memory to a few tens of MB.
_BATCH_CELLS = 1 << 22

CISet = Literal["minimal separators", "local Markov basis"]
#: Above this many non-adjacent pairs (among the variables tested), the implied CIs are the local Markov basis.
BASIS_ABOVE = 5_000
#: Statements of the last few networks, by (content digest, observed variables, set): MUNIN's basis holds 540k.
_STATEMENTS: dict[tuple[str, frozenset[str] | None, CISet], tuple[CIStatement, ...]] = {}
_STATEMENTS_KEPT = 4


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


def ci_set_for(network: Network, observed: frozenset[str] | None = None) -> CISet:
    """The set of implied CIs tested on ``network``: minimal separators, or the local Markov basis when large."""
    names = network.names if observed is None else [v for v in network.names if v in observed]
    kept = set(names)
    edges = sum(1 for a, b in network.graph.edges() if a in kept and b in kept)
    pairs = len(names) * (len(names) - 1) // 2 - edges
    return "local Markov basis" if pairs > BASIS_ABOVE else "minimal separators"


def implied_cis(
    network: Network, observed: frozenset[str] | None = None, ci_set: CISet | None = None
) -> list[CIStatement]:
    """One CI statement per non-adjacent pair, from ``ci_set`` (default: :func:`ci_set_for`).

    Minimal separators: each pair with the separating set of fewest strata. Local Markov basis: the later node
    of each pair (topological order) given its parents. With ``observed``, only statements testable on those
    variables: pairs of observed variables that some set of observed variables d-separates (a pair joined only
    through latent variables has none and is left out; in the basis, a pair whose later node has a latent parent
    is left out).
    """
    if observed is not None and observed >= set(network.names):
        observed = None
    chosen = ci_set or ci_set_for(network, observed)
    key = (network.digest, observed, chosen)  # by content: a network loaded again reuses the statements
    found = _STATEMENTS.get(key)
    if found is None:
        found = _basis_cis(network, observed) if chosen == "local Markov basis" else _implied_cis(network, observed)
        while len(_STATEMENTS) >= _STATEMENTS_KEPT:
            _STATEMENTS.pop(next(iter(_STATEMENTS)))
        _STATEMENTS[key] = found
    return list(found)


def adjacencies(network: Network) -> list[CIStatement]:
    """One marginal-dependence statement per edge (used to measure power)."""
    return [CIStatement(a, b, (), implied=False) for a, b in network.edges()]


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


def _basis_cis(network: Network, observed: frozenset[str] | None) -> tuple[CIStatement, ...]:
    graph = network.graph
    position = {name: i for i, name in enumerate(network.names)}
    order = [v for v in network.order if observed is None or v in observed]
    out: list[CIStatement] = []
    for k, later in enumerate(order):
        parents = set(graph.predecessors(later))
        if observed is not None and not parents <= observed:
            continue  # its parents cannot be conditioned on
        z = tuple(sorted(parents, key=position.__getitem__))
        # An earlier node is never a descendant of the later one; not a parent, it is not adjacent to it.
        out += [CIStatement(later, earlier, z, implied=True) for earlier in order[:k] if earlier not in parents]
    return tuple(out)


def test_statements(
    codes: Mapping[str, NDArray[Any]], cards: Mapping[str, int], statements: Sequence[CIStatement]
) -> list[GTestResult]:
    """G-tests of many statements, in their order; those sharing ``x`` and ``z`` are tested together."""
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i, s in enumerate(statements):
        groups.setdefault((s.x, s.z), []).append(i)
    results: list[GTestResult | None] = [None] * len(statements)
    names = list({s.y: None for s in statements})
    row = {name: i for i, name in enumerate(names)}
    matrix = np.stack([np.asarray(codes[v], dtype=np.intp) for v in names]) if names else np.zeros((0, 0), np.intp)
    for (x, z), members in groups.items():
        if len(members) == 1:
            results[members[0]] = test_statement(codes, cards, statements[members[0]])
            continue
        ys = [statements[i].y for i in members]
        batch = g_tests_shared(
            codes[x], cards[x], [codes[v] for v in z], [cards[v] for v in z], matrix[[row[y] for y in ys]],
            [cards[y] for y in ys],
        )  # fmt: skip
        for i, res in zip(members, batch, strict=True):
            results[i] = res
    return [r for r in results if r is not None]


def g_tests_shared(
    x: NDArray[Any],
    rx: int,
    z: Sequence[NDArray[Any]],
    zcards: Sequence[int],
    ys: NDArray[Any],
    rys: Sequence[int],
) -> list[GTestResult]:
    """G-tests of ``x _||_ y | z`` for every row ``y`` of ``ys`` at once; the same figures as :func:`g_test`.

    Uses ``G = 2 [sum O log O - sum N_zx log N_zx - sum N_zy log N_zy + sum N_z log N_z]``: the terms of x and z
    are shared, and the counts of every y come from one ``bincount`` over the (z, x) cells present in the data.
    """
    n = len(x)
    zi = _stratum_index(z, zcards, n)
    present, cell_zx = _present_cells(zi * rx + x)  # the (z, x) cells present, sorted by z
    strata = present // rx
    starts = np.flatnonzero(np.r_[True, strata[1:] != strata[:-1]])  # first cell of each stratum present
    n_zx = np.bincount(cell_zx, minlength=len(present)).astype(np.float64)
    n_z = np.add.reduceat(n_zx, starts)
    x_states = np.diff(np.r_[starts, len(present)])  # x states observed in each stratum
    shared = float(xlogy(n_z, n_z).sum() - xlogy(n_zx, n_zx).sum())
    ry = max(rys)
    na, nz = len(present), len(starts)
    step = max(1, min(_BATCH_CELLS // (na * ry), _BATCH_CELLS // max(n, 1)))
    out: list[GTestResult] = []
    for lo in range(0, len(ys), step):
        block = np.asarray(ys[lo : lo + step], dtype=np.intp)
        m = len(block)
        cells = (np.arange(m, dtype=np.intp)[:, None] * na + cell_zx[None, :]) * ry + block
        counts = np.bincount(cells.ravel(), minlength=m * na * ry)
        # Only the cells present enter the sums (at most n per y): the dense table is mostly zeros.
        o_cells = np.flatnonzero(counts)
        o_values = counts[o_cells].astype(np.float64)
        n_zy = np.add.reduceat(counts.reshape(m, na, ry), starts, axis=1).ravel()
        zy_cells = np.flatnonzero(n_zy)
        zy_values = n_zy[zy_cells].astype(np.float64)
        stats = np.bincount(o_cells // (na * ry), weights=xlogy(o_values, o_values), minlength=m)
        stats -= np.bincount(zy_cells // (nz * ry), weights=xlogy(zy_values, zy_values), minlength=m)
        stats = np.maximum(2.0 * (stats + shared), 0.0)
        y_states = np.bincount(zy_cells // ry, minlength=m * nz).reshape(m, nz)  # y states seen per stratum
        dofs = (np.clip(x_states - 1, 0, None)[None, :] * np.clip(y_states - 1, 0, None)).sum(axis=1)
        p_values = np.where(dofs > 0, chi2.sf(stats, np.maximum(dofs, 1)), 1.0)
        out += map(GTestResult, stats.tolist(), dofs.tolist(), p_values.tolist())
    return out


def _present_cells(cells: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """``np.unique(cells, return_inverse=True)``: by counting when the cells are few (no sort), else by sorting."""
    if len(cells) == 0 or int(cells.max()) >= _DENSE_CELLS:
        present, inverse = np.unique(cells, return_inverse=True)
        return present, inverse.ravel()
    seen = np.bincount(cells)
    present = np.flatnonzero(seen)
    slot = np.zeros(len(seen), dtype=np.intp)
    slot[present] = np.arange(len(present))
    return present, slot[cells]


def _stratum_index(z: Sequence[NDArray[Any]], zcards: Sequence[int], n: int) -> NDArray[np.intp]:
    """One integer per row naming its stratum of ``z`` (mixed radix; compressed when the product is huge)."""
    if not z:
        return np.zeros(n, dtype=np.intp)
    zi = z[0].astype(np.intp)
    for codes, card in zip(z[1:], zcards[1:], strict=True):
        zi *= card
        zi += codes
    if float(np.prod(zcards, dtype=np.float64)) > _DENSE_CELLS:
        zi = np.unique(zi, return_inverse=True)[1].astype(np.intp)
    return zi


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
