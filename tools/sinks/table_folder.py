"""A relational run's output folder: a Parquet and a CSV file per table, a SQLite database, rejects (``folder``).

Records whose text failed for infrastructure reasons go to ``failed.parquet`` (the rejects' columns, one row per
failed text, ``kind`` ``infrastructure``), published only when there are some; none of their rows is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.checks import TableViolation
from causalsynth.tools.relational.tables import TableSchema
from causalsynth.tools.sinks.folder import REJECTS, RunFolder
from causalsynth.tools.sinks.run_folder import FAILED
from causalsynth.tools.sinks.sqlite import SqliteSink

DATABASE = "database.sqlite"
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


#: ``rejects.parquet`` of a relational run: one row per violation of a rejected record.
REJECT_SCHEMA = pa.schema(
    [pa.field("entity", pa.int64())]
    + [pa.field(c, pa.string()) for c in ("table", "row", "kind", "column", "rule", "value", "message", "fix")]
)


class TableSink(RunFolder):
    """Streams accepted rows into per-table files and the database, and rejected records' reasons."""

    def __init__(self, out_dir: Path, schema: TableSchema) -> None:
        self.schema = schema
        self._failed: pq.ParquetWriter | None = None  # opened by the first failed record
        self._started = False  # until then, _names() lists every file a run may publish (stale ones are removed)
        super().__init__(out_dir)
        self._started = True
        self._schemas = {
            t: pa.schema([pa.field(c, ARROW_TYPES[cs.type]) for c, cs in schema.tables[t].columns.items()])
            for t in schema.order
        }
        try:
            self._parquet = {t: pq.ParquetWriter(self._partial(f"{t}.parquet"), self._schemas[t]) for t in schema.order}
            self._csv = {t: pacsv.CSVWriter(str(self._partial(f"{t}.csv")), self._schemas[t]) for t in schema.order}
            self._rejects = pq.ParquetWriter(self._partial(REJECTS), REJECT_SCHEMA)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc}") from None
        self.db = SqliteSink(self._partial(DATABASE), schema)

    def _names(self) -> list[str]:
        failed = [FAILED] if not self._started or self._failed is not None else []
        return [*(f"{t}.{ext}" for t in self.schema.order for ext in ("parquet", "csv")), DATABASE, REJECTS, *failed]

    def _close_files(self, complete: bool) -> None:
        for writer in [*self._parquet.values(), *self._csv.values(), self._rejects]:
            writer.close()
        if self._failed is not None:
            self._failed.close()
        self.db.close()

    def write_failed(self, failed: Sequence[TableViolation]) -> None:
        """Append the texts of records set aside because their model call failed (infrastructure), with the reason."""
        try:
            if self._failed is None:
                self._failed = pq.ParquetWriter(self._partial(FAILED), REJECT_SCHEMA)
            self._failed.write_table(violation_table(failed))
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc}") from None

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
        if rejected:
            try:
                self._rejects.write_table(violation_table(rejected))
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"{self.out_dir}: cannot write: {exc}") from None


def violation_table(violations: Sequence[TableViolation]) -> pa.Table:
    """Violations (or failed texts) as rows of ``REJECT_SCHEMA``."""
    cols: dict[str, list[Any]] = {"entity": [int(v["entity"]) for v in violations]}
    for c in REJECT_SCHEMA.names[1:]:
        cols[c] = [None if v[c] is None else str(v[c]) for v in violations]  # type: ignore[literal-required]
    return pa.Table.from_pydict(cols, schema=REJECT_SCHEMA)
