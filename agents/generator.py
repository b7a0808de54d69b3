"""Node ``generate``: the Generator agent realises every record in flight, with feedback in iterative mode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.context import RunContext
from causalsynth.agents.run_plugins import TOOL_ERROR, run_plugins
from causalsynth.agents.state import Record, RunState
from causalsynth.tools.text.realisation import RealisationRequest, Violation


def generate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Realise the batch's pending records in one realiser call (the realiser handles concurrency)."""
    ctx = runtime.context
    records = state.get("records", [])
    iterative = ctx.settings.mode == "iterative"
    requests = [
        RealisationRequest(
            record_id=r["id"],
            skeleton=r["skeleton"],
            attempt=r["attempts"],
            feedback=r["violations"] if iterative else (),
            previous_text=(r["text"] or None) if iterative and r["attempts"] else None,
            references=tuple(p["text"] for p in r.get("references", ())),
        )
        for r in records
    ]
    plugins = run_plugins(ctx)
    tools = plugins.call_tools(requests, ctx.emit) if plugins is not None and plugins.caller and requests else None
    if tools is not None:  # what the tools returned reaches the prompt as reference material
        requests = [replace(q, references=(*q.references, *t.references)) for q, t in zip(requests, tools, strict=True)]
    results = ctx.realiser.realise(requests) if requests else []
    if len(results) != len(requests):
        raise RuntimeError(f"realiser {ctx.realiser.name} returned {len(results)} texts for {len(requests)} requests")
    out: list[Record] = []
    calls = tokens = failures = dropped = 0
    for i, (record, res) in enumerate(zip(records, results, strict=True)):
        violations: list[Violation] = []
        if tools is not None:
            calls += tools[i].model_calls
            violations += [
                Violation(
                    kind=TOOL_ERROR,
                    variable=c.tool,
                    expected=None,
                    found=None,
                    message=f"generator tool {c.tool} failed: {c.error}",
                )
                for c in tools[i].errors
            ]
        if res.error is not None:
            failures += 1
            kind = "infrastructure" if getattr(res, "infrastructure", False) else "generation"
            violations.append(
                Violation(kind=kind, variable="text", expected=None, found=None,
                          message=f"the generator failed: {res.error}")
            )  # fmt: skip
        used = res.prompt_tokens + res.completion_tokens
        calls += res.llm_calls
        dropped += res.dropped_sentences
        tokens += used
        out.append(
            {
                **record,
                "text": res.text if res.error is None else "",
                "attempts": record["attempts"] + 1,
                "llm_calls": record["llm_calls"] + res.llm_calls + (tools[i].model_calls if tools is not None else 0),
                "tokens": record["tokens"] + used,
                "tokens_estimated": record["tokens_estimated"] or res.tokens_estimated,
                "violations": violations,
            }
        )
    rnd = state.get("round", 0) + 1
    return {"records": out, "round": rnd, "totals": {"dropped_sentences": dropped},
            "info": {"batch": state.get("batch", 0), "round": rnd, "n": len(out), "llm_calls": calls,
                     "tokens": tokens, "failed_calls": failures, "dropped_sentences": dropped,
                     "realiser": ctx.realiser.name}
                     | ({"tool_calls": sum(len(t.calls) for t in tools),
                         "tool_errors": sum(len(t.errors) for t in tools)} if tools is not None else {})}  # fmt: skip
