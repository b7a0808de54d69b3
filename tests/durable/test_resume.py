"""Durable runs: a run checkpoints in its folder; an interrupted run resumes to exactly what an uninterrupted one
writes; Ctrl-C stops cleanly and says how to continue; a resume with other settings is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.graphs.durable import CHECKPOINTS, SETTINGS
from causalsynth.tools.errors import UsageError
from causalsynth.tools.sinks.run_folder import RunSink
from tests.conftest import run_cli

TIMINGS = {"seconds", "records_per_second", "accepted_per_second"}
RUN = {"llm": "template", "batch_size": 50, "seed": 5, "max_rounds": 1}


def same_output(a: Path, b: Path) -> None:
    """Two run folders hold the same records, rejects and report (timings aside)."""
    for name in ("records.parquet", "rejects.parquet"):
        left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
        assert right["record_id"].is_unique and left["record_id"].is_unique
        pd.testing.assert_frame_equal(left, right)
    reports = [json.loads((f / "report.json").read_text()) for f in (a, b)]
    assert {k: v for k, v in reports[0].items() if k not in TIMINGS} == {
        k: v for k, v in reports[1].items() if k not in TIMINGS
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    cs.generate("asia", 400, out=out, **RUN)
    return out


class Interrupt:
    """Raises KeyboardInterrupt (a user's Ctrl-C) on the sink's ``at``-th batch write, before or after writing it."""

    def __init__(self, monkeypatch, at: int, after: bool) -> None:
        self.calls = 0
        original = RunSink.write

        def write(sink, accepted, rejected):
            self.calls += 1
            if self.calls == at and not after:
                raise KeyboardInterrupt
            original(sink, accepted, rejected)
            if self.calls == at and after:
                raise KeyboardInterrupt

        monkeypatch.setattr(RunSink, "write", write)


def test_a_finished_run_leaves_no_checkpoint(reference):
    # Assert
    names = {p.name for p in reference.iterdir()}
    assert names == {"records.parquet", "rejects.parquet", "report.json", "run.jsonl"}


@pytest.mark.parametrize("after", [False, True])
def test_ctrl_c_keeps_the_checkpointed_batches_and_resume_completes_the_run(reference, tmp_path, monkeypatch, after):
    # Setup
    out = tmp_path / "run"
    interrupt = Interrupt(monkeypatch, at=3, after=after)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 400, out=out, **RUN)
    parts = sorted(p.name for p in (out / ".parts").iterdir())
    assert (out / CHECKPOINTS).is_file() and not (out / "report.json").exists()
    assert not (out / "records.parquet").exists()  # nothing that looks complete
    assert len(parts) == (3 if after else 2)  # the batch interrupted after its write is on disk, not yet checkpointed
    monkeypatch.undo()
    # Run
    result = cs.generate("asia", 400, resume=out, **RUN)
    # Assert
    same_output(reference, out)
    assert interrupt.calls == 3 and len(result.records) + len(result.rejects) == 400
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "batches_kept": 2, "next_id": 100} in events


def test_cli_ctrl_c_says_how_to_resume_and_resume_finishes(reference, tmp_path, monkeypatch, capsys):
    # Setup
    out = tmp_path / "run"
    args = ["run", "asia", "-n", "400", "--llm", "template", "--batch-size", "50", "--seed", "5", "--max-rounds", "1"]
    Interrupt(monkeypatch, at=4, after=False)
    # Run
    code, _, stderr = run_cli(capsys, *args, "--out", str(out))
    monkeypatch.undo()
    resumed, stdout, _ = run_cli(capsys, *args, "--resume", str(out))
    # Assert
    assert code == 130 and "interrupted" in stderr and f"--resume {out}" in stderr and "Traceback" not in stderr
    assert resumed == 0 and "n_accepted" in stdout
    same_output(reference, out)


def test_resume_with_other_settings_is_refused(tmp_path, monkeypatch):
    # Setup
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=2, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 400, out=out, **RUN)
    monkeypatch.undo()
    # Run / Assert
    with pytest.raises(UsageError, match=r"seed was 5, now 6"):
        cs.generate("asia", 400, resume=out, **{**RUN, "seed": 6})
    with pytest.raises(UsageError, match=r"n was 400, now 500"):
        cs.generate("asia", 500, resume=out, **RUN)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such run folder"),
        ("empty", f"no interrupted run here (no {SETTINGS} and {CHECKPOINTS})"),
        ("complete", "the run is complete"),
    ],
)
def test_resume_errors_are_one_line(reference, tmp_path, capsys, setup, message):
    # Setup
    folder = {"missing": tmp_path / "nowhere", "empty": tmp_path, "complete": reference}[setup]
    # Run
    code, _, stderr = run_cli(capsys, "run", "asia", "-n", "400", "--llm", "template", "--resume", str(folder))
    # Assert
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


def test_resume_and_another_out_folder_is_refused(tmp_path, capsys):
    # Run
    code, _, stderr = run_cli(capsys, "run", "asia", "-n", "5", "--out", str(tmp_path / "a"), "--resume",
                              str(tmp_path / "b"))  # fmt: skip
    # Assert
    assert code == 2 and "names another" in stderr


def test_a_resumed_run_reports_the_retrieval_of_every_batch(tmp_path, monkeypatch):
    # Setup: a model run with retrieval (a scripted model), interrupted after its first batch
    from tests.durable.test_infrastructure import ASIA, OPTIONS, FlakyServer

    run = {"llm_options": OPTIONS, "realize": "free", "batch_size": 20, "seed": 2}
    expected = cs.generate(ASIA, 60, llm=FlakyServer(), **run).report["retrieval"]
    Interrupt(monkeypatch, at=2, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate(ASIA, 60, llm=FlakyServer(), out=tmp_path, **run)
    monkeypatch.undo()
    # Run
    summary = cs.generate(ASIA, 60, llm=FlakyServer(), resume=tmp_path, **run).report["retrieval"]
    # Assert: records retrieved for and texts checked for copies over the whole run, not the resumed part only
    timing = {"seconds", "ms_per_record"}
    assert summary["records"] == 60 and summary["texts_checked"] == expected["texts_checked"] > 20
    assert {k: v for k, v in summary.items() if k not in timing} == {
        k: v for k, v in expected.items() if k not in timing
    }
