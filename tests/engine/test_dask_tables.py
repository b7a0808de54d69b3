"""``--engine dask`` for relational specs: the tables and the database equal the single-process run's."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import causalsynth
from causalsynth.graphs.dask_engine import SHARDS, STAGE
from causalsynth.graphs.dask_tables import TableShardResult, merge_tables, plan_table_shards, table_schemas
from causalsynth.tools.errors import DataError
from causalsynth.tools.sinks.table_folder import REJECT_SCHEMA
from causalsynth.tools.spec import Domain, load_domain_text
from tests.conftest import ROOT, run_cli

UNTIMED = ("seconds", "records_per_second", "engine")

#: Codes from 900 values for 150 people: the first draw repeats some across batches and shards, and repairs
#: draw new ones, so uniqueness is checked across the whole run. Visits are the children that must stay with
#: their person; a rule sends some of them to repair.
CLUB = """
spec_version: 1
name: club
model:
  nodes:
    member: {states: ["yes", "no"], probs: [0.4, 0.6]}
    sport:
      states: [swim, run]
      parents: [member]
      cpt:
        - {when: {member: "yes"}, probs: [0.7, 0.3]}
        - {when: {member: "no"}, probs: [0.2, 0.8]}
tables:
  people:
    primary_key: id
    variables: [member]
    columns:
      id: {type: int}
      code: {type: string, unique: true, provider: code, args: {format: "C#-##"}}
      member: {type: bool, variable: member, map: {"yes": true, "no": false}}
      fee: {type: float, min: 0, provider: number, args: {min: 0, max: 100}}
    rules:
      - "fee >= 20 if member"
  visits:
    primary_key: id
    parent: people
    cardinality: [0, 3]
    variables: [sport]
    columns:
      id: {type: int}
      person: {type: int, references: people.id}
      sport: {type: category, values: [swim, run], variable: sport}
      day: {type: date, provider: date, args: {min: 2024-01-01, max: 2024-01-31}}
      ticket: {type: string, unique: true, provider: code, args: {format: "T###"}}
"""


@pytest.fixture(scope="module")
def club() -> Domain:
    return load_domain_text(textwrap.dedent(CLUB), source="club.yaml")


def database(path: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: pd.read_sql(f'SELECT * FROM "{name}"', conn) for name in names}  # noqa: S608 - table names


def test_relational_shards_are_whole_batches_covering_every_record_once() -> None:
    # Run
    ranges = plan_table_shards(47, 10, 3)
    # Assert: every shard starts on a batch boundary; never more shards than batches
    assert [i for a, b in ranges for i in range(a, b)] == list(range(47))
    assert all(a % 10 == 0 for a, _ in ranges)
    assert len(plan_table_shards(47, 10, 7)) == 5


def test_same_tables_and_database_for_1_2_7_shards_on_1_and_2_workers(
    club: Domain, one_worker: str, two_workers: str, tmp_path: Path
) -> None:
    # Setup: batches of 10, so 7 shards cut the run differently from 2; repairs redraw fees and unique codes
    n, batch = 150, 10
    kwargs: dict[str, Any] = {"seed": 4, "llm": "template", "batch_size": batch, "max_rounds": 2}
    local = causalsynth.generate(club, n, out=tmp_path / "local", **kwargs)
    # Run
    runs = {
        (workers, shards): causalsynth.generate(
            club, n, out=tmp_path / f"d{workers}-{shards}", engine="dask", scheduler=address, shards=shards, **kwargs
        )
        for workers, address in ((1, one_worker), (2, two_workers))
        for shards in (1, 2, 7)
    }
    # Assert: every table, the rejects, the database and the report equal the single-process run's
    assert local.report["values_redrawn"] > 0
    assert local.tables["people"]["code"].is_unique and local.tables["visits"]["ticket"].is_unique
    expected_db = database(tmp_path / "local" / "database.sqlite")
    for (workers, shards), run in runs.items():
        for table in ("people", "visits"):
            assert run.tables[table].equals(local.tables[table]), (workers, shards, table)
        assert run.rejects.equals(local.rejects), (workers, shards)
        db = database(tmp_path / f"d{workers}-{shards}" / "database.sqlite")
        assert db.keys() == expected_db.keys() and all(db[t].equals(expected_db[t]) for t in db), (workers, shards)
        for key in sorted(set(run.report) | set(local.report)):
            if key not in UNTIMED:
                assert run.report[key] == local.report[key], (workers, shards, key)
        assert run.report["engine"]["shards"] == shards
        files = sorted(p.name for p in (tmp_path / f"d{workers}-{shards}" / "visits.parquet").iterdir())
        assert files == [f"shard-{i:05d}.parquet" for i in range(shards)]
    assert {run.report["engine"]["workers"] for (w, s), run in runs.items() if w == 2 and s == 7} == {2}


def test_hospital_through_the_cli_keeps_every_constraint_in_the_database(
    capsys: pytest.CaptureFixture[str], two_workers: str, tmp_path: Path
) -> None:
    # Setup
    spec = str(ROOT / "examples" / "hospital.yaml")
    common = ["run", spec, "-n", "60", "--llm", "template", "--no-retrieval", "--batch-size", "8", "--seed", "2"]
    code, _, _ = run_cli(capsys, *common, "--out", str(tmp_path / "local"))
    assert code == 0
    # Run
    code, out, err = run_cli(capsys, *common, "--out", str(tmp_path / "dask"), "--engine", "dask",
                             "--scheduler", two_workers, "--shards", "3")  # fmt: skip
    # Assert: the same rows; SQLite finds every foreign key satisfied and no lookup row missing
    assert code == 0, err
    local, dask = database(tmp_path / "local" / "database.sqlite"), database(tmp_path / "dask" / "database.sqlite")
    assert all(dask[t].equals(local[t]) for t in ("doctors", "patients", "admissions", "notes"))
    with sqlite3.connect(tmp_path / "dask" / "database.sqlite") as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert pd.read_csv(tmp_path / "dask" / "notes.csv").equals(pd.read_csv(tmp_path / "local" / "notes.csv"))
    assert len(pd.read_parquet(tmp_path / "dask" / "doctors.parquet")) == 60


def test_a_unique_value_two_shards_drew_stops_the_merge_with_one_named_error(club: Domain, tmp_path: Path) -> None:
    # Setup: two finished shards whose repairs drew the same new code (no lookup tables in this spec)
    schema = club.schema
    assert schema is not None
    schemas = table_schemas(schema)
    for index, (pid, code) in enumerate([(1, "C1-23"), (2, "C1-23")]):
        people = {"id": [pid], "code": [code], "member": [True], "fee": [50.0]}
        for name, table in (("people.parquet", pa.Table.from_pydict(people, schema=schemas["people"])),
                            ("visits.parquet", schemas["visits"].empty_table()),
                            ("rejects.parquet", REJECT_SCHEMA.empty_table())):  # fmt: skip
            path = tmp_path / SHARDS / STAGE / name / f"shard-{index:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
    results = [TableShardResult(index=i, first=i, stop=i + 1, totals={}, realiser="template", pid=0, built=False,
                                seconds=0.0) for i in range(2)]  # fmt: skip
    # Run / Assert: the database refuses the second, and the message names the shard, column and what to do
    with pytest.raises(DataError, match=r"merging shard 1 \(records 1\.\.1\).*UNIQUE constraint failed: people\.code"):
        merge_tables(schema, tmp_path, results)
    assert not (tmp_path / "database.sqlite").exists() and not (tmp_path / "people.parquet").exists()
