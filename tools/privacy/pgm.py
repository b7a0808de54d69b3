"""One graphical model fitted to every noisy measurement at once (Private-PGM's estimation; post-processing only).

A DP fit measures each column's marginal and one table per family. :mod:`consistency` makes those tables agree
column by column and reads a CPT off each; the tables still disagree on the parents' joint (a family table holds
its two parents' 2-way table, which the rest of the model also implies), and the CPTs only keep what each table
says about its child. Here, as in Private-PGM (McKenna et al., "Graphical-model based estimation and inference
for differential privacy", ICML 2019), one distribution is fitted to all the measurements together:

- the model is a Markov random field on the junction tree of the measured cliques (the graph that joins every
  two columns measured together, triangulated greedily by smallest clique);
- its log-potentials are fitted by entropic mirror descent with a backtracking step (Private-PGM's Algorithm 1)
  to the least-squares loss of every measurement weighted by its noise variance, started from the calibrated
  Bayesian network (whose CPTs are a point of the model), so a few hundred steps suffice;
- the result is written back as a Bayesian network, exactly: :func:`tree_network` walks the junction tree from its
  root and gives each column the columns placed before it in its first clique as parents; :func:`family_tables`
  gives the fitted tables of a DAG's own families instead (a user DAG, whose edges mean causes, stays as it is).

Only released measurements enter; no row is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.privacy.consistency import Measurement
from causalsynth.tools.privacy.cpts import draw_states, joint_index

Clique = tuple[str, ...]
Arrays = list[NDArray[np.float64]]

#: A junction tree with more cells than this (all cliques together) is not fitted: the caller keeps its estimate.
MAX_TREE_CELLS = 100_000
#: Mirror descent stops after this many steps, or once the loss has fallen by less than ``TOLERANCE`` (relative)
#: over the last ``WINDOW`` steps. The step grows by ``GROWTH`` after an accepted step (Private-PGM: 1.01) and
#: halves after a refused one. On wa_churn at epsilon 1 (8 fits, started from the calibrated CPTs), 1,000 steps at
#: 1.01 and 200 at 1.1 reached the same 2-way TVD; 3,000 steps did no better.
MAX_ITERATIONS = 300
TOLERANCE = 1e-4
WINDOW = 50
GROWTH = 1.1


@dataclass(frozen=True)
class JunctionTree:
    """Cliques (variables in the global order) listed root first, each after its parent (``parent[0] == -1``)."""

    cliques: list[Clique]
    parent: list[int]
    cards: Mapping[str, int]

    def shape(self, clique: Sequence[str]) -> tuple[int, ...]:
        """The table shape of ``clique``'s variables."""
        return tuple(self.cards[v] for v in clique)

    def home(self, variables: Sequence[str]) -> int:
        """The index of the first clique holding all of ``variables``."""
        return next(i for i, c in enumerate(self.cliques) if set(variables) <= set(c))

    def holds(self, variables: Sequence[str]) -> bool:
        """Whether one clique holds all of ``variables``."""
        return any(set(variables) <= set(c) for c in self.cliques)

    @property
    def cells(self) -> int:
        """Cells of all the cliques' tables together."""
        return sum(math.prod(self.shape(c)) for c in self.cliques)


def junction_tree(names: Sequence[str], cards: Mapping[str, int], cliques: Sequence[Sequence[str]]) -> JunctionTree:
    """The junction tree of ``cliques``: greedy elimination (the variable whose clique has fewest cells first)."""
    rank = {n: i for i, n in enumerate(names)}
    adjacent: dict[str, set[str]] = {n: set() for n in names}  # plain sets: the refinement builds ~100 trees a round
    for c in cliques:
        for a, b in combinations(c, 2):
            adjacent[a].add(b)
            adjacent[b].add(a)
    cost = {u: math.prod(cards[w] for w in [u, *adjacent[u]]) for u in names}
    formed: list[frozenset[str]] = []
    while adjacent:
        v = min(adjacent, key=lambda u: (cost[u], rank[u]))
        neighbours = adjacent.pop(v)
        for w in neighbours:
            adjacent[w].discard(v)
            adjacent[w] |= neighbours - {w}
            cost[w] = math.prod(cards[x] for x in [w, *adjacent[w]])
        formed.append(frozenset([v, *neighbours]))
    maximal = [c for c in dict.fromkeys(formed) if not any(c < d for d in formed)]
    cells = [math.prod(cards[v] for v in c) for c in maximal]
    root = max(range(len(maximal)), key=lambda i: (cells[i], -i))
    # Prim's maximum spanning tree of the cliques joined by their shared columns, grown from the root: any maximum
    # one is a junction tree, and each clique is placed after its parent
    order, parent_of = [root], {}
    best = {i: (len(maximal[i] & maximal[root]), root) for i in range(len(maximal)) if i != root}
    while best:
        i = max(best, key=lambda j: (best[j][0], -j))
        parent_of[i] = best.pop(i)[1]
        order.append(i)
        for j in best:
            shared = len(maximal[j] & maximal[i])
            if shared > best[j][0]:
                best[j] = (shared, i)
    position = {c: k for k, c in enumerate(order)}
    return JunctionTree(
        cliques=[tuple(sorted(maximal[i], key=rank.__getitem__)) for i in order],
        parent=[-1 if i == root else position[parent_of[i]] for i in order],
        cards=cards,
    )


def _logsumexp(values: NDArray[np.float64], axis: tuple[int, ...] | None = None) -> NDArray[np.float64]:
    """``log(sum(exp(values)))`` over ``axis`` (all axes when None), shifted by the maximum (finite values only).

    scipy's version costs 0.2 ms a call in argument checks; the fit makes ~40 calls a step.
    """
    top = values.max(axis=axis, keepdims=True)
    out = np.log(np.exp(values - top).sum(axis=axis, keepdims=True)) + top
    return out.reshape(()) if axis is None else out.squeeze(axis)


def _axes(sub: Sequence[str], clique: Clique) -> tuple[int, ...]:
    return tuple(i for i, v in enumerate(clique) if v not in sub)


def _expand(values: NDArray[np.float64], sub: Clique, clique: Clique) -> NDArray[np.float64]:
    """``values`` over ``sub`` (in ``clique``'s order) broadcast over ``clique``."""
    return values.reshape([values.shape[sub.index(v)] if v in sub else 1 for v in clique])


def _sub(clique: Clique, variables: Sequence[str]) -> Clique:
    return tuple(v for v in clique if v in variables)


class _Model:
    """Log-potentials on a junction tree, and the clique marginals they give (sum-product, in log space)."""

    def __init__(self, tree: JunctionTree) -> None:
        self.tree = tree
        cl = tree.cliques
        self.separators = [() if p < 0 else _sub(cl[i], cl[p]) for i, p in enumerate(tree.parent)]

    def beliefs(self, theta: Arrays) -> Arrays:
        """Each clique's log-marginal (normalised: ``logsumexp`` of each is 0)."""
        cl, sep = self.tree.cliques, self.separators
        up: list[NDArray[np.float64]] = [np.zeros(0)] * len(cl)
        inner = [t.copy() for t in theta]
        for i in reversed(range(1, len(cl))):  # leaves first: a clique's children come after it
            up[i] = _logsumexp(inner[i], axis=_axes(sep[i], cl[i]))
            p = self.tree.parent[i]
            inner[p] = inner[p] + _expand(up[i], sep[i], cl[p])
        out = [np.zeros(0)] * len(cl)
        out[0] = inner[0] - _logsumexp(inner[0])
        for i in range(1, len(cl)):  # root first
            p = self.tree.parent[i]
            down = _logsumexp(out[p], axis=_axes(sep[i], cl[p])) - up[i]
            out[i] = inner[i] + _expand(down, sep[i], cl[i])
            out[i] = out[i] - _logsumexp(out[i])
        return out


@dataclass(frozen=True)
class _Term:
    clique: int  # the junction-tree clique holding the measurement
    variables: Clique  # in that clique's order
    counts: NDArray[np.float64]  # axes in ``variables``' order
    weight: NDArray[np.float64]  # 1 / variance per cell (0 where the measurement does not cover the cell)


def _terms(tree: JunctionTree, measurements: Sequence[Measurement]) -> list[_Term]:
    out = []
    for m in measurements:
        home = tree.home(m.variables)
        variables = _sub(tree.cliques[home], m.variables)
        counts = np.transpose(m.counts, [m.variables.index(v) for v in variables])
        weight = np.full(counts.shape, 1.0 / max(m.variance, 1e-12))
        if m.known is not None:
            weight = np.where(m.known, weight, 0.0)
        out.append(_Term(home, variables, counts, weight))
    return out


def _loss(terms: Sequence[_Term], tree: JunctionTree, mu: Arrays) -> tuple[float, Arrays]:
    """The weighted least-squares loss of the clique marginals ``mu`` (counts) and its gradient in them."""
    loss = 0.0
    grad = [np.zeros_like(m) for m in mu]
    for t in terms:
        clique = tree.cliques[t.clique]
        implied = mu[t.clique].sum(axis=_axes(t.variables, clique))
        residual = (implied - t.counts) * t.weight
        loss += 0.5 * float(np.sum(residual * (implied - t.counts)))
        grad[t.clique] += _expand(residual, t.variables, clique)
    return loss, grad


@dataclass(frozen=True)
class Fitted:
    """The fitted model: its junction tree, each clique's marginal (counts summing to ``total``), steps taken."""

    tree: JunctionTree
    marginals: Arrays
    total: float
    steps: int

    def table(self, variables: Sequence[str]) -> NDArray[np.float64]:
        """Counts over ``variables`` (axes in that order); they must lie in one clique."""
        home = self.tree.home(variables)
        clique = self.tree.cliques[home]
        inside = _sub(clique, variables)
        counts = self.marginals[home].sum(axis=_axes(inside, clique))
        return np.transpose(counts, [inside.index(v) for v in variables])


def fit(
    tree: JunctionTree, measurements: Sequence[Measurement], total: float,
    start: Mapping[str, tuple[Sequence[str], NDArray[np.float64]]] | None = None,
    max_iterations: int = MAX_ITERATIONS,
) -> Fitted:  # fmt: skip
    """Mirror descent on the log-potentials, from ``start`` (a Bayesian network: child -> (parents, CPT rows)).

    The CPT rows of ``start`` are ``P(child | parents)`` with the parents' configurations in row-major order.
    """
    model = _Model(tree)
    terms = _terms(tree, measurements)
    theta = [np.zeros(tree.shape(c)) for c in tree.cliques]
    for child, (parents, cpt) in (start or {}).items():
        family = (*parents, child)
        log_cpt = np.log(np.maximum(cpt, 1e-12)).reshape([tree.cards[v] for v in family])
        home = tree.home(family)
        inside = _sub(tree.cliques[home], family)
        theta[home] = theta[home] + _expand(np.transpose(log_cpt, [family.index(v) for v in inside]), inside,
                                            tree.cliques[home])  # fmt: skip

    def marginals(th: Arrays) -> Arrays:
        return [np.exp(b) * total for b in model.beliefs(th)]

    mu = marginals(theta)
    loss, grad = _loss(terms, tree, mu)
    # the step a Lipschitz bound of the gradient suggests (each measurement adds cells(clique)/cells(m)/variance)
    lipschitz = max(
        sum(
            float(t.weight.max()) * math.prod(tree.shape(tree.cliques[i])) / t.counts.size
            for t in terms
            if t.clique == i
        )
        for i in range(len(tree.cliques))
    )
    alpha = 2.0 / (max(lipschitz, 1e-12) * total)
    history = [loss]
    steps = 0
    for steps in range(1, max_iterations + 1):
        trial = [t - alpha * g for t, g in zip(theta, grad, strict=True)]
        mu2 = marginals(trial)
        loss2, grad2 = _loss(terms, tree, mu2)
        decrease = sum(float(np.sum(g * (a - b))) for g, a, b in zip(grad, mu, mu2, strict=True))
        if loss - loss2 >= 0.5 * alpha * decrease:
            theta, mu, loss, grad = trial, mu2, loss2, grad2
            alpha *= GROWTH
        else:
            alpha *= 0.5
        history.append(loss)
        if len(history) > WINDOW and history[-WINDOW - 1] - loss <= TOLERANCE * abs(history[-WINDOW - 1]):
            break
    return Fitted(tree, mu, total, steps)


def network_parents(tree: JunctionTree) -> dict[str, list[str]]:
    """The parents :func:`tree_network` gives each column (known from the tree alone).

    Cliques are taken root first; a clique's columns not in its separator get, in turn, the separator and the
    columns of the clique placed before them as parents.
    """
    out: dict[str, list[str]] = {}
    for clique in tree.cliques:
        placed = [v for v in clique if v in out]
        for v in (v for v in clique if v not in out):
            out[v] = list(placed)
            placed.append(v)
    return out


def fittable(names: Sequence[str], cards: Mapping[str, int], parents: Mapping[str, Sequence[str]]
             ) -> dict[str, list[str]]:  # fmt: skip
    """``parents`` with the fewest edges dropped (greedily) for its families' junction tree to stay fittable.

    Each step drops the edge whose loss leaves the smallest tree. Post-processing of a released DAG: a learned
    network whose families moralise into a tree over :data:`MAX_TREE_CELLS` would otherwise lose the joint fit and
    the refinement rounds altogether (loans at epsilon 1: about one fit in four, at 3 every fit). Unchanged where
    even the columns alone would be too large.
    """
    out = {n: list(parents[n]) for n in names}

    def cells(dag: Mapping[str, Sequence[str]]) -> int:
        return junction_tree(names, cards, [[*dag[n], n] for n in names]).cells

    size = cells(out)
    if size <= MAX_TREE_CELLS or cells(dict.fromkeys(names, [])) > MAX_TREE_CELLS:  # fits, or nothing would
        return out
    while size > MAX_TREE_CELLS:
        size, child, parent = min(
            (cells({**out, n: [q for q in out[n] if q != p]}), n, p) for n in names for p in out[n]
        )
        out[child].remove(parent)
    return out


def tree_network(fitted: Fitted) -> dict[str, tuple[list[str], NDArray[np.float64]]]:
    """The fitted model as a Bayesian network with the same distribution: child -> (parents, CPT rows).

    The parents are :func:`network_parents`, listed in an order in which each column comes after its parents.
    """
    out: dict[str, tuple[list[str], NDArray[np.float64]]] = {}
    for v, parents in network_parents(fitted.tree).items():
        counts = fitted.table([*parents, v]).reshape(-1, fitted.tree.cards[v]) + 1e-12
        out[v] = (parents, counts / counts.sum(axis=1, keepdims=True))
    return out


def draws(network: Mapping[str, tuple[Sequence[str], NDArray[np.float64]]], cards: Mapping[str, int],
          rng: np.random.Generator, count: int) -> dict[str, NDArray[np.int64]]:  # fmt: skip
    """``count`` ancestral draws (state codes per column) of a network listed parents first."""
    out: dict[str, NDArray[np.int64]] = {}
    for v, (parents, cpt) in network.items():
        rows = np.zeros(count, dtype=np.int64)
        if parents:
            rows = joint_index([out[p] for p in parents], [cards[p] for p in parents])
        out[v] = draw_states(cpt, rows, rng)
    return out


def family_tables(fitted: Fitted, parents: Mapping[str, Sequence[str]]) -> dict[str, Measurement]:
    """The fitted counts of each family ``(*parents, child)`` of a DAG whose families the tree holds."""
    return {n: Measurement((*ps, n), fitted.table([*ps, n]), 0.0) for n, ps in parents.items()}
