"""A relational run's output folder: one Parquet and one CSV file per table, a SQLite database, rejects, report.

Everything is written under hidden ``.partial`` names and moved into place when the run finishes, the report
last; a run that fails leaves only ``run.jsonl`` saying why (as :class:`causalsynth.tools.sinks.run_folder.RunSink`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.checks import TableViolation
from causalsynth.tools.relational.tables import TableSchema
from causalsynth.tools.sinks.run_folder import EVENTS, REPORT, publish
from causalsynth.tools.sinks.sqlite import SqliteSink

DATABASE = "database.sqlite"
REJECTS = "rejects.jsonl"
ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "category": pa.string(),
    "string": pa.string(),
    "email": pa.string(),
    "date": pa.string(),
    "datetime": pa.string(),
}


class TableSink:
    """Streams accepted rows into per-table files and the database, and rejected records' reasons."""

    def __init__(self, out_dir: Path, schema: TableSchema) -> None:
        self.out_dir = Path(out_dir)
        self.schema = schema
        self.finished = False
        try:
            if self.out_dir.exists() and not self.out_dir.is_dir():
                raise DataError(f"{self.out_dir}: exists and is not a folder")
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in self._finals():
                stale.unlink(missing_ok=True)
            self._events = (self.out_dir / EVENTS).open("w", encoding="utf-8")
            self._rejects = self._partial(REJECTS).open("w", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None
        self._schemas = {
            t: pa.schema([pa.field(c, ARROW_TYPES[cs.type]) for c, cs in schema.tables[t].columns.items()])
            for t in schema.order
        }
        self._parquet = {t: pq.ParquetWriter(self._partial(f"{t}.parquet"), self._schemas[t]) for t in schema.order}
        self._csv = {t: pacsv.CSVWriter(str(self._partial(f"{t}.csv")), self._schemas[t]) for t in schema.order}
        self.db = SqliteSink(self._partial(DATABASE), schema)

    def _partial(self, name: str) -> Path:
        return self.out_dir / f".{name}.partial"

    def _names(self) -> list[str]:
        return [*(f"{t}.{ext}" for t in self.schema.order for ext in ("parquet", "csv")), DATABASE, REJECTS]

    def _finals(self) -> list[Path]:
        return [self.out_dir / n for n in (*self._names(), REPORT)]

    def write(
        self, accepted: Sequence[Mapping[str, Mapping[str, Sequence[Any]]]], rejected: Sequence[TableViolation]
    ) -> None:
        """Append accepted batches (database first: it is the referential check) and rejection reasons."""
        for tables in accepted:
            self.db.insert(tables)
            try:
                for t in (t for t in self.schema.order if t in tables):
                    cols = {c: list(tables[t][c]) for c in self.schema.tables[t].columns}
                    batch = pa.Table.from_pydict(cols, schema=self._schemas[t])
                    self._parquet[t].write_table(batch)
                    self._csv[t].write_table(batch)
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"{self.out_dir}: cannot write: {exc}") from None
        for v in rejected:
            self._rejects.write(json.dumps(v, default=str) + "\n")

    def event(self, event: Mapping[str, Any]) -> None:
        """Append one event to ``run.jsonl``."""
        self._events.write(json.dumps(event, default=str) + "\n")
        self._events.flush()

    def finish(self, report: Mapping[str, Any]) -> None:
        """Close everything, move it into place, and write the report last."""
        try:
            for writer in [*self._parquet.values(), *self._csv.values()]:
                writer.close()
            self.db.close()
            self._rejects.close()
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc}") from None
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
        for writer in [*self._parquet.values(), *self._csv.values()]:
            try:
                writer.close()
            except (OSError, pa.ArrowException):
                pass
        self.db.close()
        self._rejects.close()
        for name in self._names():
            self._partial(name).unlink(missing_ok=True)
        if not self._events.closed:
            self.event({"event": "aborted", "reason": reason})
            self._events.close()
