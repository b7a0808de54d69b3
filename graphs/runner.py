"""Run a spec's graph end to end: build the context for its topology, invoke, and return the report.

One entry point for both topologies: specs with tables get the relational context and sink, others the record ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from causalsynth.agents.context import FrameContext, RunContext, RunSettings, SkeletonSource
from causalsynth.agents.resume import restore_ledger
from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.graphs.builder import build_graph, compile_graph, extra_nodes, recursion_limit
from causalsynth.graphs.durable import check_resumable, open_saver, settings_record, start_fresh, thread_config
from causalsynth.graphs.durable import finish as durable_finish
from causalsynth.graphs.tracing import RunTracing, check_trace
from causalsynth.tools.errors import UsageError
from causalsynth.tools.quality.guard import MAX_RESAMPLES, PrivacyGuard
from causalsynth.tools.retrieval.retriever import Retriever
from causalsynth.tools.sinks.run_folder import RunSink
from causalsynth.tools.sinks.table_folder import TableSink
from causalsynth.tools.spec import Domain
from causalsynth.tools.text.realisation import Realiser

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
    config: RunnableConfig | None = None,
    graph: Any = None,
    trace: str | None = None,
    durable: bool = False,
    resume: bool = False,
    guard: PrivacyGuard | None = None,
    dp_void: bool = False,
) -> dict[str, Any]:
    """Generate ``settings.n`` records; write them to ``out_dir`` (if given); return the report.

    ``retriever`` (see ``causalsynth.graphs.retrieval.open_retriever``) adds reference passages to each record's
    prompt. ``config`` is a LangChain ``RunnableConfig`` handed to the graph unchanged (callbacks, tags, metadata,
    run_name); ``graph`` replaces the compiled graph (e.g. ``build_graph(domain)`` with a node added). ``trace``
    is ``off`` or ``jsonl`` (spans to ``traces.jsonl`` in ``out_dir``); LangSmith follows its environment variables.
    ``durable`` checkpoints the run in ``out_dir`` at every batch boundary (``graphs.durable``); ``resume``
    continues the interrupted run there instead of starting anew. ``guard`` resamples accepted records too close
    to a training row (``tools.quality.guard``); ``dp_void`` makes the report say a DP guarantee no longer holds.

    Raises:
        UsageError: bad settings.
        DataError: the output folder cannot be written, or SQLite refused a row.
    """
    check_settings(settings)
    if guard is not None and domain.schema is not None:
        raise UsageError("--privacy-reference: the guard checks specs of single records; this spec has tables")
    check_trace(trace, out_dir)
    relational = domain.schema is not None
    durable = (durable or resume) and out_dir is not None
    if durable and (relational or graph is not None):
        if resume:
            raise UsageError("--resume: only runs of single records with the built-in graph can be resumed yet")
        durable = False
    if resume:
        assert out_dir is not None
        check_resumable(out_dir, settings_record(domain.source, settings))
    elif durable:
        assert out_dir is not None
        start_fresh(out_dir, settings_record(domain.source, settings))
    if retriever is not None:
        retriever.start_run()
    context: RunContext | TableRunContext
    if domain.schema is not None:  # tables, keys and rules: the relational graph writes tables and a database
        table_sink = TableSink(out_dir, domain.schema) if out_dir is not None else None
        context = TableRunContext(
            domain=domain, realiser=realiser, settings=settings, sink=table_sink, retriever=retriever,
            progress=progress,
        )  # fmt: skip
        if table_sink is not None and domain.schema.lookups:  # written first: record rows reference them
            try:
                table_sink.write([{t: to_columns(f) for t, f in context.lookups.items()}], [])
            except BaseException as exc:
                table_sink.abort(f"{type(exc).__name__}: {exc}")
                raise
    else:
        context = RunContext(
            domain=domain, realiser=realiser, settings=settings, retriever=retriever, progress=progress,
            skeletons=SkeletonSource(domain, settings.n, settings.seed),
            sink=RunSink(out_dir, domain.network.names, keep_parts=durable, resume=resume)
            if out_dir is not None else None, guard=guard, dp_void=dp_void,
        )  # fmt: skip
    tracing = RunTracing(trace, out_dir, append=resume)  # after the sink: the folder exists, with no stale outputs
    limit = recursion_limit(settings.n, settings.batch_size, settings.max_rounds,
                            MAX_RESAMPLES if guard is not None else 0,
                            extra_nodes(graph if graph is not None else build_graph(domain)))  # fmt: skip
    if not durable:
        compiled = graph if graph is not None else compile_graph(build_graph(domain), relational)
        return invoke_run(compiled, context, limit, config, tracing=tracing)
    assert out_dir is not None and isinstance(context, RunContext)
    saver = open_saver(out_dir)
    compiled = compile_graph(build_graph(domain), relational, checkpointer=saver)
    start = restore(compiled, context) if resume else None
    report = invoke_run(compiled, context, limit, config, tracing=tracing, durable=True, resume_from=start)
    durable_finish(out_dir, saver)
    return report


def restore(graph: Any, context: RunContext) -> dict[str, Any] | None:
    """Bring a resumed run's sink and ledger to its last checkpoint; its state, or None to start from scratch."""
    assert isinstance(context.sink, RunSink)
    snapshot = graph.get_state({"configurable": thread_config()})
    values = dict(snapshot.values or {})
    if not values or "n_requested" not in values:  # killed before the first checkpoint: start again
        context.sink.resume(0)
        context.emit({"event": "resumed", "batches_kept": 0})
        return None
    batches = values.get("batch", -1) + 1
    context.sink.resume(batches)
    next_id = int(values.get("next_id", 0))
    restore_ledger(context, next_id, context.sink.accepted_rows(), context.sink.failed_ids())
    if context.progress is not None:
        context.progress(next_id)
    context.emit({"event": "resumed", "batches_kept": batches, "next_id": next_id})
    return values


def run_metadata(context: FrameContext) -> dict[str, Any]:
    """What the root span of a run carries as metadata (the caller's metadata is added over it)."""
    s = context.settings
    return {"spec": context.domain.source, "domain": context.domain.name, "n": s.n, "seed": s.seed, "mode": s.mode,
            "llm": s.llm, "realize": s.realize, "max_rounds": s.max_rounds, "batch_size": s.batch_size}  # fmt: skip


def invoke_run(
    graph: Any,
    context: FrameContext,
    limit: int,
    config: RunnableConfig | None = None,
    *,
    tracing: RunTracing | None = None,
    durable: bool = False,
    resume_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Invoke a run graph; on failure the sink aborts (no file looks complete); return the report.

    ``durable``: the graph has a checkpointer (it gets a thread id, and checkpoints are written before the next
    step); ``resume_from``: the checkpointed state to continue from (the graph is invoked with no new input).
    """
    tracing = tracing if tracing is not None else RunTracing(None, None)
    merged: dict[str, Any] = dict(tracing.config(config, context.domain.name, run_metadata(context)))
    merged.setdefault("recursion_limit", limit)
    extra: dict[str, Any] = {}
    if durable:
        merged["configurable"] = {**dict(merged.get("configurable") or {}), **thread_config()}
        extra["durability"] = "sync"  # a batch's checkpoint is on disk before the next batch starts
    start = None if resume_from is not None else {"n_requested": context.settings.n, "next_id": 0, "totals": {},
                                                   "report": None}  # fmt: skip
    sink = context.sink
    try:
        final = graph.invoke(start, context=context, config=merged, **extra)
    except BaseException as exc:
        if sink is not None:
            sink.abort(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        tracing.close()
    if sink is not None:
        sink.close()
    report = final.get("report")
    assert report is not None, "the graph ended without a report"
    return dict(report)
