"""What a run's nodes are given, injected at invoke time (``graph.invoke(..., context=RunContext(...))``).

Nothing here is built at import: the realiser (template or a chat model), the sink and the skeleton source are
made by the caller (``causalsynth.graphs.runner`` or a test) and handed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.quality.guard import PrivacyGuard
from causalsynth.tools.quality.run_quality import Ledger
from causalsynth.tools.retrieval.retriever import Retriever
from causalsynth.tools.sinks.run_folder import RunSink
from causalsynth.tools.spec import Domain
from causalsynth.tools.text.realisation import Realiser


@dataclass(frozen=True)
class RunSettings:
    """A run's parameters."""

    n: int
    mode: Literal["iterative", "rejection"] = "iterative"
    max_rounds: int = 3
    batch_size: int = 1000
    seed: int = 0
    alpha: float = 0.05
    llm: str = "template"
    realize: str = "template"


class SkeletonSource:
    """The run's skeletons, sampled once (chunk-invariant, so equal to ``causalsynth sample`` with the seed).

    ``first``: the source holds records ``first .. first + n`` of the seed's sequence (one shard of a sharded run);
    record ids stay those of the whole run, so a shard's records are the single-process run's.
    """

    def __init__(self, domain: Domain, n: int, seed: int, first: int = 0) -> None:
        self.domain = domain
        self.n = n
        self.seed = seed
        self.first = first

    @cached_property
    def _columns(self) -> list[tuple[str, tuple[str, ...], Any]]:
        data = Sampler(self.domain.network).sample(self.n, seed=self.seed, start=self.first).data
        net = self.domain.network
        return [(v, net.states(v), data[v].cat.codes.to_numpy()) for v in net.names]

    def codes(self, rows: slice | Sequence[int]) -> dict[str, Any]:
        """Integer codes of the given skeletons (by record id), per variable."""
        if isinstance(rows, slice):
            index: slice | Any = slice(rows.start - self.first, rows.stop - self.first) if self.first else rows
        else:
            index = np.asarray(rows, dtype=np.intp) - self.first
        return {v: codes[index] for v, _, codes in self._columns}

    def take(self, start: int, stop: int) -> list[dict[str, str]]:
        """Skeletons of record ids ``start`` to ``stop`` (exclusive) as variable -> state dicts."""
        start, stop = start - self.first, stop - self.first
        names = [v for v, _, _ in self._columns]
        values = [np.asarray(states, dtype=object)[codes[start:stop]].tolist() for _, states, codes in self._columns]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


class Sink(Protocol):
    """What every run sink does: log events, and finish the output (complete, or visibly aborted)."""

    def event(self, event: Mapping[str, Any]) -> None:
        """Append one event to ``run.jsonl``."""

    def close(self) -> None:
        """Finish the output: every file complete under its final name."""

    def abort(self, reason: str) -> None:
        """Leave no file that looks complete; say why."""

    def write(self, accepted: Sequence[Any], rejected: Sequence[Any]) -> None:
        """Append a settled batch's accepted and rejected records."""

    def finish(self, report: Mapping[str, Any]) -> None:
        """Publish the files and write the report last."""


@dataclass(kw_only=True)
class FrameContext:
    """What every run graph's nodes are given: the spec, the realiser, the settings and the services."""

    domain: Domain
    realiser: Realiser
    settings: RunSettings
    sink: Sink | None = None
    retriever: Retriever | None = None  # None: no retrieval (--no-retrieval, or a realiser without a model)
    progress: Callable[[int], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    def emit(self, event: Mapping[str, Any]) -> None:
        """Send one event to the sink's ``run.jsonl`` (if there is a sink)."""
        if self.sink is not None:
            self.sink.event(event)

    def flush(self, accepted: Sequence[Any], rejected: Sequence[Any], done: int) -> None:
        """Hand a settled batch to the sink (if any) and advance the progress bar by ``done`` records."""
        if self.sink is not None:
            self.sink.write(accepted, rejected)
        if self.progress is not None:
            self.progress(done)

    def finish(self, report: Mapping[str, Any]) -> None:
        """Finish the output with the run's report (if there is a sink)."""
        if self.sink is not None:
            self.sink.finish(report)


@dataclass(kw_only=True)
class RunContext(FrameContext):
    """Dependencies and settings of a run of single records."""

    skeletons: SkeletonSource
    sink: RunSink | None = None
    ledger: Ledger = field(init=False)
    #: Index of this shard in a sharded run (``graphs.dask_engine``): its last batch ends with the shard's
    #: counters instead of a report; the engine computes the run's report over every shard's ledger.
    shard: int | None = None
    #: ``run --privacy-reference``: accepted records too close to a training row are resampled (``agents.assessor``).
    guard: PrivacyGuard | None = None
    #: The guard runs on a DP-fitted spec (the user accepted it): the report says the guarantee no longer holds.
    dp_void: bool = False

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.domain.network)
