"""Node ``write_tables``: flush accepted records to the tables and the database; report after the last batch."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from causalsynth.agents.run_plugins import run_plugins
from causalsynth.agents.table_context import TableRunContext
from causalsynth.agents.table_state import TableRunState
from causalsynth.tools.relational.report import table_report


def write_tables(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """Write the batch's accepted rows, rejection reasons and failed texts; after the last batch, the report and files.

    Records that failed for infrastructure reasons are written as ``failed`` rows (``failed.parquet``: which text,
    why), none of their table rows: a resumed run retries them (``graphs.runner.restore_tables``).
    """
    ctx = runtime.context
    accepted = state.get("accepted", [])
    rejected = state.get("rejected", [])
    failed = state.get("failed", [])
    if failed and ctx.sink is not None:  # into the batch's own part, with the batch's other files
        ctx.sink.write_failed(failed)
    done = sum(len(t[ctx.schema.root]["_entity"]) for t in accepted) + len({v["entity"] for v in rejected})
    ctx.flush(accepted, rejected, done + len({v["entity"] for v in failed}))
    realised = ctx.schema.realised()
    if ctx.retriever is not None and realised is not None:  # the leakage check on the accepted texts
        table, column = realised
        pk = ctx.schema.pk(table)
        for tables in accepted:
            rows = tables.get(table, {})
            ctx.retriever.check_copies(list(zip(map(int, rows.get(pk, [])), rows.get(column, []), strict=True)))
    report = None
    if state.get("next_id", 0) >= state.get("n_requested", 0):
        totals = dict(state.get("totals", {}))
        report = table_report(ctx.domain.name, ctx.schema, totals, ctx.settings, time.perf_counter() - ctx.started)
        report["retrieval"] = ctx.retriever.summary() if ctx.retriever is not None else None
        plugins = run_plugins(ctx)
        if plugins is not None and plugins.metrics:  # over the accepted rows the plugin_metrics node kept
            report["metrics"], metrics_failed = plugins.metric_values()
            report["metrics_records"] = len(plugins.rows)  # every accepted record (a resume restores the kept ones)
            report |= {"metrics_failed": metrics_failed} if metrics_failed else {}
        ctx.finish(report)
    return {"accepted": Overwrite([]), "rejected": Overwrite([]), "failed": Overwrite([]), "report": report,
            "info": {"batch": state.get("batch", 0), "records": done, "finished": report is not None}
            | ({"failed": len({v["entity"] for v in failed})} if failed else {})}  # fmt: skip
