"""What a run's nodes are given, injected at invoke time (``graph.invoke(..., context=RunContext(...))``).

Nothing here is built at import: the realiser (template or a chat model), the sink and the skeleton source are
made by the caller (``graphs.runner`` or a test) and handed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from tools.assess import Ledger
from tools.realisation import Realiser
from tools.retrieval import Retriever
from tools.sampler import Sampler
from tools.sinks import RunSink
from tools.spec import Domain


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
    """The run's skeletons, sampled once (chunk-invariant, so equal to ``causalsynth sample`` with the seed)."""

    def __init__(self, domain: Domain, n: int, seed: int) -> None:
        self.domain = domain
        self.n = n
        self.seed = seed

    @cached_property
    def _columns(self) -> list[tuple[str, tuple[str, ...], Any]]:
        data = Sampler(self.domain.network).sample(self.n, seed=self.seed).data
        net = self.domain.network
        return [(v, net.states(v), data[v].cat.codes.to_numpy()) for v in net.names]

    def codes(self, rows: slice | Sequence[int]) -> dict[str, Any]:
        """Integer codes of the given skeletons, per variable."""
        index = rows if isinstance(rows, slice) else np.asarray(rows, dtype=np.intp)
        return {v: codes[index] for v, _, codes in self._columns}

    def take(self, start: int, stop: int) -> list[dict[str, str]]:
        """Skeletons ``start`` to ``stop`` (exclusive) as variable -> state dicts."""
        cols = [(v, states, codes[start:stop].tolist()) for v, states, codes in self._columns]
        return [{v: states[c[i]] for v, states, c in cols} for i in range(stop - start)]


@dataclass
class RunContext:
    """Dependencies and settings of one run."""

    domain: Domain
    realiser: Realiser
    settings: RunSettings
    skeletons: SkeletonSource
    sink: RunSink | None = None
    retriever: Retriever | None = None  # None: no retrieval (--no-retrieval, or a realiser without a model)
    ledger: Ledger = field(init=False)
    progress: Callable[[int], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.domain.network)

    def emit(self, event: Mapping[str, Any]) -> None:
        """Send one event to the sink's ``run.jsonl`` (if there is a sink)."""
        if self.sink is not None:
            self.sink.event(event)
