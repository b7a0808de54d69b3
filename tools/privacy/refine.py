"""Refinement rounds after the family tables (AIM-style): measure the tables the fitted model gets most wrong.

A learned structure measures one table per family; the fitted model then implies every other pair's 2-way table,
and some of those are far from the data (a dependence the greedy network did not link). Each round, as in AIM
(McKenna et al., "AIM: An Adaptive and Iterative Mechanism for Differentially Private Synthetic Data", VLDB 2022):

1. every pair of columns not measured together (and with a target, every triple holding it) is scored by
   ``|N(c) - M(c)|_1``, the L1 distance between the data's counts and the current model's (a public table:
   post-processing of earlier releases, estimated from draws of the model), minus the L1 error the round's
   measurement noise would leave (``sqrt(2 / pi) x sigma x cells``), so a large table must be that much more wrong
   to be worth measuring; one row moves a score by at most 1;
2. one table is picked by OpenDP's noisy max and measured with the discrete Gaussian mechanism;
3. the model is fitted again to every measurement (:mod:`pgm`), warm from the network it had.

The rounds are planned before the data is read (the accountant knows every query in advance); a round with nothing
left to measure spends nothing. A table is a candidate only while the junction tree with it stays fittable and the
network written from it fits the spec's budget.

``bench/fit_dev.py`` at epsilon 1, means of 10-20 fits: wa_churn's 2-way TVD 0.0518 without rounds, 0.0439-0.0451
with 5 (TSTR AUC 0.814 -> 0.808-0.810: the rounds cost the target a little, with or without the target's triples);
HealthInsurance 0.0341 -> 0.0333-0.0344 (within the spread of the mean); at epsilon 100, 0.0301 -> 0.0287 (5
rounds) and 0.0267 (10): the rounds lift the ceiling of the greedy network, the noise at epsilon 1 keeps most of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.privacy import pgm
from causalsynth.tools.privacy.consistency import Measurement
from causalsynth.tools.privacy.cpts import joint_counts
from causalsynth.tools.privacy.mechanisms import gaussian_scale, noisy_argmax, noisy_histogram
from causalsynth.tools.privacy.structure import spec_values

#: Draws of the fitted model per round to estimate its 2-way tables (post-processing; more draws, less noise in
#: the model's side of the scores).
DRAWS = 50_000
#: Mirror-descent steps of the fits between rounds (warm-started; the scores need the model roughly); the final
#: fit takes :data:`pgm.MAX_ITERATIONS`.
REFIT_ITERATIONS = 60
#: A pair is a candidate while its table keeps this many noise scales per cell (as the family tables must).
PAIR_NOISE = 2.0
MIN_PAIR_CELLS = 16

Codes = Callable[[pd.DataFrame], Mapping[str, NDArray[np.int64]]]
Network = dict[str, tuple[list[str], NDArray[np.float64]]]


def rounds(columns: int) -> int:
    """Refinement rounds planned for a table of ``columns`` columns.

    A quarter of the columns, 4 to 12, but no more than the pairs that the families of a network (one per column but
    the first) can leave unmeasured.
    """
    return min(max(columns // 4, 4), 12, (columns - 1) * (columns - 2) // 2)


def refined(
    names: Sequence[str], cards: Mapping[str, int], measurements: list[Measurement], n_hat: float,
    start: Network, codes: Codes, measure: Callable[[str, Any], Any], picks: Sequence[tuple[float, float]],
    max_values: int, rng: np.random.Generator, target: str | None = None,
) -> tuple[pgm.Fitted | None, list[Measurement]]:  # fmt: skip
    """The model fitted to ``measurements`` and the refinement rounds' tables, and those tables.

    ``picks``: per round, the zCDP rho of its noisy max ("pick") and of its measurement ("refine"). ``start``: the
    network the first fit starts from (its families must be measured cliques). ``max_values``: the most YAML values
    the network written from the junction tree may take. With a ``target``, the triples holding it are candidates
    too. None when the first junction tree is too large to fit.
    """
    tree = pgm.junction_tree(names, cards, [m.variables for m in measurements])
    if tree.cells > pgm.MAX_TREE_CELLS:
        return None, []
    short = REFIT_ITERATIONS if picks else pgm.MAX_ITERATIONS
    fitted = pgm.fit(tree, measurements, n_hat, start=start, max_iterations=short)
    added: list[Measurement] = []
    too_big: set[tuple[str, ...]] = set()  # the tree only grows: a table too big once stays too big
    for rho_pick, rho_measure in picks:
        sigma = gaussian_scale(rho_measure)
        limit = max(n_hat / (PAIR_NOISE * sigma), MIN_PAIR_CELLS)
        cliques = [m.variables for m in [*measurements, *added]]
        measured = [set(c) for c in cliques]
        edges = _edges(cliques)
        verdicts: dict[frozenset[frozenset[str]], bool] = {}
        tables = []
        for clique in _candidates(names, target):
            if clique in too_big or math.prod(cards[v] for v in clique) > limit:
                continue
            if any(set(clique) <= m for m in measured):
                continue
            if _fits(names, cards, [*cliques, clique], fitted.tree, max_values, edges, verdicts):
                tables.append(clique)
            else:
                too_big.add(clique)
        if not tables:
            break
        network = pgm.tree_network(fitted)
        drawn = pgm.draws(network, cards, rng, DRAWS)
        model = {c: _table(drawn, c, cards) * (n_hat / DRAWS) for c in tables}
        penalty = {c: math.sqrt(2 / math.pi) * sigma * math.prod(cards[v] for v in c) for c in tables}

        def scores(table: pd.DataFrame, tables: list[tuple[str, ...]] = tables) -> list[float]:
            coded = codes(table)
            return [float(np.abs(_table(coded, c, cards) - model[c]).sum()) - penalty[c] for c in tables]

        clique = tables[int(measure("pick", noisy_argmax(scores, rho_pick)))]

        def histogram(table: pd.DataFrame, clique: tuple[str, ...] = clique) -> NDArray[np.int64]:
            return _table(codes(table), clique, cards).ravel()

        noisy = measure("refine", noisy_histogram(histogram, rho_measure))
        counts = np.asarray(noisy, dtype=np.float64).reshape([cards[v] for v in clique])
        added.append(Measurement(clique, counts, sigma**2))
        tree = pgm.junction_tree(names, cards, [*cliques, clique])
        warm = network if all(tree.holds([*ps, v]) for v, (ps, _) in network.items()) else start
        fitted = pgm.fit(tree, [*measurements, *added], n_hat, start=warm, max_iterations=short)
    if picks:  # the fits so far were short ones
        fitted = pgm.fit(fitted.tree, [*measurements, *added], n_hat, start=pgm.tree_network(fitted))
    return fitted, added


def _candidates(names: Sequence[str], target: str | None) -> list[tuple[str, ...]]:
    """Every pair of columns, and with a target every triple holding it."""
    out: list[tuple[str, ...]] = list(combinations(names, 2))
    if target is not None:
        others = [n for n in names if n != target]
        out += [(a, b, target) for a, b in combinations(others, 2)]
    return out


def _table(coded: Mapping[str, NDArray[np.int64]], clique: Sequence[str], cards: Mapping[str, int]
           ) -> NDArray[np.int64]:  # fmt: skip
    """The count table of ``clique`` in ``coded`` (one row adds one to one cell)."""
    dims = [cards[v] for v in clique]
    return joint_counts([coded[v] for v in clique], dims).reshape(dims)


def _edges(cliques: Sequence[Sequence[str]]) -> set[frozenset[str]]:
    """The pairs of columns measured together."""
    return {frozenset(pair) for c in cliques for pair in combinations(c, 2)}


def _fits(names: Sequence[str], cards: Mapping[str, int], cliques: Sequence[Sequence[str]], current: pgm.JunctionTree,
          max_values: int, edges: set[frozenset[str]],
          verdicts: dict[frozenset[frozenset[str]], bool]) -> bool:  # fmt: skip
    """Whether the junction tree of ``cliques`` stays fittable and its network within ``max_values`` spec values.

    ``edges``: the graph of the cliques before the last. The tree depends on the graph alone, so ``verdicts`` keeps
    the answer per set of edges the last clique adds (a triple with the target often adds only its pair's edge).
    """
    if current.holds(cliques[-1]):  # inside a clique already: the tree does not change
        return True
    key = frozenset(_edges(cliques[-1:]) - edges)
    if key not in verdicts:
        tree = pgm.junction_tree(names, cards, cliques)
        verdicts[key] = (
            tree.cells <= pgm.MAX_TREE_CELLS
            and sum(spec_values(ps, v, cards) for v, ps in pgm.network_parents(tree).items()) <= max_values
        )
    return verdicts[key]
