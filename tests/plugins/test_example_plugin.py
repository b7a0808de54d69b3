"""The example plugin package (examples/plugins, installed by the test set-up), end to end through runs.

Each group it registers takes effect: the formulary validator tool catches a misspelt drug and the correction
round fixes it; the MRN provider's numbers match their pattern and check digit; the metric is in the report; the
redaction node's identifiers never reach the written records; the noise model keeps the distributions and changes
the counterfactuals; the realiser writes a run from the CLI.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from causalsynth.graphs.api import counterfactual, generate, sample
from causalsynth.graphs.assess_api import write_run_report
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.sinks.table_folder import DATABASE
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT, run_cli
from tests.plugins.scripted import DrugNoteModel
from tests.plugins.test_tools import asia_with

pytest.importorskip("hospital_plugin", reason="make setup installs examples/plugins")

from hospital_plugin.formulary import FORMULARY, misspelt_drugs  # noqa: E402
from hospital_plugin.mrn import luhn_digit  # noqa: E402

PLUGINS = """plugins:
  validators: [formulary_check]
  nodes: [redact_identifiers]
  metrics: [drug_mentions]
"""


def test_the_plugins_command_lists_what_the_example_package_registers(capsys):
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    for group, name in (("tools", "formulary_check"), ("value_providers", "hospital_mrn"),
                        ("metrics", "drug_mentions"), ("nodes", "redact_identifiers")):  # fmt: skip
        line = next(x for x in out.splitlines() if f" {name} " in x)
        assert line.startswith(group) and "causalsynth-hospital-plugin 0.1.0" in line and line.endswith("[ok]")


def test_validator_node_and_metric_of_the_example_plugin_each_take_effect(tmp_path):
    # Setup
    spec = load_domain(asia_with(tmp_path, PLUGINS))
    model = DrugNoteModel()
    realiser = ChatRealiser(model, spec.lexicon, realize="free")
    out = tmp_path / "run"
    # Run
    result = generate(spec, 12, seed=3, llm=realiser, retrieval=False, out=out, max_rounds=2, batch_size=5)
    write_run_report(out)
    # Assert: the misspelt drug was caught on every first attempt and fixed by the correction round
    report = result.report
    assert report["n_accepted"] == 12 and report["n_rejected"] == 0
    assert report["rounds_histogram"] == {"1": 12} and report["violations"]["formulary"] == 12
    corrections = [c for c in model.calls if len(c) == 3]
    assert corrections and all("did you mean 'salbutamol'" in str(c[2].content) for c in corrections)
    written = pd.read_parquet(out / "records.parquet")
    assert all(not misspelt_drugs(t) and "salbutamol" in t for t in written["text"])
    # ... the redaction node ran after generation: no record number reaches the file (or the rejects, or the model)
    assert not any(re.search(r"MRN-\d", t) for t in written["text"])
    assert all("MRN-" not in str(c[2].content) for c in corrections)  # the correction saw the redacted text
    events = [json.loads(x) for x in (out / "run.jsonl").read_text().splitlines()]
    assert sum(e.get("redacted_texts", 0) for e in events if e.get("node") == "redact_identifiers") == 24
    # ... and the metric is in the report and on the page
    assert report["metrics"] == {"drug_mentions.share": 1.0, "drug_mentions.per_note": 1.0}
    assert json.loads((out / "report.json").read_text())["metrics"]["drug_mentions.share"] == 1.0
    assert report["metrics_records"] == 12
    page = (out / "report.html").read_text()
    assert "Plugin metrics" in page and "drug_mentions.share" in page


def hospital_with(tmp_path: Path, block: str) -> Path:
    """The hospital example, its patients' MRNs drawn by the plugin's provider, and a plugins block."""
    text = (ROOT / "examples" / "hospital.yaml").read_text()
    text = text.replace(
        "pattern: '^MRN-[0-9]{6}$', provider: code, args: {format: \"MRN-######\"}}",
        "pattern: '^H[0-9]{7}$', provider: hospital_mrn}",
    )
    text = text.replace("\ntext:\n", f"\n{block}\ntext:\n", 1)
    corpus = str(ROOT / "retrieval_corpus" / "hospital")
    (tmp_path / "hospital.yaml").write_text(text.replace("../retrieval_corpus/hospital", corpus))
    (tmp_path / "hospital.rules.lock.yaml").write_text((ROOT / "examples" / "hospital.rules.lock.yaml").read_text())
    return tmp_path / "hospital.yaml"


def test_one_spec_using_all_four_groups_of_the_example_plugin_in_a_tables_run(tmp_path):
    # Setup: MRN provider, formulary validator, redaction node and metric, with notes from a scripted model
    spec = load_domain(hospital_with(tmp_path, PLUGINS))
    model = DrugNoteModel()
    out = tmp_path / "run"
    # Run
    result = generate(spec, 12, seed=4, llm=ChatRealiser(model, spec.lexicon, realize="free"), retrieval=False,
                      out=out, max_rounds=3)  # fmt: skip
    # Assert: MRNs in the hospital's format, with a valid check digit, unique
    mrns = result.tables["patients"]["mrn"].tolist()
    assert mrns and all(re.fullmatch(r"H\d{7}", m) and int(m[-1]) == luhn_digit(m[1:7]) for m in mrns)
    assert len(set(mrns)) == len(mrns)
    # ... every note's misspelt drug caught by the validator tool and fixed by a correction
    notes = result.tables["notes"]["text"].tolist()
    assert notes and all("salbutamol" in t and not misspelt_drugs(t) for t in notes)
    corrections = [c for c in model.calls if len(c) == 3]
    assert corrections and all("did you mean 'salbutamol'" in str(c[2].content) for c in corrections)
    # ... no record number reaches the tables or the database
    assert not any(re.search(r"MRN-\d", t) for t in notes)
    with sqlite3.connect(out / DATABASE) as database:
        assert database.execute("select count(*) from notes where text like '%MRN-%'").fetchone()[0] == 0
        assert database.execute("select count(*) from notes").fetchone()[0] == len(notes)
    # ... and the metric over the accepted notes is in the report
    per_note = sum(sum(drug in t.lower() for drug in FORMULARY) for t in notes) / len(notes)
    assert result.report["metrics"] == {"drug_mentions.share": 1.0, "drug_mentions.per_note": pytest.approx(per_note)}


def test_the_mrn_value_provider_fills_a_table_column_with_valid_numbers(tmp_path):
    # Setup: the hospital example with its patients' MRNs drawn by the plugin, and the redaction node
    text = (ROOT / "examples" / "hospital.yaml").read_text()
    text = text.replace(
        "pattern: '^MRN-[0-9]{6}$', provider: code, args: {format: \"MRN-######\"}}",
        "pattern: '^H[0-9]{7}$', provider: hospital_mrn}",
    )
    text = text.replace("\ntext:\n", "\nplugins:\n  nodes: [redact_identifiers]\n\ntext:\n", 1)
    (tmp_path / "hospital.yaml").write_text(
        text.replace("../retrieval_corpus/hospital", str(ROOT / "retrieval_corpus" / "hospital"))
    )
    (tmp_path / "hospital.rules.lock.yaml").write_text((ROOT / "examples" / "hospital.rules.lock.yaml").read_text())
    # Run
    result = generate(tmp_path / "hospital.yaml", 30, seed=1, llm="template", retrieval=False, out=tmp_path / "run")
    # Assert
    mrns = result.tables["patients"]["mrn"].tolist()
    assert len(mrns) >= 25  # a few records may be rejected for other rules
    assert all(re.fullmatch(r"H\d{7}", m) and int(m[-1]) == luhn_digit(m[1:7]) for m in mrns)
    assert len(set(mrns)) == len(mrns)
    events = [json.loads(x) for x in (tmp_path / "run" / "run.jsonl").read_text().splitlines()]
    assert any(e.get("node") == "redact_identifiers" for e in events)


def test_the_noise_model_plugin_keeps_the_distributions_and_gives_other_counterfactuals(tmp_path, capsys):
    # Setup / Run
    ours = sample("asia", 20_000, seed=0, noise_model="reverse_cdf")
    base = sample("asia", 20_000, seed=0, noise_model="inverse_cdf")
    twins = counterfactual("asia", {"smoke": "yes"}, 2_000, seed=0, noise_model="reverse_cdf")
    base_twins = counterfactual("asia", {"smoke": "yes"}, 2_000, seed=0, noise_model="inverse_cdf")
    code, _, err = run_cli(capsys, "sample", "asia", "-n", "50", "--noise-model", "reverse_cdf",
                           "--out", str(tmp_path / "s.parquet"))  # fmt: skip
    # Assert: the same model observationally (marginals within sampling error), another SCM counterfactually
    for var in base.columns:
        p, q = ours[var].value_counts(normalize=True), base[var].value_counts(normalize=True)
        assert 0.5 * p.sub(q, fill_value=0).abs().sum() < 0.02, var
    assert (ours["smoke"] != base["smoke"]).mean() > 0.5  # the same uniforms land on the other state
    assert (twins["bronc__cf"] != base_twins["bronc__cf"]).any()
    assert code == 0 and len(pd.read_parquet(tmp_path / "s.parquet")) == 50, err


def test_the_realiser_plugin_writes_the_run_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "asia", "-n", "20", "--llm", "plugin:letter", "--no-retrieval",
                           "--out", str(out))  # fmt: skip
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    texts = pd.read_parquet(out / "records.parquet")["text"]
    assert report["realiser"] == "letter" and report["n_accepted"] == 20
    assert texts.str.startswith("Dear colleague,").all() and texts.str.endswith("the ward team.").all()
    code, _, err = run_cli(capsys, "run", "asia", "-n", "2", "--llm", "plugin:no_such", "--out", str(tmp_path / "x"))
    assert code == 2 and "no realisers plugin named 'no_such'" in err.strip().splitlines()[-1]
