"""The joint fit of all the measurements (tools/privacy/pgm.py): the network it writes is the fitted model, it keeps
a dependence that only a family table measured, and a DP fit uses it (or says why not)."""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.tools.privacy import pgm
from causalsynth.tools.privacy.consistency import Measurement, calibrated_cpts, combine_marginals


def _joint(network: dict[str, tuple[list[str], np.ndarray]], cards: dict[str, int]) -> np.ndarray:
    """The network's joint distribution, by enumeration (axes in ``cards``' order)."""
    names = list(cards)
    joint = np.zeros([cards[n] for n in names])
    for cell in product(*[range(cards[n]) for n in names]):
        value = dict(zip(names, cell, strict=True))
        p = 1.0
        for child, (parents, cpt) in network.items():
            row = 0
            for q in parents:
                row = row * cards[q] + value[q]
            p *= cpt[row, value[child]]
        joint[cell] = p
    return joint


def _table(joint: np.ndarray, names: list[str], variables: tuple[str, ...]) -> np.ndarray:
    drop = tuple(i for i, n in enumerate(names) if n not in variables)
    kept = [n for n in names if n in variables]
    return np.transpose(joint.sum(axis=drop), [kept.index(v) for v in variables])


def test_the_written_network_reproduces_every_measured_table_on_a_loop() -> None:
    # Setup: a loop a-b-c-d-a (the junction tree must add a chord) with exact, mutually consistent tables
    rng = np.random.default_rng(0)
    cards = {"a": 2, "b": 3, "c": 2, "d": 3}
    names = list(cards)
    truth = rng.dirichlet(np.full(int(np.prod(list(cards.values()))), 0.7)).reshape(list(cards.values())) * 5000
    cliques = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("a",), ("c",)]
    measurements = [Measurement(c, _table(truth, names, c), 1.0) for c in cliques]
    tree = pgm.junction_tree(names, cards, cliques)

    # Run
    fitted = pgm.fit(tree, measurements, 5000.0, max_iterations=2000)
    network = pgm.tree_network(fitted)
    joint = _joint(network, cards) * 5000

    # Assert: the network is a DAG over every column whose joint gives back each measured table (to 1% of a cell's
    # scale: the fit's tolerance), and it agrees with the clique marginals the fit reports
    assert set(network) == set(names)
    for c in cliques:
        assert (
            np.abs(_table(joint, names, c) - _table(truth, names, c)).max() < 0.01 * 5000 / _table(truth, names, c).size
        )
        np.testing.assert_allclose(_table(joint, names, c), fitted.table(c), rtol=1e-6, atol=1e-6)


def test_the_joint_fit_keeps_the_parents_dependence_that_only_the_family_table_measured() -> None:
    # Setup: a and b are strongly dependent; the DAG (as a private structure search can pick it) makes c their
    # child and leaves a and b roots, so only c's family table measures the pair (a, b). Noisy, as under DP.
    rng = np.random.default_rng(1)
    n = 20_000
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.8, a, rng.integers(0, 3, n))
    c = (a + b + (rng.random(n) < 0.1)) % 2
    cards = {"a": 3, "b": 3, "c": 2}
    names = list(cards)
    data = {"a": a, "b": b, "c": c}
    sigma = 30.0
    measurements = [Measurement((v,), np.bincount(data[v], minlength=cards[v]) + rng.normal(0, sigma, cards[v]),
                                sigma**2) for v in names]  # fmt: skip
    family = np.zeros((3, 3, 2))
    np.add.at(family, (a, b, c), 1)
    measurements.append(Measurement(("a", "b", "c"), family + rng.normal(0, sigma, family.shape), sigma**2))
    dag = {"a": [], "b": [], "c": ["a", "b"]}
    marginals = combine_marginals(measurements, cards, float(n))
    calibrated, _ = calibrated_cpts(dag, cards, {"c": measurements[-1]}, marginals, dict.fromkeys(names, 0.0),
                                    np.random.default_rng(0))  # fmt: skip
    truth_ab = family.sum(axis=2) / n

    # Run
    tree = pgm.junction_tree(names, cards, [m.variables for m in measurements])
    fitted = pgm.fit(tree, measurements, float(n), start={v: (dag[v], calibrated[v]) for v in names})
    network = pgm.tree_network(fitted)

    # Assert: the calibrated network makes a and b independent (TVD ~0.27 from the truth); the joint fit keeps
    # their dependence to within the noise
    def tvd_ab(net: dict[str, tuple[list[str], np.ndarray]]) -> float:
        return 0.5 * float(np.abs(_table(_joint(net, cards), names, ("a", "b")) - truth_ab).sum())

    assert tvd_ab({v: (dag[v], calibrated[v]) for v in names}) > 0.2
    assert tvd_ab(network) < 0.02


def _dependent_table(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, n)
    y = np.where(rng.random(n) < 0.7, x, rng.integers(0, 4, n))
    z = np.where(rng.random(n) < 0.7, y, rng.integers(0, 4, n))
    w = np.where(rng.random(n) < 0.7, (x + z) % 4, rng.integers(0, 4, n))
    return pd.DataFrame({k: pd.Series(v).map(dict(enumerate("pqrs"))) for k, v in
                         {"x": x, "y": y, "z": z, "w": w}.items()})  # fmt: skip


def test_a_dp_fit_uses_the_joint_fit_and_a_user_dag_keeps_its_edges() -> None:
    # Setup
    table = _dependent_table()
    user = {"x": [], "y": ["x"], "z": ["y"], "w": ["x", "z"]}

    # Run
    learned = cs.fit(table, epsilon=1.0, delta=1e-6)
    given = cs.fit(table, epsilon=1.0, delta=1e-6, dag=user)

    # Assert
    assert "fitted jointly" in learned.spec["fit"]["structure"]
    assert "fitted jointly" in given.spec["fit"]["structure"]
    nodes = given.spec["model"]["nodes"]
    assert {n: nodes[n].get("parents", []) for n in user} == user
    sample = cs.sample(learned.domain, 4000, seed=0)
    assert len(sample) == 4000 and sample.notna().all().all()


def test_a_junction_tree_too_large_to_fit_keeps_the_calibrated_cpts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Setup
    monkeypatch.setattr(pgm, "MAX_TREE_CELLS", 1)

    # Run
    result = cs.fit(_dependent_table(), epsilon=1.0, delta=1e-6)

    # Assert: the provenance says the joint fit was skipped and why; the spec still samples
    assert "too large to fit jointly" in result.spec["fit"]["structure"]
    assert len(cs.sample(result.domain, 100, seed=0)) == 100


def test_a_junction_tree_beyond_int64_cells_counts_as_too_large() -> None:
    # Setup: 30 ten-state columns measured together pairwise: one clique of 10**30 cells (int64 overflows)
    cards = {f"c{i}": 10 for i in range(30)}
    pairs = [(a, b) for i, a in enumerate(cards) for b in list(cards)[i + 1 :]]

    # Run
    tree = pgm.junction_tree(list(cards), cards, pairs)

    # Assert: counted exactly, so the fit's size check refuses it rather than allocating it
    assert tree.cells == 10**30
    assert tree.cells > pgm.MAX_TREE_CELLS


def test_a_network_too_large_to_fit_loses_the_fewest_edges_and_one_that_fits_none(monkeypatch: Any) -> None:
    # Setup: a chain of 12 columns of 6 states whose last column has the first four as parents too
    names = [f"c{i}" for i in range(12)]
    cards = dict.fromkeys(names, 6)
    parents: dict[str, list[str]] = {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
    parents["c11"] = ["c10", "c0", "c1", "c2"]
    size = pgm.junction_tree(names, cards, [[*parents[n], n] for n in names]).cells
    monkeypatch.setattr(pgm, "MAX_TREE_CELLS", size - 1)

    # Run
    pruned = pgm.fittable(names, cards, parents)
    kept = pgm.fittable(names, cards, {**parents, "c11": ["c10"]})

    # Assert: the pruned network's tree fits, one edge went, and it went from the family that made the loop
    assert pgm.junction_tree(names, cards, [[*pruned[n], n] for n in names]).cells <= size - 1
    assert sum(map(len, parents.values())) - sum(map(len, pruned.values())) == 1
    assert all(pruned[n] == parents[n] for n in names if n != "c11")
    assert kept == {**parents, "c11": ["c10"]}


def test_the_fit_objective_is_each_measurements_weighted_squared_error_and_its_gradient() -> None:
    # Setup: measurements of one column, a pair and a triple in a tree of several cliques (each sits in the smallest
    # clique holding it), one with cells it does not cover; clique tables that need not agree with each other
    rng = np.random.default_rng(1)
    cards = {"a": 2, "b": 3, "c": 2, "d": 4, "e": 3}
    names = list(cards)
    cliques = [("a", "b", "c"), ("c", "d"), ("d", "e"), ("b",)]
    measurements = [
        Measurement(("a", "b", "c"), rng.random((2, 3, 2)) * 50, 4.0),
        Measurement(("d", "c"), rng.random((4, 2)) * 50, 9.0, known=rng.random((4, 2)) < 0.7),
        Measurement(("e", "d"), rng.random((3, 4)) * 50, 2.0),
        Measurement(("b",), rng.random(3) * 90, 1.0),
    ]
    tree = pgm.junction_tree(names, cards, cliques)
    objective = pgm._Objective(tree, measurements)
    mu = [rng.random(tree.shape(c)) * 10 for c in tree.cliques]
    flat = objective.flat(mu)

    def direct(tables: list[np.ndarray]) -> float:
        total = 0.0
        for m in measurements:
            home = min((i for i, c in enumerate(tree.cliques) if set(m.variables) <= set(c)),
                       key=lambda i: tables[i].size)  # fmt: skip
            clique = tree.cliques[home]
            implied = tables[home].sum(axis=tuple(k for k, v in enumerate(clique) if v not in m.variables))
            kept = [v for v in clique if v in m.variables]
            implied = np.transpose(implied, [kept.index(v) for v in m.variables])
            known = np.ones(m.counts.shape, bool) if m.known is None else m.known
            total += 0.5 * float((((implied - m.counts) ** 2) * known).sum()) / m.variance
        return total

    # Run
    loss, grad = objective(flat)

    # Assert: the loss is the direct sum, and the gradient matches central differences in every cell
    assert loss == pytest.approx(direct(mu), rel=1e-12)
    step = 1e-4
    for k in range(len(flat)):
        up, down = flat.copy(), flat.copy()
        up[k] += step
        down[k] -= step
        numeric = (direct(objective.split(up)) - direct(objective.split(down))) / (2 * step)
        assert grad[k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)
