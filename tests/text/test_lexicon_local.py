"""``causalsynth lexicon draft|expand`` with the real local model (SmolLM2-135M through llama.cpp).

A 135M model proposes mostly unusable text; the property that matters is that whatever it proposes, only what reads
back as exactly its own fact is kept, the result loads with the spec, and runs accept only texts that read back.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from causalsynth.tools.llm.local_model import ensure_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.phrasebook import phrasebook_path, read_phrasebook
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module", autouse=True)
def model() -> None:
    ensure_model()


def test_a_local_draft_loads_round_trips_and_runs_anchored(capsys, tmp_path):
    # Setup
    out = tmp_path / "smoking.draft.yaml"

    # Run
    code, stdout, err = run_cli(capsys, "lexicon", "draft", str(ROOT / "examples" / "smoking.yaml"), "--out",
                                str(out), "--variables", "smoker,scan", "--phrases-per-state", "2")  # fmt: skip
    run_code, _, run_err = run_cli(capsys, "run", str(out), "-n", "6", "--seed", "2", "--no-retrieval", "--out",
                                   str(tmp_path / "run"))  # fmt: skip

    # Assert: the draft loads (that is the round trip) and lists what the model got wrong
    assert code == 0, err
    assert "calls" in stdout
    domain = load_domain(out)
    review = yaml.safe_load(out.read_text())["x-lexicon-draft"]
    assert review["drafted"] == ["smoker", "scan"] and review["model"] == "local"
    assert all({"variable", "kind", "text", "reason"} <= set(d) for d in review["dropped"])
    # and an anchored run with the local model accepts only texts that read back as their records
    assert run_code == 0, run_err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["realizability"] >= 5 / 6
    records = pd.read_parquet(tmp_path / "run" / "records.parquet")
    for _, row in records.iterrows():
        skeleton = {v: row[v] for v in domain.network.names}
        assert not check_facts(domain.lexicon, skeleton, extract(domain.lexicon, row.text)), row.text


def test_a_local_expansion_keeps_only_phrasings_that_read_back(capsys, tmp_path):
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)

    # Run
    code, stdout, err = run_cli(capsys, "lexicon", "expand", str(spec), "--per-state", "2", "--variables", "smoke",
                                "--calls-per-phrase", "4", "--seed", "1")  # fmt: skip

    # Assert
    assert code == 0, err
    book, problems = read_phrasebook(phrasebook_path(spec))
    assert problems == [] and book.model == "local"
    assert book.count() >= 1, stdout
    assert set(book.phrases) == {"smoke"}
    domain = load_domain(spec)  # checks every phrasing again
    for state in ("yes", "no"):
        for phrase in book.of("smoke", state):
            assert extract(domain.lexicon, phrase).stated() == {"smoke": state}
            assert phrase in domain.lexicon.phrases["smoke"][state]
