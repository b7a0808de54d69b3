"""Durable runs: every run with an output folder checkpoints in it, and ``--resume DIR`` continues it.

LangGraph's SQLite checkpointer (``langgraph-checkpoint-sqlite``) stores the graph state in
``DIR/.checkpoints.sqlite``. Only checkpoints at batch boundaries are kept (:class:`BatchSaver`): there the
state holds no record in flight, the sink's part files match it exactly (one part per written batch), and the
run context's ledger (records) or unique-value sets (tables) can be rebuilt from those parts (``agents.resume``).
A run resumed from a boundary redoes at most the batch it was in; realisers are seeded per record and attempt,
so that batch comes out the same. Both topologies (records, and relational specs with tables) are durable.

A graph passed as ``generate(graph=...)`` is durable when its topology keeps that guarantee
(:func:`durable_builder`): the built-in ``sample`` and ``write`` nodes (``sample_tables`` and ``write_tables``
for tables), ``sample`` entered only from START and from ``write``, no interrupts and no checkpointer of its
own. At run time the saver checks every boundary it keeps against the batches the sink wrote, so a graph that
reaches ``sample`` another way (a ``Command(goto=...)``) stops with an error instead of checkpointing a state the
files do not match.

``DIR/.run-settings.json`` holds what the run was started with; a resume with other settings is refused. A run
that finished with records that failed for infrastructure reasons keeps its checkpoint and parts, so that a
later ``--resume`` retries those records (``graphs.runner``).
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph

from causalsynth.agents.context import RunSettings
from causalsynth.agents.skeletons import sample
from causalsynth.agents.table_sampler import sample_tables
from causalsynth.agents.table_writer import write_tables
from causalsynth.agents.writer import write
from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.sinks.folder import REPORT

CHECKPOINTS = ".checkpoints.sqlite"
SETTINGS = ".run-settings.json"
THREAD = "causalsynth-run"
#: Channels whose presence in a checkpoint means "the next step starts a batch" (one per topology).
_NEXT_BATCH = ("branch:to:sample", "branch:to:sample_tables")


def is_boundary(checkpoint: Checkpoint) -> bool:
    """A checkpoint between batches (before the first, after a write, or at the end), where nothing is in flight."""
    channels = checkpoint["channel_values"]
    if any(c in channels for c in _NEXT_BATCH):
        return True
    return not any(str(c).startswith("branch:to:") or c == "__start__" for c in channels)


class DurabilityError(UsageError):
    """A run's graph reached a batch boundary that its output files do not match: it cannot be checkpointed."""


class BatchSaver(SqliteSaver):
    """LangGraph's SQLite saver, keeping only batch-boundary checkpoints and no per-task writes.

    Mid-batch checkpoints would hold whole batches in flight (costly to serialise at thousands of records per
    second) and could not be matched by the output files; a resume redoes the interrupted batch instead.
    ``written``: how many batches the sink has written; every boundary kept must say the same (its ``batch`` + 1).
    """

    written: Callable[[], int] | None = None
    #: Keep the next checkpoint even if it is not a boundary (a retry batch put in the state before it runs).
    keep_next: bool = False

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Persist ``checkpoint`` if it is a batch boundary; either way return its config.

        Raises:
            DurabilityError: a boundary whose batch count differs from the batches the sink wrote.
        """
        if self.keep_next:
            self.keep_next = False
            return super().put(config, checkpoint, metadata, new_versions)
        if is_boundary(checkpoint):
            if self.written is not None:
                batches = int(checkpoint["channel_values"].get("batch", -1)) + 1
                if batches != self.written():
                    raise DurabilityError(
                        f"the run reached a batch boundary with {self.written()} batch(es) written but {batches} in "
                        "its state: its graph enters 'sample' other than from START or 'write' (a Command?), so "
                        "the run cannot be checkpointed; see README 'Durable runs'"
                    )
            return super().put(config, checkpoint, metadata, new_versions)
        configurable = config["configurable"]
        return {"configurable": {"thread_id": configurable["thread_id"],
                                 "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                                 "checkpoint_id": checkpoint["id"]}}  # fmt: skip

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Per-task writes are not kept: a resume starts from a boundary, where there are none."""


def open_saver(folder: Path, written: Callable[[], int] | None = None) -> BatchSaver:
    """The checkpointer of the run in ``folder`` (``written``: the sink's count of batches written)."""
    conn = sqlite3.connect(folder / CHECKPOINTS, check_same_thread=False, isolation_level=None)
    saver = BatchSaver(conn)
    saver.written = written
    saver.setup()
    return saver


def settings_record(spec: str, settings: RunSettings, graph: Any = None) -> dict[str, Any]:
    """What a resume must match: the spec, every setting that changes the output, and a custom graph's nodes."""
    builder = getattr(graph, "builder", graph)
    nodes = sorted(getattr(builder, "nodes", {})) if graph is not None else None
    return {"spec": spec, "n": settings.n, "mode": settings.mode, "max_rounds": settings.max_rounds,
            "batch_size": settings.batch_size, "seed": settings.seed, "alpha": settings.alpha, "llm": settings.llm,
            "realize": settings.realize, "graph_nodes": nodes}  # fmt: skip


#: Per topology, the node that starts a batch and the one that writes it, with the built-in functions they run.
_FRAME = {False: (("sample", sample), ("write", write)),
          True: (("sample_tables", sample_tables), ("write_tables", write_tables))}  # fmt: skip


def _runs(builder: StateGraph[Any, Any, Any, Any], name: str, function: Any) -> bool:
    """Whether node ``name`` runs the built-in ``function`` (as the builder adds it: traced, or plain)."""
    runnable = builder.nodes[name].runnable
    func = getattr(runnable, "func", None)
    if func is function:
        return True
    try:
        return func is not None and inspect.getclosurevars(func).nonlocals.get("node") is function
    except TypeError:
        return False


def durable_builder(graph: Any, relational: bool) -> StateGraph[Any, Any, Any, Any]:
    """The builder of a custom run graph (a ``StateGraph`` or one compiled from it), if it can be checkpointed.

    A resume must find the output files matching the checkpoint it starts from, so the graph must keep the batch
    frame of the graphs ``build_graph`` makes: its batch starts in the built-in sample node and ends in the
    built-in write node, the sample node is entered only from START and from the write node (plainly or through
    the write node's router), no node declares it as a ``Command`` destination, and the graph has no interrupt
    and no checkpointer of its own. Nodes added between them may do anything to the batch in flight, but a
    resume runs the interrupted batch again, so they must act on the state and the context only (no effect of
    their own that a second run of the batch would repeat). Every graph ``build_graph(spec, nodes=[...])`` makes
    qualifies.

    Raises:
        UsageError: naming the first requirement the graph does not meet.
    """
    builder = getattr(graph, "builder", graph)
    if not isinstance(builder, StateGraph):
        raise UsageError(f"graph=: a durable run needs a LangGraph StateGraph (or its compiled form), got {graph!r}")
    why = "graph=: the run cannot be checkpointed in its folder:"
    if getattr(graph, "checkpointer", None) not in (None, False):
        raise UsageError(f"{why} the graph was compiled with a checkpointer; compile it without one (the run "
                         "checkpoints in its folder)")  # fmt: skip
    if getattr(graph, "interrupt_before_nodes", None) or getattr(graph, "interrupt_after_nodes", None):
        raise UsageError(f"{why} the graph interrupts before or after nodes; compile it without interrupts")
    (first, first_fn), (last, last_fn) = _FRAME[relational]
    for name, function in ((first, first_fn), (last, last_fn)):
        if name not in builder.nodes or not _runs(builder, name, function):
            raise UsageError(f"{why} it needs the built-in node {name!r} (as build_graph makes it)")
    sources = {s for s, t in builder.edges if t == first} | {s for ss, t in builder.waiting_edges if t == first
                                                              for s in ss}  # fmt: skip
    for source, branches in builder.branches.items():
        for branch in branches.values():
            if branch.ends is None:
                raise UsageError(f"{why} the router after {source!r} does not declare where it goes (give "
                                 "add_conditional_edges a path map, or annotate it with Literal[...])")  # fmt: skip
            if first in branch.ends.values():
                sources.add(source)
    sources |= {name for name, spec in builder.nodes.items() if spec.ends and first in spec.ends}
    stray = sorted(sources - {START, last})
    if stray:
        raise UsageError(f"{why} {first!r} is entered from {', '.join(map(repr, stray))}; a batch may start "
                         f"only from START or after {last!r}")  # fmt: skip
    return builder


def start_fresh(folder: Path, record: Mapping[str, Any]) -> None:
    """Forget a previous run's checkpoints in ``folder`` and note this run's settings.

    Raises:
        DataError: the folder cannot be written (or is a file).
    """
    try:
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder}: exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINTS, f"{CHECKPOINTS}-wal", f"{CHECKPOINTS}-shm"):
            (folder / name).unlink(missing_ok=True)
        (folder / SETTINGS).write_text(json.dumps(dict(record), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{folder}: cannot write: {exc.strerror or exc}") from None


def failed_left(folder: Path) -> int:
    """How many records of the finished run in ``folder`` failed for infrastructure reasons (0 if unreadable)."""
    try:
        return int(json.loads((folder / REPORT).read_text(encoding="utf-8")).get("n_failed") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def check_resumable(folder: Path, record: Mapping[str, Any]) -> None:
    """Refuse to resume a folder that holds no interrupted run, a finished one, or one started otherwise.

    A finished run whose report counts failed records (infrastructure failures) can be resumed: they are retried.

    Raises:
        UsageError: naming the folder and, for other settings, each one that differs.
    """
    if not folder.is_dir():
        raise UsageError(f"--resume {folder}: no such run folder")
    if (folder / REPORT).is_file() and not (failed_left(folder) and (folder / CHECKPOINTS).is_file()):
        raise UsageError(f"--resume {folder}: the run is complete ({REPORT} is written, no failed record to "
                         "retry); nothing to resume")  # fmt: skip
    path = folder / SETTINGS
    if not path.is_file() or not (folder / CHECKPOINTS).is_file():
        raise UsageError(f"--resume {folder}: no interrupted run here (no {SETTINGS} and {CHECKPOINTS})")
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {folder}: {SETTINGS} is unreadable ({exc})") from None
    differ = [f"{k} was {before.get(k)!r}, now {v!r}" for k, v in record.items() if before.get(k) != v]
    if differ:
        raise UsageError(f"--resume {folder}: the run was started with other settings: {'; '.join(differ)}")


def finish(folder: Path, saver: BatchSaver, report: Mapping[str, Any] | None = None) -> None:
    """A finished run needs no checkpoint: close and remove it (kept while records failed: a resume retries them)."""
    saver.conn.close()
    if report is not None and report.get("n_failed"):
        return
    for name in (CHECKPOINTS, f"{CHECKPOINTS}-wal", f"{CHECKPOINTS}-shm", SETTINGS):
        (folder / name).unlink(missing_ok=True)


def thread_config() -> dict[str, Any]:
    """The ``configurable`` part of a durable run's config."""
    return {"thread_id": THREAD}
