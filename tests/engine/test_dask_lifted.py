"""What ``--engine dask`` runs beyond the plain run: the privacy guard, resumed runs, traces, plugin metrics."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.graphs.dask_engine import SHARDS
from causalsynth.graphs.trace_cli import journey, read_spans
from causalsynth.tools.errors import UsageError
from tests.conftest import ROOT, by_id, run_cli, same_report


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A spec fitted (no DP) on spread-out real rows, and the rows it was fitted on and a holdout."""
    folder = tmp_path_factory.mktemp("guard")
    rng = np.random.default_rng(4)
    n = 1_600
    a = rng.uniform(0, 100, n)
    cols = {"a": np.round(a, 1), "b": np.round(a * 0.5 + rng.normal(0, 15, n), 1)}
    for name in ("c", "d", "e", "f"):
        cols[name] = np.round(rng.uniform(0, 50, n), 1)
    cols["g"] = rng.choice(["p", "q", "r", "s", "t"], n)
    cols["h"] = np.where(cols["a"] > 50, rng.choice(["x", "y"], n, p=[0.8, 0.2]), rng.choice(["x", "y"], n))
    real = pd.DataFrame(cols)
    paths = {"train": folder / "train.csv", "hold": folder / "hold.csv", "spec": folder / "spec.yaml"}
    real.iloc[:1_200].to_csv(paths["train"], index=False)
    real.iloc[1_200:].to_csv(paths["hold"], index=False)
    cs.fit(paths["train"], out=paths["spec"], dp=False, bins=8, name="guarded")
    return paths


def test_privacy_guard_resamples_the_same_records_as_the_single_process_run(
    fitted: dict[str, Path], two_workers: str, tmp_path: Path
) -> None:
    # Setup
    kwargs: dict[str, Any] = {"llm": "template", "seed": 1, "batch_size": 50, "privacy_reference": fitted["train"],
                              "privacy_holdout": fitted["hold"]}  # fmt: skip
    local = cs.generate(fitted["spec"], 600, out=tmp_path / "local", **kwargs)
    # Run: the guard's threshold is computed once here and shipped to every shard
    sharded = cs.generate(fitted["spec"], 600, out=tmp_path / "dask", engine="dask", scheduler=two_workers, shards=3,
                          **kwargs)  # fmt: skip
    # Assert: it found records to resample, and every shard resampled them as the single process did
    assert local.report["privacy_guard"]["resampled"] > 0
    assert by_id(sharded.records).equals(by_id(local.records))
    assert by_id(sharded.rejects).equals(by_id(local.rejects))
    same_report(sharded.report, local.report)


def test_a_killed_client_loses_only_unfinished_shards_and_resume_runs_the_rest(
    two_workers: str, tmp_path: Path
) -> None:
    # Setup: the local run, and a CLI client of the 2-worker cluster, SIGKILLed once some shards have finished
    n, common = 2000, ["--llm", "template", "--batch-size", "25", "--seed", "8"]
    kwargs: dict[str, Any] = {"llm": "template", "batch_size": 25, "seed": 8}
    local = cs.generate("alarm", n, out=tmp_path / "local", **kwargs)
    out = tmp_path / "dask"
    client = subprocess.Popen(
        [str(Path(sys.executable).parent / "causalsynth"), "run", "alarm", "-n", str(n), *common, "--out", str(out),
         "--engine", "dask", "--scheduler", two_workers, "--shards", "6"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while client.poll() is None and time.monotonic() < deadline and not list((out / SHARDS).glob("done-*")):
        time.sleep(0.01)
    client.send_signal(signal.SIGKILL)
    client.wait()
    finished = {p.name for p in (out / SHARDS).glob("done-*")}
    assert finished and not (out / "report.json").exists(), "the client was not caught mid-run"
    # Run
    resumed = cs.generate("alarm", n, resume=out, engine="dask", scheduler=two_workers, **kwargs)
    # Assert: the finished shards were kept (not run again), and the output is the single-process run's
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    resume_at = next(i for i, e in enumerate(events) if e.get("resumed"))
    kept = set(events[resume_at]["shards_kept"])
    assert {f"done-{i:05d}" for i in kept} >= finished and resumed.report["engine"]["resumed_shards"] == len(kept)
    rerun = {e["shard"] for e in events[resume_at:] if e.get("event") == "shard"}
    assert not kept & rerun and kept | rerun == set(range(6))
    assert by_id(resumed.records).equals(by_id(local.records))
    assert by_id(resumed.rejects).equals(by_id(local.rejects))
    same_report(resumed.report, local.report)
    assert not (out / SHARDS).exists()


def test_a_relational_run_stopped_after_a_shard_resumes_to_the_single_process_tables(
    two_workers: str, tmp_path: Path
) -> None:
    # Setup: hospital in batches of 6; the client stops (an exception in its progress callback) after one shard
    kwargs: dict[str, Any] = {"llm": "template", "batch_size": 6, "seed": 5, "retrieval": False}
    local = cs.generate("hospital", 48, out=tmp_path / "local", **kwargs)
    out = tmp_path / "dask"

    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cs.generate("hospital", 48, out=out, engine="dask", scheduler=two_workers, shards=4, progress=stop, **kwargs)
    assert list((out / SHARDS).glob("done-*")) and not (out / "database.sqlite").exists()
    # Run
    resumed = cs.generate("hospital", 48, resume=out, engine="dask", scheduler=two_workers, **kwargs)
    # Assert
    assert resumed.report["engine"]["resumed_shards"] >= 1
    for table in ("doctors", "patients", "admissions", "notes"):
        assert resumed.tables[table].equals(local.tables[table]), table
    assert resumed.rejects.equals(local.rejects)
    with sqlite3.connect(out / "database.sqlite") as db, sqlite3.connect(tmp_path / "local" / "database.sqlite") as ref:
        for table in ("patients", "admissions", "notes"):
            query = f'SELECT * FROM "{table}"'  # noqa: S608 - fixed table names
            assert db.execute(query).fetchall() == ref.execute(query).fetchall(), table


@pytest.mark.parametrize(
    ("change", "message"),
    [({"seed": 9}, "the interrupted run had settings="), ({"shards": 3}, "not --shards 3")],
)
def test_resume_refuses_other_settings_or_a_folder_with_no_interrupted_run(
    two_workers: str, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    # Setup: an interrupted sharded run (stopped after its first shard)
    kwargs: dict[str, Any] = {"llm": "template", "batch_size": 10, "seed": 5}
    out = tmp_path / "dask"

    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 100, out=out, engine="dask", scheduler=two_workers, shards=4, progress=stop, **kwargs)
    # Run / Assert
    with pytest.raises(UsageError, match=message):
        cs.generate("asia", 100, resume=out, engine="dask", scheduler=two_workers, **(kwargs | change))
    with pytest.raises(UsageError, match="no interrupted --engine dask run there"):
        cs.generate("asia", 100, resume=tmp_path / "elsewhere", engine="dask", scheduler=two_workers, **kwargs)


def test_plugin_metrics_are_computed_once_over_every_shards_rows(two_workers: str, tmp_path: Path) -> None:
    # Setup: asia whose template notes name a formulary drug for some smokers; the example plugin's metric
    pytest.importorskip("hospital_plugin", reason="make setup installs examples/plugins")
    text = (ROOT / "examples" / "asia.yaml").read_text()
    text = text.replace('"The patient smokes."', '"The patient smokes and uses a salbutamol inhaler."')
    text = text.replace("  bnlearn: asia\n", "  bnlearn: asia\nplugins: {metrics: [drug_mentions]}\n", 1)
    spec = tmp_path / "asia_metric.yaml"
    spec.write_text(text.replace("../retrieval_corpus/asia", str(ROOT / "retrieval_corpus" / "asia")))
    kwargs: dict[str, Any] = {"llm": "template", "seed": 2, "batch_size": 40, "retrieval": False}
    local = cs.generate(spec, 300, **kwargs)
    # Run
    sharded = cs.generate(spec, 300, engine="dask", scheduler=two_workers, shards=7, **kwargs)
    # Assert: one value over the whole output (a share between 0 and 1 that no shard alone decides)
    share = local.report["metrics"]["drug_mentions.share"]
    assert 0.05 < share < 0.5
    assert sharded.report["metrics"] == pytest.approx(local.report["metrics"])
    assert sharded.report["metrics_records"] == local.report["metrics_records"] == local.report["n_accepted"]


def test_plugin_metrics_of_a_relational_run_cover_every_shard(two_workers: str, tmp_path: Path) -> None:
    # Setup
    pytest.importorskip("hospital_plugin", reason="make setup installs examples/plugins")
    text = (ROOT / "examples" / "hospital.yaml").read_text()
    text = text.replace("name: hospital\n", "name: hospital\nplugins: {metrics: [drug_mentions]}\n", 1)
    spec = tmp_path / "hospital.yaml"
    spec.write_text(text.replace("../retrieval_corpus/", str(ROOT / "retrieval_corpus") + "/"))
    shutil.copy(ROOT / "examples" / "hospital.rules.lock.yaml", tmp_path)  # its compiled natural-language rules
    kwargs: dict[str, Any] = {"llm": "template", "seed": 2, "batch_size": 8, "retrieval": False}
    local = cs.generate(spec, 40, **kwargs)
    # Run
    sharded = cs.generate(spec, 40, engine="dask", scheduler=two_workers, shards=3, **kwargs)
    # Assert: every accepted note of every shard counted once
    assert sharded.report["metrics"] == local.report["metrics"]
    assert sharded.report["metrics_records"] == local.report["metrics_records"] == len(local.tables["notes"])


def test_trace_jsonl_holds_every_shards_spans_and_trace_show_finds_a_records_journey(
    capsys: pytest.CaptureFixture[str], two_workers: str, tmp_path: Path
) -> None:
    # Setup
    kwargs: dict[str, Any] = {"llm": "template", "seed": 3, "batch_size": 20, "trace": "jsonl"}
    cs.generate("asia", 100, out=tmp_path / "local", **kwargs)
    # Run
    cs.generate("asia", 100, out=tmp_path / "dask", engine="dask", scheduler=two_workers, shards=3, **kwargs)
    code, out, err = run_cli(capsys, "trace", "show", str(tmp_path / "dask"), "--record", "77")
    # Assert: one root span per shard; every record's journey (attempts, routes, violations) as in the local run
    spans = read_spans(tmp_path / "dask")
    roots = [s for s in spans if not s.get("parent_id")]
    assert sorted((s.get("metadata") or {}).get("shard") for s in roots) == [0, 1, 2]
    local_spans = read_spans(tmp_path / "local")
    for record in (0, 33, 34, 77, 99):
        _, here = journey(spans, record)
        _, there = journey(local_spans, record)
        assert [(a.route, a.found) for a in here] == [(a.route, a.found) for a in there], record
    assert code == 0, err
    assert "record 77" in out and ("-> accepted" in out or "-> rejected" in out)
