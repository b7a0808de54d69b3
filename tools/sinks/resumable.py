"""Run folders of durable runs: one part per batch, so a resumed run keeps exactly the batches its checkpoint covers.

:class:`ResumableRunSink` is the records sink whose failed records (infrastructure failures) a later ``--resume``
retries, even once the run has finished: a record's outcome is the one in its latest part, so a failed record
retried in a later batch is superseded there, and a run that still has failed records keeps its parts.

:class:`ResumableTableSink` is the relational sink cut the same way: each batch's accepted rows go to the
database (in one transaction: the referential check) and to one part per table under ``.parts/NNNNNN/``, written
under a temporary name and renamed. :meth:`ResumableTableSink.resume` deletes the parts of batches past the
checkpoint and builds the database again from the lookup tables and the kept parts, so the database never holds a
row the tables do not, nor one written past the checkpoint. The per-table Parquet and CSV files are assembled
from the parts when the run finishes.

A batch's records that failed for infrastructure reasons go to its part's ``failed.parquet`` (none of their rows
anywhere else). Like the records sink, a record's outcome is the one in its latest part: a retried record's later
part (its rows, its rejection or its failure again) supersedes the failure; so that a part says which records its
accepted rows belong to, a run with failures writes each later part's accepted record ids (``entities.parquet``).
A run that still has failed records keeps its parts when it finishes, for a later ``--resume``.
"""

from __future__ import annotations

import os
import shutil
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
from causalsynth.tools.sinks.run_folder import FAILED, PARTS, RECORDS, RunSink
from causalsynth.tools.sinks.sqlite import SqliteSink
from causalsynth.tools.sinks.table_folder import ARROW_TYPES, DATABASE, REJECT_SCHEMA, violation_table

#: Name of a batch's part file of rejection reasons inside its part folder (tables go under ``tables/``).
_REJECT_PART = "rejects.parquet"
#: A batch's failed texts (infrastructure), and the ids of the records it accepted (written once a run has failures).
_FAILED_PART = "failed.parquet"
_ENTITY_PART = "entities.parquet"
_ENTITY_SCHEMA = pa.schema([pa.field("entity", pa.int64())])


def _index(path: Path) -> int | None:
    """The batch index of a part file (``records-000003.parquet``) or part folder (``000003``); None if neither."""
    stem = path.name.split(".", 1)[0].rsplit("-", 1)[-1]
    return int(stem) if stem.isdigit() and not path.name.endswith(".tmp") else None


class ResumableRunSink(RunSink):
    """The records sink of a durable run: failed records can be retried, and a retry supersedes them."""

    def __init__(self, out_dir: Path, variables: Sequence[str], *, resume: bool = False) -> None:
        super().__init__(out_dir, variables, keep_parts=True, resume=resume)

    def _ids_by_part(self) -> dict[int, set[int]]:
        """Per batch index, the ids of every record in that batch's parts (any outcome)."""
        out: dict[int, set[int]] = {}
        for name in (RECORDS, REJECTS, FAILED):
            for path in self._parts(name):
                index = _index(path)
                if index is not None:
                    ids = pq.read_table(path, columns=["record_id"])["record_id"].to_pylist()
                    out.setdefault(index, set()).update(ids)
        return out

    def _failed_tables(self) -> list[pa.Table]:
        """Each failed part less the records a later batch retried (their outcome there is the current one)."""
        if not self._parts(FAILED):
            return []
        by_part = self._ids_by_part()
        tables = []
        for path in self._parts(FAILED):
            index = _index(path)
            later = set().union(*(ids for i, ids in by_part.items() if index is not None and i > index))
            table = pq.read_table(path, schema=self._schemas[FAILED])
            if later:
                keep = pa.array([i not in later for i in table["record_id"].to_pylist()], type=pa.bool_())
                table = table.filter(keep)
            if len(table):
                tables.append(table)
        return tables

    def accepted_records(self) -> list[dict[str, Any]]:
        """The accepted records of the kept parts (``id``, ``text``, ``skeleton``), in the order they were written."""
        out: list[dict[str, Any]] = []
        for path in self._parts(RECORDS):
            table = pq.read_table(path, columns=["record_id", "text", *self.variables]).to_pydict()
            for i, (rid, text) in enumerate(zip(table["record_id"], table["text"], strict=True)):
                out.append({"id": rid, "text": text, "skeleton": {v: table[v][i] for v in self.variables}})
        return out

    def failed_ids(self) -> list[int]:
        """Ids of the records whose latest outcome is a failure (infrastructure), in the kept parts."""
        return [i for t in self._failed_tables() for i in t["record_id"].to_pylist()]

    def _names(self) -> list[str]:
        """``failed.parquet`` only while some record's latest outcome is a failure."""
        if not self._started:
            return [RECORDS, REJECTS, FAILED]
        return [RECORDS, REJECTS, FAILED] if self._failed_tables() else [RECORDS, REJECTS]

    def _close_files(self, complete: bool) -> None:
        if not complete:
            return
        for name in (RECORDS, REJECTS):
            with pq.ParquetWriter(self._partial(name), self._schemas[name]) as writer:
                for path in self._parts(name):
                    writer.write_table(pq.read_table(path, schema=self._schemas[name]))
        failed = self._failed_tables()
        if failed:
            with pq.ParquetWriter(self._partial(FAILED), self._schemas[FAILED]) as writer:
                for table in failed:
                    writer.write_table(table)

    def finish(self, report: Mapping[str, Any]) -> None:
        """Publish the files and the report; keep the parts while failed records remain (``--resume`` retries them)."""
        failed = bool(self._failed_tables())
        RunFolder.finish(self, report)
        if not failed:
            shutil.rmtree(self.parts_dir, ignore_errors=True)


class ResumableTableSink(RunFolder):
    """The relational sink of a durable run: the database per batch, and one part per table and batch."""

    def __init__(self, out_dir: Path, schema: TableSchema, *, resume: bool = False) -> None:
        self.schema = schema
        self.part = 0  # index of the next batch's parts
        self.parts_dir = Path(out_dir) / PARTS
        self._lookups: dict[str, pa.Table] = {}
        self._failed_rows: Sequence[TableViolation] = ()  # the batch's failed texts, written with its parts
        self._with_entities = False  # the run has had failures: each part also lists its accepted records
        self._schemas = {
            t: pa.schema([pa.field(c, ARROW_TYPES[cs.type]) for c, cs in schema.tables[t].columns.items()])
            for t in schema.order
        }
        super().__init__(out_dir, resume=resume)
        try:
            if not resume:
                shutil.rmtree(self.parts_dir, ignore_errors=True)
            self.parts_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None
        self.db = SqliteSink(self._partial(DATABASE), schema)

    def _names(self) -> list[str]:
        """``failed.parquet`` only while some record's latest outcome is a failure."""
        failed = [FAILED] if not hasattr(self, "db") or self._failed_tables() else []
        return [*(f"{t}.{ext}" for t in self.schema.order for ext in ("parquet", "csv")), DATABASE, REJECTS, *failed]

    def write_failed(self, failed: Sequence[TableViolation]) -> None:
        """The batch's failed texts (infrastructure); written into its part by the :meth:`write` that follows."""
        self._failed_rows = failed
        self._with_entities = True

    def _failed_tables(self) -> list[pa.Table]:
        """Each part's failed texts less the records a later part holds (their outcome there is the current one)."""
        batches = self._batches()
        if not any((b / _FAILED_PART).is_file() for b in batches):
            return []
        later: set[int] = set()
        out = []
        for batch in reversed(batches):  # latest first: collect what each later part settled
            path = batch / _FAILED_PART
            if path.is_file():
                table = pq.read_table(path, schema=REJECT_SCHEMA)
                ids = table["entity"].to_pylist()
                if later:
                    table = table.filter(pa.array([i not in later for i in ids], type=pa.bool_()))
                if len(table):
                    out.append(table)
                later.update(ids)
            for name in (_REJECT_PART, _ENTITY_PART):
                if (batch / name).is_file():
                    later.update(pq.read_table(batch / name, columns=["entity"])["entity"].to_pylist())
        return out[::-1]

    def failed_entities(self) -> list[int]:
        """Ids of the records (root row order) whose latest outcome is a failure (infrastructure), in the kept parts."""
        return sorted({i for t in self._failed_tables() for i in t["entity"].to_pylist()})

    def _batch_dir(self, index: int) -> Path:
        return self.parts_dir / f"{index:06d}"

    def _table(self, table: str, rows: Sequence[Mapping[str, Sequence[Any]]]) -> pa.Table:
        """One table's rows of several accepted groups, as one Arrow table of its declared columns."""
        cols = {c: [v for r in rows for v in r[c]] for c in self.schema.tables[table].columns}
        return pa.Table.from_pydict(cols, schema=self._schemas[table])

    def write_lookups(self, lookups: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        """The run's lookup tables (drawn from the seed, so the same on resume): into the database, kept for the end."""
        try:
            self.db.insert(lookups)
            self._lookups = {t: self._table(t, [lookups[t]]) for t in self.schema.lookups if t in lookups}
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc}") from None

    def write(
        self, accepted: Sequence[Mapping[str, Mapping[str, Sequence[Any]]]], rejected: Sequence[TableViolation]
    ) -> None:
        """Write one settled batch: the database first (the referential check), then its part files."""
        for tables in accepted:
            self.db.insert(tables)
        where = self._batch_dir(self.part)
        try:
            shutil.rmtree(where, ignore_errors=True)
            (where / "tables").mkdir(parents=True)
            for t in self.schema.record_tables:
                rows = [tables[t] for tables in accepted if t in tables]
                if rows:
                    self._write_atomic(self._table(t, rows), where / "tables" / f"{t}.parquet")
            if rejected:
                self._write_atomic(violation_table(rejected), where / _REJECT_PART)
            if self._failed_rows:
                self._write_atomic(violation_table(self._failed_rows), where / _FAILED_PART)
            if self._with_entities:  # a retried record's accepted rows supersede its failure
                ids = [int(e) for tables in accepted for e in tables[self.schema.root]["_entity"]]
                self._write_atomic(pa.Table.from_pydict({"entity": ids}, schema=_ENTITY_SCHEMA), where / _ENTITY_PART)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc}") from None
        self._failed_rows = ()
        self.part += 1

    @staticmethod
    def _write_atomic(table: pa.Table, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # a part is whole or absent

    def _batches(self) -> list[Path]:
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.iterdir() if p.is_dir() and _index(p) is not None)

    def kept(self, table: str) -> list[pa.Table]:
        """A record table's rows in the kept parts, batch by batch."""
        paths = (b / "tables" / f"{table}.parquet" for b in self._batches())
        return [pq.read_table(p, schema=self._schemas[table]) for p in paths if p.is_file()]

    def resume(self, batches: int, lookups: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        """Keep the parts of the first ``batches`` batches, delete the rest; rebuild the database from what is kept."""
        for path in self.parts_dir.iterdir():
            index = _index(path)
            if not path.is_dir() or index is None or index >= batches:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.part = batches
        self._with_entities = any((b / _FAILED_PART).is_file() for b in self._batches())
        self.write_lookups(lookups)  # a fresh database (created by __init__): lookups, then each kept batch
        for batch in self._batches():
            tables = {}
            for t in self.schema.record_tables:
                path = batch / "tables" / f"{t}.parquet"
                if path.is_file():
                    tables[t] = pq.read_table(path, schema=self._schemas[t]).to_pydict()
            if tables:
                self.db.insert(tables)

    def _close_files(self, complete: bool) -> None:
        self.db.close()
        if not complete:
            return
        for t in self.schema.order:
            parts = [self._lookups[t]] if t in self._lookups else self.kept(t)
            table = pa.concat_tables(parts) if parts else self._schemas[t].empty_table()
            with pq.ParquetWriter(self._partial(f"{t}.parquet"), self._schemas[t]) as writer:
                for part in parts:
                    writer.write_table(part)
            pacsv.write_csv(table, str(self._partial(f"{t}.csv")))
        with pq.ParquetWriter(self._partial(REJECTS), REJECT_SCHEMA) as writer:
            for batch in self._batches():
                if (batch / _REJECT_PART).is_file():
                    writer.write_table(pq.read_table(batch / _REJECT_PART, schema=REJECT_SCHEMA))
        failed = self._failed_tables()
        if failed:
            with pq.ParquetWriter(self._partial(FAILED), REJECT_SCHEMA) as writer:
                for table in failed:
                    writer.write_table(table)

    def finish(self, report: Mapping[str, Any]) -> None:
        """Assemble and publish the files, write the report; drop the parts unless records failed (to be retried)."""
        failed = bool(self._failed_tables())
        super().finish(report)
        if not failed:
            shutil.rmtree(self.parts_dir, ignore_errors=True)
