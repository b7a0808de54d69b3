"""``--trace jsonl``: the run's spans in the run folder, and ``trace show`` telling one record's whole story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import causalsynth as cs
from causalsynth.graphs.trace_cli import parse_ranges
from causalsynth.graphs.tracing import id_ranges, summarise
from causalsynth.tools.errors import UsageError
from tests.conftest import run_cli
from tests.fakes import ScriptedChatModel
from tests.tracing.test_langsmith import ASIA, backdoor


def _spans(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "traces.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory) -> tuple[Path, cs.GenerationResult]:
    out = tmp_path_factory.mktemp("run")
    model = ScriptedChatModel(first=backdoor)
    result = cs.generate(ASIA, 8, llm=model, realize="free", retrieval=False, batch_size=4, seed=1, out=out,
                         trace="jsonl", config={"metadata": {"owner": "qa"}, "tags": ["ci"]})  # fmt: skip
    return out, result


def test_jsonl_spans_form_one_tree_with_llm_calls_under_their_node(traced_run):
    # Setup
    out, result = traced_run
    # Run
    spans = _spans(out)
    # Assert
    by_id = {s["id"]: s for s in spans}
    (root,) = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "asia" and root["metadata"]["owner"] == "qa" and "ci" in root["tags"]
    assert {s["trace_id"] for s in spans} == {root["id"]}
    assert all(s["parent_id"] in by_id for s in spans if s is not root)
    calls = [s for s in spans if s["type"] == "llm"]
    assert len(calls) == result.report["llm_calls"]
    assert all(by_id[c["parent_id"]]["name"] == "generate" for c in calls)
    assert all(c["outputs"]["text"] and c["inputs"]["messages"][0]["role"] == "system" for c in calls)
    for c in calls:
        meta = c["metadata"]
        assert meta["batch"] == meta["record_id"] // 4 and meta["owner"] == "qa"
        assert bool(meta["violations"]) == (meta["attempt"] > 0)
    assert not any("langsmith:hidden" in s["tags"] for s in spans)


def test_node_spans_are_summaries_not_batches(traced_run):
    # Setup
    out, _ = traced_run
    # Run
    nodes = [s for s in _spans(out) if s["type"] == "chain" and s["parent_id"] is not None]
    # Assert
    bodies = [{k: v for k, v in n[io].items() if k != "report"} for n in nodes for io in ("inputs", "outputs")]
    text = json.dumps(bodies)
    assert '"skeleton": {' not in text and '"history": [' not in text  # no record bodies
    generated = [n["outputs"]["records"] for n in nodes if n["name"] == "generate"]
    assert generated[0] == {"n": 4, "ids": "0-3"}


def test_trace_show_tells_a_corrected_records_story(traced_run, capsys):
    # Setup
    out, result = traced_run
    corrected = int(result.records[result.records["rounds"] == 1]["record_id"].iloc[0])
    # Run
    code, stdout, _ = run_cli(capsys, "trace", "show", str(out), "--record", str(corrected))
    # Assert
    assert code == 0
    assert f"record {corrected}" in stdout and "accepted" in stdout.splitlines()[0]
    assert stdout.index("attempt 0") < stdout.index("violations found") < stdout.index("sent back for correction")
    assert stdout.index("sent back for correction") < stdout.index("attempt 1") < stdout.index("correction asked")
    assert "the record says smoke=no" in stdout and "The patient smokes." in stdout and "Non-smoker." in stdout


def test_trace_show_without_record_lists_batches_and_nodes(traced_run, capsys):
    # Setup
    out, _ = traced_run
    # Run
    code, stdout, _ = run_cli(capsys, "trace", "show", str(out))
    # Assert
    assert code == 0 and "batch 0" in stdout and "batch 1" in stdout and "verify_causal" in stdout
    assert "LLM call(s)" in stdout


def test_trace_show_of_a_template_run_uses_the_folders_texts(tmp_path, capsys):
    # Setup
    out = tmp_path / "run"
    code, _, _ = run_cli(capsys, "run", "asia", "-n", "50", "--llm", "template", "--out", str(out), "--trace", "jsonl")
    assert code == 0
    # Run
    code, stdout, _ = run_cli(capsys, "trace", "show", str(out), "--record", "7")
    # Assert
    text = cs.generate("asia", 50, llm="template").records.set_index("record_id").loc[7, "text"]
    assert code == 0 and "record 7" in stdout and text[:30] in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "show", "{tmp}/nowhere"], "no such run folder"),
        (["trace", "show", "{tmp}"], "no traces.jsonl"),
        (["trace", "show", "{run}", "--record", "999"], "record 999 is not in traces.jsonl"),
        (["trace", "show", "{bad}"], "traces.jsonl:2: not a trace span"),
        (["run", "asia", "-n", "5", "--llm", "template", "--out", "{tmp}/o", "--trace", "zipkin"], "--trace must be"),
    ],
)
def test_trace_errors_are_one_line(traced_run, tmp_path, capsys, args, message):
    # Setup
    run, _ = traced_run
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "traces.jsonl").write_text('{"id": "a", "name": "x", "type": "chain", "start": "1"}\n{oops\n')
    argv = [a.format(tmp=tmp_path, run=run, bad=bad) for a in args]
    # Run
    code, _, stderr = run_cli(capsys, *argv)
    # Assert
    assert code == 2 and message in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_jsonl_trace_needs_an_output_folder():
    # Run / Assert
    with pytest.raises(UsageError, match="output folder"):
        cs.generate("asia", 5, llm="template", trace="jsonl")


def test_id_ranges_round_trip():
    # Setup
    ids = [0, 1, 2, 3, 7, 9, 10, 11, 40]
    # Run
    text = id_ranges(ids)
    # Assert
    assert text == "0-3,7,9-11,40" and list(parse_ranges(text)) == ids
    assert summarise({"records": [], "batch": 3}) == {"records": {"n": 0}, "batch": 3}
