"""The output folder of a run of single records: ``records.parquet`` and ``rejects.parquet`` (see ``folder``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from causalsynth.tools.errors import DataError
from causalsynth.tools.sinks.folder import REJECTS, RunFolder

RECORDS = "records.parquet"
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
    """Streams a run's records and rejects into ``out_dir``."""

    def __init__(self, out_dir: Path, variables: Sequence[str]) -> None:
        clash = sorted(set(variables) & set(META_COLUMNS))
        if clash:
            raise DataError(
                f"variable name(s) {', '.join(clash)} clash with output columns ({', '.join(META_COLUMNS)})"
            )
        self.variables = tuple(variables)
        self._writers: dict[str, pq.ParquetWriter] = {}
        super().__init__(out_dir)

    def _names(self) -> list[str]:
        return [RECORDS, REJECTS]

    def _close_files(self, complete: bool) -> None:
        for name in self._names() if complete else list(self._writers):
            self._writer(name).close()  # an empty table is still written, with its columns
        self._writers.clear()

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
