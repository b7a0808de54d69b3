"""``causalsynth lexicon draft|expand`` with a scripted chat model: what is kept reads back, what is dropped says why.

The scripted model answers each request from a table keyed by the fact in the prompt, like a model that sometimes
states another fact, or two, where one was asked for. (The real local model drives the same commands in
tests/llm/test_lexicon_local.py.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from causalsynth.graphs import lexicon_cli
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.phrasebook import phrasebook_path
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT, run_cli

_FACT = re.compile(r"Fact: (.+?)\.\n")


class LexiconScript(GenericFakeChatModel):
    """Answers a lexicon request from ``terms`` (pattern requests) or ``sentences`` (phrase requests) by fact."""

    messages: Any = Field(default_factory=lambda: iter(()))
    terms: dict[str, str] = Field(default_factory=dict)
    sentences: dict[str, str] = Field(default_factory=dict)
    prompts: list[str] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        fact = _FACT.search(prompt + "\n")
        key = fact.group(1) if fact else ""
        table = self.terms if "short terms" in prompt else self.sentences
        return ChatResult(generations=[ChatGeneration(message=AIMessage(table.get(key, "")))])


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> LexiconScript:
    model = LexiconScript(
        terms={
            "current smoker: yes": "smoker\nsmokes\ntobacco use\nno",
            "current smoker: no": "non-smoker\nnever smoked\nsmoker",
            "chest CT finding: clear": "clear scan\nscan clear",
            "chest CT finding: abnormal": "abnormal scan\nscan abnormal",
        },
        sentences={
            "current smoker: yes": "The patient smokes.\nScan clear.\nSmokes, with an abnormal scan.",
            "current smoker: no": "1. Never smoked.\n2. Non-smoker.",
            "chest CT finding: clear": "CT today: scan clear.",
            "chest CT finding: abnormal": "Scan abnormal on review.",
        },
    )
    monkeypatch.setattr(lexicon_cli, "make_chat_model", lambda *_a, **_k: model)
    return model


def test_draft_keeps_what_reads_back_and_lists_each_dropped_proposal_with_its_reason(capsys, tmp_path, scripted):
    # Setup
    out = tmp_path / "smoking.draft.yaml"

    # Run
    code, stdout, err = run_cli(capsys, "lexicon", "draft", str(ROOT / "examples" / "smoking.yaml"), "--out",
                                str(out), "--variables", "smoker,scan", "--llm", "openai:scripted")  # fmt: skip

    # Assert: the draft loads (round trip included) and states each fact the way it was proposed
    assert code == 0, err
    domain = load_domain(out)
    assert domain.lexicon.phrases["smoker"]["yes"] == ("The patient smokes.",)
    assert domain.lexicon.phrases["smoker"]["no"] == ("Never smoked.", "Non-smoker.")
    assert extract(domain.lexicon, "CT today: scan clear.").stated() == {"scan": "clear"}
    review = yaml.safe_load(out.read_text())["x-lexicon-draft"]
    dropped = {(d["kind"], d["text"]): d["reason"] for d in review["dropped"]}
    assert dropped[("phrase", "Scan clear.")] == "reads back as scan=clear, not smoker=yes"  # another fact
    assert dropped[("phrase", "Smokes, with an abnormal scan.")] == "states two facts: scan=abnormal, smoker=yes"
    assert "two facts" in dropped[("pattern", "smoker")]  # proposed for yes and for no
    assert review["fallbacks"] == [] and review["drafted"] == ["smoker", "scan"]
    assert "dropped" in stdout and "wrote" in stdout
    # the untouched variables keep the spec's (default) wording, and every template text reads back
    realiser = TemplateRealiser(domain.lexicon, seed=1)
    for i, skeleton in enumerate(({"age": "old", "smoker": "yes", "disease": "no", "cough": "mild", "scan": "clear"},
                                  {"age": "young", "smoker": "no", "disease": "yes", "cough": "none",
                                   "scan": "abnormal"})):  # fmt: skip
        observed = {k: v for k, v in skeleton.items() if domain.lexicon.roles[k] == "observed"}
        assert extract(domain.lexicon, realiser.text(skeleton, i)).stated() == observed


def test_a_spec_without_a_lexicon_gets_a_draft_that_runs(capsys, tmp_path, scripted):
    # Setup: the scripted model knows nothing about age, disease and cough
    out = tmp_path / "drafted.yaml"

    # Run
    code, _, err = run_cli(capsys, "lexicon", "draft", str(ROOT / "examples" / "smoking.yaml"), "--out", str(out),
                           "--llm", "openai:scripted")  # fmt: skip
    code_run, stdout, err_run = run_cli(capsys, "run", str(out), "-n", "30", "--llm", "template", "--out",
                                        str(tmp_path / "run"))  # fmt: skip

    # Assert: nothing proposed for a state means the plain "name: state." form, said in the review notes
    assert code == 0, err
    review = yaml.safe_load(out.read_text())["x-lexicon-draft"]
    assert "age=young" in review["fallbacks"] and "smoker=yes" not in review["fallbacks"]
    assert code_run == 0, err_run
    assert "realizability" in stdout and "1.0000" in stdout


def test_expand_adds_verified_phrasings_to_the_phrasebook_and_runs_use_them(capsys, tmp_path, scripted):
    # Setup: a copy of the asia spec (the phrasebook is written beside it)
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    scripted.sentences = {
        "smoker: yes": "\n".join(
            ["He smokes twenty a day.", "Smoker with active TB.", "Tuberculosis confirmed.", "He smokes twenty a day."]
        ),
        "tuberculosis: no": "TB screen negative today.",
    }

    # Run
    code, stdout, err = run_cli(capsys, "lexicon", "expand", str(spec), "--per-state", "2", "--llm", "openai:x")
    book = phrasebook_path(spec)
    prompts_first = len(scripted.prompts)
    code_again, _, _ = run_cli(capsys, "lexicon", "expand", str(spec), "--per-state", "1", "--llm", "openai:x")

    # Assert
    assert code == 0, err
    assert book.is_file()
    domain = load_domain(spec)
    assert "He smokes twenty a day." in domain.lexicon.phrases["smoke"]["yes"]
    assert "TB screen negative today." in domain.lexicon.phrases["tub"]["no"]
    assert "states two facts: smoke=yes, tub=yes" in stdout  # shown with its reason
    assert "still short of --per-state" in stdout
    # a second run tops up: states that have their phrasings are not asked again
    assert code_again == 0
    asked_again = scripted.prompts[prompts_first:]
    assert not any("Fact: smoker: yes." in p for p in asked_again)
    assert any("Fact: smoker: no." in p for p in asked_again)


def test_a_phrasebook_line_that_does_not_read_back_stops_the_load_with_file_and_line(capsys, tmp_path):
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    phrasebook_path(spec).write_text('phrases:\n  smoke:\n    "yes":\n      terse: ["Smokes.", "Never smoked."]\n')

    # Run
    code, _, err = run_cli(capsys, "sample", str(spec), "-n", "3", "--seed", "0", "--out", str(tmp_path / "s.csv"))

    # Assert
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "asia.phrases.yaml:4" in err and "reads back as smoke=no, not smoke=yes" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["draft", "nope.yaml", "--out", "{tmp}/o.yaml"], "spec file not found"),
        (["draft", "examples/smoking.yaml", "--out", "{tmp}/o.yaml", "--variables", "smoker,nope"], "unknown nope"),
        (["draft", "examples/smoking.yaml", "--out", "{tmp}", "--llm", "openai:x"], "is a folder"),
        (["draft", "examples/smoking.yaml", "--out", "{tmp}/o.yaml", "--llm", "template"], "no model"),
        (["draft", "examples/smoking.yaml", "--out", "{tmp}/o.yaml", "--llm", "not a model"], "--llm"),
        (["expand", "asia", "--per-state", "3"], "give --out"),
        (["expand", "examples/asia.yaml", "--per-state", "3", "--registers", "poetic"], "--registers"),
        (["expand", "examples/asia.yaml", "--per-state", "0"], "--per-state"),
        (["expand", "examples/asia.yaml"], "--per-state"),
    ],
)
def test_malformed_lexicon_commands_fail_with_one_error_line(capsys, tmp_path, monkeypatch, args, message):
    # Setup
    monkeypatch.chdir(ROOT)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]

    # Run
    code, _, err = run_cli(capsys, "lexicon", *argv)

    # Assert
    assert code == 2
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err
    assert not (ROOT / "examples" / "asia.phrases.yaml.tmp").exists()


def test_a_broken_phrasebook_stops_expand_before_any_model_call(capsys, tmp_path, scripted):
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    phrasebook_path(spec).write_text("phrases: [1, 2]\n")

    # Run
    code, _, err = run_cli(capsys, "lexicon", "expand", str(spec), "--per-state", "2", "--llm", "openai:x")

    # Assert
    assert code == 2 and "a phrasebook is a mapping" in err
    assert scripted.prompts == []
    assert Path(phrasebook_path(spec)).read_text() == "phrases: [1, 2]\n"  # left as it was


def test_import_keeps_candidates_that_read_back_and_drops_the_rest_with_their_reasons(capsys, tmp_path):
    # Setup: candidates written elsewhere; some state another fact, two facts, or a latent variable
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    candidates = tmp_path / "candidates.yaml"
    candidates.write_text(
        "model: a clinician\n"
        "openings: ['Seen on the Tuesday list.', 'Smoker referred by the GP.']\n"
        "phrases:\n"
        "  smoke:\n"
        "    'yes': ['Smokes twenty a day.', 'Never smoked.', 'Smokes and has tuberculosis.']\n"
        "    'no': {terse: ['Lifelong non-smoker.'], narrative: ['Has never smoked at all.']}\n"
        "  either:\n"
        "    'yes': ['Either tuberculosis or lung cancer or both.']\n"
        "  nope:\n"
        "    'yes': ['Something.']\n"
    )

    # Run
    code, out, err = run_cli(capsys, "lexicon", "import", str(spec), str(candidates))

    # Assert
    assert code == 0, err
    book = yaml.safe_load(phrasebook_path(spec).read_text())
    assert book["model"] == "a clinician"
    assert book["openings"] == ["Seen on the Tuesday list."]
    assert book["phrases"] == {
        "smoke": {
            "yes": {"any": ["Smokes twenty a day."]},
            "no": {"terse": ["Lifelong non-smoker."], "narrative": ["Has never smoked at all."]},
        }
    }
    assert "'Never smoked.' reads back as smoke=no, not smoke=yes" in out
    assert "'Smokes and has tuberculosis.' states two facts" in out
    assert "opening: 'Smoker referred by the GP.' mentions smoke" in out
    assert "either is latent" in out and "unknown variable 'nope'" in out
    # what was kept is used: the spec loads with it and the planner draws the imported opening and phrasings
    domain = load_domain(spec)
    assert "Seen on the Tuesday list." in domain.lexicon.text.openings
    texts = [TemplateRealiser(domain.lexicon, seed=1).text(s, i) for i, s in enumerate(_asia_skeletons(domain, 400))]
    assert any(t.startswith("Seen on the Tuesday list.") for t in texts)
    assert any("Smokes twenty a day." in t for t in texts)


def test_import_adds_to_an_existing_phrasebook_and_a_second_import_adds_nothing(capsys, tmp_path):
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    book = "model: local\nphrases:\n  dysp:\n    'no': {terse: ['Breathing comfortably now.']}\n"
    phrasebook_path(spec).write_text(book)
    candidates = tmp_path / "c.yaml"
    candidates.write_text("phrases:\n  dysp:\n    'no': ['Walks two miles without shortness of breath.']\n")

    # Run
    first = run_cli(capsys, "lexicon", "import", str(spec), str(candidates), "--source", "Dr X")
    second = run_cli(capsys, "lexicon", "import", str(spec), str(candidates), "--source", "Dr X")

    # Assert
    assert first[0] == 0 and "(1 new)" in first[1]
    assert second[0] == 0 and "(0 new)" in second[1]
    book = yaml.safe_load(phrasebook_path(spec).read_text())
    assert book["model"] == "local; Dr X"
    assert book["phrases"]["dysp"]["no"] == {
        "terse": ["Breathing comfortably now."],
        "any": ["Walks two miles without shortness of breath."],
    }


@pytest.mark.parametrize(
    ("candidates", "args", "message"),
    [
        (None, [], "no such file"),
        ("phrases: [1]\n", [], "a phrasebook is a mapping"),
        ("phrases: {smoke: {'yes': [1, 2]}}\n", [], "expected a list of strings"),
        ("openings: 'Hello.'\nphrases: {}\n", [], "openings"),
        ("phrases: {}\nextra: 1\n", [], "unknown key(s): extra"),
        ("phrases: {}\n", ["--out", "{tmp}"], "is a folder"),
        ("phrases: {\n", [], "c.yaml"),
    ],
)
def test_malformed_import_fails_with_one_error_line_and_leaves_the_phrasebook(capsys, tmp_path, candidates, args,
                                                                               message):  # fmt: skip
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    before = "model: local\nphrases: {}\n"
    phrasebook_path(spec).write_text(before)
    path = tmp_path / "c.yaml"
    if candidates is not None:
        path.write_text(candidates)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]

    # Run
    code, _, err = run_cli(capsys, "lexicon", "import", str(spec), str(path), *argv)

    # Assert
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and message in err, err
    assert "Traceback" not in err
    assert phrasebook_path(spec).read_text() == before


def test_an_opening_in_a_phrasebook_that_states_a_fact_stops_the_load(capsys, tmp_path):
    # Setup
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    phrasebook_path(spec).write_text("openings: ['Clinic visit.', 'Breathless patient seen.']\nphrases: {}\n")

    # Run
    code, _, err = run_cli(capsys, "sample", str(spec), "-n", "3", "--seed", "0", "--out", str(tmp_path / "s.csv"))

    # Assert
    assert code == 2 and "asia.phrases.yaml:1" in err and "mentions dysp" in err, err


def _asia_skeletons(domain, n: int) -> list[dict[str, str]]:
    from causalsynth.tools.causal.sampler import Sampler

    data = Sampler(domain.network).sample(n, seed=0).data
    return [{k: str(v) for k, v in row.items()} for row in data.to_dict("records")]
