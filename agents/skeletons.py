"""Node ``sample``: the next batch of skeletons, as fresh records."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.context import RunContext
from causalsynth.agents.state import Record, RunState


def sample(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Start the next batch: ``batch_size`` skeletons (fewer at the end of the run)."""
    ctx = runtime.context
    start = state.get("next_id", 0)
    stop = min(start + ctx.settings.batch_size, state["n_requested"])
    skeletons = ctx.skeletons.take(start, stop)
    records = [
        Record(id=start + i, skeleton=sk, text="", attempts=0, llm_calls=0, tokens=0, tokens_estimated=False,
               violations=[], history=[])
        for i, sk in enumerate(skeletons)
    ]  # fmt: skip
    ctx.ledger.add_codes("skeleton", ctx.skeletons.codes(slice(start, stop)), stop - start)
    batch = state.get("batch", -1) + 1
    return {"records": records, "next_id": stop, "batch": batch, "round": 0,
            "info": {"batch": batch, "first_id": start, "n": len(records)}}  # fmt: skip
