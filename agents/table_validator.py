"""Node ``validate_tables``: the Schema Validator and the text verifier over the batch; settles each record.

A record (a root row and its descendants) with no violation is accepted; one whose violations nothing in it can
fix, or that has used its rounds, is rejected with every violation as its reasons; the rest wait for repair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pandas as pd
from langgraph.runtime import Runtime

from causalsynth.agents.run_plugins import run_plugins
from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.agents.table_state import TableRunState, Tables
from causalsynth.tools.relational.checks import TableViolation, check_tables, check_texts
from causalsynth.tools.relational.sampling import ENTITY, var_column


def validate_tables(state: TableRunState, runtime: Runtime[TableRunContext]) -> dict[str, Any]:
    """List every violation of the batch in flight, then accept, reject or keep each record for repair."""
    ctx = runtime.context
    schema = ctx.schema
    frames = ctx.frames(state.get("tables", {}))
    violations = check_tables(schema, frames, ctx.seen, ctx.resamplable, owners=ctx.owners)
    violations += check_texts(schema, ctx.domain.lexicon, frames)
    plugins = run_plugins(ctx)
    if plugins is not None and plugins.validators:  # plugin validator tools on the texts, beside the built-in checks
        violations += plugins.validate_tables(schema, frames)
    rnd = state.get("round", 0) + 1
    by_entity: dict[int, list[TableViolation]] = defaultdict(list)
    for v in violations:
        by_entity[v["entity"]].append(v)
    out_of_rounds = rnd > ctx.settings.max_rounds
    rejected_ids = {e for e, vs in by_entity.items() if out_of_rounds or any(v["fix"] == "none" for v in vs)}
    totals: Counter[str] = Counter()
    if rnd == 1:  # what the generators produced, before any repair: the compliance the validator starts from
        for table in schema.record_tables:
            frame = frames[table]
            bad_rows = {v["row"] for v in violations if v["table"] == table}
            totals[f"rows_before.{table}"] += len(frame)
            totals[f"rows_violating_before.{table}"] += len(bad_rows)
        totals["entities_before"] += len({int(e) for e in frames[schema.root][ENTITY]})
        totals["entities_violating_before"] += len(by_entity)
        totals.update(f"violations_before.{_label(v)}" for v in violations)
    totals.update(f"violations.{_label(v)}" for v in violations)
    accepted: Tables = {}
    remaining: Tables = {}
    for table in schema.record_tables:
        frame = frames[table]
        entity = frame[ENTITY].to_numpy(dtype=np.int64)
        bad = np.isin(entity, list(by_entity))
        rejected = np.isin(entity, list(rejected_ids))
        own = [v for v, home in schema.home.items() if home == table]
        if rnd == 1:
            totals.update(_states("requested", table, frame, own))
        totals.update(_states("accepted", table, frame[~bad], own))
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


def _states(which: str, table: str, frame: pd.DataFrame, variables: list[str]) -> Counter[str]:
    """Counts of each variable's states among ``frame``'s rows: ``which.table.var=state``."""
    out: Counter[str] = Counter()
    for var in variables:
        for state, count in frame[var_column(var)].value_counts().items():
            out[f"{which}.{table}.{var}={state}"] += int(count)
    return out


def _label(v: TableViolation) -> str:
    return f"{v['table']}.{v['rule'] if v['kind'] == 'rule' else v['kind'] + ':' + str(v['column'])}"
