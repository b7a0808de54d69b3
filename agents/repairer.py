"""Node ``repair``: fix what can be fixed without an LLM, and send the rest to the Generator.

A violation whose columns are drawn by a provider, an offset or a per-state range is repaired by drawing the
column again for that row (and every column computed from it); which of the rule's columns is redrawn rotates
with the round, so a rule over two columns can be fixed by either. Text violations become feedback for the
Generator, naming exactly what was wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from graphs.table_context import TableRunContext, to_columns, to_frames
from graphs.table_state import TableRunState
from tools.derive import derive_columns
from tools.realisation import Violation
from tools.relational import resample


def repair(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """Redraw the columns of resample violations; collect text violations as the Generator's feedback."""
    ctx = runtime.context
    schema = ctx.schema
    frames = to_frames(state.get("tables", {}))
    rnd = state.get("round", 1)
    targets: dict[tuple[str, str], set[Any]] = defaultdict(set)
    feedback: dict[str, list[Violation]] = defaultdict(list)
    for v in state.get("violations", []):
        if v["fix"] == "resample":
            column = v["targets"][(rnd - 1) % len(v["targets"])]
            targets[(v["table"], column)].add(v["row"])
        elif v["fix"] == "generate":
            feedback[str(v["row"])].append(
                Violation(kind=v["kind"], variable=v["column"] or "text", expected=None, found=v["value"],
                          message=v["message"])
            )  # fmt: skip
    redrawn = 0
    for (table, column), rows in sorted(targets.items(), key=lambda kv: schema.order.index(kv[0][0])):
        frame = frames[table]
        positions = np.flatnonzero(frame[schema.pk(table)].isin(list(rows)).to_numpy())
        resample(ctx.sampler, frames, table, column, positions, attempt=rnd)
        redrawn += len(positions)
    if redrawn:
        derive_columns(schema, frames)  # totals, counts and spans follow the redrawn values
    tables = {t: to_columns(f) for t, f in frames.items()}
    info = {"batch": state.get("batch", 0), "round": rnd, "redrawn": redrawn, "to_generator": len(feedback)}
    return {"tables": tables, "feedback": dict(feedback), "totals": {"values_redrawn": redrawn}, "info": info}
