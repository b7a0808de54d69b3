"""Node ``repair``: fix what can be fixed without an LLM, and send the rest to the Generator.

A violation whose columns are drawn by a provider, an offset or a per-state range is repaired by drawing the
column again for that row, with every column computed from it (``tools.relational.repair``). Text violations become
feedback for the Generator, naming exactly what was wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.agents.table_state import TableRunState
from causalsynth.tools.relational.repair import repair_rows
from causalsynth.tools.text.realisation import Violation


def repair(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """Redraw the columns of resample violations; collect text violations as the Generator's feedback."""
    ctx = runtime.context
    schema = ctx.schema
    frames = ctx.frames(state.get("tables", {}))
    rnd = state.get("round", 1)
    violations = state.get("violations", [])
    feedback: dict[str, list[Violation]] = defaultdict(list)
    for v in violations:
        if v["fix"] == "generate":
            feedback[str(v["row"])].append(
                Violation(kind=v["kind"], variable=v["column"] or "text", expected=None, found=v["value"],
                          message=v["message"])
            )  # fmt: skip
    redrawn = repair_rows(ctx.sampler, frames, [v for v in violations if v["fix"] == "resample"], rnd)
    tables = {t: to_columns(frames[t]) for t in schema.record_tables}
    info = {"batch": state.get("batch", 0), "round": rnd, "redrawn": redrawn, "to_generator": len(feedback)}
    return {"tables": tables, "feedback": dict(feedback), "totals": {"values_redrawn": redrawn}, "info": info}
