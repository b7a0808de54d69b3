"""Choosing the DAG when the user gives none.

With DP (:func:`private_bayes`, the fit's default): a PrivBayes-style greedy network of in-degree <= 3, one
column per round chosen with OpenDP's noisy max. :func:`private_tree` (an MST-style private Chow-Liu tree, one
edge per round by noisy max over L1 scores) is kept for callers that want in-degree 1. Without DP: pgmpy's hill
climbing (BDeu with a larger equivalent sample size than pgmpy's default, in-degree <= 3) on small tables, its
Chow-Liu tree search on wide ones, then :func:`pair_repaired` links the column pairs whose 2-way table the model
gets wrong beyond sampling noise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.privacy.mechanisms import noisy_argmax
from causalsynth.tools.yamlio import MAX_NODES

#: Pairs whose 2-way table has more cells than this are not candidates (their counts would drown in noise).
MAX_PAIR_CELLS = 4096
#: Above this many columns, no-DP learning uses the Chow-Liu tree instead of hill climbing.
HILL_CLIMB_MAX_COLUMNS = 64
#: No-DP hill climbing: pgmpy's BDeu score with this equivalent sample size (pgmpy's default, 10, pruned
#: dependencies that the 2-way tables show; at 100 wa_churn's 2-way TVD was 1.16-1.24x the real table's under 5 of
#: 6 PYTHONHASHSEEDs and 1.58x under one, against 1.5x at 10 and 1.35x with AIC; with calibrated CPTs 300 gave
#: loans 1.32x, wa_churn 1.28x, HealthInsurance 1.19x against 1.34x, 1.30x, 1.20x at 100; 1000 and in-degree 2
#: or 4 were no better) and at most this many parents.
EXACT_ESS = 300.0
EXACT_INDEGREE = 3
#: No-DP pair repair (:func:`pair_repaired`): at most this many rounds, edges added per round, and the caps on a
#: repaired child (parents, CPT cells). loans_full_schema (54 columns): hill climbing leaves annual_income 3-4 edges
#: from loan_amount, installment and balance (each pair's 2-way TVD 0.12 above the real table's). 2-way TVD over
#: the real training table's, mean of 3 sample seeds, before -> after: loans 1.33x -> 1.24x (+22 edges, stopped by
#: the spec's size limit), wa_churn 1.26x -> 1.13x (+12), HealthInsurance 1.19x -> 1.16x (+4). On loans a noise
#: factor of 3 (+10 edges) gave 1.30x, 2,000 cells 1.25x; 20 rounds added nothing.
REPAIR_ROUNDS = 10
REPAIR_PER_ROUND = 5
REPAIR_INDEGREE = 4
REPAIR_CELLS = 5000
#: A pair is repaired when the model's 2-way table is further from the data's (TVD) than this many times the
#: distance that sampling alone would give (the data's rows and the model's draws).
REPAIR_NOISE = 2.0
#: The repair adds no edge that takes the spec's CPTs past this many YAML values, 3/4 of the spec loader's limit
#: (the rest for the columns' specs): at 1.5 times the noise, with no such cap, the loader refused loans' spec.
REPAIR_SPEC_VALUES = MAX_NODES * 3 // 4

Codes = Callable[[pd.DataFrame], Mapping[str, NDArray[np.int64]]]


def private_tree(
    names: Sequence[str], cards: Mapping[str, int], codes: Codes, marginals: Mapping[str, NDArray[np.float64]],
    n_hat: float, rho: float, measure: Callable[[str, Any], Any], root: str | None,
) -> dict[str, list[str]]:  # fmt: skip
    """A tree over ``names`` chosen with the exponential mechanism, ``{child: [parent]}``."""
    pairs = [(a, b) for a, b in combinations(names, 2) if cards[a] * cards[b] <= MAX_PAIR_CELLS]
    expected = {(a, b): n_hat * np.outer(marginals[a], marginals[b]) for a, b in pairs}
    components = nx.utils.UnionFind(names)
    edges: list[tuple[str, str]] = []
    for _ in range(len(names) - 1):
        candidates = [(a, b) for a, b in pairs if components[a] != components[b]]
        if not candidates:  # a forest: the planned slot is spent on a query that reads nothing
            measure("select", noisy_argmax(lambda _table: [0.0], rho))
            continue

        def scores(table: pd.DataFrame, candidates: list[tuple[str, str]] = candidates) -> list[float]:
            c = codes(table)
            out = []
            for a, b in candidates:
                joint = np.bincount(c[a] * cards[b] + c[b], minlength=cards[a] * cards[b]).reshape(cards[a], cards[b])
                out.append(float(np.abs(joint - expected[(a, b)]).sum()))
            return out

        a, b = candidates[int(measure("select", noisy_argmax(scores, rho)))]
        components.union(a, b)
        edges.append((a, b))
    return orient(names, edges, root)


def private_bayes(
    names: Sequence[str], cards: Mapping[str, int], codes: Codes, marginals: Mapping[str, NDArray[np.float64]],
    max_cells: float, rho: float, measure: Callable[[str, Any], Any], root: str | None, seed: int = 0,
    bonus: float = 0.0, sigma: float = 0.0,
) -> dict[str, list[str]]:  # fmt: skip
    """A DAG of in-degree <= ``MAX_INDEGREE`` chosen greedily with the exponential mechanism (PrivBayes-style).

    Starting from ``root`` (the target, else the first column), each round adds one column with up to three parents
    among the columns already placed, picked by noisy max over the score ``|N(P, c) - N(P) x q_c|_1``: how far
    the counts of ``c`` given its parents ``P`` are from the released marginal ``q_c`` (adding or removing a row
    moves it by at most 2). Families whose table has more than ``max_cells`` cells are not candidates (their
    counts would drown in noise); above ``MAX_CANDIDATES`` per round a public random subset is scored. A family
    holding ``root`` (the target) scores ``bonus`` more: a public constant, so the sensitivity stays 2.

    With ``sigma`` (the noise scale the family tables will be measured with), a single parent whose pair table
    is over ``max_cells`` but within ``WIDE_CELLS`` times it is a candidate too, scored less by a part
    (:data:`WIDE_PENALTY`) of the L1 error its cells' noise would leave (public, so the sensitivity stays 2); a
    column with only such candidates may also join without parents (score 0). So a near-deterministic pair of
    many-valued columns (a loan's grade and sub-grade) is linked, and a weakly dependent one is not.
    """
    rng = np.random.default_rng([seed, 0x5E1EC7])
    first = root if root is not None else names[0]
    placed = [first]
    parents: dict[str, list[str]] = {n: [] for n in names}
    remaining = [n for n in names if n != first]
    scored: dict[tuple[str, tuple[str, ...]], float] = {}  # a family's score on the table (the same every round)
    table_id: list[int] = []

    def score_of(coded: Mapping[str, NDArray[np.int64]], child: str, ps: tuple[str, ...]) -> float:
        if (child, ps) not in scored:
            index = np.zeros(len(coded[child]), dtype=np.int64)
            size = 1
            for p in ps:
                index = index * cards[p] + coded[p]
                size *= cards[p]
            joint = np.bincount(index * cards[child] + coded[child], minlength=size * cards[child])
            joint = joint.reshape(size, cards[child])
            if SCORE == "mi":
                scored[(child, ps)] = _mutual_information_counts(joint)
            else:
                scored[(child, ps)] = float(np.abs(joint - np.outer(joint.sum(axis=1), marginals[child])).sum())
        return scored[(child, ps)]

    pair_cells = max(max_cells, MIN_PAIR_CELLS)
    per_cell = WIDE_PENALTY * np.sqrt(2 / np.pi) * sigma  # a wide pair's penalty per cell (public)
    while remaining:
        candidates: list[tuple[str, tuple[str, ...]]] = []
        penalty: dict[tuple[str, tuple[str, ...]], float] = {}
        for c in remaining:
            small: list[tuple[str, tuple[str, ...]]] = [(c, (a,)) for a in placed if cards[a] * cards[c] <= pair_cells]
            small += [(c, ps) for ps in _parent_sets(placed, cards, max_cells / cards[c]) if len(ps) > 1]
            wide = [
                (c, (a,)) for a in placed if sigma > 0 and pair_cells < cards[a] * cards[c] <= WIDE_CELLS * max_cells
            ]
            penalty.update({f: per_cell * cards[f[1][0]] * cards[c] for f in wide})
            candidates += small + wide + ([(c, ())] if wide and not small else [])
        if not candidates:  # nothing small enough: a column joins without parents (no data read)
            measure("select", noisy_argmax(lambda _table: [0.0], rho))
            c = remaining[0]
        else:
            if len(candidates) > MAX_CANDIDATES:
                keep = rng.choice(len(candidates), MAX_CANDIDATES, replace=False)
                candidates = [candidates[i] for i in sorted(keep)]

            def scores(table: pd.DataFrame, candidates: list[tuple[str, tuple[str, ...]]] = candidates) -> list[float]:
                if table_id != [id(table)]:  # scores are memoised per table (a row-wise function of it, as before)
                    scored.clear()
                    table_id[:] = [id(table)]
                coded = codes(table)
                return [
                    (score_of(coded, child, ps) if ps else 0.0)
                    + (bonus if root in ps else 0.0)
                    - penalty.get((child, ps), 0.0)
                    for child, ps in candidates
                ]

            sensitivity = MI_SENSITIVITY if SCORE == "mi" else 2.0
            c, ps = candidates[int(measure("select", noisy_argmax(scores, rho, sensitivity=sensitivity)))]
            parents[c] = list(ps)
        placed.append(c)
        remaining.remove(c)
    return parents


def _parent_sets(placed: Sequence[str], cards: Mapping[str, int], limit: float, start: int = 0,
                 prefix: tuple[str, ...] = (), size: int = 1) -> list[tuple[str, ...]]:  # fmt: skip
    """The sets of up to ``MAX_INDEGREE`` columns of ``placed`` (in its order) whose states multiply to <= limit."""
    out = []
    for i in range(start, len(placed)):
        grown = size * cards[placed[i]]
        if grown <= limit:
            ps = (*prefix, placed[i])
            out.append(ps)
            if len(ps) < MAX_INDEGREE:
                out += _parent_sets(placed, cards, limit, i + 1, ps, grown)
    return out


def _xlogx(x: NDArray[np.float64]) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.sum(np.where(x > 0, x * np.log(np.maximum(x, 1e-300)), 0.0)))


def _mutual_information_counts(joint: NDArray[np.int64]) -> float:
    """``n * I(P; c)`` in nats from a count table (parents x child)."""
    j = joint.astype(float)
    return _xlogx(j) - _xlogx(j.sum(axis=1)) - _xlogx(j.sum(axis=0)) + _xlogx(np.array([j.sum()]))


#: The family score of :func:`private_bayes`: "l1" (distance from the released marginal) or "mi" (n times the
#: mutual information; one row moves it by at most log(n + 1) + 1, bounded with a public cap of 1e9 rows).
SCORE = "l1"
MI_SENSITIVITY = float(np.log(1e9 + 1) + 1)

#: :func:`private_bayes`'s wide pairs: a single parent whose pair table has up to this many times the family cells
#: allowed, scored less by this part of the L1 error that its cells' noise leaves (``sqrt(2 / pi) x sigma`` a
#: cell). A measured table is projected onto counts (non-negative, each parent state's row summing to its rows),
#: which puts much of a sparse table's noise back to zero: in a simulation on loans' training rows (sigma 73, 20
#: draws, rows projected alone), grade x sub_grade (224 cells, near deterministic) came to a TVD of 0.20 from the
#: data's (0.17 of the cells' noise) against 0.76 for the two independent, while state x homeownership (150
#: cells, weakly dependent) came to 0.27 (0.44 of the noise) against 0.12. At 0.4 the first pair scores about
#: +5,000, the second about -1,800.
WIDE_CELLS = 8
WIDE_PENALTY = 0.4
#: Candidate families scored per round of :func:`private_bayes` at most, and the pair size always allowed.
MAX_CANDIDATES = 3000
#: Parents per column at most in :func:`private_bayes`. HealthInsurance at epsilon 1 (20 fits): 2-way TVD 0.0355
#: with 2, 0.0344 with 3; at epsilon 100, 0.0309 and 0.0301 (the class of in-degree 2 networks was the limit).
MAX_INDEGREE = 3
MIN_PAIR_CELLS = 16


def orient(names: Sequence[str], edges: Sequence[tuple[str, str]], root: str | None) -> dict[str, list[str]]:
    """Direct a forest's edges away from ``root`` (each component's first node otherwise)."""
    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_edges_from(edges)
    parents: dict[str, list[str]] = {n: [] for n in names}
    for component in nx.connected_components(graph):
        start = root if root in component else next(n for n in names if n in component)
        for parent, child in nx.bfs_edges(graph, start):
            parents[child] = [parent]
    return parents


def _ordered(search: type[Any]) -> type[Any]:
    """Hill climbing (pgmpy's) with its candidate operations in one fixed order.

    pgmpy lists the edges it may add from a ``set``, whose order follows string hashes (``PYTHONHASHSEED``), and
    takes the first best operation: on ties (BDeu scores both directions of an edge alike) the learned DAG, and
    so the spec, changed from one process to the next. Sorted, the same data always gives the same DAG.
    """

    class Ordered(search):
        def _legal_operations(self, *args: Any, **kwargs: Any) -> list[Any]:
            ops = super()._legal_operations(*args, **kwargs)
            return sorted(ops, key=lambda op: (op[0][0], str(op[0][1][0]), str(op[0][1][1])))

    return Ordered


def learned_dag(codes: pd.DataFrame, root: str | None) -> dict[str, list[str]]:
    """Pgmpy structure learning on exact state codes (no DP)."""
    with warnings.catch_warnings():  # pgmpy 1.1.0 announces a new home for its scores; the estimators API still works
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.estimators import BDeu, HillClimbSearch, TreeSearch

    data = codes.astype(str)
    if data.shape[1] <= HILL_CLIMB_MAX_COLUMNS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            score = BDeu(data, equivalent_sample_size=EXACT_ESS)
            model = _ordered(HillClimbSearch)(data).estimate(
                scoring_method=score, max_indegree=EXACT_INDEGREE, show_progress=False
            )
        parents: dict[str, list[str]] = {str(n): [] for n in data.columns}
        for a, b in model.edges():
            parents[str(b)].append(str(a))
        return parents
    start = root if root is not None else str(data.columns[0])
    tree = TreeSearch(data, root_node=start, n_jobs=1).estimate(estimator_type="chow-liu", show_progress=False)
    return orient(list(map(str, data.columns)), [(str(a), str(b)) for a, b in tree.edges()], start)


def pair_repaired(
    parents: Mapping[str, Sequence[str]], codes: Mapping[str, NDArray[np.int64]], cards: Mapping[str, int],
    draws: Callable[[Mapping[str, list[str]]], Mapping[str, NDArray[np.int64]]],
) -> dict[str, list[str]]:  # fmt: skip
    """A learned DAG with edges added between the unlinked pairs that its model gets most wrong (no DP).

    Each round ``draws(dag)`` gives draws of the model fitted on the DAG so far; every pair of columns not linked by
    an edge whose 2-way table in the draws strays from the data's by more than ``REPAIR_NOISE`` times sampling noise
    is a candidate, worst first; each gets the edge (either way round) that keeps the graph acyclic and the child
    within ``REPAIR_INDEGREE`` parents and ``REPAIR_CELLS`` CPT cells, the smaller CPT first, while the CPTs' size in
    the spec stays under ``REPAIR_SPEC_VALUES``.
    """
    dag = {n: list(ps) for n, ps in parents.items()}
    graph = nx.DiGraph()
    graph.add_nodes_from(dag)
    graph.add_edges_from((p, c) for c, ps in dag.items() for p in ps)
    values = {n: spec_values(ps, n, cards) for n, ps in dag.items()}
    observed: dict[tuple[str, str], NDArray[np.float64]] = {}
    for _ in range(REPAIR_ROUNDS):
        added = 0
        for a, b in _strays(dag, codes, draws(dag), cards, observed):
            edge = _repair_edge(a, b, dag, graph, cards)
            if edge is None:
                continue
            more = spec_values([*dag[edge[1]], edge[0]], edge[1], cards)
            if sum(values.values()) - values[edge[1]] + more <= REPAIR_SPEC_VALUES:
                dag[edge[1]].append(edge[0])
                values[edge[1]] = more
                graph.add_edge(*edge)
                added += 1
                if added == REPAIR_PER_ROUND:
                    break
        if not added:
            break
    return dag


def _strays(dag: Mapping[str, list[str]], codes: Mapping[str, NDArray[np.int64]],
            drawn: Mapping[str, NDArray[np.int64]], cards: Mapping[str, int],
            observed: dict[tuple[str, str], NDArray[np.float64]]) -> list[tuple[str, str]]:  # fmt: skip
    """Unlinked pairs whose drawn 2-way table strays from the data's beyond noise, the furthest (less noise) first.

    ``observed`` keeps the data's 2-way tables from one round to the next (the data does not change).
    """
    rows, many = len(next(iter(codes.values()))), len(next(iter(drawn.values())))
    found = []
    for a, b in combinations(dag, 2):
        if a in dag[b] or b in dag[a]:
            continue
        size = cards[a] * cards[b]
        if (a, b) not in observed:
            observed[a, b] = np.bincount(codes[a] * cards[b] + codes[b], minlength=size) / rows
        data = observed[a, b]
        model = np.bincount(drawn[a] * cards[b] + drawn[b], minlength=size) / many
        tvd = 0.5 * float(np.abs(data - model).sum())
        noise = 0.5 * np.sqrt(2 / np.pi) * float(np.sqrt(model * (1 - model) * (1 / rows + 1 / many)).sum())
        if tvd > REPAIR_NOISE * noise:
            found.append((tvd - noise, a, b))
    return [(a, b) for _, a, b in sorted(found, reverse=True)]


def _repair_edge(a: str, b: str, dag: Mapping[str, list[str]], graph: nx.DiGraph, cards: Mapping[str, int]
                 ) -> tuple[str, str] | None:  # fmt: skip
    """The edge ``(parent, child)`` linking a and b within the caps, acyclic, with the smaller CPT; None if neither."""
    options = []
    for parent, child in ((a, b), (b, a)):
        cells = int(np.prod([cards[p] for p in [*dag[child], parent, child]]))
        if len(dag[child]) < REPAIR_INDEGREE and cells <= REPAIR_CELLS and not nx.has_path(graph, child, parent):
            options.append((cells, parent, child))
    if not options:
        return None
    _, parent, child = min(options)
    return parent, child


def spec_values(parents: Sequence[str], child: str, cards: Mapping[str, int]) -> int:
    """A CPT's YAML values in the spec.

    Per row of parent states (the loader counts values, not keys): the row, its ``when`` mapping, the parents'
    states, the ``probs`` list and its probabilities.
    """
    return math.prod(cards[p] for p in parents) * (cards[child] + len(parents) + 3)
