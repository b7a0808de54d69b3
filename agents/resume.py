"""Restoring a run's in-memory bookkeeping when it resumes from a checkpoint at a batch boundary.

The graph state (counters, next id, batch index) comes back from the checkpoint; what lives beside it in the
run context, the ledger of codes the report's measures are computed from, is rebuilt from what the kept batches
wrote: skeletons ``0 .. next_id`` (the skeleton source is seeded) and the accepted records, whose facts are
extracted again from their texts exactly as the Causal Verifier did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from causalsynth.agents.assessor import FAILED_IDS
from causalsynth.agents.context import RunContext
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
