"""Relational sampling: the SCM's variables per table, rows per parent, and every column's values.

Tables are filled parents first. A child table repeats each parent row ``cardinality`` times (fixed, a range, or
a range per state of an ancestor's variable), inherits the states of its ancestors' variables, then samples its
own variables from their CPTs given those states (so a patient-level cause reaches each admission). Columns are
then drawn in dependency order. Hidden columns carry what the pipeline needs: ``_entity`` (the root row a row
belongs to) and ``_v_VAR`` (the state of each SCM variable the row sees).

Values are JSON-like: dates and date-times as ISO strings, nulls as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, cast

import numpy as np
import pandas as pd

from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.noise import InverseCDF
from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.derive import derive_columns
from causalsynth.tools.relational.fake_values import PROVIDERS, provider, to_datetime64
from causalsynth.tools.relational.frame_data import ancestor_values
from causalsynth.tools.relational.row_streams import RowStreams
from causalsynth.tools.relational.tables import ColumnSpec, Offset, TableSchema, ValueMap

ENTITY = "_entity"
VAR_PREFIX = "_v_"
#: Streams of the draw's own redraws of repeated unique values (far from the repairer's attempt numbers).
DISTINCT_ATTEMPT = 1_000_000
DISTINCT_ROUNDS = 8
#: What a column is drawn from: one stream for all rows (the first draw), or a stream per row (a repair's redraw).
Rng: TypeAlias = np.random.Generator | RowStreams


def var_column(var: str) -> str:
    """The hidden column holding the state of ``var``."""
    return VAR_PREFIX + var


class RelationalSampler:
    """Draws whole relational datasets, and redraws single columns for repair, from one seed."""

    def __init__(self, schema: TableSchema, network: Network, seed: int) -> None:
        self.schema = schema
        self.network = network
        self.seed = seed
        self._noise = InverseCDF()
        self._params = {v: self._noise.prepare(network.node(v).cpt) for v in network.names}

    def rng(self, table: str, what: str, attempt: int = 0) -> np.random.Generator:
        """A stream named by (seed, table, column or purpose, attempt)."""
        key = [self.seed, attempt, *(ord(c) for c in f"{table}\x00{what}")]
        return np.random.default_rng(np.random.SeedSequence(key))

    def row_streams(self, table: str, what: str, attempt: int, keys: Any) -> RowStreams:
        """A stream per row named by (seed, table, column, attempt, the row's primary key in ``keys``).

        A row's values drawn from it do not depend on which other rows are drawn with it (``resample``).
        """
        key = [self.seed, attempt, *(ord(c) for c in f"{table}\x00{what}\x00rows")]
        return RowStreams(int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0]), keys)

    def sample(self, n: int) -> dict[str, pd.DataFrame]:
        """``n`` root rows and all their descendants, every table a DataFrame of JSON-like values."""
        frames: dict[str, pd.DataFrame] = {}
        for table in self.schema.order:
            parent = self.schema.parent[table]
            lookup_rows = self.schema.tables[table].rows
            codes: dict[str, np.ndarray] = {}
            if lookup_rows is not None:  # drawn once for the run; rows belong to no record
                frame = pd.DataFrame({ENTITY: np.full(lookup_rows, -1, dtype=np.int64)})
            elif parent is None:
                frame = pd.DataFrame({ENTITY: np.arange(n, dtype=np.int64)})
            else:
                up = frames[parent]
                counts = self._counts(table, up)
                index = np.repeat(np.arange(len(up)), counts)
                inherited = [c for c in up.columns if c == ENTITY or c.startswith(VAR_PREFIX)]
                frame = up[inherited].iloc[index].reset_index(drop=True)
                frame["_parent_key"] = up[self.schema.pk(parent)].to_numpy()[index]
                codes = {
                    c[len(VAR_PREFIX) :]: pd.Categorical(
                        frame[c], categories=self.network.states(c[len(VAR_PREFIX) :])
                    ).codes
                    for c in inherited
                    if c.startswith(VAR_PREFIX)
                }
            self._variables(table, frame, codes)
            frames[table] = frame
            for column in self.column_order(table):
                frame[column] = self.draw(table, column, frame, frames, self.rng(table, column))
            frames[table] = frame.drop(columns=["_parent_key"], errors="ignore")
        self._distinct(frames)
        derive_columns(self.schema, frames)
        return frames

    def _distinct(self, frames: dict[str, pd.DataFrame]) -> None:
        """Draw again, over the whole draw, the later repeats of a value in a unique column of the record tables.

        The first row that drew a value keeps it; a redrawn value that repeats one is drawn again in turn.

        Done on the draw of every requested record at once, so a value belongs to one record whichever batch or
        shard validates it (``graphs.dask_tables``); repeats still left after ``DISTINCT_ROUNDS`` go to the
        Schema Validator as duplicates. Only columns a repair may draw again (providers, offsets, ranges).
        """
        redrawable = resamplable_columns(self.schema)
        for table in self.schema.record_tables:
            for col, cs in self.schema.tables[table].columns.items():
                if not cs.unique or col not in redrawable[table]:
                    continue
                redrawn = np.zeros(len(frames[table]), dtype=bool)
                for attempt in range(DISTINCT_ATTEMPT, DISTINCT_ATTEMPT + DISTINCT_ROUNDS):
                    series = frames[table][col]
                    order = np.lexsort((np.arange(len(series)), redrawn))  # values as first drawn keep priority
                    later = (series.iloc[order].duplicated(keep="first") & series.iloc[order].notna()).to_numpy()
                    repeats = np.sort(order[later])
                    if not len(repeats):
                        break
                    resample(self, frames, table, col, repeats, attempt)
                    redrawn[repeats] = True

    def _counts(self, table: str, parent: pd.DataFrame) -> np.ndarray:
        card = self.schema.tables[table].cardinality
        rng = self.rng(table, "cardinality")
        m = len(parent)
        if isinstance(card, int):
            return np.full(m, card)
        if isinstance(card, list):
            return rng.integers(card[0], card[1] + 1, m)
        assert isinstance(card, ValueMap) and card.map is not None
        states = parent[var_column(card.variable)].to_numpy()
        return np.asarray(_by_state(ColumnSpec(type="int"), card.map, states, rng), dtype=np.int64)

    def _variables(self, table: str, frame: pd.DataFrame, codes: dict[str, np.ndarray]) -> None:
        rng = self.rng(table, "variables")
        m = len(frame)
        for var in self.network.order:
            if self.schema.home[var] != table:
                continue
            node = self.network.node(var)
            cfg = None
            if node.parents:
                cfg = codes[node.parents[0]].astype(np.intp)
                for p in node.parents[1:]:
                    cfg = cfg * self.network.node(p).card + codes[p]
            out = np.empty(m, dtype=np.int64)
            self._noise.assign(self._params[var], cfg, self._noise.draw(rng, m, node.card), out)
            codes[var] = out
            frame[var_column(var)] = np.asarray(node.states, dtype=object)[out]

    def column_order(self, table: str) -> list[str]:
        """Columns of ``table`` with offset sources first."""
        spec = self.schema.tables[table]
        done: list[str] = []
        pending = list(spec.columns)
        while pending:
            for col in list(pending):
                off = spec.columns[col].offset
                src = off.from_ if off is not None and "." not in off.from_ else None
                if src is None or src in done or src not in spec.columns:
                    done.append(col)
                    pending.remove(col)
            if pending and all((spec.columns[c].offset is not None) for c in pending) and len(done) == 0:
                done += pending  # an offset cycle: the schema check reports it
                break
        return done

    def dependents(self, table: str, column: str) -> list[str]:
        """Columns computed from ``column`` (offsets), transitively, in order."""
        spec = self.schema.tables[table]
        out: list[str] = []
        frontier = [column]
        for col in self.column_order(table):
            off = spec.columns[col].offset
            if off is not None and off.from_ in frontier and col not in out:
                out.append(col)
                frontier.append(col)
        return out

    def draw(
        self,
        table: str,
        column: str,
        frame: pd.DataFrame,
        frames: Mapping[str, pd.DataFrame],
        rng: Rng,
    ) -> Any:
        """Values of ``column`` for every row of ``frame`` (JSON-like), from ``rng`` (a stream, or one per row)."""
        spec = self.schema.tables[table]
        cs = spec.columns[column]
        m = len(frame)
        if cs.references is not None:
            target, _, key = cs.references.partition(".")
            if target != self.schema.parent[table]:  # a lookup table: any of its rows, uniformly
                return rng.choice(frames[target][key].to_numpy(), size=m)
            return frame["_parent_key"].to_numpy() if "_parent_key" in frame else frame[column].to_numpy()
        if cs.realise:
            return np.full(m, "", dtype=object)
        if cs.derive is not None:  # computed once every table is drawn (causalsynth.tools.relational.derive)
            return np.full(m, None, dtype=object)
        if cs.variable is not None:
            states = frame[var_column(cs.variable)].to_numpy()
            values = states if cs.map is None else _by_state(cs, cs.map, states, rng)
        elif cs.provider is not None:
            if cs.provider in PROVIDERS:  # the built-in ones call only what RowStreams has
                values = np.asarray(PROVIDERS[cs.provider][0](cast(np.random.Generator, rng), m, cs))
            else:  # a plugin's: its failure stops the run with the provider's name (no column is left half drawn)
                fn = provider(cs.provider)[0]
                try:
                    if isinstance(rng, RowStreams):  # it may call any Generator method: a Generator per row
                        values = np.asarray([_one(fn(g, 1, cs)) for g in rng.generators()], dtype=object)
                    else:
                        values = np.asarray(fn(rng, m, cs), dtype=object)
                except Exception as exc:
                    raise DataError(
                        f"provider {cs.provider} failed on {table}.{column}: {type(exc).__name__}: {exc}"
                    ) from None
            if values.shape != (m,):
                raise DataError(f"provider {cs.provider} gave {values.shape} values for {m} rows of {table}.{column}")
        elif cs.offset is not None:
            values = self._offset(table, cs, cs.offset, frame, frames, rng)
        else:  # an int primary key without a source: numbered 1, 2, ... in the order rows were drawn
            return np.arange(1, m + 1, dtype=np.int64)
        out = _json_values(cs, values)
        if cs.null_rate:
            out = np.asarray(out, dtype=object)
            out[rng.random(m) < cs.null_rate] = None
        return out

    def _offset(
        self,
        table: str,
        cs: ColumnSpec,
        off: Offset,
        frame: pd.DataFrame,
        frames: Mapping[str, pd.DataFrame],
        rng: Rng,
    ) -> Any:
        src_table, _, src_col = off.from_.rpartition(".")
        if src_table and src_table != table:
            base = ancestor_values(self.schema, frames, table, frame, src_table, src_col)
        else:
            base = frame[src_col]
        amount_spec = ColumnSpec(type="float")
        if off.by is not None:
            amount = _draw_value(amount_spec, off.by, len(frame), rng)
        else:
            assert off.variable is not None and off.map is not None
            amount = _by_state(amount_spec, off.map, frame[var_column(off.variable)].to_numpy(), rng)
        amount = np.asarray(amount, dtype=float)
        if cs.type in ("date", "datetime"):
            start = pd.to_datetime(base, format="ISO8601").to_numpy(dtype="datetime64[s]")
            step = np.round(amount).astype(np.int64) * 86400 if cs.type == "date" else np.round(amount * 86400)
            return start + step.astype(np.int64).astype("timedelta64[s]")
        return pd.to_numeric(base).to_numpy(dtype=float) + amount


def _one(values: Any) -> Any:
    """The single value a provider drew for one row.

    Raises:
        ValueError: it drew some other number of values.
    """
    got = np.asarray(values, dtype=object).reshape(-1)
    if len(got) != 1:
        raise ValueError(f"gave {len(got)} values for 1 row")
    return got[0]


def _by_state(cs: ColumnSpec, mapping: Mapping[str, Any], states: Any, rng: Rng) -> Any:
    """Per row, a value from the map entry of the row's state."""
    states_arr = np.asarray(states, dtype=object)
    out = np.empty(len(states_arr), dtype=object)
    for state, spec in mapping.items():
        rows = np.flatnonzero(states_arr == state)
        if len(rows):
            part = rng.rows(rows) if isinstance(rng, RowStreams) else rng
            out[rows] = list(_draw_value(cs, spec, len(rows), part))
    return out


def _draw_value(cs: ColumnSpec, spec: Any, m: int, rng: Rng) -> Any:
    """``m`` draws of a map entry: a fixed value, ``[low, high]`` uniform, or ``{range, mode}`` triangular."""
    if isinstance(spec, dict):
        low, high = spec["range"]
        if cs.type in ("date", "datetime"):
            lo, hi = to_datetime64(low), to_datetime64(high)
            span = (hi - lo) / np.timedelta64(1, "s")
            mode = (to_datetime64(spec["mode"]) - lo) / np.timedelta64(1, "s") if "mode" in spec else span / 2
            secs = rng.triangular(0, mode, span, m) if span > 0 else np.zeros(m)
            return lo + secs.astype(np.int64).astype("timedelta64[s]")
        mode = spec.get("mode", (low + high) / 2)
        values = rng.triangular(low, mode, high, m) if high > low else np.full(m, float(low))
        return np.round(values).astype(np.int64) if cs.type == "int" else values
    if isinstance(spec, list):
        low, high = spec
        if cs.type in ("date", "datetime"):
            lo, hi = to_datetime64(low), to_datetime64(high)
            unit = 86400 if cs.type == "date" else 1
            steps = int((hi - lo) / np.timedelta64(unit, "s"))
            return lo + (rng.integers(0, steps + 1, m) * unit).astype("timedelta64[s]")
        if cs.type == "int":
            return rng.integers(int(low), int(high) + 1, m)
        return rng.uniform(float(low), float(high), m)
    return np.full(m, spec, dtype=object)


def _json_values(cs: ColumnSpec, values: Any) -> Any:
    """Values as the JSON-like form rows carry: ISO strings for dates, Python ints/floats/bools."""
    if cs.type in ("date", "datetime"):
        stamps = np.asarray(values, dtype="datetime64[D]" if cs.type == "date" else "datetime64[s]")
        out = np.datetime_as_string(stamps).astype(object)
        out[np.isnat(stamps)] = None  # an offset from a null is null
        return out
    if cs.type == "int":
        return np.asarray(values, dtype=np.int64)
    if cs.type == "float":
        return np.round(np.asarray(values, dtype=float), 6)
    if cs.type == "bool":
        return np.asarray(values, dtype=bool)
    return np.asarray(values, dtype=object)


def resamplable_columns(schema: TableSchema) -> dict[str, set[str]]:
    """Per table, the columns a repair may draw again: providers, offsets and per-state ranges (not keys, not text)."""
    out: dict[str, set[str]] = {}
    for table, spec in schema.tables.items():
        cols = set()
        for col, cs in spec.columns.items():
            if col == spec.primary_key or cs.references is not None or cs.realise or cs.derive is not None:
                continue
            ranged = cs.map is not None and any(isinstance(v, list | dict) for v in cs.map.values())
            if cs.provider is not None or cs.offset is not None or ranged:
                cols.add(col)
        out[table] = cols
    return out


def resample(
    sampler: RelationalSampler,
    frames: dict[str, pd.DataFrame],
    table: str,
    column: str,
    rows: np.ndarray,
    attempt: int,
) -> list[tuple[str, str]]:
    """Draw ``column`` again for the rows at positions ``rows`` of ``table``, then every column computed from it.

    Offsets in the same table and in child tables (``from: table.column``) follow the new values. Returns the
    ``(table, column)`` pairs that changed.

    Each row draws from a stream of its own (seed, table, column, attempt, the row's primary key), so a row's new
    values are the same whichever rows are redrawn with it: in any batch, batch size, shard or ``--resume`` retry.
    """
    schema = sampler.schema
    frame = frames[table]
    changed = []
    for col in [column, *sampler.dependents(table, column)]:
        part = frame.iloc[rows]
        streams = sampler.row_streams(table, col, attempt, part[schema.pk(table)].to_numpy())
        values = sampler.draw(table, col, part, frames, streams)
        if frame[col].dtype != object:
            frame[col] = frame[col].astype(object)
        frame.loc[frame.index[rows], col] = pd.Series(values, index=part.index, dtype=object)
        changed.append((table, col))
    keys = frame[schema.pk(table)].iloc[rows]
    for child in schema.children(table):
        cframe = frames[child]
        crows = np.flatnonzero(cframe[schema.fk[child]].isin(keys).to_numpy())
        for ccol, cs in schema.tables[child].columns.items():
            if cs.offset is not None and cs.offset.from_ in {f"{table}.{c}" for _, c in changed} and len(crows):
                changed += resample(sampler, frames, child, ccol, crows, attempt)
    return changed


def redraw(
    sampler: RelationalSampler,
    frames: dict[str, pd.DataFrame],
    plan: Mapping[tuple[str, str], set[Any]],
    attempt: int,
) -> int:
    """Draw again, parents first, the rows (by primary key) named per ``(table, column)``; the number redrawn."""
    schema = sampler.schema
    count = 0
    for (table, column), keys in sorted(plan.items(), key=lambda kv: schema.order.index(kv[0][0])):
        positions = np.flatnonzero(frames[table][schema.pk(table)].isin(list(keys)).to_numpy())
        resample(sampler, frames, table, column, positions, attempt=attempt)
        count += len(positions)
    return count
