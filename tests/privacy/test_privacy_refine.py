"""Refinement rounds (tools/privacy/refine.py) and in-degree 3: the rounds measure the table the model gets wrong
and the refitted model then holds it; a target's triple is found where no pair shows it; a table that would take
the spec past its size budget is never measured; the plan alternates picks and measurements, and a DP fit says
how many tables it refined."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import causalsynth as cs
from causalsynth.tools.privacy import pgm, refine
from causalsynth.tools.privacy.columns import Column
from causalsynth.tools.privacy.consistency import Measurement
from causalsynth.tools.privacy.fitting import FitOptions, plan_steps
from causalsynth.tools.privacy.structure import private_bayes

LARGE_RHO = 1e4  # the noisy max is all but exact, the measurement all but noiseless


def _codes(cards: dict[str, int]) -> Any:
    def codes(frame: pd.DataFrame) -> dict[str, Any]:
        return {n: frame[n].to_numpy(np.int64) for n in cards}

    return codes


def _independent_start(table: pd.DataFrame, cards: dict[str, int]) -> tuple[list[Measurement], dict[str, Any]]:
    """Exact 1-way measurements and the network that makes every column independent."""
    measurements, start = [], {}
    for n, k in cards.items():
        counts = np.bincount(table[n], minlength=k).astype(float)
        measurements.append(Measurement((n,), counts, 1.0))
        start[n] = ([], (counts / counts.sum())[None, :])
    return measurements, start


def _run(table: pd.DataFrame, cards: dict[str, int], rounds: int, target: str | None = None, max_values: int = 10**6
         ) -> tuple[pgm.Fitted | None, list[Measurement], list[str]]:  # fmt: skip
    measurements, start = _independent_start(table, cards)
    calls: list[str] = []

    def measure(step: str, measurement: Any) -> Any:
        calls.append(step)
        return measurement(table)

    fitted, added = refine.refined(list(cards), cards, measurements, float(len(table)), start, _codes(cards), measure,
                                   [(LARGE_RHO, LARGE_RHO)] * rounds, max_values, np.random.default_rng(0),
                                   target)  # fmt: skip
    return fitted, added, calls


def test_a_round_measures_the_dependent_pair_and_the_refitted_model_holds_it() -> None:
    # Setup: a and b strongly dependent, c and d independent of everything; the start makes all four independent
    rng = np.random.default_rng(0)
    n = 6000
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.8, a, rng.integers(0, 3, n))
    table = pd.DataFrame({"a": a, "b": b, "c": rng.integers(0, 3, n), "d": rng.integers(0, 2, n)})
    cards = {"a": 3, "b": 3, "c": 3, "d": 2}
    truth = np.bincount(a * 3 + b, minlength=9).reshape(3, 3) / n

    # Run
    fitted, added, calls = _run(table, cards, rounds=1)

    # Assert: the one round picked (a, b) and the model's (a, b) table is the data's; independent, it was 0.36 away
    assert fitted is not None
    assert [m.variables for m in added] == [("a", "b")] and calls == ["pick", "refine"]
    independent = np.outer(truth.sum(axis=1), truth.sum(axis=0))
    assert 0.5 * np.abs(independent - truth).sum() > 0.3
    assert 0.5 * np.abs(fitted.table(["a", "b"]) / n - truth).sum() < 0.01


def test_a_target_triple_is_found_where_no_pair_shows_the_dependence() -> None:
    # Setup: t is the parity of a and b (with 5% noise): every pair is independent, only (a, b, t) is not
    rng = np.random.default_rng(1)
    n = 6000
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    t = np.where(rng.random(n) < 0.95, a ^ b, 1 - (a ^ b))
    table = pd.DataFrame({"a": a, "b": b, "c": rng.integers(0, 2, n), "t": t})
    cards = {"a": 2, "b": 2, "c": 2, "t": 2}

    # Run
    with_target = _run(table, cards, rounds=1, target="t")
    without = _run(table, cards, rounds=1)

    # Assert: with the target named the round measures (a, b, t) and the model predicts t from a and b; without
    # it only pairs are candidates, and none of them carries the parity
    fitted, added, _ = with_target
    assert fitted is not None and [m.variables for m in added] == [("a", "b", "t")]
    p = fitted.table(["a", "b", "t"])
    p = p / p.sum(axis=2, keepdims=True)
    assert all(p[i, j, i ^ j] > 0.9 for i in (0, 1) for j in (0, 1))
    assert all(len(m.variables) == 2 for m in without[1])


def test_no_table_past_the_spec_budget_is_measured_and_nothing_is_spent_then() -> None:
    # Setup: a budget that the independent network already fills
    rng = np.random.default_rng(2)
    n = 2000
    a = rng.integers(0, 4, n)
    table = pd.DataFrame({"a": a, "b": (a + rng.integers(0, 2, n)) % 4, "c": rng.integers(0, 4, n)})
    cards = {"a": 4, "b": 4, "c": 4}

    # Run
    fitted, added, calls = _run(table, cards, rounds=3, max_values=3 * (4 + 3))

    # Assert: no round ran, no query was made, and the model is still fitted to the 1-way measurements
    assert fitted is not None and added == [] and calls == []
    assert np.allclose(fitted.table(["a"]), np.bincount(a, minlength=4), atol=1.0)


def test_private_bayes_gives_three_parents_where_only_the_triple_carries_the_dependence() -> None:
    # Setup: d is the parity of a, b and c: no single column nor pair says anything about d
    rng = np.random.default_rng(3)
    n = 8000
    a, b, c = (rng.integers(0, 2, n) for _ in range(3))
    d = np.where(rng.random(n) < 0.95, a ^ b ^ c, 1 - (a ^ b ^ c))
    table = pd.DataFrame({"a": a, "b": b, "c": c, "d": d})
    cards = dict.fromkeys("abcd", 2)
    marginals = {k: np.bincount(table[k], minlength=2) / n for k in cards}

    # Run
    parents = private_bayes(list(cards), cards, _codes(cards), marginals, 1e9, LARGE_RHO,
                            lambda _step, m: m(table), "a")  # fmt: skip

    # Assert: one column, the last placed, takes the other three as parents (the others get whatever family the
    # noise in their empty scores favours)
    three = [k for k, ps in parents.items() if len(ps) == 3]
    assert len(three) == 1 and sorted(parents[three[0]]) == sorted(set(cards) - set(three))


def test_the_plan_alternates_picks_and_measurements_after_the_family_tables() -> None:
    # Setup
    columns = [Column(f"x{i}", "category") for i in range(9)]

    # Run
    learned = [s.name for s in plan_steps(columns, FitOptions())]
    given = [s.name for s in plan_steps(columns, FitOptions(dag={f"x{i}": [] for i in range(9)}))]

    # Assert: a learned structure ends with the rounds, planned from the column count alone; a user DAG has none
    rounds = refine.rounds(9)
    assert rounds >= 1
    assert learned[-2 * rounds :] == ["pick", "refine"] * rounds and learned[-2 * rounds - 1] == "cpts"
    assert "pick" not in given and "refine" not in given


def test_a_dp_fit_reports_its_refinement_rounds_and_their_spend() -> None:
    # Setup: the table of the pgm tests' kind, with a pair that the private network may leave apart
    rng = np.random.default_rng(4)
    n = 5000
    x = rng.integers(0, 4, n)
    y = np.where(rng.random(n) < 0.7, x, rng.integers(0, 4, n))
    z = np.where(rng.random(n) < 0.7, y, rng.integers(0, 4, n))
    table = pd.DataFrame({k: pd.Series(v).map(dict(enumerate("pqrs"))) for k, v in {"x": x, "y": y, "z": z}.items()})

    # Run
    result = cs.fit(table, epsilon=1.0, delta=1e-6)

    # Assert: the provenance names the rounds and their spend; the spec loads (sample works on it)
    fit = result.provenance
    assert f"of {refine.rounds(3)} refinement rounds" in fit["structure"]
    steps = {s["step"]: s for s in fit["budget"]}
    assert steps["refine"]["queries"] == refine.rounds(3) and steps["pick"]["queries"] == refine.rounds(3)
    assert len(cs.sample(result.domain, 100, seed=0)) == 100
