"""Run the graph end to end: build the context, invoke, and return the report (the CLI's ``run``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphs.builder import build_graph, recursion_limit
from graphs.context import RunContext, RunSettings, SkeletonSource
from tools.errors import UsageError
from tools.realisation import Realiser
from tools.retrieval import Retriever
from tools.sinks import RunSink
from tools.spec import Domain

MAX_RECORDS = 50_000_000


def check_settings(settings: RunSettings) -> None:
    """Reject settings no run can honour, naming the value.

    Raises:
        UsageError: on a bad ``n``, ``max_rounds``, ``batch_size``, ``alpha`` or ``mode``.
    """
    if not 1 <= settings.n <= MAX_RECORDS:
        raise UsageError(f"-n must be between 1 and {MAX_RECORDS:,}, got {settings.n}")
    if not 0 <= settings.max_rounds <= 100:
        raise UsageError(f"--max-rounds must be between 0 and 100, got {settings.max_rounds}")
    if not 1 <= settings.batch_size <= 1_000_000:
        raise UsageError(f"--batch-size must be between 1 and 1,000,000, got {settings.batch_size}")
    if not 0.0 < settings.alpha < 1.0:
        raise UsageError(f"alpha must be in (0, 1), got {settings.alpha}")
    if settings.mode not in ("iterative", "rejection"):
        raise UsageError(f"--mode must be 'iterative' or 'rejection', got {settings.mode!r}")


def run(
    domain: Domain,
    realiser: Realiser,
    settings: RunSettings,
    out_dir: Path | None,
    *,
    progress: Callable[[int], None] | None = None,
    retriever: Retriever | None = None,
) -> dict[str, Any]:
    """Generate ``settings.n`` records; write them to ``out_dir`` (if given); return the report.

    ``retriever`` (see ``graphs.retrieval.open_retriever``) adds reference passages to each record's prompt.

    Raises:
        UsageError: bad settings.
        DataError: the output folder cannot be written.
    """
    check_settings(settings)
    if retriever is not None:
        retriever.start_run()
    if domain.schema is not None:  # tables, keys and rules: the relational graph writes tables and a database
        from graphs.table_runner import run_tables  # it reuses this module's helpers

        return run_tables(domain, realiser, settings, out_dir, progress=progress, retriever=retriever)
    sink = RunSink(out_dir, domain.network.names) if out_dir is not None else None
    context = RunContext(
        domain=domain,
        realiser=realiser,
        settings=settings,
        skeletons=SkeletonSource(domain, settings.n, settings.seed),
        sink=sink,
        retriever=retriever,
        progress=progress,
    )
    limit = recursion_limit(settings.n, settings.batch_size, settings.max_rounds)
    return invoke_run(build_graph(), context, sink, settings.n, limit)


def invoke_run(graph: Any, context: Any, sink: Any, n: int, limit: int) -> dict[str, Any]:
    """Invoke a run graph for ``n`` records; on failure the sink aborts (no file looks complete); the report."""
    try:
        final = graph.invoke(
            {"n_requested": n, "next_id": 0, "totals": {}, "report": None},
            context=context,
            config={"recursion_limit": limit},
        )
    except BaseException as exc:
        if sink is not None:
            sink.abort(f"{type(exc).__name__}: {exc}")
        raise
    if sink is not None:
        sink.close()
    report = final.get("report")
    assert report is not None, "the graph ended without a report"
    return dict(report)
