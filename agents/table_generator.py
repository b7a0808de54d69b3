"""Node ``generate_text``: the Generator realises the text column of new rows and of rows sent back to it.

A text whose model call failed for infrastructure reasons (connection, timeout, 5xx after the realiser's retries;
``Realisation.infrastructure``) is marked in the hidden column ``_failed`` with the reason: the Schema Validator
sets its record aside as failed (``agents.table_validator``) instead of sending the empty text to repair.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.table_context import TableRunContext
from causalsynth.agents.table_state import FAILED, TableRunState
from causalsynth.tools.relational.sampling import var_column
from causalsynth.tools.text.realisation import RealisationRequest


def generate_text(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """Realise each pending text (empty, or with feedback) from the row's variable states; one realiser call."""
    ctx = runtime.context
    realised = ctx.schema.realised()
    tables = state.get("tables", {})
    if realised is None or realised[0] not in tables:
        return {"info": {"batch": state.get("batch", 0), "n": 0}}
    table, column = realised
    cols = {c: list(v) for c, v in tables[table].items()}
    pk = ctx.schema.pk(table)
    feedback = state.get("feedback", {})
    names = ctx.domain.network.names
    failed = cols.get(FAILED) or [None] * len(cols[pk])  # texts whose call failed: set aside, not written again
    todo = [
        i
        for i, (key, text, why) in enumerate(zip(cols[pk], cols[column], failed, strict=True))
        if why is None and (not text or str(key) in feedback)
    ]
    skeletons = [{v: cols[var_column(v)][i] for v in names} for i in todo]
    references: list[tuple[str, ...]] = [()] * len(todo)
    if ctx.retriever is not None and todo:  # seeded by the row's key: a correction gets the same passages again
        found = ctx.retriever.retrieve([(int(cols[pk][i]), s) for i, s in zip(todo, skeletons, strict=True)])
        references = [tuple(p["text"] for p in ps) for ps in found]
    requests = [
        RealisationRequest(
            record_id=int(cols[pk][i]),
            skeleton=skeleton,
            attempt=int(cols["_attempts"][i]),
            feedback=feedback.get(str(cols[pk][i]), ()) if ctx.settings.mode == "iterative" else (),
            previous_text=(cols[column][i] or None) if ctx.settings.mode == "iterative" else None,
            references=refs,
        )
        for i, skeleton, refs in zip(todo, skeletons, references, strict=True)
    ]
    results = ctx.realiser.realise(requests) if requests else []
    if len(results) != len(requests):
        raise RuntimeError(f"realiser {ctx.realiser.name} returned {len(results)} texts for {len(requests)} requests")
    calls = tokens = errors = down = 0
    for i, res in zip(todo, results, strict=True):
        cols[column][i] = res.text if res.error is None else ""
        cols["_attempts"][i] = int(cols["_attempts"][i]) + 1
        calls += res.llm_calls
        tokens += res.prompt_tokens + res.completion_tokens
        errors += res.error is not None
        if res.error is not None and getattr(res, "infrastructure", False):  # the network's failure, not the text's
            failed[i] = f"the generator failed: {res.error}"
            down += 1
    if down:
        cols[FAILED] = failed
    return {"tables": {**tables, table: cols}, "feedback": {},
            "totals": {"llm_calls": calls, "tokens": tokens, "texts_realised": len(todo)},
            "info": {"batch": state.get("batch", 0), "n": len(todo), "llm_calls": calls, "failed_calls": errors,
                     "realiser": ctx.realiser.name} | ({"infrastructure_failures": down} if down else {})}  # fmt: skip
