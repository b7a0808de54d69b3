"""Relational runs (specs with ``tables:``) sharded over a Dask cluster: the tables of the single-process run.

A relational record is a root row with all its descendants, so shards cut the root rows: every child row is in
its parent's shard and no foreign key crosses shards (lookup tables belong to no record; every shard has them).
What makes a shard's rows equal to the single-process run's:

- **Whole batches**: a shard is a run of whole batches of the single-process run (its first id a multiple of the
  batch size): a repaired unique value is checked against the values accepted in earlier batches (below). So a
  run of ``n`` records in batches of ``b`` has at most ``ceil(n / b)`` shards.
- **The same draw**: every worker draws the run's rows once (seeded; cached for the next shards of the run) and
  takes its shard's records from it, with global ids and keys, as the single-process run takes each batch.
- **Unique values** are made distinct over the whole draw before any record is validated (the draw redraws
  later repeats: ``RelationalSampler.sample``), and a value a repair draws is checked against the record that
  drew it first anywhere in the run (``tools.relational.checks.unique_owners``), so these checks do not depend on
  which batches came before. What is left is the rare value that two repairs draw anew: in one shard it is
  caught as in the single-process run (against values accepted in earlier batches); in two shards it reaches
  the merge, where the database's ``UNIQUE`` constraint fails the run with a message naming the column and
  value, rather than write tables that differ from the single-process run's.

A shard writes its accepted rows per table, its rejects and its failed texts (infrastructure failures; only a shard
that had some) as Parquet in a private folder, then publishes them as ``TABLE.parquet/shard-00003.parquet`` (a
re-run shard replaces its files). When every shard is done the client
writes, once: each table's CSV, and ``database.sqlite`` with the schema's constraints (keys, foreign keys,
``UNIQUE``, types; lookup tables first, then each shard's rows, parents first), then the report from the sum of
every shard's counters (compliance and selection drift over the whole output).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from causalsynth.agents.context import RunSettings
from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.graphs.builder import build_graph, compile_graph, extra_nodes, recursion_limit
from causalsynth.graphs.dask_engine import (
    SHARDS,
    STAGE,
    EngineOptions,
    _abandoned,
    _build_realiser,
    _cached,
    _collect_events,
    _event,
    _gate,
    _gather,
    _model_key,
    _plain,
    _tune_malloc,
    check_engine,
    default_shards,
    invoke_traced,
    mark_done,
    merge_traces,
    merged_metrics,
    merged_retriever,
    metric_rows,
    move_datasets,
    open_client,
    plan_batch_shards,
    plan_record,
    publish_traces,
    resume_plan,
    retrieval_counts,
    shard_retriever,
    worker_retrieval,
    write_plan,
)
from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.llm.factory import LLMOptions
from causalsynth.tools.relational.checks import TableViolation
from causalsynth.tools.relational.report import table_report
from causalsynth.tools.relational.tables import TableSchema
from causalsynth.tools.retrieval.retriever import RetrievalSettings, Retriever
from causalsynth.tools.sinks.folder import EVENTS, REJECTS, REPORT
from causalsynth.tools.sinks.run_folder import FAILED
from causalsynth.tools.sinks.sqlite import SqliteSink
from causalsynth.tools.sinks.table_folder import ARROW_TYPES, DATABASE, REJECT_SCHEMA, violation_table
from causalsynth.tools.spec import Domain
from causalsynth.tools.tabular import write_text

#: Rows per SQLite transaction and per CSV write when the shards are merged.
MERGE_CHUNK = 50_000


def plan_table_shards(n: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous ``[first, stop)`` ranges of root rows, each a run of whole batches, covering ``0 .. n``."""
    return plan_batch_shards(n, batch_size, shards)


def table_schemas(schema: TableSchema) -> dict[str, pa.Schema]:
    """The Arrow schema of each table's files (the spec's columns, hidden ones left out)."""
    return {
        t: pa.schema([pa.field(c, ARROW_TYPES[cs.type]) for c, cs in schema.tables[t].columns.items()])
        for t in schema.order
    }


class ShardTableSink:
    """One shard's output: accepted rows per record table and rejects as Parquet in a private folder, events."""

    def __init__(self, folder: Path, schema: TableSchema) -> None:
        self.folder = folder
        self.schema = schema
        self.finished = False
        folder.mkdir(parents=True)
        self._schemas = table_schemas(schema)
        self._parquet = {t: pq.ParquetWriter(folder / f"{t}.parquet", self._schemas[t]) for t in schema.record_tables}
        self._rejects = pq.ParquetWriter(folder / REJECTS, REJECT_SCHEMA)
        self._failed: pq.ParquetWriter | None = None  # made by the first failed text
        self._events = (folder / EVENTS).open("w", encoding="utf-8")

    def event(self, event: Mapping[str, Any]) -> None:
        """Append one event to the shard's ``run.jsonl``."""
        self._events.write(json.dumps(event, default=str) + "\n")
        self._events.flush()

    def write(self, accepted: Sequence[Mapping[str, Mapping[str, Sequence[Any]]]], rejected: Sequence[Any]) -> None:
        """Append a settled batch's accepted records (lookup tables are the client's) and rejection reasons."""
        for tables in accepted:
            for t in (t for t in self.schema.record_tables if t in tables):
                cols = {c: list(tables[t][c]) for c in self.schema.tables[t].columns}
                self._parquet[t].write_table(pa.Table.from_pydict(cols, schema=self._schemas[t]))
        if rejected:
            self._rejects.write_table(violation_table(rejected))

    def write_failed(self, failed: Sequence[TableViolation]) -> None:
        """Append texts that failed for infrastructure reasons (the shard's part of ``failed.parquet``)."""
        if self._failed is None:
            self._failed = pq.ParquetWriter(self.folder / FAILED, REJECT_SCHEMA)
        self._failed.write_table(violation_table(failed))

    def _writers(self) -> list[pq.ParquetWriter]:
        return [*self._parquet.values(), self._rejects, *([self._failed] if self._failed is not None else [])]

    def finish(self, report: Mapping[str, Any]) -> None:
        """Close the files (the shard's own report is not kept: the client reports over every shard)."""
        for writer in self._writers():
            writer.close()
        self.finished = True

    def close(self) -> None:
        """Close the event log; a shard that did not finish aborts."""
        if not self.finished:
            self.abort("the shard ended before its last batch was written")
        self._events.close()

    def abort(self, reason: str) -> None:
        """Close the files; the private folder is discarded by whoever re-runs or aborts the run."""
        if not self.finished:
            for writer in self._writers():
                try:
                    writer.close()
                except (OSError, pa.ArrowException):
                    pass
            self.finished = True
            if not self._events.closed:
                self.event({"event": "aborted", "reason": reason})


@dataclass(frozen=True)
class TableShardJob:
    """What one shard of a relational run needs; pickled to the worker."""

    index: int
    first: int
    stop: int
    domain: Domain
    settings: RunSettings
    llm: str
    options: LLMOptions
    out_dir: str
    model_key: str
    gate: tuple[str, int] | None = None
    trace: str = "off"
    retrieval: RetrievalSettings | None = None


@dataclass
class TableShardResult:
    """What a shard hands back: its counters, the lookup tables (shard 0 only), and where it ran."""

    index: int
    first: int
    stop: int
    totals: dict[str, float]
    realiser: str
    pid: int
    built: bool
    seconds: float
    lookups: dict[str, pd.DataFrame] = field(default_factory=dict)
    metric_rows: list[dict[str, Any]] = field(default_factory=list)
    retrieval: dict[str, Any] | None = None


def _base_context(job: TableShardJob) -> TableRunContext:
    """The run's draw on this worker (rows, lookup tables, unique values' owners), computed once per run."""
    base = TableRunContext(domain=job.domain, realiser=None, settings=job.settings)  # type: ignore[arg-type]
    _ = base.lookups, base.owners, base.resamplable  # drawn now, before shards share it
    return base


def run_table_shard(job: TableShardJob) -> TableShardResult:
    """Run root rows ``job.first .. job.stop`` (whole batches) through the relational graph; publish the files."""
    started = time.perf_counter()
    _tune_malloc()
    realiser, built = _cached(job.model_key, lambda: _build_realiser(job))  # type: ignore[arg-type]
    base, _ = _cached(f"tables:{job.model_key}:{job.settings.n}", lambda: _base_context(job))
    graph, _ = _cached(f"graph:tables:{job.model_key}", lambda: compile_graph(build_graph(job.domain), True))
    out = Path(job.out_dir)
    folder = out / SHARDS / f"{job.index:05d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sink = ShardTableSink(folder, base.schema)
    ctx = copy.copy(base)  # shares the draw; the sink, plugins and unique values accepted are this shard's
    ctx.realiser, ctx.settings, ctx.sink, ctx.started = realiser, job.settings, sink, started
    ctx.seen = {}
    ctx.retriever = shard_retriever(job)
    s = job.settings
    limit = recursion_limit(job.stop - job.first, s.batch_size, s.max_rounds, extra_nodes=extra_nodes(graph))
    start = {"n_requested": job.stop, "next_id": job.first, "totals": {}, "report": None}
    try:
        final = invoke_traced(graph, start, ctx, limit, job.trace, folder, job.index)
    except BaseException as exc:
        sink.abort(f"{type(exc).__name__}: {exc}")
        sink.close()
        raise
    sink.close()
    _publish(folder, out, job.index, base.schema)
    lookups = {t: base.lookups[t][list(base.schema.tables[t].columns)] for t in base.schema.lookups}
    result = TableShardResult(
        index=job.index, first=job.first, stop=job.stop, totals=dict(final.get("totals") or {}),
        realiser=realiser.name, pid=os.getpid(), built=built, seconds=time.perf_counter() - started,
        lookups=lookups if job.index == 0 else {}, metric_rows=metric_rows(ctx),
        retrieval=retrieval_counts(ctx.retriever),
    )  # fmt: skip
    mark_done(out, result)
    return result


def _publish(folder: Path, out: Path, index: int, schema: TableSchema) -> None:
    """Move a finished shard's files into the run's datasets under fixed names (a re-run replaces, never adds)."""
    for name in [*_datasets(schema), FAILED]:
        if name == FAILED and not (folder / name).exists():  # only a shard with failed texts has one
            continue
        dest = _staged(out, name, index)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder / name, dest)
    os.replace(folder / EVENTS, out / SHARDS / f"events-{index:05d}.jsonl")
    publish_traces(folder, out, index)
    shutil.rmtree(folder, ignore_errors=True)


def _datasets(schema: TableSchema) -> list[str]:
    """The run's Parquet datasets, one file per shard: the record tables and the rejects."""
    return [*(f"{t}.parquet" for t in schema.record_tables), REJECTS]


def _staged(out: Path, name: str, index: int) -> Path:
    """Shard ``index``'s file of dataset ``name`` until the run ends (then ``name/shard-00003.parquet``)."""
    return out / SHARDS / STAGE / name / f"shard-{index:05d}.parquet"


# -- on the client ---------------------------------------------------------------------------------------------


def _outputs(schema: TableSchema) -> list[str]:
    return [*(f"{t}.{ext}" for t in schema.order for ext in ("parquet", "csv")), DATABASE, REJECTS]


def _prepare_folder(out: Path, schema: TableSchema) -> None:
    """Remove a previous run's outputs (files or datasets) and shard folders; create the folder."""
    try:
        if out.exists() and not out.is_dir():
            raise DataError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        stale = (*_outputs(schema), *(f".{n}.partial" for n in _outputs(schema)), REPORT, SHARDS, EVENTS,
                 "records.parquet", "failed.parquet", "report.html", ".checkpoints.sqlite", "traces.jsonl")  # fmt: skip
        for name in stale:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        (out / SHARDS).mkdir()
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror or exc}") from None


@dataclass
class ShardedTables:
    """A finished sharded relational run: the report and where each shard ran."""

    report: dict[str, Any]
    shards: list[TableShardResult] = field(default_factory=list)


def run_tables_sharded(
    domain: Domain,
    llm: str,
    options: LLMOptions,
    settings: RunSettings,
    out: Path,
    engine: EngineOptions,
    *,
    progress: Callable[[int], None] | None = None,
    resume: bool = False,
    trace: str = "off",
    retriever: Retriever | None = None,
    guard: Any = None,
    dp_void: bool = False,
) -> ShardedTables:
    """Run ``settings.n`` relational records as shards on a Dask cluster; write the run folder ``out``.

    ``resume`` continues an interrupted run in ``out``, running only the shards that left no completion marker.

    Raises:
        UsageError: bad engine options, or the scheduler cannot be reached.
        DataError: the folder cannot be written, or the database refused a row (e.g. a value two shards drew
            anew for a unique column, as the single-process run would fail on it).
    """
    check_engine(engine)
    assert domain.schema is not None
    if guard is not None:
        raise UsageError("--privacy-reference: the guard checks specs of single records; this spec has tables")
    schema = domain.schema
    started = time.perf_counter()
    record = plan_record(domain, llm, options, settings, retrieval=repr(worker_retrieval(retriever)))
    ranges, done = resume_plan(out, record, engine.shards, TableShardResult) if resume else ([], {})
    if not resume:
        _prepare_folder(out, schema)
    events = (out / EVENTS).open("a" if resume else "w", encoding="utf-8")
    try:
        with open_client(engine) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            wanted = engine.shards or default_shards(settings.n, workers)
            if not resume:
                ranges = plan_table_shards(settings.n, settings.batch_size, wanted)
                write_plan(out, record, ranges)
            key = _model_key(domain, llm, options, settings.seed)
            gate = _gate(client, llm, options, key)
            jobs = [
                TableShardJob(index=i, first=a, stop=b, domain=domain, settings=settings, llm=llm, options=options,
                              out_dir=str(out), model_key=key, gate=gate, trace=trace,
                              retrieval=worker_retrieval(retriever))
                for i, (a, b) in enumerate(ranges) if i not in done
            ]  # fmt: skip
            _event(events, {"event": "engine", "engine": "dask", "scheduler": engine.scheduler or "LocalCluster",
                            "workers": workers, "shards": len(ranges), "shards_asked": wanted,
                            "batch_size": settings.batch_size}
                           | ({"resumed": True, "shards_kept": sorted(done)} if resume else {}))  # fmt: skip
            if progress is not None and done:
                progress(sum(r.stop - r.first for r in done.values()))
            ran: list[TableShardResult] = _gather(client, jobs, events, progress, run_table_shard)
        results = sorted([*done.values(), *ran], key=lambda r: r.index)
        merge_tables(schema, out, results)
    except BaseException as exc:
        _abort(out, events, schema, exc)
        raise
    totals: Counter[str] = Counter()
    for r in results:
        totals.update(r.totals)
    report = table_report(domain.name, schema, dict(totals), settings, time.perf_counter() - started)
    merged = merged_retriever(retriever, results)
    report["retrieval"] = merged.summary() if merged is not None else None
    report |= merged_metrics(domain, results)
    report["engine"] = {"name": "dask", "shards": len(results), "workers": len({r.pid for r in results}),
                        "rerun": _abandoned(out)} | ({"resumed_shards": len(done)} if resume else {})  # fmt: skip
    _collect_events(out, events, len(results))
    _event(events, {"event": "finished", "n_accepted": report["n_accepted"], "n_rejected": report["n_rejected"]})
    events.close()
    merge_traces(out, len(results))
    shutil.rmtree(out / SHARDS, ignore_errors=True)
    write_text(json.dumps(report, indent=2, sort_keys=True, default=_plain) + "\n", out / REPORT)
    return ShardedTables(report=report, shards=results)


def merge_tables(schema: TableSchema, out: Path, results: Sequence[TableShardResult]) -> None:
    """Write, once, the database (with its constraints) and each table's CSV from the shards' files.

    Lookup tables go first (and into ``TABLE.parquet`` as one file), then every shard's rows in shard order,
    parents first, so rows keep the single-process run's order. Files are written as ``.NAME.partial`` and moved
    into place at the end.

    Raises:
        DataError: a file cannot be written, or SQLite refused a row (named).
    """
    schemas = table_schemas(schema)
    partial = {name: out / f".{name}.partial" for name in (DATABASE, *(f"{t}.csv" for t in schema.order))}
    lookups = next((r.lookups for r in results if r.index == 0), {})
    try:
        db = SqliteSink(partial[DATABASE], schema)
        csv = {t: pacsv.CSVWriter(str(partial[f"{t}.csv"]), schemas[t]) for t in schema.order}
        try:
            for t in schema.lookups:
                rows = pa.Table.from_pydict(to_columns(lookups[t]), schema=schemas[t])
                db.insert({t: rows.to_pydict()})
                csv[t].write_table(rows)
                pq.write_table(rows, out / f".{t}.parquet.partial")
            for r in sorted(results, key=lambda r: r.index):
                for t in schema.record_tables:
                    path = _staged(out, f"{t}.parquet", r.index)
                    for chunk in pq.ParquetFile(path).iter_batches(MERGE_CHUNK):
                        rows = pa.Table.from_batches([chunk], schema=schemas[t])
                        try:
                            db.insert({t: rows.to_pydict()})
                        except DataError as exc:
                            why = str(exc).partition(": ")[2]
                            raise DataError(f"merging shard {r.index} (records {r.first}..{r.stop - 1}) into "
                                            f"{DATABASE}: {why}{_hint(why)}") from None  # fmt: skip
                        csv[t].write_table(rows)
        finally:
            db.close()
            for writer in csv.values():
                writer.close()
        for t in schema.lookups:
            os.replace(out / f".{t}.parquet.partial", out / f"{t}.parquet")
        move_datasets(out, [*_datasets(schema), FAILED], required=_datasets(schema))
        for name, path in partial.items():
            os.replace(path, out / name)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{out}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None


def _hint(message: str) -> str:
    if "UNIQUE" not in message:
        return ""
    return ("; repairs in two shards drew the same new value, which one run would have drawn again: run with fewer "
            "shards or --engine local, or give the column more possible values")  # fmt: skip


def _abort(out: Path, events: Any, schema: TableSchema, exc: BaseException) -> None:
    """No output looks complete after a failed run; ``run.jsonl`` says why (finished shards stay for a resume)."""
    for name in _outputs(schema):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for name in _outputs(schema):
        (out / f".{name}.partial").unlink(missing_ok=True)
    if not events.closed:
        _event(events, {"event": "aborted", "reason": f"{type(exc).__name__}: {exc}"})
        events.close()


__all__ = ["ShardedTables", "merge_tables", "plan_table_shards", "run_table_shard", "run_tables_sharded"]
