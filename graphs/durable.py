"""Durable runs: every run with an output folder checkpoints in it, and ``--resume DIR`` continues it.

LangGraph's SQLite checkpointer (``langgraph-checkpoint-sqlite``) stores the graph state in
``DIR/.checkpoints.sqlite``. Only checkpoints at batch boundaries are kept (:class:`BatchSaver`): there the
state holds no record in flight, the sink's part files match it exactly (one part per written batch), and the
run context's ledger can be rebuilt from those parts (``agents.resume``). A run resumed from a boundary redoes
at most the batch it was in; realisers are seeded per record and attempt, so that batch comes out the same.

``DIR/.run-settings.json`` holds what the run was started with; a resume with other settings is refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver

from causalsynth.agents.context import RunSettings
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


class BatchSaver(SqliteSaver):
    """LangGraph's SQLite saver, keeping only batch-boundary checkpoints and no per-task writes.

    Mid-batch checkpoints would hold whole batches in flight (costly to serialise at thousands of records per
    second) and could not be matched by the output files; a resume redoes the interrupted batch instead.
    """

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Persist ``checkpoint`` if it is a batch boundary; either way return its config."""
        if is_boundary(checkpoint):
            return super().put(config, checkpoint, metadata, new_versions)
        configurable = config["configurable"]
        return {"configurable": {"thread_id": configurable["thread_id"],
                                 "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                                 "checkpoint_id": checkpoint["id"]}}  # fmt: skip

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Per-task writes are not kept: a resume starts from a boundary, where there are none."""


def open_saver(folder: Path) -> BatchSaver:
    """The checkpointer of the run in ``folder``."""
    conn = sqlite3.connect(folder / CHECKPOINTS, check_same_thread=False, isolation_level=None)
    saver = BatchSaver(conn)
    saver.setup()
    return saver


def settings_record(spec: str, settings: RunSettings) -> dict[str, Any]:
    """What a resume must match: the spec and every setting that changes the output."""
    return {"spec": spec, "n": settings.n, "mode": settings.mode, "max_rounds": settings.max_rounds,
            "batch_size": settings.batch_size, "seed": settings.seed, "alpha": settings.alpha, "llm": settings.llm,
            "realize": settings.realize}  # fmt: skip


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


def check_resumable(folder: Path, record: Mapping[str, Any]) -> None:
    """Refuse to resume a folder that holds no interrupted run, a finished one, or one started otherwise.

    Raises:
        UsageError: naming the folder and, for other settings, each one that differs.
    """
    if not folder.is_dir():
        raise UsageError(f"--resume {folder}: no such run folder")
    if (folder / REPORT).is_file():
        raise UsageError(f"--resume {folder}: the run is complete ({REPORT} is written); nothing to resume")
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


def finish(folder: Path, saver: BatchSaver) -> None:
    """A finished run needs no checkpoint: close and remove it."""
    saver.conn.close()
    for name in (CHECKPOINTS, f"{CHECKPOINTS}-wal", f"{CHECKPOINTS}-shm", SETTINGS):
        (folder / name).unlink(missing_ok=True)


def thread_config() -> dict[str, Any]:
    """The ``configurable`` part of a durable run's config."""
    return {"thread_id": THREAD}
