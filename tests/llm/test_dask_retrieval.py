"""``--engine dask`` with retrieval and the embedded model: workers read the store the client synced.

Here, not in tests/engine, because it loads the real model and the embedding model in a worker process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import causalsynth as cs
from causalsynth.graphs.dask_engine import local_cluster
from causalsynth.graphs.retrieval import RetrievalOptions
from causalsynth.tools.llm.factory import LLMOptions
from tests.conftest import ROOT, by_id, same_report

#: Long integration runs: `make test-slow` (and CI) runs them, `make test` leaves them out.
pytestmark = pytest.mark.slow


def test_retrieval_with_the_local_model_gives_the_single_process_records(tmp_path: Path) -> None:
    # Setup: asia's corpus synced into a store of this test; the embedded model, one context of one thread
    kwargs: dict[str, Any] = {"llm": "local", "seed": 4, "batch_size": 2, "max_rounds": 1,
                              "retrieval_options": RetrievalOptions(chroma_path=tmp_path / "chroma"),
                              "llm_options": LLMOptions(concurrency=1, threads=1)}  # fmt: skip
    spec = ROOT / "examples" / "asia.yaml"  # with its retrieval block
    local = cs.generate(spec, 4, out=tmp_path / "local", **kwargs)
    # Run: the client syncs the corpus; the worker opens the store to read (once, for both shards)
    with local_cluster(1) as cluster:
        sharded = cs.generate(spec, 4, out=tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address,
                              shards=2, **kwargs)  # fmt: skip
    # Assert: the same passages (``references``) and texts; the retrieval summary covers both shards
    assert by_id(sharded.records).equals(by_id(local.records))
    assert by_id(sharded.rejects).equals(by_id(local.rejects))
    untimed = {"seconds", "ms_per_record"}
    summary = {k: v for k, v in sharded.report["retrieval"].items() if k not in untimed}
    assert summary == {k: v for k, v in local.report["retrieval"].items() if k not in untimed}
    assert summary["records"] >= 4 and all(json.loads(refs) for refs in sharded.records["references"])
    same_report({k: v for k, v in sharded.report.items() if k != "retrieval"}, local.report | {"retrieval": None})
