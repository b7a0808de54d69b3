"""A relational run gives the same tables at any batch size, the values its repairs drew again included.

Each repaired row draws from a stream of its own (``tools.relational.sampling.resample``), so which records share
its batch changes nothing.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.runner import run as run_tables
from causalsynth.tools.spec import load_domain_text
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import same_report

N = 30
#: Rules that break often (most smokers' scores, a tenth of their ages, visits before joining, cheap COPD visits), over
#: provider, per-state range, triangular and cross-table offset columns: most records need a repair, some are rejected.
SPEC = textwrap.dedent("""
    model:
      nodes:
        smoker: {states: ["yes", "no"], probs: [0.4, 0.6]}
        dx:
          states: [copd, other]
          parents: [smoker]
          cpt:
            - {when: {smoker: "yes"}, probs: [0.6, 0.4]}
            - {when: {smoker: "no"}, probs: [0.1, 0.9]}
    tables:
      people:
        primary_key: id
        columns:
          id: {type: int}
          code: {type: string, unique: true, provider: code, args: {format: "P-########"}}
          smoker: {type: bool, variable: smoker, map: {"yes": true, "no": false}}
          score: {type: float, provider: number, args: {min: 0, max: 10}}
          age: {type: int, variable: smoker, map: {"yes": [10, 90], "no": {range: [0, 90], mode: 40}}}
          joined: {type: date, provider: date, args: {min: 2024-01-01, max: 2024-03-31}}
        rules:
          - "score >= 9 if smoker"
          - "age >= 18 if smoker"
      visits:
        primary_key: id
        parent: people
        cardinality: {variable: smoker, map: {"yes": [2, 3], "no": [1, 2]}}
        variables: [dx]
        columns:
          id: {type: int}
          person: {type: int, references: people.id}
          dx: {type: category, values: [copd, other], variable: dx}
          day: {type: date, offset: {from: people.joined, by: [-20, 30]}}
          cost: {type: float, variable: dx, map: {copd: [100, 900], other: [0, 500]}}
        rules:
          - "day >= people.joined"
          - "cost >= 300 if dx == 'copd'"
""")


def run(batch: int, seed: int, rounds: int) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The report, and every table and the rejects in key order, of a run of ``N`` records."""
    domain = load_domain_text(SPEC, source="repairs.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        settings_ = RunSettings(n=N, batch_size=batch, seed=seed, max_rounds=rounds)
        report = run_tables(domain, TemplateRealiser(domain.lexicon, seed=seed), settings_, out)
        frames = {t: pd.read_parquet(out / f"{t}.parquet") for t in ("people", "visits", "rejects")}
    order = {"people": ["id"], "visits": ["id"], "rejects": ["entity", "table", "row", "kind", "message"]}
    return report, {t: f.sort_values(order[t]).reset_index(drop=True) for t, f in frames.items()}


@settings(max_examples=6, deadline=None)
@given(st.integers(1, N), st.integers(1, N), st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_the_same_seed_gives_the_same_repaired_values_at_any_two_batch_sizes(small, large, seed, rounds):
    # Run
    first, one = run(small, seed, rounds)
    second, other = run(large, seed, rounds)
    # Assert: repairs drew values again, and every table, reject and count is the same
    assert first["values_redrawn"] > 0
    for table, frame in one.items():
        pd.testing.assert_frame_equal(frame, other[table], obj=table)
    same_report(first, second)
