"""Node ``validate_tables``: the Schema Validator and the text verifier over the batch; settles each record.

A record (a root row and its descendants) with no violation is accepted; one whose violations nothing in it can
fix, or that has used its rounds, is rejected with every violation as its reasons; the rest wait for repair.

A record one of whose texts failed for infrastructure reasons (``_failed``, set by ``agents.table_generator``) is
neither: its empty text says nothing about the generator. The text's own violations are dropped; the record stays in
the batch while its other columns still need a redraw, then it is set aside whole as ``failed``: every row of it
(root and descendants) is left out of the tables and the database, so no foreign key points at a missing row, and
one ``failed`` row per failed text (``kind`` ``infrastructure``, the reason) says which. It is left out of every
measure: what its first validation added to the counters is taken back. ``--resume`` retries it from its drawn rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from langgraph.runtime import Runtime

from causalsynth.agents.run_plugins import run_plugins
from causalsynth.agents.table_context import TableRunContext, to_columns
from causalsynth.agents.table_state import FAILED, TableRunState, Tables
from causalsynth.tools.relational.checks import TableViolation, check_tables, check_texts
from causalsynth.tools.relational.sampling import ENTITY, var_column
from causalsynth.tools.relational.tables import TableSchema


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
    failed_rows = _failed_rows(ctx, frames)
    if failed_rows:  # a failed text's violations are the network's, not the text's
        keys = {(v["table"], v["row"]) for v in failed_rows}
        violations = [v for v in violations if (v["table"], v["row"]) not in keys or v["fix"] != "generate"]
    by_entity: dict[int, list[TableViolation]] = defaultdict(list)
    for v in violations:
        by_entity[v["entity"]].append(v)
    out_of_rounds = rnd > ctx.settings.max_rounds
    settled = {e for e, vs in by_entity.items() if out_of_rounds or any(v["fix"] == "none" for v in vs)}
    down = {v["entity"] for v in failed_rows}
    failed_ids = {e for e in down if e not in by_entity or e in settled}  # nothing left that a redraw must fix
    rejected_ids = settled - down
    totals: Counter[str] = Counter()
    first = violations if rnd == 1 else state.get("before", [])
    if rnd == 1:  # what the generators produced, before any repair: the compliance the validator starts from
        totals += _first_counts(schema, frames, violations)
    if failed_ids:  # out of the measures: take back what their first validation counted
        ids = list(failed_ids)
        totals.subtract(_first_counts(schema, {t: f[f[ENTITY].isin(ids)] for t, f in frames.items()},
                                      [v for v in first if v["entity"] in failed_ids]))  # fmt: skip
    totals.update(f"violations.{_label(v)}" for v in violations)
    accepted: Tables = {}
    remaining: Tables = {}
    for table in schema.record_tables:
        frame = frames[table]
        entity = frame[ENTITY].to_numpy(dtype=np.int64)
        bad = np.isin(entity, [*by_entity, *down])
        gone = np.isin(entity, [*rejected_ids, *failed_ids])
        own = [v for v, home in schema.home.items() if home == table]
        totals.update(_states("accepted", table, frame[~bad], own))
        accepted[table] = to_columns(frame[~bad])
        remaining[table] = to_columns(frame[bad & ~gone])
        spec = schema.tables[table]
        for col, cs in spec.columns.items():
            if cs.unique or col == spec.primary_key:
                ctx.seen.setdefault((table, col), set()).update(v for v in accepted[table][col] if v is not None)
    n_accepted = len(accepted[schema.root][ENTITY])
    totals["entities_accepted"] += n_accepted
    totals["entities_rejected"] += len(rejected_ids)
    totals["entities_failed"] += len(failed_ids)
    totals[f"accepted_round.{rnd}"] += n_accepted
    reasons = [v for e in sorted(rejected_ids) for v in by_entity[e]]
    still = set(by_entity) - rejected_ids - failed_ids
    pending = [v for v in violations if v["entity"] in still]
    info = {
        "batch": state.get("batch", 0),
        "round": rnd,
        "violations": len(violations),
        "accepted": n_accepted,
        "rejected": len(rejected_ids),
        "pending": len(still),
    } | ({"failed": len(failed_ids)} if failed_ids else {})
    return {"tables": remaining, "violations": pending, "round": rnd, "accepted": [accepted] if n_accepted else [],
            "rejected": reasons, "failed": [v for v in failed_rows if v["entity"] in failed_ids],
            "before": [v for v in first if v["entity"] in still], "totals": dict(totals), "info": info}  # fmt: skip


def _failed_rows(ctx: TableRunContext, frames: dict[str, pd.DataFrame]) -> list[TableViolation]:
    """One ``infrastructure`` row per text of the batch whose model call failed (``_failed``), with the reason."""
    realised = ctx.schema.realised()
    if realised is None or FAILED not in frames[realised[0]]:
        return []
    table, column = realised
    frame = frames[table]
    pk = ctx.schema.pk(table)
    return [
        TableViolation(kind="infrastructure", table=table, row=key, entity=int(entity), column=column, rule=None,
                       value=None, message=f"{table} row {pk}={key}: {why}", fix="none", targets=[])
        for key, entity, why in zip(frame[pk].tolist(), frame[ENTITY].tolist(), frame[FAILED].tolist(), strict=True)
        if isinstance(why, str)
    ]  # fmt: skip


def _first_counts(
    schema: TableSchema, frames: Mapping[str, pd.DataFrame], violations: list[TableViolation]
) -> Counter[str]:
    """What the first validation of ``frames`` counts: rows and records, those violating, by violation, by state."""
    totals: Counter[str] = Counter()
    for table in schema.record_tables:
        frame = frames[table]
        bad_rows = {v["row"] for v in violations if v["table"] == table}
        totals[f"rows_before.{table}"] += len(frame)
        totals[f"rows_violating_before.{table}"] += len(bad_rows)
        totals += _states("requested", table, frame, [v for v, home in schema.home.items() if home == table])
    totals["entities_before"] += len({int(e) for e in frames[schema.root][ENTITY]})
    totals["entities_violating_before"] += len({v["entity"] for v in violations})
    totals.update(f"violations_before.{_label(v)}" for v in violations)
    return totals


def _states(which: str, table: str, frame: pd.DataFrame, variables: list[str]) -> Counter[str]:
    """Counts of each variable's states among ``frame``'s rows: ``which.table.var=state``."""
    out: Counter[str] = Counter()
    for var in variables:
        for state, count in frame[var_column(var)].value_counts().items():
            out[f"{which}.{table}.{var}={state}"] += int(count)
    return out


def _label(v: TableViolation) -> str:
    return f"{v['table']}.{v['rule'] if v['kind'] == 'rule' else v['kind'] + ':' + str(v['column'])}"
