"""``--resume`` retries the records that failed for infrastructure reasons, in an interrupted run and in one that
finished: they end accepted or rejected by the real checker, the failed count drops, the report is computed again
over the whole output, and no record is written twice. The retry is itself durable (a kill during it resumes it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.graphs.durable import CHECKPOINTS, SETTINGS
from causalsynth.tools.errors import UsageError
from causalsynth.tools.sinks.run_folder import FAILED, PARTS
from tests.conftest import run_cli
from tests.durable.test_infrastructure import ASIA, FREE, FlakyServer
from tests.durable.test_resume import Interrupt

RUN = {"batch_size": 25, "seed": 2, **FREE}
N = 150
#: Report entries that count the calls made (the failed calls were made too) or measure time.
CALLS = {"generator_calls", "llm_calls", "llm_calls_per_accepted", "tokens", "tokens_per_accepted", "violations",
         "seconds", "records_per_second", "accepted_per_second"}  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The run with a server that never failed."""
    out = tmp_path_factory.mktemp("reference")
    cs.generate(ASIA, N, llm=FlakyServer(), out=out, **RUN)
    return out


def by_id(folder: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(folder / name)
    assert frame["record_id"].is_unique
    return frame.sort_values("record_id").reset_index(drop=True)


def same_records(reference: Path, out: Path) -> dict:
    """The folder holds the reference's records and rejects (in record id order), no failed record, and a report
    equal to the reference's apart from the calls the failures cost; its report."""
    for name in ("records.parquet", "rejects.parquet"):
        pd.testing.assert_frame_equal(by_id(reference, name), by_id(out, name))
    assert not (out / FAILED).exists()
    reports = [json.loads((f / "report.json").read_text()) for f in (reference, out)]
    assert {k: v for k, v in reports[0].items() if k not in CALLS} == {
        k: v for k, v in reports[1].items() if k not in CALLS
    }
    assert not {p.name for p in out.iterdir()} & {CHECKPOINTS, SETTINGS, PARTS}
    return reports[1]


def test_resume_retries_the_failed_records_of_a_finished_run(reference, tmp_path, capsys):
    # Setup: the server refuses every call for smokers' records; the run finishes with them failed
    out = tmp_path / "run"
    first = cs.generate(ASIA, N, llm=FlakyServer(refuse_for="smoker: yes"), out=out, **RUN).report
    failed = set(pd.read_parquet(out / FAILED)["record_id"])
    assert first["n_failed"] == len(failed) > 0 and (out / CHECKPOINTS).is_file()  # kept for the retry
    # Run: the server is back
    result = cs.generate(ASIA, N, llm=FlakyServer(), resume=out, **RUN)
    # Assert
    report = same_records(reference, out)
    assert "n_failed" not in report and report["n_accepted"] + report["n_rejected"] == N
    assert report["generator_calls"] == first["generator_calls"] + len(failed)  # each failed record once more
    assert set(result.records["record_id"]) | set(result.rejects["record_id"]) >= failed
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "batches_kept": 6, "next_id": N, "retrying_failed": len(failed)} in events
    # a finished run without failures is complete: nothing left to resume
    code, _, stderr = run_cli(capsys, "run", str(ASIA), "-n", str(N), "--resume", str(out))
    assert code == 2 and "the run is complete" in stderr


def test_resume_retries_the_failed_records_of_the_kept_batches_of_an_interrupted_run(reference, tmp_path, monkeypatch):
    # Setup: failures in the first batches, then Ctrl-C
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=4, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate(ASIA, N, llm=FlakyServer(refuse_for="smoker: yes"), out=out, **RUN)
    monkeypatch.undo()
    kept_failed = sorted(p.name for p in (out / PARTS).glob("failed-*"))
    assert kept_failed == [f"failed-00000{i}.parquet" for i in range(4)]  # the 4th batch's: not checkpointed
    # Run
    cs.generate(ASIA, N, llm=FlakyServer(), resume=out, **RUN)
    # Assert
    report = same_records(reference, out)
    assert "n_failed" not in report


def test_records_that_fail_again_stay_failed_until_a_later_resume(reference, tmp_path):
    # Setup
    out = tmp_path / "run"
    cs.generate(ASIA, N, llm=FlakyServer(refuse_for="smoker: yes"), out=out, **RUN)
    smokers = set(pd.read_parquet(out / FAILED)["record_id"])
    # Run: the server still refuses the smokers who have cancer
    second = cs.generate(ASIA, N, llm=FlakyServer(refuse_for="lung cancer: yes"), resume=out, **RUN).report
    still = set(pd.read_parquet(out / FAILED)["record_id"])
    cs.generate(ASIA, N, llm=FlakyServer(), resume=out, **RUN)
    # Assert
    assert 0 < len(still) < len(smokers) and still <= smokers and second["n_failed"] == len(still)
    assert second["n_accepted"] + second["n_rejected"] + second["n_failed"] == N
    same_records(reference, out)


def test_an_interrupted_retry_resumes_the_retry(reference, tmp_path, monkeypatch):
    # Setup: the run finishes with failures; the retry is interrupted while its batch is written
    out = tmp_path / "run"
    cs.generate(ASIA, N, llm=FlakyServer(refuse_for="smoker: yes"), out=out, **RUN)
    Interrupt(monkeypatch, at=1, after=True)
    with pytest.raises(KeyboardInterrupt):
        cs.generate(ASIA, N, llm=FlakyServer(), resume=out, **RUN)
    monkeypatch.undo()
    assert not (out / "report.json").exists()  # the run is open again until the retry is written
    # Run
    cs.generate(ASIA, N, llm=FlakyServer(), resume=out, **RUN)
    # Assert
    same_records(reference, out)
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert sum("retrying_failed" in e for e in events if e.get("event") == "resumed") == 2


def test_resuming_a_finished_run_with_failures_checks_the_settings(tmp_path):
    # Setup
    out = tmp_path / "run"
    cs.generate(ASIA, 30, llm=FlakyServer(refuse_for="smoker: yes"), out=out, **RUN)
    # Run / Assert
    with pytest.raises(UsageError, match="seed was 2, now 3"):
        cs.generate(ASIA, 30, llm=FlakyServer(), resume=out, **{**RUN, "seed": 3})
