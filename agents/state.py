"""Graph state: JSON-like values only, so a checkpointer can serialise any step.

``RunFrame`` is what every run graph shares (batches, counters, the report); ``RunState`` adds the single-record
run's batch, ``agents.table_state.TableRunState`` the relational one's. ``RunInput``/``RunOutput`` are the graphs'
input and output schemas. A run moves through batches. ``records`` holds the batch's records still being realised
(after ``sample``:
all of them; after ``verify_causal``: those sent back for another attempt); ``accepted`` and ``rejected`` collect
the batch's outcomes until ``write`` flushes them to the sinks; ``totals`` accumulates run-wide counters.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict

from causalsynth.tools.retrieval.store import Passage
from causalsynth.tools.text.realisation import Violation


class Attempt(TypedDict):
    """One failed attempt of a record: which attempt, its text, and what was wrong with it."""

    attempt: int
    text: str
    violations: list[Violation]


class Record(TypedDict):
    """One requested record on its way through the graph."""

    id: int
    skeleton: dict[str, str]
    text: str
    attempts: int  # generator calls made for this record so far
    llm_calls: int
    tokens: int
    tokens_estimated: bool
    violations: list[Violation]  # of the current attempt
    history: list[Attempt]  # every failed attempt, oldest first
    facts: NotRequired[dict[str, str | None]]  # what the extractor read from the current text
    references: NotRequired[list[Passage]]  # retrieved once, before the first attempt (kept for corrections)
    resamples: NotRequired[int]  # fresh skeletons drawn because the last was too close to a training row


def add_counts(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Reducer: add counters key by key."""
    out = dict(left)
    for key, value in right.items():
        out[key] = out.get(key, 0) + value
    return out


class RunInput(TypedDict):
    """What a run graph is invoked with (both topologies): how many records, from which id."""

    n_requested: int
    next_id: int
    totals: dict[str, float]
    report: dict[str, Any] | None


class RunOutput(TypedDict, total=False):
    """What a run graph returns: the report, and the run-wide counters it was computed from."""

    report: dict[str, Any] | None
    totals: dict[str, float]


class RunFrame(TypedDict, total=False):
    """The part of the state every run graph shares: batch bookkeeping, counters, the report, the last summary."""

    n_requested: int
    next_id: int  # first record id (root row, for relational runs) of the next batch
    batch: int  # index of the current batch (0-based)
    round: int  # rounds so far in this batch
    totals: Annotated[dict[str, float], add_counts]
    report: dict[str, Any] | None
    info: dict[str, Any]  # the last node's summary, logged to run.jsonl


class RunState(RunFrame, total=False):
    """The state of a run of single records."""

    records: list[Record]
    accepted: Annotated[list[Record], operator.add]
    rejected: Annotated[list[Record], operator.add]
    failed: Annotated[list[Record], operator.add]  # generator calls failed for infrastructure reasons
