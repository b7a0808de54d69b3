"""The real local model (SmolLM2 through llama.cpp) calls the built-in ``corpus_lookup`` tool while writing.

Its tool call is constrained by a grammar built from the tool's JSON schema, so the reply is a well-formed call;
the lookup's result reaches the realisation prompt; the texts are verified like any other.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from causalsynth.graphs.api import generate
from causalsynth.tools.llm.local_model import ensure_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from tests.plugins.test_tools import asia_with


class Prompts(BaseCallbackHandler):
    """Every chat model call's messages."""

    def __init__(self) -> None:
        self.calls: list[list] = []

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        self.calls.append(list(messages[0]))


@pytest.fixture(scope="module")
def lookup_run(tmp_path_factory):
    ensure_model()
    tmp = tmp_path_factory.mktemp("local-tools")
    spec = load_domain(
        asia_with(tmp, "plugins:\n  generator_tools: [corpus_lookup]\n  tool_calls: {calls: 1, require: true}\n")
    )
    prompts = Prompts()
    result = generate(spec, 3, seed=1, llm="local", out=tmp / "run", config={"callbacks": [prompts]})
    events = [json.loads(x) for x in (tmp / "run" / "run.jsonl").read_text().splitlines()]
    return spec, result, events, prompts


def test_the_local_model_calls_the_lookup_tool_with_arguments_its_schema_accepts(lookup_run):
    _, result, events, _ = lookup_run
    calls = [e for e in events if e.get("event") == "tool_call"]
    first = {c["record_id"] for c in calls if c["attempt"] == 0}
    assert first == {0, 1, 2}  # one required call per record's first attempt
    assert all(c["tool"] == "corpus_lookup" and "error" not in c and c["output_chars"] > 0 for c in calls)
    assert all(isinstance(c["args"]["query"], str) and 1 <= len(c["args"]["query"]) <= 60 for c in calls)


def test_the_lookup_result_reaches_the_realisation_prompt(lookup_run):
    _, _, events, prompts = lookup_run
    turns = [m for m in prompts.calls if str(m[0].content).startswith("Before you write")]
    writes = [m for m in prompts.calls if not str(m[0].content).startswith("Before you write")]
    assert len(turns) >= 3  # the tool turns are traced as calls of the run
    queries = [c["args"]["query"] for c in events if c.get("event") == "tool_call" and c["attempt"] == 0]
    for query in queries:
        needle = f"corpus_lookup(query={json.dumps(query)}) returned: ["
        assert any(needle in str(m[1].content) for m in writes), needle


def test_the_texts_written_after_a_lookup_are_verified(lookup_run):
    spec, result, _, _ = lookup_run
    assert result.report["n_accepted"] + result.report["n_rejected"] == 3
    lexicon = spec.lexicon
    for _, row in result.records.iterrows():
        skeleton = {v: str(row[v]) for v in spec.network.names}
        assert check_facts(lexicon, skeleton, extract(lexicon, row["text"])) == []
