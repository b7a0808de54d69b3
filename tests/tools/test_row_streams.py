"""A repair's redraw gives each row the values of a stream of its own: the rows drawn with it change nothing."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.errors import DataError
from causalsynth.tools.relational import sampling
from causalsynth.tools.relational.row_streams import RowStreams
from causalsynth.tools.relational.sampling import RelationalSampler, redraw, resamplable_columns
from causalsynth.tools.spec import Domain, load_domain
from tests.conftest import ROOT

N = 80


@pytest.fixture(scope="module")
def hospital() -> Domain:
    return load_domain(ROOT / "examples" / "hospital.yaml")


@pytest.fixture(scope="module")
def drawn(hospital) -> dict[str, pd.DataFrame]:
    return RelationalSampler(hospital.schema, hospital.network, 11).sample(N)


def columns(hospital: Domain) -> list[tuple[str, str]]:
    """Every (table, column) a repair may draw again in the hospital spec: providers, offsets, per-state ranges."""
    return sorted((t, c) for t, cols in resamplable_columns(hospital.schema).items() for c in cols)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), attempt=st.integers(1, 50))
def test_a_rows_redrawn_values_do_not_depend_on_the_rows_redrawn_with_it(hospital, drawn, data, attempt):
    # Setup: a column, and some of its rows (in any order) out of all of them
    table, column = data.draw(st.sampled_from(columns(hospital)))
    keys = drawn[table][hospital.schema.pk(table)].tolist()
    some = data.draw(st.lists(st.sampled_from(keys), min_size=1, unique=True))
    sampler = RelationalSampler(hospital.schema, hospital.network, 11)
    alone, together = copy.deepcopy(drawn), copy.deepcopy(drawn)
    # Run: the rows redrawn alone, and with every other row of the table
    assert redraw(sampler, alone, {(table, column): set(some)}, attempt) == len(some)
    redraw(sampler, together, {(table, column): set(keys)}, attempt)
    # Assert: the chosen rows and their descendants hold the same values either way; every other row kept its own
    for name, rows in descendants(hospital, alone, table, set(some)).items():
        pd.testing.assert_frame_equal(alone[name][rows], together[name][rows], check_dtype=False, obj=name)
        pd.testing.assert_frame_equal(alone[name][~rows], drawn[name][~rows], check_dtype=False, obj=name)


def descendants(hospital: Domain, frames: dict[str, pd.DataFrame], table: str, keys: set[Any]) -> dict[str, Any]:
    """Per table, a mask of the rows ``keys`` of ``table`` and of their descendants."""
    schema = hospital.schema
    out = {t: np.zeros(len(f), dtype=bool) for t, f in frames.items()}
    out[table] = frames[table][schema.pk(table)].isin(keys).to_numpy()
    for name in schema.order:
        parent = schema.parent[name]
        if parent is not None and out[parent].any():
            chosen = set(frames[parent][schema.pk(parent)][out[parent]])
            out[name] |= frames[name][schema.fk[name]].isin(chosen).to_numpy()
    return out


def test_another_attempt_or_seed_draws_other_values(hospital, drawn):
    # Setup
    keys = set(drawn["admissions"]["admission_id"])
    out = []
    # Run
    for seed, attempt in ((11, 1), (11, 2), (12, 1)):
        frames = copy.deepcopy(drawn)
        redraw(RelationalSampler(hospital.schema, hospital.network, seed), frames, {("admissions", "cost"): keys},
               attempt)  # fmt: skip
        out.append(frames["admissions"]["cost"].to_numpy(dtype=float))
    # Assert
    assert (out[0] != out[1]).mean() > 0.99 and (out[0] != out[2]).mean() > 0.99


def test_row_streams_draw_each_row_from_its_own_stream_in_range():
    # Setup
    keys = np.arange(20_000)
    streams = RowStreams(7, keys)
    # Run
    u = streams.random(len(keys))
    ints = streams.integers(3, 9, len(keys))
    tri = streams.triangular(0.0, 2.0, 10.0, len(keys))
    picked = streams.choice(np.array(["a", "b", "c"]), size=len(keys), p=[0.5, 0.0, 0.5])
    # Assert: in range, spread as asked (the bounds of a sample of 20,000 are loose), and a row alone draws the same
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert set(np.unique(ints)) == set(range(3, 9))
    assert tri.min() >= 0 and tri.max() <= 10 and abs(tri.mean() - 4.0) < 0.1
    assert set(picked) == {"a", "c"} and abs((picked == "a").mean() - 0.5) < 0.02
    alone = RowStreams(7, keys[[123, 5]])
    assert alone.random(2).tolist() == u[[123, 5]].tolist()
    assert alone.integers(3, 9, 2).tolist() == ints[[123, 5]].tolist()
    assert RowStreams(7, ["P-1", "P-2"]).random(2).tolist() == RowStreams(7, ["P-2", "P-1"]).random(2).tolist()[::-1]


def test_row_streams_refuse_any_other_number_of_values_than_one_per_row():
    streams = RowStreams(1, [1, 2, 3])
    with pytest.raises(ValueError, match="one value per row"):
        streams.integers(0, 5, 4)
    with pytest.raises(ValueError, match="one value per row"):
        streams.random()


def with_provider(hospital: Domain, name: str) -> Any:
    """The hospital schema, its patients' last names drawn by the provider ``name``."""
    schema = copy.deepcopy(hospital.schema)
    column = schema.tables["patients"].columns["last_name"]
    schema.tables["patients"].columns["last_name"] = column.model_copy(update={"provider": name})
    return schema


def test_a_plugin_provider_redraws_each_row_from_its_own_generator(hospital, drawn, monkeypatch):
    # Setup: patients' last names come from a plugin provider that uses a Generator method RowStreams lacks
    def lognormal_name(rng: np.random.Generator, n: int, col: Any) -> list[str]:
        return [f"N{int(v * 1000)}" for v in rng.lognormal(0, 1, n)]

    monkeypatch.setattr(sampling, "provider", lambda name: (lognormal_name, ("string",), ()))
    schema = with_provider(hospital, "lognormal_name")
    sampler = RelationalSampler(schema, hospital.network, 11)
    keys = set(drawn["patients"]["patient_id"])
    alone, together = copy.deepcopy(drawn), copy.deepcopy(drawn)
    # Run
    redraw(sampler, alone, {("patients", "last_name"): {3, 40}}, 1)
    redraw(sampler, together, {("patients", "last_name"): keys}, 1)
    # Assert
    names = together["patients"].set_index("patient_id")["last_name"]
    assert names.str.startswith("N").all() and names.nunique() > N // 2
    assert alone["patients"].set_index("patient_id")["last_name"][[3, 40]].tolist() == names[[3, 40]].tolist()


def test_a_plugin_provider_that_gives_several_values_for_one_row_is_named(hospital, drawn, monkeypatch):
    monkeypatch.setattr(sampling, "provider", lambda name: (lambda rng, n, col: ["a", "b"], ("string",), ()))
    schema = with_provider(hospital, "pairs")
    frames = copy.deepcopy(drawn)
    with pytest.raises(DataError, match=r"provider pairs failed on patients\.last_name: .*2 values for 1 row"):
        redraw(RelationalSampler(schema, hospital.network, 11), frames, {("patients", "last_name"): {1}}, 1)
