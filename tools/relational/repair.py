"""Deterministic repair: draw again the columns behind broken constraints and rules, without an LLM.

A broken constraint (a duplicate, a value out of range) is drawn again once. A broken rule is drawn again up to
``REDRAWS_PER_ROUND`` times, re-evaluating the rule after each draw and keeping the rows that now pass; the
rule's columns (and the columns they are computed from) take turns, so a rule over two columns can be fixed by
either. Derived columns are recomputed after each draw. Whatever is still broken is found again by the next
validation round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from causalsynth.tools.relational.checks import TableViolation, redraw_plan
from causalsynth.tools.relational.derive import derive_columns
from causalsynth.tools.relational.frame_data import FrameData, column_kinds
from causalsynth.tools.relational.rule_eval import evaluate
from causalsynth.tools.relational.sampling import RelationalSampler, redraw

#: Draws of a broken rule's columns per repair round.
REDRAWS_PER_ROUND = 8


def repair_rows(
    sampler: RelationalSampler,
    frames: dict[str, pd.DataFrame],
    violations: Sequence[TableViolation],
    attempt: int,
    tries: int = REDRAWS_PER_ROUND,
) -> int:
    """Redraw what ``violations`` (all with ``fix == 'resample'``) name, in place; the number of values drawn."""
    schema = sampler.schema
    base = attempt * (tries + 1)  # a fresh random stream for every round and try
    count = redraw(sampler, frames, redraw_plan([v for v in violations if v["kind"] != "rule"], attempt), base)
    rules = {(r.table, r.text): r for r in schema.rules}
    broken: dict[tuple[str, str], tuple[set[Any], list[str]]] = {}
    for v in violations:
        if v["kind"] == "rule" and v["rule"] is not None:
            rows, _ = broken.setdefault((v["table"], v["rule"]), (set(), v["targets"]))
            rows.add(v["row"])
    kinds = column_kinds(schema)
    for (table, text), (rows, targets) in broken.items():
        rule = rules[(table, text)]
        keys = schema.pk(table)
        reads_derived = bool(set(rule.columns) & set(schema.derived_columns))
        for k in range(tries):
            column = targets[(attempt - 1 + k) % len(targets)]
            count += redraw(sampler, frames, {(table, column): rows}, base + k + 1)
            if reads_derived:
                derive_columns(schema, frames)
            bad = evaluate(rule, FrameData(schema, frames, table), kinds)
            rows = rows & set(frames[table][keys].to_numpy(dtype=object)[bad].tolist())
            if not rows:
                break
    derive_columns(schema, frames)
    return count
