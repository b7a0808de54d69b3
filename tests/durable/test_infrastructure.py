"""Infrastructure failures are not rejections: failed records are their own outcome, left out of the measures of
the text; a model that fails every call stops the run early, and ``--resume`` finishes it once the model is back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.tools.llm.chat_realiser import ModelUnavailableError
from causalsynth.tools.llm.factory import LLMOptions
from tests.durable.test_resume import same_output
from tests.fakes import ScriptedChatModel

ASIA = Path(__file__).resolve().parents[2] / "examples" / "asia.yaml"
OPTIONS = LLMOptions(realize="free", retries=1, concurrency=2)
FREE = {"llm_options": OPTIONS, "realize": "free", "retrieval": False}


class FlakyServer(ScriptedChatModel):
    """A model behind a server that refuses the connection for some prompts (``refuse_for``), or for all."""

    refuse_for: str | None = None
    down: bool = False

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        prompt = "\n".join(str(m.content) for m in messages)
        if self.down or (self.refuse_for is not None and self.refuse_for in prompt):
            self.calls.append(list(messages))
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_connection_failures_are_failed_not_rejected_and_left_out_of_the_measures(tmp_path):
    # Setup: the server refuses every call for smokers' records
    model = FlakyServer(refuse_for="smoker: yes")
    skeletons = cs.sample(ASIA, 300, seed=2)
    visited = set(skeletons.index[skeletons["smoke"] == "yes"])
    # Run
    result = cs.generate(ASIA, 300, llm=model, out=tmp_path, batch_size=50, seed=2, **FREE)
    # Assert
    failed = pd.read_parquet(tmp_path / "failed.parquet")
    report = result.report
    pd.testing.assert_frame_equal(failed, result.failed)
    assert visited and set(failed["record_id"]) == visited
    assert not set(result.rejects["record_id"]) & visited and not set(result.records["record_id"]) & visited
    assert report["n_failed"] == len(visited)
    assert report["n_accepted"] + report["n_rejected"] + report["n_failed"] == 300
    assert report["realizability"] == pytest.approx(report["n_accepted"] / (300 - len(visited)))
    assert report["selection_bias"]["all_skeletons"]["n_rows"] == 300 - len(visited)  # the reference: judged ones
    assert "Connection refused" in failed["reason"].iloc[0]
    assert all(json.loads(h)[-1]["violations"][0]["kind"] == "infrastructure" for h in failed["history"])


def test_a_run_without_failures_publishes_no_failed_file(tmp_path):
    # Run
    result = cs.generate(ASIA, 40, llm=FlakyServer(), out=tmp_path, **FREE)
    # Assert
    assert not (tmp_path / "failed.parquet").exists() and "n_failed" not in result.report


def test_a_dead_server_stops_the_run_early_and_resume_finishes_it(tmp_path):
    # Setup
    reference = tmp_path / "reference"
    run = {"llm_options": OPTIONS, "realize": "free", "retrieval": False, "seed": 4, "batch_size": 100}
    cs.generate(ASIA, 300, llm=FlakyServer(), out=reference, **run)
    out = tmp_path / "run"
    model = FlakyServer()
    original = type(model)._generate
    calls = {"n": 0}

    def dies_in_batch_three(self, messages, stop=None, run_manager=None, **kwargs):
        calls["n"] += 1
        self.down = calls["n"] > 150  # batch 0 goes through, then the server dies halfway through batch 1
        return original(self, messages, stop, run_manager, **kwargs)

    object.__setattr__(model, "_generate", dies_in_batch_three.__get__(model))
    # Run
    with pytest.raises(ModelUnavailableError, match="in a row.*--resume"):
        cs.generate(ASIA, 300, llm=model, out=out, **run)
    attempted = calls["n"]
    kept = sorted(p.name for p in (out / ".parts").iterdir())
    cs.generate(ASIA, 300, llm=FlakyServer(), resume=out, **run)
    # Assert
    # stopped after 32 failed records (2 calls each), not after every remaining record's retries; batch 0 kept
    assert attempted <= 150 + 2 * 32 + 2 * OPTIONS.concurrency and kept == ["records-000000.parquet"]
    same_output(reference, out)
