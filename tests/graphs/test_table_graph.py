"""The relational graph end to end: every record settled, SQL finds no violation, corrections reach the Generator."""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.builder import build_graph, compile_graph
from causalsynth.graphs.runner import run as run_tables
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.sinks.sql_checks import read_checks, run_checks
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.realisation import Realisation, RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT, run_cli
from tests.fakes import ScriptedChatModel

SNAPSHOT = Path(__file__).parent / "snapshots" / "table_graph.mmd"
CHECKS = read_checks(ROOT / "examples" / "hospital_checks.sql")


@pytest.fixture(scope="module")
def hospital() -> Domain:
    return load_domain(ROOT / "examples" / "hospital.yaml")


class Scripted:
    """The template realiser behind a hook that can spoil a first attempt; records every request."""

    name = "scripted"

    def __init__(self, domain: Domain, spoil=None) -> None:
        self.template = TemplateRealiser(domain.lexicon, seed=0)
        self.spoil = spoil
        self.requests: list[RealisationRequest] = []

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        self.requests += requests
        out = []
        for r in requests:
            text = self.template.text(r.skeleton, r.record_id, r.attempt)
            if self.spoil is not None and r.attempt == 0:
                text = self.spoil(r, text)
            out.append(Realisation(text=text, llm_calls=1))
        return out


def test_graph_shape_matches_snapshot(hospital):
    assert compile_graph(build_graph(hospital), relational=True).get_graph().draw_mermaid() == SNAPSHOT.read_text()


def test_graph_edges_are_the_designed_loop(hospital):
    edges = {
        (e.source, e.target, e.conditional)
        for e in compile_graph(build_graph(hospital), relational=True).get_graph().edges
    }
    assert edges == {
        ("__start__", "sample_tables", False),
        ("sample_tables", "generate_text", False),
        ("generate_text", "validate_tables", False),
        ("validate_tables", "repair", True),
        ("validate_tables", "write_tables", True),
        ("repair", "generate_text", True),
        ("repair", "validate_tables", True),
        ("write_tables", "sample_tables", True),
        ("write_tables", "__end__", True),
    }


def test_hospital_run_writes_tables_the_database_accepts_and_sql_finds_no_violation(hospital, tmp_path):
    # Run
    report = run_tables(
        hospital, TemplateRealiser(hospital.lexicon, seed=0), RunSettings(n=150, batch_size=40), tmp_path
    )
    # Assert: every requested record is accepted or rejected, never both, never lost
    patients = pd.read_parquet(tmp_path / "patients.parquet")
    rejects = pd.read_parquet(tmp_path / "rejects.parquet").to_dict("records")
    rejected = {r["entity"] for r in rejects}
    assert report["n_accepted"] + report["n_rejected"] == 150
    assert len(patients) == report["n_accepted"] and len(rejected) == report["n_rejected"]
    assert set(patients["patient_id"] - 1).isdisjoint(rejected)
    assert set(patients["patient_id"] - 1) | rejected == set(range(150))
    # independent SQL: no orphan, no duplicate, no broken rule
    counts = run_checks(tmp_path / "database.sqlite", CHECKS)
    assert counts == dict.fromkeys(CHECKS, 0)
    conn = sqlite3.connect(tmp_path / "database.sqlite")
    for table in ("patients", "admissions", "notes"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == len(
            pd.read_csv(tmp_path / f"{table}.csv")
        )
    conn.close()
    # every rejection says why, naming table, row and rule or column
    assert all(r["message"] and r["table"] and (r["rule"] or r["column"]) for r in rejects)
    assert report["compliance_before"]["records"] < 1.0  # the providers broke rules that the validator caught


def test_a_wrong_fact_goes_back_to_the_generator_with_feedback(hospital, tmp_path):
    # Setup: the first attempt of every note turns a non-smoker into a smoker (the semantic backdoor)
    def backdoor(request: RealisationRequest, text: str) -> str:
        return text.replace("Lifelong non-smoker.", "Active smoker.").replace("Never smoked.", "Active smoker.")

    realiser = Scripted(hospital, backdoor)
    # Run
    report = run_tables(hospital, realiser, RunSettings(n=30), tmp_path)
    # Assert: the spoiled notes were rewritten with feedback naming the fact, and none was accepted spoiled
    second = [r for r in realiser.requests if r.attempt == 1]
    assert second, "no note was sent back"
    assert all(any(f["variable"] == "text" and "smoking" in f["message"] for f in r.feedback) for r in second)
    assert all(r.skeleton["smoking"] == "never" for r in second)
    notes = pd.read_parquet(tmp_path / "notes.parquet")
    patients = pd.read_parquet(tmp_path / "patients.parquet")
    joined = notes.merge(pd.read_parquet(tmp_path / "admissions.parquet"), on="admission_id").merge(
        patients, on="patient_id"
    )
    never = joined[joined["smoking_status"] == "never"]
    assert len(never) and not never["text"].str.contains("Active smoker").any()
    assert report["llm_calls"] == len(realiser.requests)


def test_an_overlong_note_is_rewritten_not_truncated(hospital, tmp_path):
    realiser = Scripted(hospital, lambda r, text: text + " Padding." * 300)
    report = run_tables(hospital, realiser, RunSettings(n=10), tmp_path)
    notes = pd.read_parquet(tmp_path / "notes.parquet")
    assert (notes["text"].str.len() <= 2000).all()
    told = [f["message"] for r in realiser.requests if r.attempt == 1 for f in r.feedback]
    assert any("longer than 2000" in m or "len(text)" in m for m in told)
    assert report["n_accepted"] + report["n_rejected"] == 10


def test_a_generator_that_always_fails_rejects_records_with_reasons(hospital, tmp_path):
    class Broken:
        name = "broken"

        def realise(self, requests):
            return [Realisation(text="", error="model overloaded") for _ in requests]

    report = run_tables(hospital, Broken(), RunSettings(n=5, max_rounds=1), tmp_path)
    assert report["n_accepted"] == 0 and report["n_rejected"] == 5
    rejects = pd.read_parquet(tmp_path / "rejects.parquet").to_dict("records")
    assert {r["entity"] for r in rejects} == set(range(5))
    assert any(r["kind"] == "null" and r["column"] == "text" for r in rejects)
    conn = sqlite3.connect(tmp_path / "database.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM patients").fetchone()[0] == 0
    conn.close()


def test_cli_run_on_hospital_writes_every_table_and_the_database(capsys, tmp_path):
    out = tmp_path / "hospital"
    # The default Generator: the embedded model writes the notes (anchored), through the relational graph.
    code, stdout, err = run_cli(capsys, "run", str(ROOT / "examples" / "hospital.yaml"), "-n", "6", "--out", str(out))
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    # ... with reference notes retrieved from the hospital corpus, synced into the (test session's) Chroma store
    assert re.search(r"corpus hospital: \d+ documents", err) and report["retrieval"]["records"] >= 6
    assert report["llm"] == "local"
    for name in ("patients", "admissions", "notes"):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    assert (out / "database.sqlite").is_file() and (out / "report.json").is_file()
    assert "compliance_before" in stdout


def test_cli_reports_every_schema_problem_and_exits_2(capsys, write_spec, tmp_path):
    text = (ROOT / "examples" / "hospital.yaml").read_text()
    text = text.replace("references: patients.patient_id", "references: patient.patient_id")
    text = text.replace("    primary_key: note_id\n", "")
    text = text.replace('rule: "discharged_on >= admitted_on"', 'rule: "discharged_on >= admited_on"')
    spec = tmp_path / "hospital.yaml"
    spec.write_text(text)
    (tmp_path / "hospital.rules.lock.yaml").write_text((ROOT / "examples" / "hospital.rules.lock.yaml").read_text())
    code, _, err = run_cli(capsys, "run", str(spec), "-n", "5", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert "foreign key to unknown table 'patient'" in err
    assert "notes has no primary key" in err


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 60), st.integers(1, 25), st.integers(0, 2**31 - 1), st.integers(0, 3))
def test_no_record_lost_and_no_orphan_or_duplicate_for_any_size_batch_and_seed(n, batch, seed, rounds):
    domain = load_domain(ROOT / "examples" / "hospital.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        settings_ = RunSettings(n=n, batch_size=batch, seed=seed, max_rounds=rounds)
        report = run_tables(domain, TemplateRealiser(domain.lexicon, seed=seed), settings_, out)
        counts = run_checks(out / "database.sqlite", CHECKS)
        rejected = set(pd.read_parquet(out / "rejects.parquet")["entity"])
        accepted = set(pd.read_parquet(out / "patients.parquet")["patient_id"] - 1)
    assert counts == dict.fromkeys(CHECKS, 0)
    assert accepted.isdisjoint(rejected) and accepted | rejected == set(range(n))
    assert report["n_accepted"] == len(accepted)


def test_a_chat_model_realises_the_notes_through_the_same_graph(hospital, tmp_path):
    # Setup: a scripted chat model that first writes every never-smoker as a smoker, then follows the feedback
    fake = ScriptedChatModel(first=lambda text: text.replace("Lifelong non-smoker.", "Active smoker."))
    realiser = ChatRealiser(fake, hospital.lexicon, concurrency=2)
    # Run
    report = run_tables(hospital, realiser, RunSettings(n=8, llm="scripted"), tmp_path)
    # Assert
    assert report["llm_calls"] == len(fake.calls) > 0
    corrections = [c for c in fake.calls if "It has these errors" in "\n".join(str(m.content) for m in c)]
    assert corrections and all("smoking" in str(c[-1].content) for c in corrections)
    counts = run_checks(tmp_path / "database.sqlite", CHECKS)
    assert counts == dict.fromkeys(CHECKS, 0)
    notes = pd.read_parquet(tmp_path / "notes.parquet")
    assert report["n_accepted"] > 0 and (notes["text"].str.len() > 0).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm", "no-colon"], "expected 'local' or PROVIDER:MODEL"),
        (["--llm", "someprovider:model-x"], "--llm someprovider:model-x: "),  # langchain missing, or no such provider
    ],
)
def test_cli_compile_rules_refuses_a_model_it_cannot_make(capsys, args, message):
    code, _, err = run_cli(capsys, "compile-rules", str(ROOT / "examples" / "hospital.yaml"), *args)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
