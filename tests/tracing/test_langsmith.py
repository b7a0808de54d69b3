"""LangSmith: the standard environment variables turn tracing on; the real client's payloads make a readable tree."""

from __future__ import annotations

from pathlib import Path

import langsmith.utils
import pytest

import causalsynth as cs
from tests.fakes import ScriptedChatModel
from tests.tracing.langsmith_server import Recorder, start


@pytest.fixture
def langsmith_server(monkeypatch):
    recorder = Recorder()
    server, url = start(recorder)
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key")
    monkeypatch.setenv("LANGSMITH_PROJECT", "causalsynth-tests")
    langsmith.utils.get_env_var.cache_clear()  # the client caches what it read from the environment
    langsmith.utils.get_tracer_project.cache_clear()
    yield recorder
    server.shutdown()
    monkeypatch.undo()
    langsmith.utils.get_env_var.cache_clear()
    langsmith.utils.get_tracer_project.cache_clear()


ASIA = Path(__file__).resolve().parents[2] / "examples" / "asia.yaml"


def backdoor(text: str) -> str:
    """The semantic backdoor on a first attempt: a non-smoker written as a smoker."""
    for phrase in ("Non-smoker.", "Never smoked.", "Denies tobacco use."):
        text = text.replace(phrase, "The patient smokes.")
    return text


def test_langsmith_receives_root_node_and_llm_spans_with_metadata(langsmith_server):
    # Setup
    model = ScriptedChatModel(first=backdoor)
    # Run
    result = cs.generate(
        ASIA, 6, llm=model, realize="free", retrieval=False, batch_size=3, seed=1,
        config={"tags": ["nightly"], "metadata": {"team": "causal"}},
    )  # fmt: skip
    # Assert: what the real langsmith client sent to the loopback server
    runs = langsmith_server.runs
    assert "/runs/multipart" in langsmith_server.paths()
    roots = [r for r in runs.values() if not r.get("parent_run_id")]
    assert [r["name"] for r in roots] == ["asia"]  # one root per run, named after the spec
    root = roots[0]
    assert root["session_name"] == "causalsynth-tests"
    assert "nightly" in root["tags"] and root["extra"]["metadata"]["team"] == "causal"  # the user's config kept
    assert root["outputs"]["report"]["n_requested"] == 6
    by_id = {rid: r for rid, r in runs.items()}
    nodes = [r for r in runs.values() if r.get("parent_run_id") == root["id"]]
    assert {"sample", "generate", "verify_causal", "assess", "write"} <= {r["name"] for r in nodes}
    # node inputs and outputs are summaries: ids and violations, not the batch's records
    verify = next(r for r in nodes if r["name"] == "verify_causal" and r["outputs"].get("records", {}).get("n"))
    assert set(verify["outputs"]["records"]) == {"n", "ids", "violations"}
    assert "'skeleton': {" not in str(verify["inputs"]) and "'history': [" not in str(verify["outputs"])
    # every LLM call is a child of a generate node and carries the record, attempt, batch and violations
    calls = [r for r in runs.values() if r["run_type"] == "llm"]
    assert len(calls) == result.report["llm_calls"]
    assert all(by_id[c["parent_run_id"]]["name"] == "generate" for c in calls)
    meta = [c["extra"]["metadata"] for c in calls]
    assert {(m["record_id"], m["attempt"]) for m in meta} >= {(i, 0) for i in range(6)}
    assert all(m["batch"] == m["record_id"] // 3 and m["team"] == "causal" for m in meta)
    corrections = [c for c in calls if c["extra"]["metadata"]["attempt"] > 0]
    assert corrections, "the backdoor must have sent some record back for correction"
    for c in corrections:
        asked = c["extra"]["metadata"]["violations"]
        assert asked and any("smoke" in v for v in asked)  # the violations it was asked to fix
        prompt = str(c["inputs"]["messages"])
        assert "smoke" in prompt and f"record:{c['extra']['metadata']['record_id']}" in c["tags"]
    assert all(c["outputs"]["generations"][0][0]["text"] for c in calls)  # the reply is there


def test_without_the_environment_variables_nothing_is_sent(monkeypatch):
    # Setup
    recorder = Recorder()
    server, url = start(recorder)
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    monkeypatch.delenv("LANGCHAIN_TRACING_V2", raising=False)
    langsmith.utils.get_env_var.cache_clear()
    # Run
    cs.generate("asia", 3, llm="template")
    # Assert
    server.shutdown()
    langsmith.utils.get_env_var.cache_clear()
    assert recorder.requests == []
