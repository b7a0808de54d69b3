"""What ``--engine dask`` runs beyond the plain run: the privacy guard, resumed runs, traces, plugin metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs

UNTIMED = ("seconds", "records_per_second", "accepted_per_second", "engine")


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("record_id").reset_index(drop=True)


def same_report(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in sorted(set(a) | set(b)):
        if key not in UNTIMED:
            assert a.get(key) == b.get(key), key


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
