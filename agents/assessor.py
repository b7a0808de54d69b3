"""Node ``assess``: per-batch counts, and at the end of the run the Quality Assessor's report.

The report's measures (see ``tools.quality.run_quality``): realizability; LLM calls and tokens per accepted record; the
rounds histogram; FPR and power of the implied CIs on the facts extracted from the accepted texts and on the
skeletons; selection bias as TVD between the accepted records and the SCM's exact marginals.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from causalsynth.agents.context import RunContext
from causalsynth.agents.state import Attempt, RunState
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.quality.guard import MAX_RESAMPLES, PERCENTILE
from causalsynth.tools.quality.run_quality import ci_summary, drift_summary, no_drift, tvd_summary
from causalsynth.tools.text.realisation import Violation

#: The ledger's record of which records failed for infrastructure reasons (their ids, as one column).
FAILED_IDS = "failed_ids"


def assess(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Count the batch's outcomes; when it is the run's last batch, compute the run report.

    With a privacy guard, accepted records closer to a training row than the holdout's yardstick go back to the
    Generator with a fresh skeleton first (``MAX_RESAMPLES`` times at most, then they are rejected); the batch is
    counted once none is left to resample.
    """
    ctx = runtime.context
    if ctx.guard is not None:
        resampled = _guard(state, ctx)
        if resampled is not None:
            return resampled
    accepted = state.get("accepted", [])
    rejected = state.get("rejected", [])
    failed = state.get("failed", [])
    observed = ctx.domain.lexicon.observed
    # What the extractor read: an accepted record without "facts" stated exactly its skeleton's observed facts.
    exact = [r for r in accepted if "facts" not in r]
    read = [r["facts"] for r in accepted if "facts" in r]
    if ctx.guard is None:
        codes = ctx.skeletons.codes([r["id"] for r in accepted])
        ctx.ledger.add_codes("accepted", codes, len(accepted))
        if len(exact) == len(accepted):
            ctx.ledger.add_codes("extracted", {v: codes[v] for v in observed}, len(exact))
        elif exact:
            exact_codes = ctx.skeletons.codes([r["id"] for r in exact])
            ctx.ledger.add_codes("extracted", {v: exact_codes[v] for v in observed}, len(exact))
    else:  # skeletons may have been resampled: encode the ones accepted
        ctx.ledger.add("accepted", [r["skeleton"] for r in accepted], ctx.domain.network.names)
        ctx.ledger.add("extracted", [r["skeleton"] for r in exact], observed)
    if read:
        ctx.ledger.add("extracted", read, observed)

    batch: Counter[str] = Counter(n_accepted=len(accepted), n_rejected=len(rejected))
    if failed:  # infrastructure failures: counted, and left out of the measures of the text
        batch["n_failed"] += len(failed)
        ctx.ledger.add_codes(FAILED_IDS, {"id": np.array([r["id"] for r in failed], dtype=np.int64)}, len(failed))
    for r in (*accepted, *rejected, *failed):
        batch["generator_calls"] += r["attempts"]
        batch["llm_calls"] += r["llm_calls"]
        batch["tokens"] += r["tokens"]
        batch["tokens_estimated_records"] += r["tokens_estimated"]
        for attempt in r["history"]:
            for v in attempt["violations"]:
                batch[f"violations:{v['kind']}"] += 1
    for r in accepted:
        batch[f"rounds:{r['attempts'] - 1}"] += 1
    if ctx.retriever is not None:  # the leakage check: accepted texts that repeat a run of corpus tokens
        batch["corpus_copies"] += ctx.retriever.check_copies([(r["id"], r["text"]) for r in accepted])
    update: dict[str, Any] = {"totals": dict(batch), "info": {"batch": state.get("batch", 0)} | dict(batch)}
    if state.get("next_id", 0) >= state["n_requested"]:
        totals = Counter(state.get("totals", {})) + batch
        if ctx.shard is None:
            update["report"] = run_report(ctx, state["n_requested"], totals)
        else:  # one shard of a sharded run: the engine reports over all shards' ledgers
            update["report"] = {"shard": ctx.shard, "totals": dict(totals)}
    return update


def _guard(state: RunState, ctx: RunContext) -> dict[str, Any] | None:
    """Send the accepted records too close to a training row back with fresh skeletons; None if there are none."""
    assert ctx.guard is not None
    accepted = state.get("accepted", [])
    close = ctx.guard.too_close([r["skeleton"] for r in accepted]).tolist() if accepted else []
    if not any(close):
        return None
    kept = [r for r, c in zip(accepted, close, strict=True) if not c]
    redo, given_up = [], []
    for r in (r for r, c in zip(accepted, close, strict=True) if c):
        count = r.get("resamples", 0)
        why = Violation(kind="privacy", variable="skeleton", expected=None, found=None,
                        message=f"the record is closer to a training row than {100 - PERCENTILE:g}% of the holdout "
                                f"rows are (threshold {ctx.guard.threshold:.4g})")  # fmt: skip
        history = [*r["history"], Attempt(attempt=r["attempts"], text=r["text"], violations=[why])]
        if count >= MAX_RESAMPLES:
            given_up.append({**r, "violations": [why], "history": history})
            continue
        redo.append({**r, "skeleton": _fresh_skeleton(ctx, r["id"], count + 1), "text": "", "attempts": 0,
                     "violations": [], "history": history, "resamples": count + 1})  # fmt: skip
    counts = {"privacy_resampled": len(redo), "privacy_rejected": len(given_up)}
    return {"accepted": Overwrite(kept), "records": redo, "rejected": given_up, "totals": counts,
            "info": {"batch": state.get("batch", 0)} | counts}  # fmt: skip


def _fresh_skeleton(ctx: RunContext, record_id: int, resample: int) -> dict[str, str]:
    """Record ``record_id``'s skeleton in the ``resample``-th alternative stream of the run's seed (batch-invariant)."""
    seed = int(np.random.SeedSequence([ctx.settings.seed, resample, 0x9E37]).generate_state(1)[0])
    data = Sampler(ctx.domain.network).sample(1, seed=seed, start=record_id).data
    return {v: str(data[v].iloc[0]) for v in ctx.domain.network.names}


def _judged(ctx: RunContext, n_requested: int) -> tuple[dict[str, Any], int]:
    """Skeleton codes of the records that were judged (accepted or rejected): all, less those that failed."""
    keep = np.ones(n_requested, dtype=bool)
    keep[ctx.ledger.codes(FAILED_IDS)["id"]] = False  # skeleton codes are kept in record id order
    return {v: c[keep] for v, c in ctx.ledger.codes("skeleton").items()}, int(keep.sum())


def _per(total: float, n: float) -> float | None:
    return total / n if n else None


def run_report(ctx: RunContext, n_requested: int, totals: Counter[str]) -> dict[str, Any]:
    """The run's report from the ledger of records ``0 .. n_requested`` and the run-wide counters."""
    net = ctx.domain.network
    lexicon = ctx.domain.lexicon
    s = ctx.settings
    ledger = ctx.ledger
    n_acc = int(totals["n_accepted"])
    n_rej = int(totals["n_rejected"])
    n_failed = int(totals["n_failed"])
    judged, n_judged = _judged(ctx, n_requested) if n_failed else (ledger.codes("skeleton"), n_requested)
    extracted = ci_summary(net, ledger.codes("extracted"), n_acc, observed=lexicon.observed, alpha=s.alpha)
    skeleton = ci_summary(net, judged, n_judged, observed=lexicon.observed, alpha=s.alpha)
    floor_tvd = tvd_summary(net, judged, n_judged)
    if ctx.guard is None and n_acc == n_judged:  # every judged record accepted: the same rows, nothing drifts
        accepted_tvd, drift = floor_tvd, no_drift(net, n_acc)
    else:
        accepted_tvd = tvd_summary(net, ledger.codes("accepted"), n_acc)
        drift = drift_summary(net, ledger.codes("accepted"), n_acc, judged, n_judged)
    seconds = time.perf_counter() - ctx.started
    rounds = {k.split(":", 1)[1]: int(v) for k, v in totals.items() if k.startswith("rounds:")}
    rounds = dict(sorted(rounds.items(), key=lambda kv: int(kv[0])))  # "10" after "9"
    return {
        "spec": ctx.domain.source,
        "domain": ctx.domain.name,
        "mode": s.mode,
        "llm": s.llm,
        "realize": s.realize,
        "realiser": ctx.realiser.name,
        "seed": s.seed,
        "max_rounds": s.max_rounds,
        "alpha": s.alpha,
        "n_requested": n_requested,
        "n_accepted": n_acc,
        "n_rejected": n_rej,
        **({"n_failed": n_failed} if n_failed else {}),
        "realizability": _per(n_acc, n_requested - n_failed),
        "generator_calls": int(totals["generator_calls"]),
        "llm_calls": int(totals["llm_calls"]),
        "tokens": int(totals["tokens"]),
        "llm_calls_per_accepted": _per(totals["llm_calls"], n_acc),
        "tokens_per_accepted": _per(totals["tokens"], n_acc),
        "tokens_estimated": bool(totals["tokens_estimated_records"]),
        "rounds_histogram": rounds,
        "dropped_sentences": int(totals["dropped_sentences"]),
        "violations": {k.split(":", 1)[1]: int(v) for k, v in sorted(totals.items()) if k.startswith("violations:")},
        "ci_fpr_extracted": extracted.fpr,
        "ci_fpr_skeleton": skeleton.fpr,
        "ci_power_extracted": extracted.power,
        "ci_power_skeleton": skeleton.power,
        "ci": {"extracted": extracted.to_dict(), "skeleton": skeleton.to_dict(), "observed": list(lexicon.observed)},
        "selection_bias_tvd": accepted_tvd.mean,
        "selection_bias": {
            "accepted": accepted_tvd.to_dict(),
            "all_skeletons": floor_tvd.to_dict(),
            "drift": drift.to_dict(),
        },
        "seconds": seconds,
        "records_per_second": n_requested / seconds if seconds > 0 else None,
        "accepted_per_second": n_acc / seconds if seconds > 0 else None,
        "retrieval": ctx.retriever.summary() if ctx.retriever is not None else None,
        **({"privacy_guard": _guard_report(ctx, totals)} if ctx.guard is not None else {}),
    }


def _guard_report(ctx: RunContext, totals: Counter[str]) -> dict[str, Any]:
    """The privacy guard's yardstick and what it did; whether a DP guarantee survived it."""
    assert ctx.guard is not None
    out = ctx.guard.describe() | {"resampled": int(totals["privacy_resampled"]),
                                  "rejected": int(totals["privacy_rejected"])}  # fmt: skip
    if ctx.dp_void:
        out["dp_guarantee"] = ("void: the spec was fitted with differential privacy, but this run filtered its "
                               "records against the real rows, which no DP guarantee covers")  # fmt: skip
    return out
