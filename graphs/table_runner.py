"""Run the relational graph end to end (the CLI's ``run`` for specs that declare tables)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphs.context import RunSettings
from graphs.runner import check_settings, invoke_run
from graphs.table_builder import build_table_graph, table_recursion_limit
from graphs.table_context import TableRunContext, to_columns
from tools.errors import UsageError
from tools.realisation import Realiser
from tools.retrieval import Retriever
from tools.spec import Domain
from tools.table_sinks import TableSink


def run_tables(
    domain: Domain,
    realiser: Realiser,
    settings: RunSettings,
    out_dir: Path | None,
    *,
    progress: Callable[[int], None] | None = None,
    retriever: Retriever | None = None,
) -> dict[str, Any]:
    """Generate ``settings.n`` root records with their child rows; write the tables and database; return the report.

    Raises:
        UsageError: bad settings, or a spec without tables.
        DataError: the output folder cannot be written, or SQLite refused a row.
    """
    check_settings(settings)
    if retriever is not None:
        retriever.start_run()
    if domain.schema is None:
        raise UsageError(f"{domain.source}: the spec declares no tables")
    sink = TableSink(out_dir, domain.schema) if out_dir is not None else None
    context = TableRunContext(
        domain=domain, realiser=realiser, settings=settings, sink=sink, retriever=retriever, progress=progress
    )
    if sink is not None and domain.schema.lookups:  # written first: record rows reference them
        try:
            sink.write([{t: to_columns(f) for t, f in context.lookups.items()}], [])
        except BaseException as exc:
            sink.abort(f"{type(exc).__name__}: {exc}")
            raise
    limit = table_recursion_limit(settings.n, settings.batch_size, settings.max_rounds)
    return invoke_run(build_table_graph(), context, sink, settings.n, limit)
