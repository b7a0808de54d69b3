"""Dask clusters shared by the engine tests (started once: each takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from causalsynth.graphs.dask_engine import local_cluster


@pytest.fixture(scope="package")
def two_workers() -> Iterator[str]:
    """A 2-process LocalCluster on loopback; closed even when a test fails."""
    with local_cluster(2) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="package")
def one_worker() -> Iterator[str]:
    """A 1-process LocalCluster on loopback."""
    with local_cluster(1) as cluster:
        yield cluster.scheduler_address
