"""Node ``write``: flush the batch's accepted and rejected records to the sinks; finish the run's files."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from causalsynth.agents.context import RunContext
from causalsynth.agents.state import RunState


def write(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Write the batch; after the last batch, close the tables and write the report."""
    ctx = runtime.context
    accepted = state.get("accepted", [])
    rejected = state.get("rejected", [])
    failed = state.get("failed", [])
    if failed and ctx.sink is not None:  # into the batch's own part, before the batch's other files
        ctx.sink.write_failed(failed)
    ctx.flush(accepted, rejected, len(accepted) + len(rejected) + len(failed))
    report = state.get("report")
    if report is not None:
        ctx.finish(report)
    return {"accepted": Overwrite([]), "rejected": Overwrite([]), "failed": Overwrite([]),
            "info": {"batch": state.get("batch", 0), "accepted": len(accepted), "rejected": len(rejected),
                     "finished": report is not None} | ({"failed": len(failed)} if failed else {})}  # fmt: skip
