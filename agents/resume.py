"""Restoring a run's in-memory bookkeeping when it resumes from a checkpoint at a batch boundary.

The graph state (counters, next id, batch index) comes back from the checkpoint; what lives beside it in the
run context is rebuilt from what the kept batches wrote. For records: the ledger of codes the report's measures
are computed from (skeletons ``0 .. next_id``, from the seeded skeleton source, and the accepted records, whose
facts are extracted again from their texts exactly as the Causal Verifier did). For tables: the unique values
accepted so far, which the Schema Validator checks new rows against. For both: the rows plugin metrics are
computed over (the accepted records, in the order the kept batches wrote them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from causalsynth.agents.assessor import FAILED_IDS
from causalsynth.agents.context import FrameContext, RunContext
from causalsynth.agents.run_plugins import run_plugins
from causalsynth.agents.state import Record
from causalsynth.agents.table_context import TableRunContext
from causalsynth.tools.text.extract import extract


def restore_ledger(
    ctx: RunContext, next_id: int, accepted: Sequence[tuple[int, str]], failed: Sequence[int] = ()
) -> None:
    """Refill ``ctx.ledger`` as the first ``next_id`` records' batches left it (``accepted``: id and text)."""
    if next_id:
        ctx.ledger.add_codes("skeleton", ctx.skeletons.codes(slice(0, next_id)), next_id)
    if accepted:
        ids = [i for i, _ in accepted]
        observed = ctx.domain.lexicon.observed
        ctx.ledger.add_codes("accepted", ctx.skeletons.codes(ids), len(ids))
        ctx.ledger.add("extracted", [extract(ctx.domain.lexicon, t).facts(observed) for _, t in accepted], observed)
    if failed:
        ctx.ledger.add_codes(FAILED_IDS, {"id": np.array(failed, dtype=np.int64)}, len(failed))


def fresh_records(ctx: RunContext, ids: Sequence[int]) -> list[Record]:
    """Records ``ids`` as the ``sample`` node makes them (their seeded skeletons, no attempt yet), to run again."""
    records = []
    for i in ids:
        (skeleton,) = ctx.skeletons.take(i, i + 1)
        records.append(Record(id=i, skeleton=skeleton, text="", attempts=0, llm_calls=0, tokens=0,
                              tokens_estimated=False, violations=[], history=[]))  # fmt: skip
    return records


def restore_seen(ctx: TableRunContext, kept: Mapping[str, Sequence[Any]]) -> None:
    """Refill ``ctx.seen`` (unique and key values accepted so far) as the kept batches left it.

    ``kept``: per record table, its rows in the kept parts (Arrow tables, batch by batch). A context that keeps no
    such set (its validation takes each value's owner from the run's draw, whatever batch came before) needs none.
    """
    seen: dict[tuple[str, str], set[Any]] | None = getattr(ctx, "seen", None)
    if seen is None:
        return
    for table in ctx.schema.record_tables:
        spec = ctx.schema.tables[table]
        for col, cs in spec.columns.items():
            if cs.unique or col == spec.primary_key:
                values = seen.setdefault((table, col), set())
                for part in kept.get(table, ()):
                    values.update(v for v in part[col].to_pylist() if v is not None)


def restore_metric_rows(
    ctx: FrameContext, records: Sequence[Mapping[str, Any]] = (), tables: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Give the spec's plugin metrics the accepted rows of the kept batches, as the ``plugin_metrics`` node kept them.

    ``records``: accepted records (``id``, ``text``, ``skeleton``); ``tables``: per kept batch, its accepted rows
    of the realised table (``{table: columns}``).
    """
    plugins = run_plugins(ctx) if ctx.domain.plugins is not None and ctx.domain.plugins.metrics else None
    if plugins is None:
        return
    if records:
        plugins.collect(records)  # type: ignore[arg-type]
    if tables and isinstance(ctx, TableRunContext):
        plugins.collect_tables(ctx.schema, tables)


def restore_retriever(ctx: FrameContext, queries: int, accepted: Sequence[tuple[int, str]]) -> None:
    """Bring the retriever's counters to what the kept batches left, for the report's retrieval summary.

    ``queries``: the records (or texts) retrieved for; ``accepted``: their accepted ``(id, text)`` pairs, which the
    leakage check reads again (it is deterministic). Only the time it took is not restored.
    """
    if ctx.retriever is None:
        return
    ctx.retriever.queries += queries
    ctx.retriever.check_copies(accepted)
