"""Node ``validate_schema``: skeleton values are states of their variables; texts keep the spec's format."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.context import RunContext
from causalsynth.agents.state import Record, RunState
from causalsynth.tools.text.format_check import check_skeleton, check_text, skeletons_to_check, texts_to_check


def validate_schema(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Add schema violations to each record in flight (the verifier routes on all violations together)."""
    domain = runtime.context.domain
    rules = domain.lexicon.text
    records = state.get("records", [])
    first = [i for i, r in enumerate(records) if r["attempts"] == 1]  # a skeleton is checked on its first attempt
    suspects = {first[j] for j in skeletons_to_check(domain.network, [records[i]["skeleton"] for i in first])}
    texts = set(texts_to_check([r["text"] for r in records], rules))  # the others keep every format rule
    out: list[Record] = []
    failing = 0
    for i, r in enumerate(records):
        found = check_skeleton(domain.network, r["skeleton"]) if i in suspects else []
        if i in texts and (r["text"] or not r["violations"]):  # a failed generation already says why it is empty
            found += check_text(r["text"], rules)
        if found:
            failing += 1
            r = {**r, "violations": r["violations"] + found}
        out.append(r)
    return {"records": out, "info": {"batch": state.get("batch", 0), "n": len(out), "failing": failing}}
