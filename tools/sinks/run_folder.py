"""The output folder of a run of single records: ``records.parquet`` and ``rejects.parquet`` (see ``folder``).

Each batch is written as its own part file (``.parts/records-000003.parquet``, written under a temporary name and
renamed, so a part is whole or absent); the run's files are assembled from the parts when it finishes. A part is
the unit a resumed run keeps or discards: :meth:`RunSink.resume` keeps the parts of the batches its checkpoint
covers and deletes the rest, so the output never holds a record twice or one past the checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from causalsynth.tools.errors import DataError
from causalsynth.tools.sinks.folder import REJECTS, RunFolder
from causalsynth.tools.tabular import columns_of

RECORDS = "records.parquet"
FAILED = "failed.parquet"
PARTS = ".parts"
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


class RunSink(RunFolder):
    """Streams a run's records and rejects into ``out_dir``, one part file per batch.

    ``keep_parts``: a run that stops before the end keeps its parts (it can be resumed); otherwise they are removed.
    ``resume``: continue an interrupted run's folder (call :meth:`resume` with the number of batches to keep).
    """

    def __init__(
        self, out_dir: Path, variables: Sequence[str], *, keep_parts: bool = False, resume: bool = False
    ) -> None:
        clash = sorted(set(variables) & set(META_COLUMNS))
        if clash:
            raise DataError(
                f"variable name(s) {', '.join(clash)} clash with output columns ({', '.join(META_COLUMNS)})"
            )
        self.variables = tuple(variables)
        self.keep_parts = keep_parts
        self.part = 0  # index of the next batch's part files
        self._schemas = {name: _schema(self.variables, name != RECORDS) for name in (RECORDS, REJECTS, FAILED)}
        self.parts_dir = Path(out_dir) / PARTS
        self._started = False  # until then, _names() lists every file a run may publish (stale ones are removed)
        super().__init__(out_dir, resume=resume)
        self._started = True
        try:
            if not resume:
                shutil.rmtree(self.parts_dir, ignore_errors=True)
            self.parts_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None

    def _names(self) -> list[str]:
        """``failed.parquet`` only for a run with records that failed for infrastructure reasons."""
        return [RECORDS, REJECTS, FAILED] if not self._started or self._parts(FAILED) else [RECORDS, REJECTS]

    def _part_path(self, name: str, index: int) -> Path:
        return self.parts_dir / f"{name.removesuffix('.parquet')}-{index:06d}.parquet"

    def _parts(self, name: str) -> list[Path]:
        if not self.parts_dir.is_dir():
            return []
        return sorted(self.parts_dir.glob(f"{name.removesuffix('.parquet')}-*.parquet"))

    def resume(self, batches: int) -> None:
        """Keep the parts of the first ``batches`` batches; delete later ones and half-written files."""
        for path in self.parts_dir.iterdir():
            index = path.name.rsplit("-", 1)[-1].split(".", 1)[0]
            if not path.name.endswith(".parquet") or not index.isdigit() or int(index) >= batches:
                path.unlink()
        self.part = batches

    def accepted_rows(self) -> list[tuple[int, str]]:
        """``(record_id, text)`` of the accepted records in the kept parts, in the order they were written."""
        rows: list[tuple[int, str]] = []
        for path in self._parts(RECORDS):
            table = pq.read_table(path, columns=["record_id", "text"])
            rows += zip(table["record_id"].to_pylist(), table["text"].to_pylist(), strict=True)
        return rows

    def failed_ids(self) -> list[int]:
        """Ids of the records that failed for infrastructure reasons, in the kept parts."""
        tables = [pq.read_table(p, columns=["record_id"]) for p in self._parts(FAILED)]
        return [i for t in tables for i in t["record_id"].to_pylist()]

    def write_failed(self, failed: Sequence[Mapping[str, Any]]) -> None:
        """Write the batch's records that failed for infrastructure reasons (call before :meth:`write`)."""
        self._write_part(FAILED, failed)

    def _write_part(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            table = pa.Table.from_pydict(self._columns(rows, name != RECORDS), schema=self._schemas[name])
            path = self._part_path(name, self.part)
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, path)  # a part is whole or absent
        except OSError as exc:
            raise DataError(f"{self.out_dir}: cannot write: {exc.strerror or exc}") from None

    def _close_files(self, complete: bool) -> None:
        if not complete:
            return
        for name in self._names():  # an empty table is still written, with its columns
            with pq.ParquetWriter(self._partial(name), self._schemas[name]) as writer:
                for path in self._parts(name):
                    writer.write_table(pq.read_table(path, schema=self._schemas[name]))

    def finish(self, report: Mapping[str, Any]) -> None:
        """Assemble and publish the files, write the report, then drop the parts."""
        super().finish(report)
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def abort(self, reason: str) -> None:
        """Record why the run stopped; remove the parts unless the run can be resumed."""
        super().abort(reason)
        if not self.keep_parts:
            shutil.rmtree(self.parts_dir, ignore_errors=True)

    def write(self, accepted: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]]) -> None:
        """Write a batch of accepted and rejected records (each record: the graph's Record dict) as its parts."""
        for name, rows in ((RECORDS, accepted), (REJECTS, rejected)):
            if rows:
                self._write_part(name, rows)
        self.part += 1

    def _columns(self, rows: Sequence[Mapping[str, Any]], rejects: bool) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {"record_id": [r["id"] for r in rows]}
        values = columns_of([r["skeleton"] for r in rows], self.variables)
        cols |= {v: list(column) for v, column in zip(self.variables, values, strict=True)}
        cols["text"] = [r["text"] for r in rows]
        cols["rounds"] = [max(r["attempts"] - 1, 0) for r in rows]
        cols["llm_calls"] = [r["llm_calls"] for r in rows]
        cols["tokens"] = [r["tokens"] for r in rows]
        cols["history"] = [json.dumps(r["history"]) if r["history"] else "[]" for r in rows]
        cols["references"] = [
            json.dumps([p["id"] for p in refs]) if (refs := r.get("references")) else "[]" for r in rows
        ]
        if rejects:
            cols["reason"] = ["; ".join(v["message"] for v in r["violations"]) for r in rows]
        return cols
