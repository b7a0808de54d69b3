"""Durable relational runs: a run of a spec with tables checkpoints in its folder, and an interrupted one resumes to
exactly what an uninterrupted run writes: the same rows in every table's Parquet and CSV file and in the SQLite
database, its constraints intact, no orphan foreign key and no duplicate."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.graphs.durable import CHECKPOINTS, SETTINGS
from causalsynth.tools.errors import UsageError
from causalsynth.tools.sinks.resumable import ResumableRunSink, ResumableTableSink
from causalsynth.tools.spec import load_domain
from tests.conftest import run_cli

TIMINGS = {"seconds", "records_per_second", "accepted_per_second"}
RUN = {"llm": "template", "batch_size": 30, "seed": 3}
N = 300  # 10 batches


def same_tables(a: Path, b: Path) -> None:
    """Two relational run folders hold the same rows in every file and table of the database, and the same report.

    Each database also passes SQLite's own integrity and foreign-key checks, and every key is unique.
    """
    schema = load_domain("hospital").schema
    assert schema is not None
    for table in schema.order:
        left, right = pd.read_parquet(a / f"{table}.parquet"), pd.read_parquet(b / f"{table}.parquet")
        pd.testing.assert_frame_equal(left, right)
        assert right[schema.pk(table)].is_unique
        assert (a / f"{table}.csv").read_bytes() == (b / f"{table}.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a / "rejects.parquet"), pd.read_parquet(b / "rejects.parquet"))
    dumps = []
    for folder in (a, b):
        with sqlite3.connect(folder / "database.sqlite") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # no orphan foreign key
            dumps.append({t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in schema.order})
            for table in schema.order:  # the database holds what the files hold
                assert len(dumps[-1][table]) == len(pd.read_parquet(folder / f"{table}.parquet"))
    assert dumps[0] == dumps[1]
    reports = [json.loads((f / "report.json").read_text()) for f in (a, b)]
    assert {k: v for k, v in reports[0].items() if k not in TIMINGS} == {
        k: v for k, v in reports[1].items() if k not in TIMINGS
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    cs.generate("hospital", N, out=out, **RUN)
    return out


class Interrupt:
    """Raises KeyboardInterrupt (Ctrl-C) on the sink's ``at``-th batch write, before or after writing it."""

    def __init__(self, monkeypatch, at: int, after: bool) -> None:
        self.calls = 0
        original = ResumableTableSink.write

        def write(sink, accepted, rejected):
            self.calls += 1
            if self.calls == at and not after:
                raise KeyboardInterrupt
            original(sink, accepted, rejected)
            if self.calls == at and after:
                raise KeyboardInterrupt

        monkeypatch.setattr(ResumableTableSink, "write", write)


def test_a_finished_relational_run_leaves_no_checkpoint_and_equals_an_unwritten_run(reference):
    # Run
    in_memory = cs.generate("hospital", N, **RUN)
    # Assert: the durable folder's tables are those of a run without a folder
    names = {p.name for p in reference.iterdir()}
    assert not names & {CHECKPOINTS, SETTINGS, ".parts"} and "database.sqlite" in names
    for table, frame in in_memory.tables.items():
        pd.testing.assert_frame_equal(frame, pd.read_parquet(reference / f"{table}.parquet"))


@pytest.mark.parametrize("after", [False, True])
def test_ctrl_c_keeps_the_checkpointed_batches_and_resume_completes_the_relational_run(
    reference, tmp_path, monkeypatch, after
):
    # Setup
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=4, after=after)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("hospital", N, out=out, **RUN)
    assert (out / CHECKPOINTS).is_file() and not (out / "report.json").exists()
    assert not (out / "patients.parquet").exists() and not (out / "database.sqlite").exists()
    kept = sorted(p.name for p in (out / ".parts").iterdir())
    assert kept == [f"{i:06d}" for i in range(4 if after else 3)]  # the 4th batch after its write: not checkpointed
    monkeypatch.undo()
    # Run
    result = cs.generate("hospital", N, resume=out, **RUN)
    # Assert
    same_tables(reference, out)
    assert not (out / ".parts").exists() and not (out / CHECKPOINTS).exists()
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "batches_kept": 3, "next_id": 90} in events
    assert result.report["n_requested"] == N


def test_cli_resumes_a_relational_run(reference, tmp_path, monkeypatch, capsys):
    # Setup
    out = tmp_path / "run"
    args = ["run", "hospital", "-n", str(N), "--llm", "template", "--batch-size", "30", "--seed", "3"]
    Interrupt(monkeypatch, at=7, after=False)
    # Run
    code, _, stderr = run_cli(capsys, *args, "--out", str(out))
    monkeypatch.undo()
    resumed, _, _ = run_cli(capsys, *args, "--resume", str(out))
    # Assert
    assert code == 130 and f"--resume {out}" in stderr and resumed == 0
    same_tables(reference, out)


def test_a_relational_resume_with_other_settings_is_refused(tmp_path, monkeypatch):
    # Setup
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=2, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("hospital", N, out=out, **RUN)
    monkeypatch.undo()
    # Run / Assert
    with pytest.raises(UsageError, match=r"batch_size was 30, now 40"):
        cs.generate("hospital", N, resume=out, **{**RUN, "batch_size": 40})


@pytest.mark.parametrize("spec", ["asia", "hospital"])
def test_plugin_metrics_of_a_resumed_run_cover_every_accepted_record(tmp_path, monkeypatch, spec):
    # Setup: the example plugin's metric over the accepted texts
    pytest.importorskip("hospital_plugin", reason="make setup installs examples/plugins")
    from tests.plugins.test_example_plugin import hospital_with
    from tests.plugins.test_tools import asia_with

    block = "plugins:\n  metrics: [drug_mentions]\n"
    path = hospital_with(tmp_path, block) if spec == "hospital" else asia_with(tmp_path, block)
    domain = load_domain(path)
    run = {**RUN, "batch_size": 20}
    expected = cs.generate(domain, 100, **run).report
    out = tmp_path / "run"
    sink = ResumableTableSink if spec == "hospital" else ResumableRunSink
    calls = {"n": 0}
    original = sink.write

    def write(self, accepted, rejected):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, accepted, rejected)

    monkeypatch.setattr(sink, "write", write)
    with pytest.raises(KeyboardInterrupt):
        cs.generate(domain, 100, out=out, **run)
    monkeypatch.undo()
    # Run
    report = cs.generate(domain, 100, resume=out, **run).report
    # Assert: the metrics are those of the uninterrupted run, over all its accepted records
    assert report["metrics"] == expected["metrics"] and report["metrics_records"] == expected["metrics_records"] > 40
