"""Node ``retrieve``: reference passages from the corpus for each new record of the batch (``tools.retrieval``).

Records sent back for correction keep the passages they had, so a correction sees the same references as the
attempt it corrects. Without a retriever (``--no-retrieval``, or a realiser that uses no model) the node passes
the batch through.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.context import RunContext
from causalsynth.agents.state import Record, RunState


def retrieve(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Attach ``references`` to the batch's records that have none yet; one batched query."""
    ctx = runtime.context
    records = state.get("records", [])
    info: dict[str, Any] = {"batch": state.get("batch", 0)}
    if ctx.retriever is None:
        return {"info": info | {"retrieval": "off"}}
    todo = [r for r in records if "references" not in r]
    before = ctx.retriever.seconds
    found = iter(ctx.retriever.retrieve([(r["id"], r["skeleton"]) for r in todo]))
    out: list[Record] = [r if "references" in r else {**r, "references": next(found)} for r in records]
    passages = sum(len(r.get("references", ())) for r in out)
    return {"records": out,
            "info": info | {"n": len(todo), "passages": passages,
                            "retrieval_seconds": round(ctx.retriever.seconds - before, 6)}}  # fmt: skip
