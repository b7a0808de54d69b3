"""The run's output folder: ``records.parquet``, ``rejects.parquet``, ``report.json`` and ``run.jsonl``.

Records and rejects are streamed batch by batch into hidden ``.partial`` files and renamed into place only when
the run finishes, together with ``report.json``; a run that fails leaves no file that looks complete (only
``run.jsonl``, whose last event says what went wrong).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from causalsynth.tools.errors import DataError
from causalsynth.tools.tabular import plain_file_mode, write_text

RECORDS = "records.parquet"
REJECTS = "rejects.parquet"
REPORT = "report.json"
EVENTS = "run.jsonl"
#: Columns the sink adds beside the skeleton's variables; a variable may not be named like one of them.
META_COLUMNS = ("record_id", "text", "rounds", "llm_calls", "tokens", "history", "references", "reason")


def _schema(variables: Sequence[str], rejects: bool) -> pa.Schema:
    fields = [pa.field("record_id", pa.int64())]
    fields += [pa.field(v, pa.string()) for v in variables]
    fields += [
        pa.field("text", pa.string()),
        pa.field("rounds", pa.int32()),
        pa.field("llm_calls", pa.int32()),
        pa.field("tokens", pa.int64()),
        pa.field("history", pa.string()),
        pa.field("references", pa.string()),  # JSON list of the retrieved passages' ids (provenance)
    ]
    if rejects:
        fields.append(pa.field("reason", pa.string()))
    return pa.schema(fields)


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


class RunSink:
    """Streams a run's outcomes into ``out_dir``."""

    def __init__(self, out_dir: Path, variables: Sequence[str]) -> None:
        clash = sorted(set(variables) & set(META_COLUMNS))
        if clash:
            raise DataError(
                f"variable name(s) {', '.join(clash)} clash with output columns ({', '.join(META_COLUMNS)})"
            )
        self.out_dir = Path(out_dir)
        self.variables = tuple(variables)
        try:
            if self.out_dir.exists() and not self.out_dir.is_dir():
                raise DataError(f"{self.out_dir}: exists and is not a folder")
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in (RECORDS, REJECTS, REPORT):  # a previous run's outputs must not pass for this run's
                (self.out_dir / stale).unlink(missing_ok=True)
            self._events = (self.out_dir / EVENTS).open("w", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.finished = False

    def _partial(self, name: str) -> Path:
        return self.out_dir / f".{name}.partial"

    def _writer(self, name: str) -> pq.ParquetWriter:
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self._partial(name), _schema(self.variables, name == REJECTS))
        return self._writers[name]

    def write(self, accepted: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]]) -> None:
        """Append a batch of accepted and rejected records (each record: the graph's Record dict)."""
        try:
            for name, rows in ((RECORDS, accepted), (REJECTS, rejected)):
                if rows:
                    table = pa.Table.from_pydict(self._columns(rows, name == REJECTS), schema=self._writer(name).schema)
                    self._writer(name).write_table(table)
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None

    def _columns(self, rows: Sequence[Mapping[str, Any]], rejects: bool) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {"record_id": [r["id"] for r in rows]}
        for v in self.variables:
            cols[v] = [r["skeleton"][v] for r in rows]
        cols["text"] = [r["text"] for r in rows]
        cols["rounds"] = [max(r["attempts"] - 1, 0) for r in rows]
        cols["llm_calls"] = [r["llm_calls"] for r in rows]
        cols["tokens"] = [r["tokens"] for r in rows]
        cols["history"] = [json.dumps(r["history"]) for r in rows]
        cols["references"] = [json.dumps([p["id"] for p in r.get("references", [])]) for r in rows]
        if rejects:
            cols["reason"] = ["; ".join(v["message"] for v in r["violations"]) for r in rows]
        return cols

    def event(self, event: Mapping[str, Any]) -> None:
        """Append one event to ``run.jsonl`` (flushed, so a crash keeps what happened before it)."""
        self._events.write(json.dumps(event, default=str) + "\n")
        self._events.flush()

    def finish(self, report: Mapping[str, Any]) -> None:
        """Close the tables, move them into place and write ``report.json`` last."""
        try:
            for name in (RECORDS, REJECTS):
                self._writer(name).close()  # an empty table is still written, with its columns
            self._writers.clear()
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None
        publish(self.out_dir, (RECORDS, REJECTS), report)
        self.finished = True

    def close(self) -> None:
        """Close ``run.jsonl``; a sink that did not finish aborts (its partial tables are removed)."""
        if not self.finished:
            self.abort("the run ended before its last batch was written")
        elif not self._events.closed:
            self._events.close()

    def abort(self, reason: str) -> None:
        """Record why the run stopped and remove the partial tables."""
        for writer in self._writers.values():
            try:
                writer.close()
            except OSError:
                pass
        for name in (RECORDS, REJECTS):
            self._partial(name).unlink(missing_ok=True)
        if not self._events.closed:
            self.event({"event": "aborted", "reason": reason})
            self._events.close()
