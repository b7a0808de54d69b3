"""Node ``verify_causal``: read the facts back out of each text, compare with the skeleton, and triage.

Each record goes to exactly one of: ``accepted`` (no violation), ``records`` (another attempt, carrying its
violations as feedback) or ``rejected`` (budget spent; its violation history says why).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langgraph.runtime import Runtime

from causalsynth.agents.context import RunContext
from causalsynth.agents.run_plugins import run_plugins
from causalsynth.agents.state import Attempt, Record, RunState
from causalsynth.agents.triage import record_route
from causalsynth.tools.text.batch_check import states_exactly
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract


def verify_causal(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Check every record in flight and route it to accept, correct or reject.

    The batch is checked at once first (``states_exactly``); a record that states exactly its facts is accepted
    as is, and the others are read one by one, so that their violations name what is wrong.
    """
    ctx = runtime.context
    lexicon = ctx.domain.lexicon
    observed = lexicon.observed
    records = state.get("records", [])
    clean = states_exactly(lexicon, [r["skeleton"] for r in records], [r["text"] for r in records]).tolist()
    routes: dict[str, list[Record]] = {"accept": [], "correct": [], "reject": [], "fail": []}
    kinds: Counter[str] = Counter()
    plugins = run_plugins(ctx)
    tools = plugins.validate(records) if plugins is not None and plugins.validators else None  # the batch at once
    for i, (r, fast) in enumerate(zip(records, clean, strict=True)):
        if fast and not r["violations"] and (tools is None or not tools[i]):
            # It states exactly its skeleton's facts: no "facts" of its own (what a slower attempt read is dropped).
            if "facts" in r:
                r = r.copy()
                del r["facts"]
            routes["accept"].append(r)
            continue
        got = extract(lexicon, r["text"])
        # A failed generator call has no text to check: its one violation says why, without an omission per fact.
        failed = any(v["kind"] in ("generation", "infrastructure") for v in r["violations"])
        violations = r["violations"] if failed else r["violations"] + check_facts(lexicon, r["skeleton"], got)
        if tools is not None and not failed:  # plugin validator tools, beside the built-in checks
            violations = violations + tools[i]
        kinds.update(v["kind"] for v in violations)
        history = r["history"]
        if violations:
            history = [*history, Attempt(attempt=r["attempts"], text=r["text"], violations=violations)]
        checked: Record = {**r, "violations": violations, "history": history, "facts": got.facts(observed)}
        routes[record_route(checked, ctx.settings.max_rounds)].append(checked)
    info = {"batch": state.get("batch", 0), "round": state.get("round", 0)}
    info |= {k: len(v) for k, v in routes.items()} | {f"violations_{k}": n for k, n in sorted(kinds.items())}
    return {"records": routes["correct"], "accepted": routes["accept"], "rejected": routes["reject"],
            "failed": routes["fail"], "info": info}  # fmt: skip
