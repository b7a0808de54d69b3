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
    card = cards.__getitem__
    adjacent: dict[str, set[str]] = {n: set() for n in names}  # plain sets: a refinement round builds ~170 trees
    for c in cliques:
        for a, b in combinations(c, 2):
            adjacent[a].add(b)
            adjacent[b].add(a)
    cost = {u: card(u) * math.prod(map(card, adjacent[u])) for u in names}
    formed: list[frozenset[str]] = []
    while adjacent:
        v = min(adjacent, key=lambda u: (cost[u], rank[u]))
        neighbours = adjacent.pop(v)
        for w in neighbours:
            linked = adjacent[w]
            linked.discard(v)
            linked |= neighbours
            linked.discard(w)
            cost[w] = card(w) * math.prod(map(card, linked))
        formed.append(frozenset([v, *neighbours]))
    # a clique formed later lacks the columns eliminated before it: only an earlier one can hold it
    maximal = [c for k, c in enumerate(formed) if not any(c <= d for d in formed[:k])]
    cells = [math.prod(map(card, c)) for c in maximal]
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


def _shape(sub: Clique, clique: Clique, cards: Mapping[str, int]) -> tuple[int, ...]:
    """The shape that broadcasts a table over ``sub`` (in ``clique``'s order) over ``clique``."""
    return tuple(cards[v] if v in sub else 1 for v in clique)


def _sub(clique: Clique, variables: Sequence[str]) -> Clique:
    return tuple(v for v in clique if v in variables)


class _Model:
    """Log-potentials on a junction tree, and the clique marginals they give (sum-product, in log space)."""

    def __init__(self, tree: JunctionTree) -> None:
        self.tree = tree
        cl, parent = tree.cliques, tree.parent
        sep = [() if p < 0 else _sub(cl[i], cl[p]) for i, p in enumerate(parent)]
        # each message's axes and broadcast shapes, once: the fit passes messages ~40 times a step
        self._up = [(_axes(sep[i], cl[i]), _shape(sep[i], cl[p], tree.cards)) for i, p in enumerate(parent)]
        self._down = [(_axes(sep[i], cl[p]), _shape(sep[i], cl[i], tree.cards)) for i, p in enumerate(parent)]

    def beliefs(self, theta: Arrays) -> Arrays:
        """Each clique's log-marginal (normalised: ``logsumexp`` of each is 0)."""
        parent = self.tree.parent
        up: list[NDArray[np.float64]] = [np.zeros(0)] * len(theta)
        inner = [t.copy() for t in theta]
        for i in reversed(range(1, len(theta))):  # leaves first: a clique's children come after it
            axes, shape = self._up[i]
            up[i] = _logsumexp(inner[i], axis=axes)
            inner[parent[i]] = inner[parent[i]] + up[i].reshape(shape)
        out = [np.zeros(0)] * len(theta)
        out[0] = inner[0] - _logsumexp(inner[0])
        for i in range(1, len(theta)):  # root first
            axes, shape = self._down[i]
            down = _logsumexp(out[parent[i]], axis=axes) - up[i]
            out[i] = inner[i] + down.reshape(shape)  # normalised already: its separator's sum is the parent's
        return out


class _Objective:
    """The weighted least-squares loss of clique marginals against every measurement, and its gradient.

    Each measurement sits in the smallest clique holding its columns: a function of those columns adds the same to
    the model whichever clique holds it, and the first step, set by :attr:`lipschitz`, is then larger (the first
    clique holding it, often the root, gave steps so small that 60 steps of a refinement round left 1.5-2x the loss).
    All cliques are laid end to end in one flat vector and each measurement's cells are sums of fixed cells of it,
    so the loss of every measurement is one gather and one ``bincount`` each way, not ~50 small numpy calls. On the
    7 fits of a wa_churn fit at epsilon 1 the two took the fitting from 3.3 s to 0.8 s.
    """

    def __init__(self, tree: JunctionTree, measurements: Sequence[Measurement]) -> None:
        shapes = [tree.shape(c) for c in tree.cliques]
        sizes = [math.prod(s) for s in shapes]
        self.shapes = shapes
        self.bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        source, target, counts, weights = [], [], [], []
        heaviest = [0.0] * len(sizes)  # per clique: sum of weight x cells(clique) / cells(measurement)
        cells = 0
        for m in measurements:
            home = min((i for i, c in enumerate(tree.cliques) if set(m.variables) <= set(c)), key=sizes.__getitem__)
            clique = tree.cliques[home]
            variables = _sub(clique, m.variables)
            order = [m.variables.index(v) for v in variables]
            table = np.transpose(m.counts, order)
            weight = np.full(table.shape, 1.0 / max(m.variance, 1e-12))
            if m.known is not None:
                weight = np.where(np.transpose(m.known, order), weight, 0.0)
            cell = np.arange(table.size).reshape(_shape(variables, clique, tree.cards))
            source.append(np.arange(self.bounds[home], self.bounds[home + 1]))
            target.append(cells + np.broadcast_to(cell, shapes[home]).ravel())
            counts.append(table.ravel())
            weights.append(weight.ravel())
            heaviest[home] += float(weight.max()) * sizes[home] / table.size
            cells += table.size
        self.source = np.concatenate(source) if source else np.zeros(0, dtype=np.int64)
        self.target = np.concatenate(target) if target else np.zeros(0, dtype=np.int64)
        self.counts = np.concatenate(counts) if counts else np.zeros(0)
        self.weights = np.concatenate(weights) if weights else np.zeros(0)
        self.cells = cells
        #: a Lipschitz bound of the gradient, for the first step
        self.lipschitz = max(heaviest)

    def flat(self, tables: Arrays) -> NDArray[np.float64]:
        """The cliques' tables end to end."""
        return np.concatenate([t.ravel() for t in tables])

    def __call__(self, mu: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        """The loss of the flat marginals ``mu`` (counts) and its gradient in them (flat)."""
        implied = np.bincount(self.target, weights=mu[self.source], minlength=self.cells)
        diff = implied - self.counts
        residual = diff * self.weights
        grad = np.bincount(self.source, weights=residual[self.target], minlength=len(mu)).astype(np.float64, copy=False)
        return 0.5 * float(residual @ diff), grad

    def split(self, flat: NDArray[np.float64]) -> Arrays:
        """The flat vector as the cliques' tables (views)."""
        b = self.bounds
        return [flat[b[i] : b[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]


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
    objective = _Objective(tree, measurements)
    theta = [np.zeros(tree.shape(c)) for c in tree.cliques]
    for child, (parents, cpt) in (start or {}).items():
        family = (*parents, child)
        log_cpt = np.log(np.maximum(cpt, 1e-12)).reshape([tree.cards[v] for v in family])
        home = tree.home(family)
        clique = tree.cliques[home]
        inside = _sub(clique, family)
        theta[home] = theta[home] + np.transpose(log_cpt, [family.index(v) for v in inside]).reshape(
            _shape(inside, clique, tree.cards)
        )

    def marginals(th: Arrays) -> NDArray[np.float64]:
        return np.exp(objective.flat(model.beliefs(th))) * total

    mu = marginals(theta)
    loss, grad = objective(mu)
    alpha = 2.0 / (max(objective.lipschitz, 1e-12) * total)
    history = [loss]
    steps = 0
    for steps in range(1, max_iterations + 1):
        trial = [t - alpha * g for t, g in zip(theta, objective.split(grad), strict=True)]
        mu2 = marginals(trial)
        loss2, grad2 = objective(mu2)
        if loss - loss2 >= 0.5 * alpha * float(grad @ (mu - mu2)):
            theta, mu, loss, grad = trial, mu2, loss2, grad2
            alpha *= GROWTH
        else:
            alpha *= 0.5
        history.append(loss)
        if len(history) > WINDOW and history[-WINDOW - 1] - loss <= TOLERANCE * abs(history[-WINDOW - 1]):
            break
    return Fitted(tree, objective.split(mu), total, steps)


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
