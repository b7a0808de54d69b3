"""``--engine dask``: sharded runs on real Dask clusters (worker processes on 127.0.0.1) equal the local run."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client

import causalsynth
from causalsynth.agents.context import RunSettings
from causalsynth.graphs.dask_engine import SHARDS, EngineOptions, gate_model, plan_shards, run_sharded
from causalsynth.tools.errors import UsageError
from causalsynth.tools.llm.factory import LLMOptions
from causalsynth.tools.spec import load_domain
from tests.conftest import by_id, run_cli, same_report


def test_shards_cover_every_id_once() -> None:
    # Run
    ranges = plan_shards(10, 7)
    # Assert
    assert [i for a, b in ranges for i in range(a, b)] == list(range(10))
    assert plan_shards(3, 7) == [(0, 1), (1, 2), (2, 3)]


def test_same_records_for_1_2_7_shards_on_1_and_2_workers(one_worker: str, two_workers: str, tmp_path: Path) -> None:
    # Setup: batches of 40 so that shard boundaries cut batches differently from the local run
    kwargs: dict[str, Any] = {"seed": 11, "llm": "template", "batch_size": 40, "max_rounds": 1}
    local = causalsynth.generate("alarm", 300, out=tmp_path / "local", **kwargs)
    # Run
    runs = {
        (workers, shards): causalsynth.generate(
            "alarm",
            300,
            out=tmp_path / f"d{workers}-{shards}",
            engine="dask",
            scheduler=address,
            shards=shards,
            **kwargs,
        )  # fmt: skip
        for workers, address in ((1, one_worker), (2, two_workers))
        for shards in (1, 2, 7)
    }
    # Assert
    for (workers, shards), run in runs.items():
        assert by_id(run.records).equals(by_id(local.records)), (workers, shards)
        assert by_id(run.rejects).equals(by_id(local.rejects)), (workers, shards)
        same_report(run.report, local.report)
        assert run.report["engine"]["shards"] == shards
        files = sorted(p.name for p in (tmp_path / f"d{workers}-{shards}" / "records.parquet").iterdir())
        assert files == [f"shard-{i:05d}.parquet" for i in range(shards)]
    assert {run.report["engine"]["workers"] for (w, s), run in runs.items() if w == 2 and s == 7} == {2}


def test_report_counts_add_up_and_measures_cover_the_whole_output(two_workers: str, tmp_path: Path) -> None:
    # Setup: rejection mode with no extra round on asia rejects some records in some shards
    kwargs: dict[str, Any] = {"seed": 3, "llm": "template", "mode": "rejection", "max_rounds": 0, "batch_size": 25}
    local = causalsynth.generate("asia", 200, out=tmp_path / "local", **kwargs)
    # Run
    run = causalsynth.generate("asia", 200, out=tmp_path / "dask", engine="dask", scheduler=two_workers, shards=5,
                               **kwargs)  # fmt: skip
    # Assert
    report = run.report
    assert report["n_accepted"] + report["n_rejected"] == 200 == len(run.records) + len(run.rejects)
    assert report["ci_fpr_extracted"] == local.report["ci_fpr_extracted"]
    assert report["selection_bias"] == local.report["selection_bias"]
    assert (tmp_path / "dask" / "report.json").is_file() and not (tmp_path / "dask" / SHARDS).exists()


def test_realiser_built_once_per_worker_and_reused(two_workers: str, tmp_path: Path) -> None:
    # Setup: a seed no other test uses, so no worker has this realiser yet
    domain = load_domain("asia")
    settings = RunSettings(n=120, seed=987, llm="template", batch_size=10)
    # Run
    run = run_sharded(domain, "template", LLMOptions(), settings, tmp_path / "out",
                      EngineOptions(engine="dask", scheduler=two_workers, shards=8))  # fmt: skip
    # Assert: one build per worker process that ran shards; every other shard reused it
    pids = {r.pid for r in run.shards}
    assert len(run.shards) == 8
    assert sum(r.built for r in run.shards) == len(pids)


def test_sample_equals_local_sample(two_workers: str) -> None:
    # Setup
    local = causalsynth.sample("alarm", 500, seed=2, do={"HYPOVOLEMIA": "TRUE"}, with_noise=True)
    # Run
    sharded = causalsynth.sample("alarm", 500, seed=2, do={"HYPOVOLEMIA": "TRUE"}, with_noise=True, engine="dask",
                                 scheduler=two_workers, shards=7)  # fmt: skip
    # Assert
    pd.testing.assert_frame_equal(sharded, local)


def test_sample_of_a_fitted_spec_decodes_the_same_values(two_workers: str) -> None:
    # Setup: a fitted spec (typed columns decoded within their bins)
    real = pd.DataFrame({"age": [20 + (i * 7) % 60 for i in range(300)], "sick": ["yes", "no", "no"] * 100})
    fitted = causalsynth.fit(real, dag={"age": [], "sick": ["age"]}, dp=False, bins=4)
    # Run
    local = causalsynth.sample(fitted.domain, 400, seed=5)
    sharded = causalsynth.sample(fitted.domain, 400, seed=5, engine="dask", scheduler=two_workers, shards=3)
    # Assert
    pd.testing.assert_frame_equal(sharded, local)
    assert str(local["age"].dtype) == "Int64"


def test_api_model_calls_share_one_limit_across_workers(two_workers: str) -> None:
    # Setup / Run: four tasks on two worker processes, each calling a slow chat model gated to 1 lease
    with Client(two_workers) as client:
        intervals = client.gather([client.submit(_gated_call, "test-gate-limit", i, pure=False) for i in range(4)])
    # Assert: the calls never overlapped, although they ran in two processes
    assert len({pid for pid, _, _ in intervals}) == 2
    spans = sorted((start, end) for _, start, end in intervals)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def _gated_call(name: str, i: int) -> tuple[int, float, float]:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class Slow(GenericFakeChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            start = time.time()
            time.sleep(0.3)
            self.metadata = {"start": start, "end": time.time()}
            return super()._generate(*args, **kwargs)

    model = Slow(messages=iter([AIMessage(content=f"reply {i}")]))
    gate_model(model, name, 1)
    model.invoke("hello")
    assert model.metadata is not None
    return os.getpid(), model.metadata["start"], model.metadata["end"]


def test_killed_worker_loses_and_duplicates_nothing(two_workers: str, tmp_path: Path) -> None:
    # Setup: the local run, and a sharded run on a 2-worker LocalCluster in a thread
    kwargs: dict[str, Any] = {"seed": 8, "llm": "template", "batch_size": 25}
    n = 3000
    local = causalsynth.generate("alarm", n, out=tmp_path / "local", **kwargs)
    out = tmp_path / "dask"
    result: dict[str, Any] = {}

    def sharded() -> None:
        try:
            result["run"] = causalsynth.generate("alarm", n, out=out, engine="dask", scheduler=two_workers, shards=4,
                                                 **kwargs)  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=sharded)
    thread.start()
    killed = None
    try:
        # Run: kill the worker process of the first shard seen mid-way (it has written a batch, not finished)
        deadline = time.monotonic() + 120
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            for folder in (out / SHARDS).glob("*-*-*") if (out / SHARDS).is_dir() else []:
                if any((folder / ".parts").glob("records-*.parquet")):
                    killed = int(folder.name.split("-")[1])
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.01)
    finally:
        thread.join(timeout=300)
    # Assert
    assert killed is not None, "no shard was caught mid-way"
    assert "error" not in result, result.get("error")
    run = result["run"]
    assert run.report["engine"]["rerun"] >= 1
    assert by_id(run.records).equals(by_id(local.records))
    assert run.records["record_id"].is_unique and len(run.records) + len(run.rejects) == n
    same_report(run.report, local.report)


# -- malformed input: one readable line, exit code 2 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "asia", "-n", "5", "--llm", "template", "--engine", "spark"], "--engine must be 'local' or 'dask'"),
        (["run", "asia", "-n", "5", "--llm", "template", "--engine", "dask", "--scheduler", "nowhere"],
         "--scheduler 'nowhere': expected an address"),
        (["run", "asia", "-n", "5", "--llm", "template", "--engine", "dask", "--shards", "0"],
         "--shards must be between 1"),
        (["run", "asia", "-n", "5", "--llm", "template", "--shards", "3"], "--scheduler and --shards apply to"),
        (["sample", "asia", "-n", "5", "--engine", "dask", "--evidence", "smoke=yes"], "sampled by rejection"),
        (["sample", "asia", "-n", "5", "--engine", "dask", "--noise-model", "gumbel"], "needs --noise-model"),
        (["sample", "asia", "-n", "5", "--engine", "dask", "--workers", "0"], "--workers must be between 1"),
    ],
)  # fmt: skip
def test_bad_engine_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    # Setup
    args = [a.replace("hospital", str(Path(__file__).parents[2] / "examples" / "hospital.yaml")) for a in args]
    out = ["--out", str(tmp_path / ("o" if args[0] == "run" else "o.parquet"))]
    # Run
    code, _, err = run_cli(capsys, *args, *out)
    # Assert
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_cli_run_on_its_own_local_cluster_writes_the_run_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Run: no --scheduler: the engine starts (and stops) a LocalCluster on 127.0.0.1
    code, out, _ = run_cli(capsys, "run", "asia", "-n", "30", "--llm", "template", "--out", str(tmp_path / "o"),
                           "--engine", "dask", "--workers", "1")  # fmt: skip
    # Assert
    assert code == 0 and "n_accepted" in out
    assert (tmp_path / "o" / "report.html").is_file()
    assert (
        len(pd.read_parquet(tmp_path / "o" / "records.parquet"))
        + len(pd.read_parquet(tmp_path / "o" / "rejects.parquet"))
        == 30
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spec": "asia", "llm": "template", "config": {"tags": ["mine"]}}, "config="),
        ({"spec": "asia", "llm": "template", "resume": "somewhere"}, "no interrupted --engine dask run there"),
        ({"spec": "asia", "llm": "template", "trace": "phoenix", "out": "o"}, "--trace phoenix"),
    ],
)
def test_api_refuses_what_is_not_sharded_before_starting_a_cluster(
    kwargs: dict[str, Any], message: str, tmp_path: Path
) -> None:
    # Setup
    if "out" in kwargs:
        kwargs["out"] = tmp_path / kwargs["out"]
    # Run / Assert
    with pytest.raises(UsageError, match=message):
        causalsynth.generate(n=5, engine="dask", **kwargs)
