"""The run graph end to end: shape, no record lost, the correction loop, rejection mode, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.builder import build_graph, compile_graph
from causalsynth.graphs.runner import run
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.realisation import Realisation, RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT
from tests.fakes import ScriptedChatModel

SNAPSHOT = Path(__file__).parent / "snapshots" / "run_graph.mmd"
REPORT_KEYS = {
    "n_requested", "n_accepted", "n_rejected", "realizability", "llm_calls_per_accepted", "tokens_per_accepted",
    "ci_fpr_extracted", "ci_fpr_skeleton", "selection_bias_tvd", "mode", "llm",
}  # fmt: skip


@pytest.fixture(scope="module")
def asia_spec() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml")


def test_graph_shape_matches_snapshot():
    assert compile_graph(build_graph()).get_graph().draw_mermaid() == SNAPSHOT.read_text()


def test_graph_edges_are_the_designed_loop():
    graph = compile_graph(build_graph()).get_graph()
    edges = {(e.source, e.target, e.conditional) for e in graph.edges}
    assert edges == {
        ("__start__", "sample", False),
        ("sample", "retrieve", False),
        ("retrieve", "generate", False),
        ("generate", "validate_schema", False),
        ("validate_schema", "verify_causal", False),
        ("verify_causal", "generate", True),
        ("verify_causal", "assess", True),
        ("assess", "write", True),
        ("assess", "generate", True),  # records the privacy guard resampled
        ("write", "sample", True),
        ("write", "__end__", True),
    }


def outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[dict]]:
    records = pd.read_parquet(out / "records.parquet")
    rejects = pd.read_parquet(out / "rejects.parquet")
    report = json.loads((out / "report.json").read_text())
    events = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    return records, rejects, report, events


def test_template_run_accounts_for_every_record(asia_spec, tmp_path):
    # Setup
    settings = RunSettings(n=700, batch_size=256, seed=5)
    # Run
    report = run(asia_spec, TemplateRealiser(asia_spec.lexicon, seed=5), settings, tmp_path)
    # Assert
    records, rejects, written, events = outputs(tmp_path)
    assert written == json.loads(json.dumps(report))
    assert REPORT_KEYS <= set(report)
    assert sorted([*records.record_id, *rejects.record_id]) == list(range(700))
    assert report["n_accepted"] == len(records) == 700 and report["realizability"] == 1.0
    assert report["ci_fpr_extracted"] == report["ci_fpr_skeleton"]
    assert set(asia_spec.network.names) | {"text", "rounds", "history"} <= set(records.columns)
    assert (records.rounds == 0).all()
    # Skeletons are those of `causalsynth sample` with the same seed.
    from causalsynth.tools.causal.sampler import Sampler

    sampled = Sampler(asia_spec.network).sample(700, seed=5).data.astype(str)
    assert records.sort_values("record_id")[list(sampled.columns)].reset_index(drop=True).equals(sampled)
    # One event per node execution: 3 batches, one round each.
    nodes = [e["node"] for e in events]
    assert nodes.count("sample") == nodes.count("write") == nodes.count("assess") == 3
    assert nodes.count("generate") == nodes.count("verify_causal") == 3
    assert all(e["seconds"] >= 0 for e in events)


def backdoor(text: str) -> str:
    """The semantic backdoor: a non-smoker written as a smoker."""
    for phrase in ("Non-smoker.", "Never smoked.", "Denies tobacco use."):
        text = text.replace(phrase, "The patient smokes.")
    return text


def test_iterative_correction_fixes_exactly_the_named_fact(asia_spec, tmp_path):
    model = ScriptedChatModel(first=backdoor)
    realiser = ChatRealiser(model, asia_spec.lexicon, concurrency=3)
    report = run(asia_spec, realiser, RunSettings(n=80, batch_size=32, max_rounds=2, seed=1, llm="scripted"), tmp_path)
    records, rejects, _, _ = outputs(tmp_path)
    assert len(rejects) == 0 and report["realizability"] == 1.0
    non_smokers = records[records.smoke == "no"]
    assert len(non_smokers) > 0
    assert (non_smokers.rounds == 1).all() and (records[records.smoke == "yes"].rounds == 0).all()
    for history in non_smokers.history:
        (attempt,) = json.loads(history)
        assert [(v["kind"], v["variable"], v["expected"]) for v in attempt["violations"]] == [
            ("contradiction", "smoke", "no")
        ]
    corrections = [c for c in model.calls if "It has these errors" in str(c[-1].content)]
    assert len(corrections) == len(non_smokers)
    assert all("the record says smoke=no" in str(c[-1].content) for c in corrections)
    assert report["llm_calls_per_accepted"] == pytest.approx((80 + len(non_smokers)) / 80)
    assert report["rounds_histogram"] == {"0": 80 - len(non_smokers), "1": len(non_smokers)}
    assert report["tokens_estimated"] is True and report["tokens_per_accepted"] > 0


def test_rejection_mode_regenerates_without_feedback_and_keeps_rejects(asia_spec, tmp_path):
    model = ScriptedChatModel(first=backdoor)
    realiser = ChatRealiser(model, asia_spec.lexicon)
    settings = RunSettings(n=60, batch_size=25, max_rounds=2, mode="rejection", seed=2, llm="scripted")
    report = run(asia_spec, realiser, settings, tmp_path)
    records, rejects, _, _ = outputs(tmp_path)
    assert not any("It has these errors" in str(m.content) for c in model.calls for m in c)
    assert (rejects.smoke == "no").all() and (records.smoke == "yes").all()
    assert sorted([*records.record_id, *rejects.record_id]) == list(range(60))
    assert report["n_rejected"] == len(rejects) > 0
    assert len(model.calls) == len(records) + 3 * len(rejects)  # the same 1 + max_rounds budget per record
    for reason, history in zip(rejects.reason, rejects.history, strict=True):
        assert "the record says smoke=no" in reason
        assert [a["attempt"] for a in json.loads(history)] == [1, 2, 3]
    # Dropping every non-smoker is selection bias the report must show.
    floor = report["selection_bias"]["all_skeletons"]["mean"]
    assert report["selection_bias_tvd"] > 2 * floor


def test_a_failing_model_call_fails_its_record_not_the_run(asia_spec, tmp_path):
    model = ScriptedChatModel(fail_for="bronchitis: yes")
    realiser = ChatRealiser(model, asia_spec.lexicon)
    report = run(asia_spec, realiser, RunSettings(n=50, batch_size=50, max_rounds=1, llm="scripted"), tmp_path)
    records, rejects, _, _ = outputs(tmp_path)
    assert (rejects.bronc == "yes").all() and (records.bronc == "no").all()
    assert len(rejects) == report["n_rejected"] > 0
    # Only the failure, not an omission for every fact of the empty text.
    assert set(rejects.reason) == {"the generator failed: RuntimeError: model overloaded"}


class BrokenRealiser:
    """Realises one batch, then the process fails (a bug, not a user error)."""

    name = "broken"

    def __init__(self, inner: TemplateRealiser) -> None:
        self.inner = inner
        self.batches = 0

    def realise(self, requests: list[RealisationRequest]) -> list[Realisation]:
        self.batches += 1
        if self.batches > 1:
            raise RuntimeError("disk on fire")
        return self.inner.realise(requests)


def test_a_crashed_run_leaves_nothing_that_looks_complete(asia_spec, tmp_path):
    # A previous complete run in the same folder must not pass for this one.
    run(asia_spec, TemplateRealiser(asia_spec.lexicon), RunSettings(n=10, batch_size=10), tmp_path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run(asia_spec, BrokenRealiser(TemplateRealiser(asia_spec.lexicon)), RunSettings(n=30, batch_size=10), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]
    last = json.loads((tmp_path / "run.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "aborted" and "disk on fire" in last["reason"]


def test_template_realisation_is_deterministic_and_batch_independent(asia_spec):
    realiser = TemplateRealiser(asia_spec.lexicon, seed=9)
    skeleton = {v: asia_spec.network.states(v)[0] for v in asia_spec.network.names}
    one = realiser.realise([RealisationRequest(record_id=4, skeleton=skeleton)])
    many = realiser.realise([RealisationRequest(record_id=i, skeleton=skeleton) for i in range(8)])
    assert one[0].text == many[4].text
    texts = {realiser.text(skeleton, i) for i in range(30)}
    assert len(texts) > 5  # several phrasings, not one template


def test_no_output_folder_needed(asia_spec):
    report = run(asia_spec, TemplateRealiser(asia_spec.lexicon), RunSettings(n=20, batch_size=7), None)
    assert report["n_accepted"] == 20


class FlakyRealiser:
    """Template texts, except that some attempts (chosen by a hash) come back empty or contradicted."""

    name = "flaky"

    def __init__(self, domain: Domain, fail_rate: float, seed: int) -> None:
        self.inner = TemplateRealiser(domain.lexicon, seed=seed)
        self.fail_rate = fail_rate
        self.seed = seed

    def realise(self, requests: list[RealisationRequest]) -> list[Realisation]:
        from causalsynth.tools.text.template import uniforms

        good = self.inner.realise(requests)
        u = uniforms(self.seed, [r.record_id for r in requests], [r.attempt for r in requests], 2)
        out = []
        for res, (a, b) in zip(good, u.tolist(), strict=True):
            if a >= self.fail_rate:
                out.append(res)
            elif b < 0.5:
                out.append(Realisation(text="", error="timeout"))
            else:
                out.append(Realisation(text=res.text + " Smoker. Non-smoker."))  # stated two ways
        return out


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(1, 40),
    batch=st.integers(1, 50),
    max_rounds=st.integers(0, 3),
    mode=st.sampled_from(["iterative", "rejection"]),
    fail_rate=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
)
def test_every_record_ends_in_exactly_one_table(asia_spec, tmp_path_factory, n, batch, max_rounds, mode, fail_rate):
    out = tmp_path_factory.mktemp("run")
    settings_ = RunSettings(n=n, batch_size=batch, max_rounds=max_rounds, mode=mode, seed=n)
    report = run(asia_spec, FlakyRealiser(asia_spec, fail_rate, seed=n), settings_, out)
    records, rejects, _, events = outputs(out)
    assert sorted([*records.record_id, *rejects.record_id]) == list(range(n))
    assert report["n_accepted"] + report["n_rejected"] == n == report["n_requested"]
    assert (records.rounds <= max_rounds).all()
    assert all(len(json.loads(h)) == max_rounds + 1 for h in rejects.history)
    assert all(reason for reason in rejects.reason)
    if fail_rate == 1.0:
        assert len(records) == 0 and report["realizability"] == 0.0 and report["selection_bias_tvd"] is None
    assert events[-1]["node"] == "write" and events[-1]["finished"] is True
