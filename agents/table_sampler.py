"""Node ``sample_tables``: the next batch of whole records (root rows and their descendants)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.table_context import TableRunContext
from causalsynth.agents.table_state import TableRunState


def sample_tables(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """Start the next batch: ``batch_size`` root rows (fewer at the end) with every descendant row."""
    ctx = runtime.context
    start = state.get("next_id", 0)
    stop = min(start + ctx.settings.batch_size, state["n_requested"])
    tables = ctx.take(start, stop)
    realised = ctx.schema.realised()
    if realised is not None:
        tables[realised[0]]["_attempts"] = [0] * len(tables[realised[0]][realised[1]])
    batch = state.get("batch", -1) + 1
    rows = {t: len(next(iter(cols.values()), [])) for t, cols in tables.items()}
    return {"tables": tables, "next_id": stop, "batch": batch, "round": 0, "violations": [], "feedback": {},
            "info": {"batch": batch, "first_id": start, "n": stop - start, "rows": rows}}  # fmt: skip
