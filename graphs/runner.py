"""Run a spec's graph end to end: build the context for its topology, invoke, and return the report.

One entry point for both topologies: specs with tables get the relational context and sink, others the record ones.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from causalsynth.agents.context import FrameContext, RunContext, RunSettings, SkeletonSource
from causalsynth.agents.resume import (
    fresh_records,
    restore_ledger,
    restore_metric_rows,
    restore_retriever,
    restore_seen,
)
from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.graphs.builder import RUN_GRAPH, build_graph, compile_graph, extra_nodes, recursion_limit
from causalsynth.graphs.durable import (
    BatchSaver,
    check_resumable,
    durable_builder,
    open_saver,
    settings_record,
    start_fresh,
    thread_config,
)
from causalsynth.graphs.durable import finish as durable_finish
from causalsynth.graphs.tracing import RunTracing, check_trace
from causalsynth.tools.errors import UsageError
from causalsynth.tools.quality.guard import MAX_RESAMPLES, PrivacyGuard
from causalsynth.tools.relational.sampling import ENTITY
from causalsynth.tools.retrieval.retriever import Retriever
from causalsynth.tools.sinks.resumable import ResumableRunSink, ResumableTableSink
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
    ``durable`` checkpoints the run in ``out_dir`` at every batch boundary (``graphs.durable``; both topologies,
    and a custom ``graph`` that keeps the batch frame, see ``durable.durable_builder``); ``resume`` continues the
    interrupted run there instead of starting anew, and retries the records that failed for infrastructure reasons
    (also in a run that finished with some). ``guard`` resamples accepted records too close
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
    builder = durable_builder(graph, relational) if durable and graph is not None else None
    record = settings_record(domain.source, settings, graph)
    if resume:
        assert out_dir is not None
        check_resumable(out_dir, record)
    elif durable:
        assert out_dir is not None
        start_fresh(out_dir, record)
    if retriever is not None:
        retriever.start_run()
    context: RunContext | TableRunContext
    sink: Any = None
    if domain.schema is not None:  # tables, keys and rules: the relational graph writes tables and a database
        if out_dir is not None:
            sink = ResumableTableSink(out_dir, domain.schema, resume=resume) if durable else TableSink(
                out_dir, domain.schema)  # fmt: skip
        context = TableRunContext(
            domain=domain, realiser=realiser, settings=settings, sink=sink, retriever=retriever, progress=progress,
        )  # fmt: skip
        if sink is not None and domain.schema.lookups and not resume:  # first: record rows reference them
            try:
                lookups = {t: to_columns(f) for t, f in context.lookups.items()}
                sink.write_lookups(lookups) if durable else sink.write([lookups], [])
            except BaseException as exc:
                sink.abort(f"{type(exc).__name__}: {exc}")
                raise
    else:
        if out_dir is not None:
            names = domain.network.names
            sink = ResumableRunSink(out_dir, names, resume=resume) if durable else RunSink(out_dir, names)
        context = RunContext(
            domain=domain, realiser=realiser, settings=settings, retriever=retriever, progress=progress,
            skeletons=SkeletonSource(domain, settings.n, settings.seed), sink=sink, guard=guard, dp_void=dp_void,
        )  # fmt: skip
    tracing = RunTracing(trace, out_dir, append=resume)  # after the sink: the folder exists, with no stale outputs
    limit = recursion_limit(settings.n, settings.batch_size, settings.max_rounds,
                            MAX_RESAMPLES if guard is not None else 0,
                            extra_nodes(graph if graph is not None else build_graph(domain)))  # fmt: skip
    if not durable:
        compiled = graph if graph is not None else compile_graph(build_graph(domain), relational)
        return invoke_run(compiled, context, limit, config, tracing=tracing)
    assert out_dir is not None and sink is not None
    saver = open_saver(out_dir, written=lambda: int(sink.part))
    if builder is not None:  # the user's graph, compiled again with the run's checkpointer
        name = getattr(graph, "name", None) or RUN_GRAPH
        compiled = builder.compile(checkpointer=saver, name=name, store=getattr(graph, "store", None),
                                   cache=getattr(graph, "cache", None))  # fmt: skip
    else:
        compiled = compile_graph(build_graph(domain), relational, checkpointer=saver)
    try:
        if not resume:
            start = None
        elif isinstance(context, TableRunContext):
            start = restore_tables(compiled, context, saver)
        else:
            start = restore(compiled, context, saver)
        if resume:
            limit += recursion_limit(settings.n, settings.batch_size, settings.max_rounds)  # room for a retry batch
    except BaseException as exc:
        sink.abort(f"{type(exc).__name__}: {exc}")
        raise
    report = invoke_run(compiled, context, limit, config, tracing=tracing, durable=True, resume_from=start)
    durable_finish(out_dir, saver, report)
    return report


def _snapshot(graph: Any) -> dict[str, Any]:
    """The state of the run's last checkpoint (empty if it has none)."""
    return dict(graph.get_state({"configurable": thread_config()}).values or {})


def restore(graph: Any, context: RunContext, saver: BatchSaver) -> dict[str, Any] | None:
    """Bring a resumed run's sink and ledger to its last checkpoint; its state, or None to start from scratch.

    Records that failed for infrastructure reasons in the kept batches are retried: they are put in the state as
    one more batch (a checkpoint kept as it is, so a kill during the retry resumes the retry), which runs before
    the batches still to do, or, for a finished run, before its report is computed again.
    """
    sink = context.sink
    assert isinstance(sink, ResumableRunSink)
    values = _snapshot(graph)
    if not values or "n_requested" not in values:  # killed before the first checkpoint: start again
        sink.resume(0)
        context.emit({"event": "resumed", "batches_kept": 0})
        return None
    in_flight = [r["id"] for r in values.get("records") or []]  # a retry batch checkpointed before it ran
    batches = values.get("batch", -1) + (0 if in_flight else 1)
    sink.resume(batches)
    next_id = int(values.get("next_id", 0))
    failed = sink.failed_ids()
    retry = [] if in_flight else failed
    accepted = sink.accepted_rows()
    restore_ledger(context, next_id, accepted, [i for i in failed if i not in set(in_flight) | set(retry)])
    restore_retriever(context, next_id, accepted)  # the retrieve node queried each record of the kept batches once
    if _has_metrics(context.domain):
        restore_metric_rows(context, records=sink.accepted_records())
    _announce(context, batches, next_id, len(retry or in_flight))
    if retry:
        saver.keep_next = True
        config = graph.update_state(
            {"configurable": thread_config()},
            {"records": fresh_records(context, retry), "batch": batches, "round": 0, "report": None,
             "totals": {"n_failed": -len(retry)}, "info": {"batch": batches, "retrying_failed": len(retry)}},
            as_node="sample",
        )  # fmt: skip
        assert config is not None
        values = _snapshot(graph)
    return values


def _announce(context: RunContext | TableRunContext, batches: int, next_id: int, retrying: int) -> None:
    """Report a resume: progress up to the records kept, and the ``resumed`` event (with the failed ones retried)."""
    if context.progress is not None:
        context.progress(next_id - retrying)  # those are counted again when their batch is written
    event: dict[str, Any] = {"event": "resumed", "batches_kept": batches, "next_id": next_id}
    if retrying:
        event["retrying_failed"] = retrying
    context.emit(event)


def _has_metrics(domain: Domain) -> bool:
    """Whether the spec's plugins compute metrics over the accepted rows (a resume gives them the kept ones)."""
    return domain.plugins is not None and bool(domain.plugins.metrics)


def restore_tables(graph: Any, context: TableRunContext, saver: BatchSaver) -> dict[str, Any] | None:
    """Bring a resumed relational run's parts, database and unique-value sets to its last checkpoint.

    Records whose text failed for infrastructure reasons in the kept batches are retried as ``restore`` retries
    failed records: their drawn rows are put in the state as one more batch (checkpointed as it is, so a kill during
    the retry resumes the retry), which runs before the batches still to do, or, for a finished run, before its
    report is computed again. Their rows start again from the draw, with no attempt made.
    """
    sink = context.sink
    assert isinstance(sink, ResumableTableSink)
    values = _snapshot(graph)
    lookups = {t: to_columns(f) for t, f in context.lookups.items()}
    root = context.schema.root
    in_flight = list((values.get("tables") or {}).get(root, {}).get(ENTITY) or [])  # a retry batch not yet run
    if values and "n_requested" in values:
        batches = values.get("batch", -1) + (0 if in_flight else 1)
    else:
        batches = 0
    sink.resume(batches, lookups)
    restore_seen(context, {t: sink.kept(t) for t in context.schema.record_tables})
    realised = context.schema.realised()
    if realised is not None and context.retriever is not None:  # retrieved for each text written, corrections too
        table, column = realised
        pk = context.schema.pk(table)
        texts = [
            (int(i), str(t))
            for part in sink.kept(table)
            for i, t in zip(part[pk].to_pylist(), part[column].to_pylist(), strict=True)
        ]
        restore_retriever(context, int(values.get("totals", {}).get("texts_realised", 0)), texts)
    if realised is not None and _has_metrics(context.domain):
        restore_metric_rows(context, tables=[{realised[0]: part.to_pydict()} for part in sink.kept(realised[0])])
    if not batches and not values:
        context.emit({"event": "resumed", "batches_kept": 0})
        return None
    next_id = int(values.get("next_id", 0))
    retry = [] if in_flight else sink.failed_entities()
    _announce(context, batches, next_id, len(retry or in_flight))
    if retry:
        tables = context.take_entities(retry)
        if realised is not None:  # as sample_tables starts a batch: no attempt made yet
            tables[realised[0]]["_attempts"] = [0] * len(tables[realised[0]][realised[1]])
        saver.keep_next = True
        config = graph.update_state(
            {"configurable": thread_config()},
            {"tables": tables, "batch": batches, "round": 0, "violations": [], "feedback": {}, "before": [],
             "report": None, "totals": {"entities_failed": -len(retry)},
             "info": {"batch": batches, "retrying_failed": len(retry)}},
            as_node="sample_tables",
        )  # fmt: skip
        assert config is not None
        values = _snapshot(graph)
    return values if "n_requested" in values else None


def run_metadata(context: FrameContext) -> dict[str, Any]:
    """What the root span of a run carries as metadata (the caller's metadata is added over it)."""
    s = context.settings
    return {"spec": context.domain.source, "domain": context.domain.name, "n": s.n, "seed": s.seed, "mode": s.mode,
            "llm": s.llm, "realize": s.realize, "max_rounds": s.max_rounds, "batch_size": s.batch_size}  # fmt: skip


#: Garbage-collector thresholds during a run: a batch allocates hundreds of thousands of short-lived records,
#: texts and lists, and CPython's default (700, 10, 10) then runs a full collection of the whole heap (pgmpy,
#: LangGraph, numpy, ...) every few thousand records; that was 20-30% of the template pipeline's CPU time
#: (ALARM, n = 20,000). Young cycles are still collected, 140 times less often; the thresholds are restored after.
RUN_GC_THRESHOLDS = (100_000, 20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's thresholds to ``RUN_GC_THRESHOLDS`` for the block, then restore them."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(before, RUN_GC_THRESHOLDS, strict=True)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


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
        with fewer_collections():
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
