"""A run's output folder, whatever the spec: files streamed under hidden ``.partial`` names, published at the end.

Every file of a run is written as ``.NAME.partial`` and moved into place only when the run finishes, together with
``report.json``, written last; a run that fails leaves no file that looks complete, only ``run.jsonl`` (flushed
event by event) whose last event says what went wrong. Both sinks (records, and relational tables) are this folder
with their own files; rejected records always go to ``rejects.parquet``, with the reasons.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from causalsynth.tools.errors import DataError
from causalsynth.tools.tabular import plain_file_mode, write_text

REJECTS = "rejects.parquet"
REPORT = "report.json"
EVENTS = "run.jsonl"


def publish(out_dir: Path, names: Sequence[str], report: Mapping[str, Any]) -> None:
    """Move the finished ``.NAME.partial`` files into place, then write ``report.json`` last."""
    try:
        for name in names:
            partial = out_dir / f".{name}.partial"
            os.chmod(partial, plain_file_mode())
            os.replace(partial, out_dir / name)
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot write: {exc.strerror or exc}") from None
    write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", out_dir / REPORT)


class RunFolder:
    """The folder protocol every run sink shares; subclasses name their files and open, write and close them."""

    def __init__(self, out_dir: Path, *, resume: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.finished = False
        try:
            if self.out_dir.exists() and not self.out_dir.is_dir():
                raise DataError(f"{self.out_dir}: exists and is not a folder")
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in (*self._names(), REPORT):  # a previous run's outputs must not pass for this run's
                (self.out_dir / stale).unlink(missing_ok=True)
            # A resumed run continues the interrupted run's event log.
            self._events = (self.out_dir / EVENTS).open("a" if resume else "w", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None

    def _names(self) -> list[str]:
        """The files this sink publishes (without ``report.json``)."""
        raise NotImplementedError

    def _close_files(self, complete: bool) -> None:
        """Close the open files; ``complete``: the run finished (write what an empty run still needs)."""
        raise NotImplementedError

    def _partial(self, name: str) -> Path:
        return self.out_dir / f".{name}.partial"

    def event(self, event: Mapping[str, Any]) -> None:
        """Append one event to ``run.jsonl`` (flushed, so a crash keeps what happened before it)."""
        self._events.write(json.dumps(event, default=str) + "\n")
        self._events.flush()

    def finish(self, report: Mapping[str, Any]) -> None:
        """Close the files, move them into place and write ``report.json`` last."""
        try:
            self._close_files(complete=True)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
        publish(self.out_dir, self._names(), report)
        self.finished = True

    def close(self) -> None:
        """Close ``run.jsonl``; a sink that did not finish aborts (its partial files are removed)."""
        if not self.finished:
            self.abort("the run ended before its last batch was written")
        elif not self._events.closed:
            self._events.close()

    def abort(self, reason: str) -> None:
        """Record why the run stopped and remove the partial files."""
        if self.finished:
            return
        try:
            self._close_files(complete=False)
        except (OSError, pa.ArrowException):
            pass  # the partial files are removed next either way
        for name in self._names():
            self._partial(name).unlink(missing_ok=True)
        if not self._events.closed:
            self.event({"event": "aborted", "reason": reason})
            self._events.close()
