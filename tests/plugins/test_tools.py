"""Agent tools: Generator tools called while writing (bounded, traced, failures as violations) and validator tools
that raise or hang. The model is scripted here; the real local model's tool call is in test_local_tools.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from causalsynth.graphs.api import generate
from causalsynth.tools.errors import SpecError, UsageError
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT, run_cli
from tests.plugins.scripted import ToolCallingModel

TOOLS = """
import time
from langchain_core.tools import tool

@tool
def glossary(term: str) -> str:
    '''Define a clinical term.'''
    return f"{term.capitalize()}: shortness of breath."

@tool
def broken(term: str) -> str:
    '''A lookup whose service is down.'''
    raise RuntimeError("lookup service down")

@tool
def stuck(term: str) -> str:
    '''A lookup that never answers.'''
    time.sleep(30)
    return "late"

@tool
def raising_check(text: str) -> list[str]:
    '''A validator that fails.'''
    raise ValueError("formulary database unreachable")

STUCK_CALLS = []

@tool
def stuck_check(text: str, facts: dict) -> list[str]:
    '''A validator that never answers.'''
    STUCK_CALLS.append(text)
    time.sleep(30)
    return []

@tool
def needs_more(text: str, patient_id: str) -> list[str]:
    '''A validator that wants an argument validators are not given.'''
    return []
"""
NAMES = ("glossary", "broken", "stuck", "raising_check", "stuck_check", "needs_more")


@pytest.fixture
def lab_tools(install_plugin):
    install_plugin("lab-tools", {"tools": {n: f"lab_tools:{n}" for n in NAMES}}, {"lab_tools": TOOLS})


def asia_with(tmp_path: Path, block: str) -> Path:
    text = (ROOT / "examples" / "asia.yaml").read_text()
    text = text.replace("  bnlearn: asia\n", "  bnlearn: asia\n" + block, 1)
    path = tmp_path / "asia_tools.yaml"
    path.write_text(text.replace("../retrieval_corpus/asia", str(ROOT / "retrieval_corpus" / "asia")))
    return path


def run_with(tmp_path: Path, block: str, model: ToolCallingModel, n: int = 4, rounds: int = 1):
    domain = load_domain(asia_with(tmp_path, block))
    realiser = ChatRealiser(model, domain.lexicon, realize="free")
    out = tmp_path / "run"
    result = generate(domain, n, seed=2, llm=realiser, retrieval=False, out=out, max_rounds=rounds)
    events = [json.loads(x) for x in (out / "run.jsonl").read_text().splitlines()]
    return result, events


def test_a_generator_tool_result_reaches_the_prompt_and_each_call_is_traced(tmp_path, lab_tools):
    # Setup
    model = ToolCallingModel()
    # Run
    result, events = run_with(tmp_path, "plugins: {generator_tools: [glossary], tool_calls: {calls: 2}}\n", model)
    # Assert
    calls = [e for e in events if e.get("event") == "tool_call"]
    assert [(c["tool"], c["args"], "error" in c) for c in calls] == [("glossary", {"term": "dyspnoea"}, False)] * 4
    writes = [m for m in model.calls if not str(m[0].content).startswith("Before you write")]
    assert len(writes) == 4
    assert all('glossary(term="dyspnoea") returned: Dyspnoea: shortness of breath.' in str(m[1].content)
               for m in writes)  # fmt: skip
    assert result.report["n_accepted"] == 4
    assert result.report["llm_calls"] == 4 * 3  # per record: the call, the turn that stops, the text
    assert model.bound_choice == [None]  # optional calls: the model may also write at once
    generate_events = [e for e in events if e.get("node") == "generate"]
    assert sum(e["tool_calls"] for e in generate_events) == 4 and all(e["tool_errors"] == 0 for e in generate_events)


def test_required_tool_calls_force_the_first_turn(tmp_path, lab_tools):
    model = ToolCallingModel()
    run_with(tmp_path, "plugins: {generator_tools: [glossary], tool_calls: {calls: 1, require: true}}\n", model, n=2)
    assert model.bound_choice == ["any"]


@pytest.mark.parametrize(
    ("tool", "reason"),
    [("broken", "generator tool broken failed: RuntimeError: lookup service down"),
     ("stuck", "generator tool stuck failed: no answer within the record's tool budget of 0.5 s")],
)  # fmt: skip
def test_a_generator_tool_that_raises_or_hangs_becomes_a_violation_and_loses_no_record(tmp_path, lab_tools, tool,
                                                                                      reason):  # fmt: skip
    # Setup
    model = ToolCallingModel(tool=tool)
    block = f"plugins: {{generator_tools: [{tool}], tool_calls: {{calls: 1, seconds: 0.5}}}}\n"
    # Run
    result, events = run_with(tmp_path, block, model, n=3, rounds=1)
    # Assert: every record is accounted for, rejected with the tool's reason after its correction round
    assert result.report["n_requested"] == 3 and result.report["n_rejected"] == 3
    assert result.report["violations"]["tool_error"] == 6  # two attempts each
    reasons = " ".join(str(v) for v in result.rejects.astype(str).to_numpy().ravel())
    assert reason in reasons
    assert sum(1 for e in events if e.get("event") == "tool_call" and e.get("error")) == 6
    if tool == "stuck":  # three timeouts in a row: the dead tool is not called again in this run
        assert "not called: it gave no answer 3 times in a row earlier in this run" in reasons


@pytest.mark.parametrize(
    ("tool", "reason"),
    [("raising_check", "validator tool raising_check failed: ValueError: formulary database unreachable"),
     ("stuck_check", "validator tool stuck_check failed: no answer within 0.3 s")],
)  # fmt: skip
def test_a_validator_tool_that_raises_or_hangs_becomes_a_violation_and_fails_no_run(tmp_path, lab_tools, tool,
                                                                                     reason):  # fmt: skip
    block = f"plugins: {{validators: [{tool}], validator_seconds: 0.3}}\n"
    result = generate(asia_with(tmp_path, block), 3, llm="template", max_rounds=1, out=tmp_path / "run")
    assert result.report["n_rejected"] == 3 and result.report["violations"]["tool_error"] == 6
    assert reason in " ".join(pd.read_parquet(tmp_path / "run" / "rejects.parquet").astype(str).to_numpy().ravel())


def test_a_validator_tool_wanting_other_arguments_is_refused_at_run_start(tmp_path, lab_tools):
    domain = load_domain(asia_with(tmp_path, "plugins: {validators: [needs_more]}\n"))
    with pytest.raises(SpecError, match="validator tool 'needs_more' requires patient_id"):
        _ = domain.plugins


def test_generator_tools_need_a_model_and_corpus_lookup_needs_retrieval(tmp_path, lab_tools, capsys):
    spec = asia_with(tmp_path, "plugins: {generator_tools: [glossary]}\n")
    with pytest.raises(UsageError, match="needs a chat model"):
        generate(spec, 2, llm="template")
    lookup = asia_with(tmp_path, "plugins: {generator_tools: [corpus_lookup]}\n")
    with pytest.raises(UsageError, match="corpus_lookup looks up the spec's retrieval corpus"):
        generate(lookup, 2, llm=ChatRealiser(ToolCallingModel(), load_domain(lookup).lexicon), retrieval=False)
    code, _, err = run_cli(capsys, "run", str(spec), "-n", "2", "--llm", "template", "--out", str(tmp_path / "o"))
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and "needs a chat model" in last and "Traceback" not in err


def test_tool_runs_and_tool_turns_are_spans_of_the_run_trace(tmp_path, lab_tools):
    domain = load_domain(asia_with(tmp_path, "plugins: {generator_tools: [glossary], validators: [raising_check]}\n"))
    realiser = ChatRealiser(ToolCallingModel(), domain.lexicon, realize="free")
    generate(domain, 2, llm=realiser, retrieval=False, out=tmp_path / "run", trace="jsonl", max_rounds=0)
    spans = [json.loads(x) for x in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    names = [s.get("name") for s in spans]
    assert names.count("glossary") == 2 and names.count("raising_check") == 2
    assert names.count("ToolCallingModel") == 2 * 2  # per record: the turn that calls and the turn that stops
    assert sum(str(n).startswith("realise record") for n in names) == 2


def test_a_validator_tool_that_keeps_hanging_is_given_up_on_after_three_timeouts(tmp_path, lab_tools):
    # Setup
    import sys

    block = "plugins: {validators: [stuck_check], validator_seconds: 0.2}\n"
    # Run
    result = generate(asia_with(tmp_path, block), 40, llm="template", max_rounds=1, out=tmp_path / "run")
    # Assert: every record is rejected with a reason, and the dead tool was called three times, not eighty
    assert result.report["n_rejected"] == 40 and result.report["violations"]["tool_error"] == 80
    assert len(sys.modules["lab_tools"].STUCK_CALLS) == 3
    reasons = " ".join(pd.read_parquet(tmp_path / "run" / "rejects.parquet").astype(str).to_numpy().ravel())
    assert "not called: it gave no answer within 0.2 s 3 times in a row" in reasons
