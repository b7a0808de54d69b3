"""JSONL traces of a relational run: a root span named after the spec, and every node span, written without a
tracer error (a relational run's input, summarised at its start, is not summarised again at its end)."""

from __future__ import annotations

import json

import causalsynth as cs


def test_a_relational_run_traces_its_root_and_every_batch(tmp_path, capsys):
    # Run
    cs.generate("hospital", 30, llm="template", out=tmp_path, trace="jsonl", batch_size=10)
    # Assert
    spans = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["hospital"] and roots[0]["error"] is None
    assert roots[0]["inputs"]["n_requested"] == 30 and roots[0]["outputs"]["report"]["n_requested"] == 30
    assert sum(s["name"] == "write_tables" for s in spans) == 3
    assert "Error in JsonlTracer" not in capsys.readouterr().err
