"""Derived columns: values computed from the row, its ancestors and its children with the rule language.

``total: {type: float, derive: "sum(items.amount)"}`` or ``stay: {type: int, derive: "days_between(a, b)"}``.
They are computed after every table is drawn, and again after each repair, in dependency order, so a rule such
as ``total == sum(items.amount)`` holds however the items change.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
import pandas as pd

from causalsynth.tools.relational.frame_data import FrameData, column_kinds
from causalsynth.tools.relational.rule_eval import values
from causalsynth.tools.relational.tables import TableSchema


def derive_columns(schema: TableSchema, frames: MutableMapping[str, pd.DataFrame]) -> None:
    """Fill every derived column of ``frames`` in place (JSON-like values, None for null)."""
    if not schema.derived:
        return
    kinds = column_kinds(schema)
    for expression, (table, column) in zip(schema.derived, schema.derived_columns, strict=True):
        got = values(expression, FrameData(schema, frames, table), kinds)
        kind = schema.tables[table].columns[column].type
        frames[table][column] = _json(got, kind).to_numpy(dtype=object)


def _json(series: pd.Series, kind: str) -> pd.Series:
    present = series.notna()
    out = pd.Series([None] * len(series), dtype=object)
    if not present.any():
        return out
    vals = series[present]
    if kind == "int":
        out[present] = [int(round(float(v))) for v in vals]
    elif kind == "float":
        out[present] = [float(v) for v in vals]
    elif kind == "bool":
        out[present] = [bool(v) for v in vals]
    elif kind in ("date", "datetime"):
        unit = "D" if kind == "date" else "s"
        stamps = np.asarray(list(vals), dtype=f"datetime64[{unit}]")
        out[present] = list(np.datetime_as_string(stamps))
    else:
        out[present] = [str(v) for v in vals]
    return out
