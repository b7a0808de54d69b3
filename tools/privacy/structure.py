"""Choosing the DAG when the user gives none.

With DP: an MST-style private Chow-Liu tree. Kruskal's algorithm picks one edge per round with OpenDP's
exponential mechanism (noisy max); an edge's score is the L1 distance between the pair's true 2-way counts and
what the noisy 1-way marginals predict under independence (sensitivity 1). The tree is oriented away from the
target (or the first column): every node has at most one parent. Without DP: pgmpy's hill climbing (BIC,
in-degree <= 2) on small tables, its Chow-Liu tree search on wide ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.privacy.mechanisms import noisy_argmax

#: Pairs whose 2-way table has more cells than this are not candidates (their counts would drown in noise).
MAX_PAIR_CELLS = 4096
#: Above this many columns, no-DP learning uses the Chow-Liu tree instead of hill climbing.
HILL_CLIMB_MAX_COLUMNS = 24

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
        if not candidates:
            break

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


def learned_dag(codes: pd.DataFrame, root: str | None) -> dict[str, list[str]]:
    """Pgmpy structure learning on exact state codes (no DP)."""
    from pgmpy.estimators import HillClimbSearch, TreeSearch

    data = codes.astype(str)
    if data.shape[1] <= HILL_CLIMB_MAX_COLUMNS:
        with warnings.catch_warnings():  # pgmpy 1.1.0 announces a new home for it; the estimators API still works
            warnings.simplefilter("ignore", FutureWarning)
            model = HillClimbSearch(data).estimate(scoring_method="bic-d", max_indegree=2, show_progress=False)
        parents: dict[str, list[str]] = {str(n): [] for n in data.columns}
        for a, b in model.edges():
            parents[str(b)].append(str(a))
        return parents
    start = root if root is not None else str(data.columns[0])
    tree = TreeSearch(data, root_node=start, n_jobs=1).estimate(estimator_type="chow-liu", show_progress=False)
    return orient(list(map(str, data.columns)), [(str(a), str(b)) for a, b in tree.edges()], start)
