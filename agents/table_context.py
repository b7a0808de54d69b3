"""What the nodes of a relational run are given at invoke time: schema, sampler, realiser, sink, unique values."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from causalsynth.agents.context import FrameContext
from causalsynth.agents.table_state import Tables
from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.checks import check_tables, redraw_plan, unique_owners
from causalsynth.tools.relational.sampling import ENTITY, RelationalSampler, redraw, resamplable_columns
from causalsynth.tools.relational.tables import TableSchema
from causalsynth.tools.sinks.table_folder import TableSink

#: Redraw rounds for lookup tables (drawn once per run, no LLM involved, so the budget is generous).
LOOKUP_ROUNDS = 20


@dataclass(kw_only=True)
class TableRunContext(FrameContext):
    """Dependencies and settings of one relational run."""

    sink: TableSink | None = None
    seen: dict[tuple[str, str], set[Any]] = field(default_factory=dict)  # unique values accepted so far

    @property
    def schema(self) -> TableSchema:
        """The relational schema (the spec must declare tables)."""
        assert self.domain.schema is not None
        return self.domain.schema

    @cached_property
    def sampler(self) -> RelationalSampler:
        """Draws the run's rows and redraws columns for repair."""
        return RelationalSampler(self.schema, self.domain.network, self.settings.seed)

    @cached_property
    def resamplable(self) -> dict[str, set[str]]:
        """Per table, the columns a repair may draw again."""
        return resamplable_columns(self.schema)

    @cached_property
    def _rows(self) -> dict[str, pd.DataFrame]:
        return self.sampler.sample(self.settings.n)  # all at once: the output does not depend on the batch size

    @cached_property
    def owners(self) -> dict[tuple[str, str], pd.Series]:
        """Per unique column, the record that drew each value first (a duplicate anywhere else in the run)."""
        return unique_owners(self.schema, self._rows)

    @cached_property
    def lookups(self) -> dict[str, pd.DataFrame]:
        """The lookup tables, drawn once and repaired until they break nothing.

        Raises:
            DataError: a lookup table still breaks a constraint after ``LOOKUP_ROUNDS`` redraws.
        """
        frames = self._rows
        names = self.schema.lookups
        for attempt in range(1, LOOKUP_ROUNDS + 2):
            found = check_tables(self.schema, frames, resamplable=self.resamplable, tables=names)
            if not found:
                return {t: frames[t] for t in names}
            fixable = [v for v in found if v["fix"] == "resample"]
            if len(fixable) < len(found) or attempt > LOOKUP_ROUNDS:
                break
            redraw(self.sampler, frames, redraw_plan(fixable, attempt), attempt)
        raise DataError(f"lookup table rows break their constraints: {'; '.join(v['message'] for v in found[:3])}")

    def frames(self, tables: Tables) -> dict[str, pd.DataFrame]:
        """A batch's tables as frames, with the lookup tables it references."""
        return to_frames(tables) | self.lookups

    def take(self, start: int, stop: int) -> Tables:
        """The rows of root rows ``start`` to ``stop`` (exclusive) and their descendants, column by column."""
        out: Tables = {}
        for table in self.schema.record_tables:
            frame = self._rows[table]
            entities = frame[ENTITY].to_numpy()
            lo, hi = np.searchsorted(entities, [start, stop])
            out[table] = to_columns(frame.iloc[lo:hi])
        return out

    def take_entities(self, entities: list[int]) -> Tables:
        """The drawn rows of the records (root rows) ``entities`` and their descendants, as :meth:`take` gives them."""
        out: Tables = {}
        for table in self.schema.record_tables:
            frame = self._rows[table]
            out[table] = to_columns(frame[np.isin(frame[ENTITY].to_numpy(), entities)])
        return out


def to_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as JSON-like columns (nulls as None, numpy scalars as Python values)."""
    out: dict[str, list[Any]] = {}
    for c in frame.columns:
        column = frame[c]
        missing = column.isna()
        out[c] = column.astype(object).where(~missing, None).tolist() if missing.any() else column.tolist()
    return out


def to_frames(tables: Tables) -> dict[str, pd.DataFrame]:
    """JSON-like columns back to frames (object columns keep Python values as they are)."""
    return {t: pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in cols.items()}) for t, cols in tables.items()}
