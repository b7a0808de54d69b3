"""A private category domain whose names all belong to a public list (US state codes) is completed from that list."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.tools.privacy.consistency import Measurement, pooling_weight
from causalsynth.tools.privacy.cpts import pooled
from causalsynth.tools.privacy.schema import OTHER_STATE
from causalsynth.tools.privacy.vocabularies import VOCABULARIES, completion

STATES = next(v for v in VOCABULARIES if v.name.startswith("US state codes")).entries


def test_names_that_cover_enough_of_a_list_get_its_other_values_in_their_case() -> None:
    # Setup: 20 of the 51 state codes, once upper case and once lower case
    named = list(STATES[:20])

    # Run
    upper = completion(named)
    lower = completion([n.lower() for n in named])

    # Assert: the 31 others are added, spelled as the names are
    assert upper is not None and lower is not None
    assert sorted(upper.added) == sorted(STATES[20:])
    assert sorted(lower.added) == sorted(s.lower() for s in STATES[20:])
    assert "state codes" in upper.vocabulary.name


def test_a_few_codes_or_one_name_outside_the_list_complete_nothing() -> None:
    # Setup: three words that happen to be state codes; 20 codes and one that is not
    few = ["IN", "OR", "ME", "MA"]
    stray = [*STATES[:20], "PR"]

    # Run, Assert
    assert completion(few) is None
    assert completion(stray) is None
    assert completion(["north", "south", "east", "west"]) is None


def test_the_smallest_list_that_holds_the_names_wins() -> None:
    # Run
    grades = completion(["A", "B", "C", "D", "E"])
    sub = completion([f"{g}{k}" for g in "ABCD" for k in range(1, 6)])

    # Assert
    assert grades is not None and grades.added == ("F", "G")
    assert completion(["A", "B", "C"]) is None
    assert sub is not None and len(sub.added) == 15 and "G5" in sub.added


def state_table(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """``state``: 10 common codes and 15% of the rows spread over the other 41 (about 22 rows each, too few to
    name); ``tier``: the same shape over words in no list; a numeric column."""
    rng = np.random.default_rng(seed)
    common, rare = list(STATES[:10]), list(STATES[10:])
    state = np.where(rng.random(n) < 0.85, rng.choice(common, n), rng.choice(rare, n))
    tier = np.where(rng.random(n) < 0.85, rng.choice([f"t{i}" for i in range(10)], n),
                    rng.choice([f"rare-{i}" for i in range(41)], n))  # fmt: skip
    return pd.DataFrame({"state": state, "tier": tier, "amount": np.round(rng.gamma(2.0, 50.0, n), 1)})


@pytest.fixture(scope="module")
def state_fit() -> tuple[pd.DataFrame, cs.FitOutput]:
    table = state_table()
    return table, cs.fit(table, epsilon=1.0, delta=1e-6, name="states")


def test_unnamed_state_codes_are_sampled_as_states_not_as_a_rare_category(
    state_fit: tuple[pd.DataFrame, cs.FitOutput],
) -> None:
    # Setup
    table, result = state_fit

    # Run
    sample = cs.sample(result.domain, 20_000, seed=0)

    # Assert: the column's states are the whole list; the rare codes' rows come back as those codes, spread over them
    states = set(result.domain.spec.columns["state"].categories or {})
    assert states == set(STATES)
    assert OTHER_STATE not in set(sample["state"])
    rare = sample["state"].isin(STATES[10:])
    assert rare.mean() == pytest.approx(0.15, abs=0.04)
    assert sample.loc[rare, "state"].nunique() >= 30
    for code in STATES[:10]:
        assert (sample["state"] == code).mean() == pytest.approx((table["state"] == code).mean(), abs=0.03)


def test_a_column_in_no_list_keeps_its_rare_category_and_the_completion_is_said(
    state_fit: tuple[pd.DataFrame, cs.FitOutput],
) -> None:
    # Setup
    _, result = state_fit

    # Run
    tiers = set(result.domain.spec.columns["tier"].categories or {})
    lines = [m for m in result.messages if m.startswith("state:")]

    # Assert: the words were never named, so they stay one rare state; the note names the list and the remedy
    assert OTHER_STATE in tiers and sum(t.startswith("rare-") for t in tiers) <= 2
    assert len(lines) == 1
    counts = re.search(r"the (\d+) categories named .* its (\d+) other values", lines[0])
    assert counts is not None and int(counts.group(1)) >= 10 and int(counts.group(1)) + int(counts.group(2)) == 51
    assert "US state codes" in lines[0] and "--bounds" in lines[0]


def test_names_that_explain_every_row_are_not_completed() -> None:
    # Setup: 16 state codes (enough of the list to complete it), each common: no row is unexplained
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"state": rng.choice(STATES[:16], 8000), "amount": rng.gamma(2.0, 50.0, 8000)})

    # Run
    result = cs.fit(table, epsilon=1.0, delta=1e-6, name="five")

    # Assert
    assert set(result.domain.spec.columns["state"].categories or {}) == set(STATES[:16])
    assert not any(m.startswith("state:") for m in result.messages)


def test_states_told_apart_only_by_noise_are_pooled_and_clearly_different_ones_kept() -> None:
    # Setup: 30 states of 40 rows each measured with noise of sd 60, and 30 states from 10 to 300 rows with sd 2
    rng = np.random.default_rng(3)
    alike = np.full(30, 40.0)
    spread = np.linspace(10.0, 300.0, 30)
    noisy = [Measurement(("s",), alike + rng.normal(0, 60, 30), 60.0**2),
             Measurement(("s",), spread + rng.normal(0, 2, 30), 2.0**2)]  # fmt: skip
    every = list(range(30))

    # Run
    pooled_weight = pooling_weight(noisy[:1], "s", every)
    kept_weight = pooling_weight(noisy[1:], "s", every)
    partial = pooling_weight([Measurement(("s",), alike, 1.0, known=np.arange(30) < 10)], "s", every)

    # Assert: noise alone gives (almost) all to the mean; a clear spread is kept; unmeasured states are alike
    assert pooled_weight < 0.5  # 1 - 29 / chi2(29): under 0.5 unless the noise is twice its size
    assert kept_weight > 0.99
    assert partial == 0.0


def test_pooling_moves_only_the_listed_states_and_keeps_every_row_a_distribution() -> None:
    # Setup: s (4 states, the last 3 listed) with a parent p (2 states) and a child c (3 states) of (p, s)
    rng = np.random.default_rng(4)
    cards = {"p": 2, "s": 4, "c": 3}
    parents = {"p": [], "s": ["p"], "c": ["p", "s"]}
    cpts = {n: rng.dirichlet(np.ones(cards[n]), size=int(np.prod([cards[q] for q in ps]))) for n, ps in parents.items()}

    # Run
    out = pooled(parents, cpts, cards, "s", [1, 2, 3], 0.0)
    half = pooled(parents, cpts, cards, "s", [1, 2, 3], 0.5)

    # Assert: rows are distributions; the listed states share their mass equally, the other state is untouched
    for table in (*out.values(), *half.values()):
        assert np.allclose(table.sum(axis=1), 1.0) and (table >= 0).all()
    assert np.allclose(out["s"][:, 0], cpts["s"][:, 0])
    assert np.allclose(out["s"][:, 1:], cpts["s"][:, 1:].mean(axis=1, keepdims=True))
    child = out["c"].reshape(2, 4, 3)
    assert np.allclose(child[:, 0], cpts["c"].reshape(2, 4, 3)[:, 0])
    assert np.allclose(child[:, 1:], cpts["c"].reshape(2, 4, 3)[:, 1:].mean(axis=1, keepdims=True))
    assert np.allclose(half["s"][:, 1:], 0.5 * cpts["s"][:, 1:] + 0.5 * out["s"][:, 1:])
    assert np.array_equal(out["p"], cpts["p"])
