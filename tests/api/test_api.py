"""The public API: records in memory, the CLI's defaults, a user's config and graph, plain results."""

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from langchain_core.callbacks import BaseCallbackHandler

import causalsynth as cs
from causalsynth.tools.text.template import TemplateRealiser

ROOT = Path(__file__).resolve().parents[2]


def test_public_surface_is_curated():
    # Assert
    assert set(cs.__all__) >= {"generate", "sample", "counterfactual", "verify", "load_spec", "build_graph"}
    assert all(hasattr(cs, name) for name in cs.__all__)


def test_generate_returns_records_in_memory_and_writes_nothing(tmp_path, monkeypatch):
    # Setup
    monkeypatch.chdir(tmp_path)
    # Run
    result = cs.generate("examples/asia.yaml", 40, seed=3, llm="template")
    # Assert
    assert list(tmp_path.iterdir()) == []  # nothing written without out=
    assert len(result.records) + len(result.rejects) == 40  # every requested record accounted for
    assert set(result.records["record_id"]) | set(result.rejects.get("record_id", [])) == set(range(40))
    assert result.report["n_accepted"] == len(result.records) and result.paths == {}
    skeletons = cs.sample("asia", 40, seed=3)  # a run's skeletons equal `sample` with the same seed
    accepted = result.records.set_index("record_id")
    for var in ("smoke", "lung", "xray"):
        assert (accepted[var].astype(str) == skeletons.loc[accepted.index, var].astype(str)).all()


def test_generate_with_out_writes_the_run_folder(tmp_path):
    # Run
    result = cs.generate("clinic", 10, llm="template", out=tmp_path / "run")
    # Assert
    assert result.paths["records"] == tmp_path / "run" / "records.parquet"
    assert pd.read_parquet(result.paths["records"]).equals(result.records)


def test_relational_spec_returns_every_table(tmp_path):
    # Run
    result = cs.generate("hospital", 12, llm="template")
    # Assert
    assert set(result.tables) == {"doctors", "patients", "admissions", "notes"}
    assert result.records is result.tables["patients"]
    admitted = set(result.tables["admissions"]["patient_id"])
    assert admitted <= set(result.tables["patients"]["patient_id"])  # no orphan foreign key


def test_config_reaches_the_graph_unchanged():
    # Setup
    class Recorder(BaseCallbackHandler):
        def __init__(self):
            self.chains: list[tuple[str | None, list[str], dict]] = []

        def on_chain_start(self, serialized, inputs, *, tags=None, metadata=None, name=None, **kwargs):
            self.chains.append((name, list(tags or []), dict(metadata or {})))

    recorder = Recorder()
    config = {"callbacks": [recorder], "tags": ["nightly"], "metadata": {"team": "ml"}, "run_name": "my-run"}
    # Run
    cs.generate("asia", 5, llm="template", config=config)
    # Assert
    root_name, root_tags, root_meta = recorder.chains[0]
    assert root_name == "my-run" and "nightly" in root_tags and root_meta["team"] == "ml"
    node_names = {name for name, _, _ in recorder.chains}
    assert {"sample", "generate", "verify_causal", "write"} <= node_names


def test_llm_may_be_a_realiser_object_or_a_chat_model():
    # Setup
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    domain = cs.load_spec("examples/asia.yaml")
    fake = GenericFakeChatModel(messages=iter([AIMessage("Nothing of note.")] * 50))
    # Run
    by_realiser = cs.generate(domain, 6, llm=TemplateRealiser(domain.lexicon, seed=0), retrieval=False)
    by_chat = cs.generate(domain, 3, llm=fake, realize="free", max_rounds=0, retrieval=False)
    # Assert
    assert by_realiser.report["n_accepted"] == 6
    assert by_chat.report["n_rejected"] == 3  # a text stating no fact is an omission: rejected, with reasons
    assert by_chat.rejects["reason"].str.len().min() > 0  # every reject says why


def test_a_user_node_added_to_build_graph_runs():
    # Setup
    seen: list[int] = []

    def audit(state):
        seen.append(len(state.get("accepted", [])))
        return {}

    builder = cs.build_graph("asia")
    builder.add_node("audit", audit)
    builder.edges.discard(("assess", "write"))
    builder.add_edge("assess", "audit")
    builder.add_edge("audit", "write")
    # Run
    result = cs.generate("asia", 7, llm="template", graph=builder.compile())
    # Assert
    assert seen == [7] and result.report["n_accepted"] == 7


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cs.generate("asia", 0, llm="template"), "-n must be between"),
        (lambda: cs.generate("asia", 5, llm=42), "llm must be"),
        (lambda: cs.generate("no-such-spec", 5, llm="template"), "spec file not found"),
        (lambda: cs.sample("asia", 5, noise_model="magic"), "noise model 'magic'"),
        (lambda: cs.counterfactual("asia", {}), "at least one intervention"),
        (lambda: cs.verify(pd.DataFrame({"smoke": ["yes"]}), "asia"), "missing"),
    ],
)
def test_bad_parameters_raise_domain_errors_naming_them(call, message):
    with pytest.raises(cs.CausalSynthError, match=message):
        call()


def test_counterfactual_and_verify_return_plain_data():
    # Run
    twins = cs.counterfactual("asia", {"smoke": "yes"}, 200, seed=1)
    report = cs.verify(cs.sample("asia", 5000, seed=2), "asia")
    # Assert
    assert (twins["smoke__cf"] == "yes").all() and len(twins) == 200
    assert report["n_tests"] > 0 and 0.0 <= report["fpr"] <= 0.2  # data from the model: few implied CIs rejected


def test_example_script_generates_100_records_in_memory(tmp_path):
    # Run
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "generate_asia.py")], cwd=tmp_path, capture_output=True, text=True
    )
    # Assert
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("100 accepted, 0 rejected")
    assert list(tmp_path.iterdir()) == []  # records stayed in memory
    tree = ast.parse((ROOT / "examples" / "generate_asia.py").read_text())
    statements = [
        node for node in tree.body if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Constant)
    ]
    assert len(statements) < 10  # under 10 lines of user code
