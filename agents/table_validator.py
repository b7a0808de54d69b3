"""Node ``validate_tables``: the Schema Validator and the text verifier over the batch; settles each record.

A record (a root row and its descendants) with no violation is accepted; one whose violations nothing in it can
fix, or that has used its rounds, is rejected with every violation as its reasons; the rest wait for repair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from graphs.table_context import TableRunContext, to_columns, to_frames
from graphs.table_state import TableRunState, Tables
from tools.relational import ENTITY
from tools.table_check import TableViolation, check_tables, check_texts


def validate_tables(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """List every violation of the batch in flight, then accept, reject or keep each record for repair."""
    ctx = runtime.context
    schema = ctx.schema
    frames = to_frames(state.get("tables", {}))
    violations = check_tables(schema, frames, ctx.seen, ctx.resamplable)
    violations += check_texts(schema, ctx.domain.lexicon, frames)
    rnd = state.get("round", 0) + 1
    by_entity: dict[int, list[TableViolation]] = defaultdict(list)
    for v in violations:
        by_entity[v["entity"]].append(v)
    out_of_rounds = rnd > ctx.settings.max_rounds
    rejected_ids = {e for e, vs in by_entity.items() if out_of_rounds or any(v["fix"] == "none" for v in vs)}
    totals: Counter[str] = Counter()
    if rnd == 1:  # what the generators produced, before any repair: the compliance the validator starts from
        for table, frame in frames.items():
            bad_rows = {v["row"] for v in violations if v["table"] == table}
            totals[f"rows_before.{table}"] += len(frame)
            totals[f"rows_violating_before.{table}"] += len(bad_rows)
        totals["entities_before"] += len({int(e) for e in frames[schema.root][ENTITY]})
        totals["entities_violating_before"] += len(by_entity)
        totals.update(f"violations_before.{_label(v)}" for v in violations)
    totals.update(f"violations.{_label(v)}" for v in violations)
    accepted: Tables = {}
    remaining: Tables = {}
    for table, frame in frames.items():
        entity = frame[ENTITY].to_numpy(dtype=np.int64)
        bad = np.isin(entity, list(by_entity))
        rejected = np.isin(entity, list(rejected_ids))
        accepted[table] = to_columns(frame[~bad])
        remaining[table] = to_columns(frame[bad & ~rejected])
        spec = schema.tables[table]
        for col, cs in spec.columns.items():
            if cs.unique or col == spec.primary_key:
                ctx.seen.setdefault((table, col), set()).update(v for v in accepted[table][col] if v is not None)
    n_accepted = len(accepted[schema.root][ENTITY])
    totals["entities_accepted"] += n_accepted
    totals["entities_rejected"] += len(rejected_ids)
    totals[f"accepted_round.{rnd}"] += n_accepted
    reasons = [v for e in sorted(rejected_ids) for v in by_entity[e]]
    pending = [v for v in violations if v["entity"] not in rejected_ids]
    info = {"batch": state.get("batch", 0), "round": rnd, "violations": len(violations), "accepted": n_accepted,
            "rejected": len(rejected_ids), "pending": len(by_entity) - len(rejected_ids)}  # fmt: skip
    return {"tables": remaining, "violations": pending, "round": rnd, "accepted": [accepted] if n_accepted else [],
            "rejected": reasons, "totals": dict(totals), "info": info}  # fmt: skip


def _label(v: TableViolation) -> str:
    return f"{v['table']}.{v['rule'] if v['kind'] == 'rule' else v['kind'] + ':' + str(v['column'])}"
