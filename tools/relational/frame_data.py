"""A batch's tables as the rule interpreter sees them: own rows, ancestors' columns, children's aggregates.

Shared by the Schema Validator, derived columns and offsets from ancestor columns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from causalsynth.tools.relational.rules import Kind
from causalsynth.tools.relational.tables import KINDS, TableSchema


def column_kinds(schema: TableSchema) -> dict[tuple[str, str], Kind]:
    """``(table, column) -> kind`` for every column of the schema."""
    return {(t, c): KINDS[cs.type] for t, spec in schema.tables.items() for c, cs in spec.columns.items()}


def ancestor_values(
    schema: TableSchema,
    frames: Mapping[str, pd.DataFrame],
    table: str,
    frame: pd.DataFrame,
    ancestor: str,
    column: str,
) -> pd.Series:
    """``ancestor.column`` for each row of ``frame`` (a frame of ``table``), following the foreign keys up."""
    keys = frame["_parent_key"] if "_parent_key" in frame else frame[schema.fk[table]]
    current = schema.parent[table]
    while True:
        assert current is not None
        up = frames[current]
        pos = pd.Index(up[schema.pk(current)]).get_indexer(keys)
        if current == ancestor:
            values = up[column].to_numpy(dtype=object)
            out = np.where(pos >= 0, values[np.clip(pos, 0, None)] if len(values) else None, None)
            return pd.Series(out, index=frame.index)
        grand = schema.parent[current]
        assert grand is not None
        parent_keys = up[schema.fk[current]].to_numpy(dtype=object)
        keys = pd.Series(np.where(pos >= 0, parent_keys[np.clip(pos, 0, None)] if len(up) else None, None))
        current = grand


class FrameData:
    """A table's rows, its ancestors' columns and its children's aggregates, for ``rules.evaluate``."""

    def __init__(self, schema: TableSchema, frames: Mapping[str, pd.DataFrame], table: str) -> None:
        self.schema = schema
        self.frames = frames
        self.table = table
        self.frame = frames[table]
        self.n = len(self.frame)

    def column(self, table: str | None, name: str) -> pd.Series:
        """A column of this table or of an ancestor, aligned with this table's rows."""
        if table is None or table == self.table:
            return self.frame[name]
        return ancestor_values(self.schema, self.frames, self.table, self.frame, table, name)

    def aggregate(self, fn: str, child: str, column: str | None) -> pd.Series:
        """``fn`` of each row's child rows; count and sum over none are 0, the others null."""
        rows = self.frames[child]
        keys = self.frame[self.schema.pk(self.table)]
        fk = rows[self.schema.fk[child]]
        if column is None:
            grouped = fk.value_counts()
        else:
            values = rows[column]
            if self.schema.kind(child, column) == "num":
                values = pd.to_numeric(values, errors="coerce")
            frame = pd.DataFrame({"k": fk.to_numpy(), "v": values.to_numpy()})
            grouped = getattr(frame.groupby("k")["v"], fn)()
        out = pd.Series(keys.map(grouped).to_numpy(), index=self.frame.index)
        if fn in ("count", "sum"):
            out = out.fillna(0)
        return out
