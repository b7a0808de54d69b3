"""A private category domain whose names all belong to a public list (US state codes) is completed from that list."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
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
    assert "state codes" in upper.vocabulary


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
