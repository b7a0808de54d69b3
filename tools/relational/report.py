"""The report of a relational run: records and rows accepted, compliance before and after validation, cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from causalsynth.tools.relational.tables import TableSchema


def table_report(
    domain: str, schema: TableSchema, totals: Mapping[str, float], settings: Any, seconds: float
) -> dict[str, Any]:
    """Summarise a run from its counters (see ``causalsynth.agents.table_validator`` for what each counts).

    ``compliance_before`` is the share of generated rows (per table, and of whole records) that broke no
    constraint or rule when first validated. Records whose text failed for infrastructure reasons are counted
    (``n_failed``, only when there are some) and left out of realizability, compliance and selection drift.
    Accepted rows broke nothing in their last validation; whether the written data complies is checked
    independently, with SQL against the database (``bench/schema.py``).
    """
    n = settings.n
    accepted = int(totals.get("entities_accepted", 0))
    failed = int(totals.get("entities_failed", 0))  # infrastructure failures: counted, left out of the measures
    before = {
        t: 1 - totals.get(f"rows_violating_before.{t}", 0) / totals[f"rows_before.{t}"]
        for t in schema.order
        if totals.get(f"rows_before.{t}")
    }
    entities_before = totals.get("entities_before", 0)

    def section(prefix: str) -> dict[str, int]:
        return {k[len(prefix) :]: int(v) for k, v in sorted(totals.items()) if k.startswith(prefix) and v}

    rounds = {int(k): int(v) for k, v in section("accepted_round.").items()}
    drift = selection_drift(section("requested."), section("accepted."))
    return {
        "domain": domain,
        "tables": list(schema.order),
        "llm": settings.llm,
        "mode": settings.mode,
        "n_requested": n,
        "n_accepted": accepted,
        "n_rejected": int(totals.get("entities_rejected", 0)),
        **({"n_failed": failed} if failed else {}),
        "realizability": accepted / (n - failed) if n > failed else None,
        "compliance_before": {
            "records": 1 - totals.get("entities_violating_before", 0) / entities_before if entities_before else None,
            "rows": before,
        },
        "selection_drift": drift,
        "selection_drift_max": max(drift.values(), default=0.0),
        "violations_before": section("violations_before."),
        "violations_total": section("violations."),
        "accepted_by_round": dict(sorted(rounds.items())),
        "values_redrawn": int(totals.get("values_redrawn", 0)),
        "texts_realised": int(totals.get("texts_realised", 0)),
        "llm_calls": int(totals.get("llm_calls", 0)),
        "tokens": int(totals.get("tokens", 0)),
        "seconds": round(seconds, 3),
        "records_per_second": round(n / seconds, 1) if seconds > 0 else None,
    }


def selection_drift(requested: Mapping[str, int], accepted: Mapping[str, int]) -> dict[str, float]:
    """Per ``table.variable``, the total variation distance between its states among accepted and requested rows.

    0 when rejection removed records without regard to their states; large when the rules (or the repair
    budget) reject some states more than others, which biases the accepted data away from the causal model.
    """
    out: dict[str, float] = {}
    for key in sorted({k.split("=", 1)[0] for k in requested}):
        req = {k: v for k, v in requested.items() if k.split("=", 1)[0] == key}
        n_req, n_acc = sum(req.values()), sum(accepted.get(k, 0) for k in req)
        if n_req and n_acc:
            out[key] = round(0.5 * sum(abs(accepted.get(k, 0) / n_acc - v / n_req) for k, v in req.items()), 6)
    return out
