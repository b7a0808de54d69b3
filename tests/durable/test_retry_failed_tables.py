"""Infrastructure failures in relational runs are not rejections: a record (a patient with its admissions and notes)
whose note's model call failed goes whole to ``failed.parquet``, none of its rows to the tables or the database (no
orphan foreign key), is left out of realizability and selection drift and counted as ``n_failed``; ``--resume``
retries it, and the folder then equals a run whose server never failed. A server that fails every call stops the
run early, and ``--resume`` finishes it. The server is a real HTTP one on loopback (``openai_stub``), reached through
``langchain-openai``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.agents.context import RunSettings
from causalsynth.graphs.durable import CHECKPOINTS, SETTINGS
from causalsynth.graphs.runner import run
from causalsynth.tools.llm.chat_realiser import ChatRealiser, ModelUnavailableError
from causalsynth.tools.llm.factory import LLMOptions
from causalsynth.tools.relational.sampling import ENTITY, RelationalSampler, resamplable_columns
from causalsynth.tools.sinks.run_folder import FAILED, PARTS
from causalsynth.tools.spec import load_domain
from tests.conftest import UNTIMED
from tests.durable.openai_stub import CORRECTION, FlakyOpenAI, serve
from tests.durable.test_infrastructure import FlakyServer
from tests.durable.test_tables import Interrupt

N = 60  # 3 batches of 20 patients, about 150 notes
TABLES = ("doctors", "patients", "admissions", "notes")
#: Report entries that count work done (the failed calls, and the retried records' redraws, were done too).
WORK = {"llm_calls", "tokens", "texts_realised", "violations_total", "values_redrawn", *UNTIMED}
#: The first attempt writes every "Lifelong non-smoker" as a smoker: a correction round follows.
BACKDOOR = {"Lifelong non-smoker.": "Active smoker."}
DIABETIC = "diabetes mellitus: yes"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FlakyOpenAI, str]]:
    script = FlakyOpenAI(first=lambda text: text.replace(*next(iter(BACKDOOR.items()))))
    with serve(script) as base:
        yield script, base


@pytest.fixture
def script(server) -> Iterator[FlakyOpenAI]:
    """The server, healthy at the start of each test and again after it."""
    stub, _ = server
    stub.refuse_for, stub.down, stub.down_after, stub.calls = (), False, None, 0
    yield stub
    stub.refuse_for, stub.down, stub.down_after = (), False, None


def options(server) -> dict[str, Any]:
    _, base = server
    opts = LLMOptions(base_url=base, retries=0, concurrency=4, realize="free", timeout=30)
    return {"llm": "openai:stub", "llm_options": opts, "realize": "free", "retrieval": False, "batch_size": 20,
            "seed": 3}  # fmt: skip


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory) -> Path:
    """The run whose server never failed."""
    out = tmp_path_factory.mktemp("reference")
    cs.generate("hospital", N, out=out, **options(server))
    return out


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every table of a run folder in key order (a retried record's rows come in a later part)."""
    schema = load_domain("hospital").schema
    assert schema is not None
    out = {}
    for table in TABLES:
        frame = pd.read_parquet(folder / f"{table}.parquet")
        assert frame[schema.pk(table)].is_unique, table
        out[table] = frame.sort_values(schema.pk(table)).reset_index(drop=True)
    return out


def database(folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The database's rows per table, after SQLite's own integrity and foreign-key checks."""
    with sqlite3.connect(folder / "database.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # no orphan foreign key
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in TABLES}  # noqa: S608


def report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def redrawn(folder: Path, records: set[int]) -> int:
    """How many values of ``records`` in the folder a repair drew again: those that differ from the run's draw."""
    domain = load_domain("hospital")
    schema = domain.schema
    assert schema is not None
    drawn = RelationalSampler(schema, domain.network, options(("", ""))["seed"]).sample(N)
    got = tables(folder)
    count = 0
    for table, columns in resamplable_columns(schema).items():
        if table not in schema.record_tables:
            continue
        first = drawn[table].set_index(schema.pk(table))
        first = first[first[ENTITY].isin(records)]
        final = got[table].set_index(schema.pk(table)).loc[first.index]
        for col in columns:
            values = [[None if pd.isna(v) else str(v) for v in f[col]] for f in (first, final)]
            count += sum(a != b for a, b in zip(*values, strict=True))
    return count


def same_as_reference(reference: Path, out: Path) -> None:
    """The folder holds the reference's rows (files and database, every column), rejects and report (less the work
    counters).

    A retried record's values drawn again by a repair equal the reference's too: each row redraws from a stream of
    its own (``tools.relational.sampling.resample``), so the retry, a batch of its own, draws what the record drew
    in its first batch.
    """
    expected, got = tables(reference), tables(out)
    for table in TABLES:
        pd.testing.assert_frame_equal(expected[table], got[table], obj=table)
    assert database(reference) == database(out)
    rejects = [pd.read_parquet(f / "rejects.parquet") for f in (reference, out)]
    pd.testing.assert_frame_equal(*rejects)
    assert {k: v for k, v in report(reference).items() if k not in WORK} == {
        k: v for k, v in report(out).items() if k not in WORK
    }
    assert not (out / FAILED).exists()
    assert not {p.name for p in out.iterdir()} & {CHECKPOINTS, SETTINGS, PARTS}


def test_failed_notes_set_their_records_aside_and_resume_retries_them(server, script, reference, tmp_path):
    # Setup: the server answers 503 to every note of a diabetic patient, and to every correction
    out = tmp_path / "run"
    script.refuse_for = (DIABETIC, CORRECTION)
    # Run
    first = cs.generate("hospital", N, out=out, **options(server))
    # Assert: the failed records are their own outcome, whole, with the reason
    failed = pd.read_parquet(out / FAILED)
    down = set(failed["entity"])
    patients = pd.read_parquet(reference / "patients.parquet")
    diabetic = set(patients.loc[patients["diabetic"], "patient_id"] - 1)
    assert diabetic and diabetic < down  # the diabetic patients' records, and those whose correction failed
    corrected = down - diabetic
    assert set(patients.loc[patients["patient_id"].isin([e + 1 for e in corrected]), "smoking_status"]) == {"never"}
    assert set(failed["kind"]) == {"infrastructure"} and all("503" in m for m in failed["message"])
    assert set(failed["table"]) == {"notes"} and failed["row"].notna().all()
    rep = first.report
    assert rep["n_failed"] == len(down) and rep["n_rejected"] == 0 and rep["n_accepted"] == N - len(down)
    assert rep["realizability"] == 1.0  # over the records judged, not the network
    assert rep["selection_drift_max"] == 0.0  # the failed (all diabetic) records are out of the reference too
    assert not any("null" in k for k in rep["violations_before"])  # an empty failed text is no violation
    got = tables(out)
    assert not set(got["patients"]["patient_id"] - 1) & down  # none of their rows
    admissions = got["admissions"]
    assert set(admissions["patient_id"]) <= set(got["patients"]["patient_id"])
    assert set(got["notes"]["admission_id"]) <= set(admissions["admission_id"])
    assert not set(pd.read_parquet(out / "rejects.parquet")["entity"]) & down
    database(out)  # no orphan foreign key
    assert (out / CHECKPOINTS).is_file() and (out / PARTS).is_dir()  # kept for the retry
    # Run: the server is back
    script.refuse_for = ()
    result = cs.generate("hospital", N, resume=out, **options(server))
    # Assert
    same_as_reference(reference, out)
    assert redrawn(out, down) > 0  # the retried records' values a repair drew again are among those compared
    assert "n_failed" not in result.report and result.failed.empty
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "batches_kept": 3, "next_id": N, "retrying_failed": len(down)} in events


def test_records_that_fail_again_stay_failed_until_a_later_resume(server, script, reference, tmp_path):
    # Setup
    out = tmp_path / "run"
    script.refuse_for = (DIABETIC,)
    cs.generate("hospital", N, out=out, **options(server))
    diabetic = set(pd.read_parquet(out / FAILED)["entity"])
    # Run: the retry fails again for the diabetic patients with pneumonia
    script.refuse_for = ((DIABETIC, "admission diagnosis: pneumonia"),)
    second = cs.generate("hospital", N, resume=out, **options(server)).report
    still = set(pd.read_parquet(out / FAILED)["entity"])
    script.refuse_for = ()
    cs.generate("hospital", N, resume=out, **options(server))
    # Assert
    assert still < diabetic and second["n_failed"] == len(still)
    assert second["n_accepted"] + second["n_rejected"] + second["n_failed"] == N
    same_as_reference(reference, out)


def test_a_dead_server_stops_a_relational_run_early_and_resume_finishes_it(server, script, reference, tmp_path):
    # Setup: the server dies during the second batch
    out = tmp_path / "run"
    script.down_after = 80
    # Run
    with pytest.raises(ModelUnavailableError, match="in a row.*--resume"):
        cs.generate("hospital", N, out=out, **options(server))
    attempted = script.calls
    kept = sorted(p.name for p in (out / PARTS).iterdir())
    script.down_after = None
    cs.generate("hospital", N, resume=out, **options(server))
    # Assert: stopped after 32 failed calls in a row, not after every remaining note; the first batch kept
    assert attempted <= 80 + 32 + 4 and kept == ["000000"]
    same_as_reference(reference, out)  # the interrupted batch ran again whole: every row as the reference's


def test_a_run_without_checkpoints_writes_failed_records_to_its_folder(tmp_path):
    # Setup: a model that refuses the connection for every note of a diabetic patient; no durable sink
    domain = load_domain("hospital")
    realiser = ChatRealiser(FlakyServer(refuse_for=DIABETIC), domain.lexicon, concurrency=2, retries=0)
    # Run
    rep = run(domain, realiser, RunSettings(n=30, batch_size=10, seed=3), tmp_path)
    # Assert
    failed = pd.read_parquet(tmp_path / FAILED)
    patients = pd.read_parquet(tmp_path / "patients.parquet")
    assert rep["n_failed"] == failed["entity"].nunique() > 0
    assert rep["n_accepted"] + rep["n_rejected"] + rep["n_failed"] == 30 and not patients["diabetic"].any()
    assert all("Connection refused" in m for m in failed["message"])
    database(tmp_path)


def test_an_interrupted_retry_resumes_the_retry(server, script, reference, tmp_path, monkeypatch):
    # Setup: the run finishes with failures; the retry is interrupted (Ctrl-C) right after its batch is written
    out = tmp_path / "run"
    script.refuse_for = (DIABETIC,)
    cs.generate("hospital", N, out=out, **options(server))
    diabetic = set(pd.read_parquet(out / FAILED)["entity"])
    script.refuse_for = ()
    Interrupt(monkeypatch, at=1, after=True)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("hospital", N, resume=out, **options(server))
    monkeypatch.undo()
    assert not (out / "report.json").exists()  # the run is open again until the retry is written
    # Run
    cs.generate("hospital", N, resume=out, **options(server))
    # Assert
    same_as_reference(reference, out)
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert [e.get("retrying_failed") for e in events if e.get("event") == "resumed"] == [len(diabetic)] * 2


def test_a_sharded_run_writes_the_same_failed_rows_as_one_process(server, script, tmp_path):
    # Setup: the diabetic patients' notes fail, in one process and on 3 shards of a 2-worker Dask cluster
    from causalsynth.graphs.dask_engine import local_cluster

    script.refuse_for = (DIABETIC,)
    local = cs.generate("hospital", N, out=tmp_path / "local", **options(server))
    # Run
    with local_cluster(2) as cluster:
        sharded = cs.generate("hospital", N, out=tmp_path / "dask", engine="dask",
                              scheduler=cluster.scheduler_address, shards=3, **options(server))  # fmt: skip
    # Assert: the same failed rows (a dataset of one file per shard that had failures), counts and tables
    keys = ["entity", "table", "row"]
    failed = [pd.read_parquet(tmp_path / f / FAILED).sort_values(keys, ignore_index=True) for f in ("local", "dask")]
    assert len(failed[0]) > 0
    pd.testing.assert_frame_equal(*failed)
    assert sharded.report["n_failed"] == local.report["n_failed"] > 0
    for table, frame in tables(tmp_path / "local").items():
        pd.testing.assert_frame_equal(frame, tables(tmp_path / "dask")[table], obj=table)
    database(tmp_path / "dask")
