"""The Studio graph in-process: plain settings in, the same report as ``causalsynth.generate``, the real nodes."""

from __future__ import annotations

import json
import sqlite3

import pytest

import causalsynth as cs
from causalsynth.graphs.builder import build_graph, compile_graph
from causalsynth.graphs.durable import CHECKPOINTS
from causalsynth.graphs.studio import SettingsError, StudioSettings, graph
from causalsynth.tools.errors import SpecError, UsageError
from tests.durable.test_resume import same_output

#: Report entries that measure time, not the run.
TIMINGS = {"seconds", "records_per_second", "accepted_per_second"}


def without_timings(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in TIMINGS}


def test_a_studio_run_gives_the_report_of_generate():
    # Setup
    settings = {"spec": "asia", "n": 20, "seed": 3, "llm": "template", "batch_size": 8}
    # Run
    out = graph.invoke({}, context=settings)
    # Assert: the run is the one the public API makes with the same settings
    expected = cs.generate("asia", 20, seed=3, llm="template", batch_size=8).report
    report = out["report"]
    assert report["n_requested"] == 20 and report["n_accepted"] + report["n_rejected"] == 20
    assert without_timings(report) == without_timings(expected)
    assert out["totals"]  # the run-wide counters come out too


def test_the_studio_graph_shows_the_records_graph_nodes():
    # Setup
    records = compile_graph(build_graph(None)).get_graph()
    # Run
    drawn = graph.get_graph(xray=True)
    # Assert: every node and edge of the records graph, inside the subgraph 'run'
    own = {n for n in records.nodes if not n.startswith("__")}
    inside = {n.removeprefix("run:") for n in drawn.nodes if n.startswith("run:") and "__" not in n}
    assert own == inside == {"sample", "retrieve", "generate", "validate_schema", "verify_causal", "assess", "write"}
    edges = {(e.source, e.target, e.conditional) for e in records.edges}
    sub = {(e.source.removeprefix("run:"), e.target.removeprefix("run:"), e.conditional) for e in drawn.edges
           if e.source.startswith("run:") and e.target.startswith("run:")}  # fmt: skip
    assert sub == edges


def test_the_context_is_plain_json_settings():
    # Run
    schema = graph.get_context_jsonschema()
    # Assert: a server (and Studio's form) can build it from JSON; defaults are a small template run
    assert set(schema["properties"]) == {"spec", "n", "seed", "llm", "realize", "mode", "max_rounds", "batch_size",
                                         "retrieval", "out"}  # fmt: skip
    assert json.loads(json.dumps(schema)) == schema
    defaults = StudioSettings()
    assert (defaults.spec, defaults.n, defaults.llm) == ("asia", 20, "template")
    assert graph.get_input_jsonschema()["properties"] == {}


@pytest.mark.parametrize(
    ("settings", "cause", "words"),
    [
        ({"n": 0}, UsageError, "-n must be between 1"),
        ({"batch_size": 0}, UsageError, "--batch-size"),
        ({"mode": "greedy"}, UsageError, "--mode"),
        ({"llm": "nonsense"}, UsageError, "'nonsense'"),
        ({"spec": "no-such-network"}, SpecError, "no-such-network"),
        ({"out": "  "}, UsageError, "is not a folder name"),
    ],
)
def test_bad_settings_stop_the_run_with_a_message_naming_them(settings, cause, words):
    # Run
    with pytest.raises(SettingsError) as info:
        graph.invoke({}, context=settings)
    # Assert: one line naming the setting; a ValueError, whose message a LangGraph server shows
    assert words in str(info.value) and isinstance(info.value, UsageError | ValueError)
    assert isinstance(info.value.__cause__, cause)


def test_a_run_longer_than_the_default_recursion_limit_completes():
    # Setup: 30 batches, each of at least 7 steps: more than the 25 the config allows the outer graph
    settings = {"n": 60, "batch_size": 2, "seed": 1}
    # Run
    out = graph.invoke({}, context=settings, config={"recursion_limit": 25})
    # Assert
    assert out["report"]["n_accepted"] + out["report"]["n_rejected"] == 60


def test_a_relational_spec_runs_its_table_graph_with_the_report_of_generate():
    # Setup
    settings = {"spec": "hospital", "n": 30, "seed": 2, "llm": "template", "batch_size": 10}
    # Run
    out = graph.invoke({}, context=settings)
    # Assert
    expected = cs.generate("hospital", 30, seed=2, llm="template", batch_size=10).report
    assert without_timings(out["report"]) == without_timings(expected)
    assert out["report"]["tables"] == ["doctors", "patients", "admissions", "notes"]


def test_the_studio_graph_shows_the_table_graph_nodes():
    # Run
    drawn = graph.get_graph(xray=True)
    # Assert
    inside = {n.removeprefix("run_tables:") for n in drawn.nodes if n.startswith("run_tables:") and "__" not in n}
    assert inside == {"sample_tables", "generate_text", "validate_tables", "repair", "write_tables"}
    assert {(e.source, e.target) for e in drawn.edges} >= {("start_run", "run:__start__"),
                                                            ("start_run", "run_tables:__start__")}  # fmt: skip


def test_out_writes_the_run_folder_of_causalsynth_run(tmp_path):
    # Setup
    settings = {"spec": "asia", "n": 60, "seed": 3, "llm": "template", "batch_size": 8}
    cs.generate("asia", 60, seed=3, llm="template", batch_size=8, out=tmp_path / "reference")
    # Run
    out = graph.invoke({}, context={**settings, "out": str(tmp_path / "studio")})
    # Assert: the same files (and report.html, as the CLI writes), checkpointed while it ran, none left after
    same_output(tmp_path / "reference", tmp_path / "studio")
    names = {p.name for p in (tmp_path / "studio").iterdir()}
    assert names == {"records.parquet", "rejects.parquet", "report.json", "report.html", "run.jsonl"}
    assert out["report"]["n_requested"] == 60


def test_out_with_a_relational_spec_writes_tables_and_the_database(tmp_path):
    # Setup
    settings = {"spec": "hospital", "n": 40, "seed": 1, "llm": "template", "batch_size": 10}
    reference = cs.generate("hospital", 40, seed=1, llm="template", batch_size=10)
    # Run
    out = graph.invoke({}, context={**settings, "out": str(tmp_path)})
    # Assert
    assert without_timings(out["report"]) == without_timings(reference.report)
    with sqlite3.connect(tmp_path / "database.sqlite") as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for table, frame in reference.tables.items():
            assert conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone() == (len(frame),)
    assert not (tmp_path / CHECKPOINTS).exists() and (tmp_path / "run.jsonl").is_file()
