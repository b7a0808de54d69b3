"""Relational schemas: malformed ones report every problem at once; sampling keeps keys, cardinalities and causes."""

from __future__ import annotations

import re
import sqlite3
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.errors import SpecError
from causalsynth.tools.relational.checks import check_tables
from causalsynth.tools.relational.sampling import ENTITY, RelationalSampler, resamplable_columns, resample, var_column
from causalsynth.tools.sinks.sqlite import SqliteSink
from causalsynth.tools.spec import Domain, load_domain, load_domain_text
from tests.conftest import ROOT

MODEL = """
model:
  nodes:
    smoker: {states: ["yes", "no"], probs: [0.3, 0.7]}
    dx:
      states: [copd, other]
      parents: [smoker]
      cpt:
        - {when: {smoker: "yes"}, probs: [0.6, 0.4]}
        - {when: {smoker: "no"}, probs: [0.1, 0.9]}
"""

GOOD_TABLES = """
tables:
  people:
    primary_key: id
    columns:
      id: {type: int}
      smoker: {type: bool, variable: smoker, map: {"yes": true, "no": false}}
      score: {type: float, min: 0, max: 10, provider: number, args: {min: 0, max: 10}}
    rules:
      - "score >= 5 if smoker"
  visits:
    primary_key: id
    parent: people
    cardinality: {variable: smoker, map: {"yes": [2, 3], "no": 1}}
    variables: [dx]
    columns:
      id: {type: int}
      person: {type: int, references: people.id}
      dx: {type: category, values: [copd, other], variable: dx}
      day: {type: date, provider: date, args: {min: 2024-01-01, max: 2024-01-31}}
"""


@pytest.fixture(scope="module")
def hospital() -> Domain:
    return load_domain(ROOT / "examples" / "hospital.yaml")


def load(text: str) -> Domain:
    return load_domain_text(textwrap.dedent(MODEL) + textwrap.dedent(text), source="s.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def test_a_good_schema_loads_and_places_variables_in_tables():
    domain = load(GOOD_TABLES)
    schema = domain.schema
    assert schema is not None
    assert schema.order == ["people", "visits"]
    assert schema.home == {"smoker": "people", "dx": "visits"}
    assert schema.fk == {"visits": "person"}
    assert [r.text for r in schema.rules] == ["score >= 5 if smoker"]


def test_malformed_schema_reports_every_problem_at_once_with_lines():
    # Setup: unknown FK table, unknown FK column, a table without a primary key, a column type that cannot hold
    # the SCM's states, a cycle between tables, and a cause placed below its effect
    text = """
    tables:
      people:
        columns:
          id: {type: int}
          dx_copy: {type: category, values: [copd], variable: dx}
      visits:
        primary_key: id
        parent: people
        cardinality: 1
        variables: [smoker]
        columns:
          id: {type: int}
          person: {type: int, references: people.nope}
          packs: {type: int, variable: smoker, map: {"yes": "often", "no": 0}}
          ward: {type: int, references: wards.id}
      a:
        primary_key: id
        parent: b
        cardinality: 1
        columns:
          id: {type: int}
          b_id: {type: int, references: b.id}
      b:
        primary_key: id
        parent: a
        cardinality: 1
        columns:
          id: {type: int}
          a_id: {type: int, references: a.id}
    """
    # Run
    found = problems(text)
    joined = "\n".join(found)
    # Assert
    assert "people has no primary key" in joined
    assert "foreign key to unknown column 'people.nope'" in joined
    assert "foreign key to unknown table 'wards'" in joined
    assert "cyclic table dependencies" in joined
    assert "smoker=yes: 'often' is not a int value" in joined
    assert "states of dx missing from the column's values: other" in joined
    assert "SCM edge smoker -> dx goes from visits to people" in joined
    assert all(re.match(r"s\.yaml:\d+ tables", p) for p in found), found


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('map: {"yes": true, "no": false}', 'map: {"yes": true}'), "map of smoker: missing state(s) no"),
        (
            ("type: category, values: [copd, other]", "type: category, values: [copd]"),
            "states of dx missing from the column's values: other",
        ),
        (("provider: number", "provider: lottery"), "unknown provider 'lottery'"),
        (("score >= 5 if smoker", "scor >= 5"), "unknown column 'scor' in people (did you mean 'score'?)"),
        (("parent: people", "parent: persons"), "unknown parent table 'persons'"),
        (
            ("references: people.id", "references: visits.id"),
            "may reference its parent table (people) or a lookup table",
        ),
        (
            ('cardinality: {variable: smoker, map: {"yes": [2, 3], "no": 1}}', "cardinality: [3, 1]"),
            "low is above high",
        ),
        (
            ("day: {type: date, provider: date", "day: {type: int, provider: date"),
            "provider date fills date or datetime",
        ),
        (  # found by the fuzzer: a distribution whose range is not a pair
            ('map: {"yes": [2, 3], "no": 1}', 'map: {"yes": {range: 0, mode: 0}, "no": 1}'),
            "a distribution is {range: [low, high], mode: M}",
        ),
    ],
)
def test_each_schema_mistake_is_named(change, message):
    old, new = change
    assert old in GOOD_TABLES
    found = "\n".join(problems(GOOD_TABLES.replace(old, new)))
    assert message in found, found


def test_uncompiled_natural_language_rule_is_an_error_naming_the_command():
    found = "\n".join(problems(GOOD_TABLES.replace('- "score >= 5 if smoker"', "- {nl: smokers score at least five}")))
    assert "not compiled yet" in found and "causalsynth compile-rules" in found


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_children_reference_only_existing_parents_and_keys_are_unique(seed, n):
    domain = load(GOOD_TABLES)
    frames = RelationalSampler(domain.schema, domain.network, seed).sample(n)
    people, visits = frames["people"], frames["visits"]
    assert len(people) == n and people["id"].is_unique and visits["id"].is_unique
    assert visits["person"].isin(people["id"]).all()
    # cardinality by the parent's state: smokers 2-3 visits, non-smokers exactly 1
    counts = visits.groupby("person").size().reindex(people["id"], fill_value=0).to_numpy()
    smoker = people["smoker"].to_numpy(dtype=bool)
    assert ((counts[smoker] >= 2) & (counts[smoker] <= 3)).all()
    assert (counts[~smoker] == 1).all()
    # a child row inherits its parent's state
    parent_state = people.set_index("id")[var_column("smoker")]
    assert (visits[var_column("smoker")].to_numpy() == parent_state.loc[visits["person"]].to_numpy()).all()


def test_a_parent_level_cause_drives_the_child_level_effect():
    domain = load(GOOD_TABLES)
    visits = RelationalSampler(domain.schema, domain.network, 7).sample(20_000)["visits"]
    # P(dx = copd | smoker) per visit follows the CPT: 0.6 for smokers, 0.1 for non-smokers
    share = visits.groupby(var_column("smoker"))["dx"].apply(lambda s: (s == "copd").mean())
    assert abs(share["yes"] - 0.6) < 0.02 and abs(share["no"] - 0.1) < 0.02


def test_hospital_diagnosis_depends_on_the_patients_smoking(hospital):
    frames = RelationalSampler(hospital.schema, hospital.network, 3).sample(20_000)
    adm = frames["admissions"]
    adults = adm[adm[var_column("age_group")] == "adult"]
    copd = adults.groupby(var_column("smoking"))["diagnosis"].apply(lambda s: (s == "copd").mean())
    assert abs(copd["current"] - 0.30) < 0.03 and abs(copd["never"] - 0.03) < 0.02
    patients = frames["patients"]
    ages = patients.groupby(var_column("age_group"))["age"].agg(["min", "max"])
    assert ages.loc["child", "max"] <= 17 and ages.loc["elderly", "min"] >= 65


def test_the_validator_names_table_row_column_and_rule(hospital):
    # Setup: a clean batch, then three planted faults
    frames = RelationalSampler(hospital.schema, hospital.network, 0).sample(30)
    frames["notes"]["text"] = "x"
    adm = frames["admissions"]
    adm.loc[4, "discharged_on"] = "2020-01-01"  # before its admission
    pat = frames["patients"]
    pat.loc[2, "mrn"] = pat.loc[1, "mrn"]  # duplicate of a unique column
    adm.loc[6, "patient_id"] = 10_000  # orphan
    pat.loc[0, ["age", "smoking_status"]] = [12, "current"]  # breaks a rule compiled from natural language
    # Run
    found = check_tables(hospital.schema, frames, resamplable=resamplable_columns(hospital.schema))
    # Assert
    by_kind = {(v["kind"], v["table"], v["row"], v["column"], v["rule"]) for v in found}
    assert (
        "rule",
        "admissions",
        int(adm.loc[4, "admission_id"]),
        "discharged_on",
        "discharged_on >= admitted_on",
    ) in by_kind
    assert ("unique", "patients", int(pat.loc[2, "patient_id"]), "mrn", None) in by_kind
    assert ("foreign_key", "admissions", int(adm.loc[6, "admission_id"]), "patient_id", None) in by_kind
    nl = [v for v in found if v["rule"] == "smoking_status == 'never' if age < 18"]
    assert nl and all("[from 'patients under 18 cannot have a smoking history']" in v["message"] for v in nl)
    assert int(pat.loc[0, "patient_id"]) in {v["row"] for v in nl}
    unique = next(v for v in found if v["kind"] == "unique")
    assert unique["fix"] == "resample" and unique["targets"] == ["mrn"] and unique["value"] == pat.loc[1, "mrn"]


def test_a_repair_draws_the_column_again_and_its_dependents(hospital):
    sampler = RelationalSampler(hospital.schema, hospital.network, 0)
    frames = sampler.sample(200)
    adm = frames["admissions"]
    rows = np.arange(len(adm))
    before = adm[["admitted_on", "discharged_on"]].copy()
    notes_before = frames["notes"]["written_on"].copy()
    # Run: redraw every admission date; discharge dates and note dates follow
    changed = resample(sampler, frames, "admissions", "admitted_on", rows, attempt=1)
    # Assert
    assert ("admissions", "discharged_on") in changed and ("notes", "written_on") in changed
    assert (adm["admitted_on"] != before["admitted_on"]).mean() > 0.9
    stay = pd.to_datetime(adm["discharged_on"]) - pd.to_datetime(adm["admitted_on"])
    assert (stay.dt.days >= 1).all()
    assert (frames["notes"]["written_on"] != notes_before).mean() > 0.5
    joined = frames["notes"].merge(adm, on="admission_id")
    assert (joined["written_on"] >= joined["admitted_on"]).all()


def test_sqlite_enforces_keys_foreign_keys_and_types(hospital, tmp_path):
    sink = SqliteSink(tmp_path / "db.sqlite", hospital.schema)
    frames = RelationalSampler(hospital.schema, hospital.network, 0).sample(5)
    frames["notes"]["text"] = "a note"
    cols = {t: {c: f[c].tolist() for c in hospital.schema.tables[t].columns} for t, f in frames.items()}
    sink.insert(cols)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == len(frames["notes"])
    conn.close()
    orphan = {"notes": {c: v[:1] for c, v in cols["notes"].items()} | {"note_id": [999], "admission_id": [12345]}}
    with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
        sink.insert(orphan)
    duplicate = {"patients": {c: v[:1] for c, v in cols["patients"].items()}}
    with pytest.raises(Exception, match="UNIQUE constraint failed"):
        sink.insert(duplicate)
    wrong_type = {"patients": {c: v[:1] for c, v in cols["patients"].items()} | {"patient_id": [77], "age": ["old"]}}
    with pytest.raises(Exception, match="cannot store TEXT value in INTEGER column"):
        sink.insert(wrong_type)
    sink.close()


def test_rows_do_not_depend_on_the_hidden_entity_order(hospital):
    frames = RelationalSampler(hospital.schema, hospital.network, 5).sample(50)
    for frame in frames.values():
        assert frame[ENTITY].is_monotonic_increasing  # batches slice records by this column


def test_datetime_columns_offsets_and_ranges_are_drawn_and_checked():
    text = GOOD_TABLES.replace(
        "      day: {type: date, provider: date, args: {min: 2024-01-01, max: 2024-01-31}}",
        "      seen_at: {type: datetime, min: 2024-01-01, provider: date, args: {min: 2024-01-01, max: 2024-01-02}}\n"
        "      left_at: {type: datetime, offset: {from: seen_at, by: [0.5, 1.5]}}\n"
        '    rules: ["left_at > seen_at"]',
    )
    domain = load(text)
    frames = RelationalSampler(domain.schema, domain.network, 1).sample(40)
    visits = frames["visits"]
    seen, left = pd.to_datetime(visits["seen_at"]), pd.to_datetime(visits["left_at"])
    hours = (left - seen).dt.total_seconds() / 3600
    assert hours.between(12, 36).all() and (seen >= "2024-01-01").all()
    frames["people"]["score"] = 9.0  # the people rule is not what this test is about
    assert check_tables(domain.schema, frames) == []
    visits.loc[0, "left_at"] = "yesterday"
    found = check_tables(domain.schema, frames)
    assert [(v["kind"], v["column"]) for v in found] == [("type", "left_at")]


def test_a_tampered_lock_file_is_refused(tmp_path):
    spec = tmp_path / "hospital.yaml"
    spec.write_text((ROOT / "examples" / "hospital.yaml").read_text())
    lock = (ROOT / "examples" / "hospital.rules.lock.yaml").read_text()
    (tmp_path / "hospital.rules.lock.yaml").write_text(lock.replace("nl: a note is written", "nl: a memo is written"))
    with pytest.raises(SpecError, match="its key does not match its sentence"):
        load_domain(spec)


def test_derived_columns_follow_their_sources_and_repairs(hospital):
    sampler = RelationalSampler(hospital.schema, hospital.network, 2)
    frames = sampler.sample(100)
    pat, adm = frames["patients"], frames["admissions"]
    sums = adm.groupby("patient_id")["cost"].sum()
    assert np.allclose(pat["total_cost"].astype(float), pat["patient_id"].map(sums))
    assert (pat["n_admissions"] == pat["patient_id"].map(adm.groupby("patient_id").size())).all()
    stay = (pd.to_datetime(adm["discharged_on"]) - pd.to_datetime(adm["admitted_on"])).dt.days
    assert (adm["length_of_stay"] == stay).all()
    # Run: redraw every cost, then recompute
    resample(sampler, frames, "admissions", "cost", np.arange(len(adm)), attempt=1)
    from causalsynth.tools.relational.derive import derive_columns

    derive_columns(hospital.schema, frames)
    # Assert: totals follow, and the validator sees no broken total
    sums = frames["admissions"].astype({"cost": float}).groupby("patient_id")["cost"].sum()
    assert np.allclose(
        frames["patients"]["total_cost"].astype(float), frames["patients"]["patient_id"].map(sums).astype(float)
    )
    frames["notes"]["text"] = "x"
    assert not [v for v in check_tables(hospital.schema, frames) if v["rule"] == "total_cost == sum(admissions.cost)"]


@pytest.mark.parametrize(
    ("score2", "score3", "message"),
    [
        ("smoker", "score2 * 2", "score2 is float but 'smoker' gives a bool"),
        ("count(visits) + nope", "score2 * 2", "unknown column 'nope' in people"),
        ("score3 + 1", "score2 * 2", "derived columns depend on each other in a cycle"),
    ],
)
def test_derived_column_errors(score2, score3, message):
    line = "      score: {type: float, min: 0, max: 10, provider: number, args: {min: 0, max: 10}}"
    text = GOOD_TABLES.replace(
        line,
        f'{line}\n      score2: {{type: float, derive: "{score2}"}}\n      score3: {{type: float, derive: "{score3}"}}',
    )
    found = "\n".join(problems(text))
    assert message in found, found


LOOKUP = """
  clinics:
    primary_key: id
    rows: 5
    columns:
      id: {type: int}
      city: {type: category, values: [north, south], unique: UNIQUE_CITY, provider: choice}
"""


def test_rows_reference_existing_lookup_rows(hospital):
    frames = RelationalSampler(hospital.schema, hospital.network, 4).sample(300)
    doctors = frames["doctors"]
    assert len(doctors) == 60 and doctors["doctor_id"].is_unique
    assert frames["admissions"]["attending_id"].isin(doctors["doctor_id"]).all()
    assert frames["notes"]["author_id"].isin(doctors["doctor_id"]).all()
    assert frames["admissions"]["attending_id"].nunique() > 30  # drawn across the whole table
    assert hospital.schema.root == "patients" and hospital.schema.lookups == ["doctors"]


def test_a_lookup_table_is_referenced_and_written_once(tmp_path):
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run as run_tables
    from causalsynth.tools.text.template import TemplateRealiser

    text = GOOD_TABLES.replace("UNIQUE_CITY", "false") + LOOKUP.replace("UNIQUE_CITY", "false")
    text = text.replace(
        "      person: {type: int, references: people.id}",
        "      person: {type: int, references: people.id}\n      clinic: {type: int, references: clinics.id}",
    )
    domain = load(text)
    run_tables(domain, TemplateRealiser(domain.lexicon), RunSettings(n=20, batch_size=6), tmp_path)
    conn = sqlite3.connect(tmp_path / "database.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM clinics").fetchone()[0] == 5
    orphans = "SELECT COUNT(*) FROM visits v LEFT JOIN clinics c ON c.id = v.clinic WHERE c.id IS NULL"
    assert conn.execute(orphans).fetchone()[0] == 0
    conn.close()


def test_a_lookup_table_that_cannot_meet_its_constraints_fails_clearly(tmp_path):
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run as run_tables
    from causalsynth.tools.errors import DataError
    from causalsynth.tools.text.template import TemplateRealiser

    domain = load(GOOD_TABLES + LOOKUP.replace("UNIQUE_CITY", "true"))  # 5 rows, 2 possible unique values
    with pytest.raises(DataError, match="lookup table rows break their constraints: clinics row id="):
        run_tables(domain, TemplateRealiser(domain.lexicon), RunSettings(n=3), tmp_path)
    assert not (tmp_path / "database.sqlite").exists() and not (tmp_path / "report.json").exists()


def test_a_lookup_table_may_not_have_a_parent_or_variables():
    text = GOOD_TABLES + LOOKUP.replace("UNIQUE_CITY", "false").replace(
        "    rows: 5\n", "    rows: 5\n    parent: people\n    cardinality: 1\n"
    )
    assert "clinics is a lookup table ('rows'): it has no parent and no SCM variables" in "\n".join(problems(text))


def test_one_repair_round_fixes_a_broken_rule_by_redrawing_its_column(hospital):
    from causalsynth.tools.relational.repair import repair_rows

    # Setup: every ICU stay priced at 100, breaking "cost >= 5000 if ward == 'icu'"
    sampler = RelationalSampler(hospital.schema, hospital.network, 9)
    frames = sampler.sample(400)
    frames["notes"]["text"] = "x"
    adm = frames["admissions"]
    icu = adm["ward"] == "icu"
    adm.loc[icu, "cost"] = 100.0
    others = adm.loc[~icu, "cost"].astype(float).copy()
    from causalsynth.tools.relational.derive import derive_columns

    derive_columns(hospital.schema, frames)
    rule = "cost >= 5000 if ward == 'icu'"
    found = check_tables(hospital.schema, frames, resamplable=resamplable_columns(hospital.schema))
    broken = [v for v in found if v["rule"] == rule]
    assert len(broken) == icu.sum() > 10 and all(v["targets"] == ["cost"] for v in broken)
    # Run
    repair_rows(sampler, frames, broken, attempt=1)
    # Assert: the rule holds for every row, only ICU rows changed, and patients' totals follow the new costs
    after = check_tables(hospital.schema, frames, resamplable=resamplable_columns(hospital.schema))
    assert not [v for v in after if v["rule"] in (rule, "total_cost == sum(admissions.cost)")]
    assert frames["admissions"].loc[~icu, "cost"].astype(float).equals(others)
    assert (frames["admissions"].loc[icu, "cost"].astype(float) >= 5000).all()


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    yield path


ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["people.id", "visits.nope", "2024-13-40", "[1, 2]", "score >= 5", "smoker", "int", "date"]),
    st.lists(st.one_of(st.integers(-3, 30), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.sampled_from(["range", "mode", "yes", "no", "map", "x"]), st.integers(-2, 9), max_size=3),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fuzzed_table_specs_load_or_fail_with_spec_errors_only(data):
    import yaml

    spec = yaml.safe_load(textwrap.dedent(MODEL) + textwrap.dedent(GOOD_TABLES))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _leaves(spec["tables"]) if p]
        path = data.draw(st.sampled_from(paths))
        node = spec["tables"]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = data.draw(ODD)
    text = yaml.safe_dump(spec, sort_keys=False)
    try:
        load_domain_text(text, source="fuzz.yaml")
    except SpecError as exc:
        assert exc.problems and all(str(p).startswith("fuzz.yaml") for p in exc.problems), exc.problems
