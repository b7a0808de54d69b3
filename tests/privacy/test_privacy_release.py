"""The releases behind a DP fit's domain: spikes (exact point masses), the second category release, the plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.tools.privacy.columns import Column
from causalsynth.tools.privacy.domain import PublicBounds, spiked_spec
from causalsynth.tools.privacy.fitting import MAX_CPT_CELLS, FitOptions, _trim_parents, plan_steps
from causalsynth.tools.privacy.mechanisms import threshold_scale


def spiked_table(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.uniform(20.0, 100.0, n)  # full-precision floats: no two rows share one
    score[rng.random(n) < 0.6] = 100.0  # a point mass, like a "percent never late" column
    group = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({"score": score, "group": group})


@pytest.fixture(scope="module")
def spiked() -> tuple[pd.DataFrame, cs.FitOutput]:
    table = spiked_table()
    return table, cs.fit(table, epsilon=1.0, delta=1e-6, name="spiked")


def test_a_released_spike_decodes_to_exactly_its_value(spiked: tuple[pd.DataFrame, cs.FitOutput]) -> None:
    # Setup
    table, result = spiked
    bins = result.domain.spec.columns["score"].bins
    assert bins is not None

    # Run
    sample = cs.sample(result.domain, 5000, seed=3)

    # Assert
    values = sample["score"].astype(float)
    assert (values == 100.0).mean() == pytest.approx(0.6, abs=0.05)  # the point mass is a point mass, not a bin
    assert values.between(bins[0].low, bins[-1].high).all()  # decoded values stay inside the released range
    assert bins[0].low == pytest.approx(20.0, abs=12.0)  # the range is still found around the rest of the rows


def test_spike_release_names_no_other_raw_value(spiked: tuple[pd.DataFrame, cs.FitOutput]) -> None:
    # Setup
    table, result = spiked
    raw = set(table["score"]) - {100.0}  # exact floats: rounding would let a grid point meet a raw value by chance

    # Run
    numbers = set()
    for b in result.domain.spec.columns["score"].bins or []:
        numbers |= {float(b.low), float(b.high), *(float(p) for p in b.points or [])}

    # Assert
    assert 100.0 in numbers  # the spike, released through the Gaussian threshold
    assert not numbers & raw  # no value held by a single row appears in the spec


def test_spiked_spec_keeps_bounds_and_gives_the_spike_its_own_bin() -> None:
    # Setup: a noisy histogram on [0, 100] with 500 rows at exactly 50 (post-processing only: no data here)
    edges = np.linspace(0.0, 100.0, 11)
    noisy = np.full(10, 100.0)
    noisy[5] += 500.0

    # Run
    spec = spiked_spec(Column("x", "float"), 0.0, 100.0, edges, noisy, {50.0: 500, 250.0: 900}, 5, False)

    # Assert
    bins = spec.bins or []
    assert bins[0].low == 0.0 and bins[-1].high == 100.0  # a spike outside the range moves no bound
    spike = [b for b in bins if b.low == 50.0]
    assert len(spike) == 1 and spike[0].points is not None and set(spike[0].points) == {50.0}
    assert all(b.low < b.high for b in bins)


def test_a_spike_just_under_an_integer_top_leaves_the_top_its_own_bin() -> None:
    # Setup: a 0/1 column, 3,500 zeros (released as a spike) and 1,300 ones (under the spike threshold); at epsilon
    # 0.3 wa_churn's `dependents` came out as one bin decoding to 0 in 1 of 4 fits: 30% of its rows lost
    edges = np.array([0.0, 1.0, 2.0])
    noisy = np.array([3600.0, 1300.0])

    # Run
    spec = spiked_spec(Column("x", "integer"), 0.0, 1.0, edges, noisy, {0.0: 3544}, 5, False)

    # Assert
    bins = spec.bins or []
    assert [(b.low, b.high) for b in bins] == [(0.0, 1.0), (1.0, 1.0)]
    assert set(bins[0].points or []) == {0.0} and bins[1].closed  # the spike decodes to 0, the top bin to 1


def test_plan_measures_keyed_columns_through_their_category_releases() -> None:
    # Setup
    columns = [Column("a", "category"), Column("b", "category"), Column("x", "float"), Column("y", "integer")]

    # Run
    private = {s.name: s for s in plan_steps(columns, FitOptions())}
    given = {"a": PublicBounds(categories=("u", "v")), "b": PublicBounds(categories=("w",))}
    public = {s.name: s for s in plan_steps(columns, FitOptions(bounds=given))}

    # Assert
    assert private["domain"].queries == 2 and private["domain2"].queries == 1
    assert private["marginals"].queries == 2  # only the columns whose keys are public get a plain 1-way query
    assert private["spikes"].queries == 2 and private["spikes"].thresholded and private["domain2"].thresholded
    assert "domain" not in public and "domain2" not in public and public["marginals"].queries == 4


def test_joint_category_release_noise_grows_with_the_root_of_its_columns() -> None:
    # Run
    one, four = threshold_scale(0.004, 1e-7, 1), threshold_scale(0.004, 1e-7, 4)

    # Assert: one row moves one count in each of 4 columns, L2 sensitivity 2
    assert four == pytest.approx(2 * one, rel=0.01)


def test_learned_parents_are_trimmed_to_the_cpt_limit() -> None:
    # Setup
    cards = {"c": 10, "wide": 1000, "p": 20, "q": 30}

    # Run
    dag = _trim_parents({"c": ["wide", "p", "q"], "wide": [], "p": [], "q": ["p"]}, cards)

    # Assert
    assert dag["c"] == ["p", "q"] and dag["q"] == ["p"]  # the widest parent goes first
    assert all(int(np.prod([cards[p] for p in ps])) * cards[n] <= MAX_CPT_CELLS for n, ps in dag.items())
