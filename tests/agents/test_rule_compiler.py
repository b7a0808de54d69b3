"""Natural-language rules: the model's proposal is parsed and checked, retried once with the parser's error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from rich.console import Console

from causalsynth.graphs.table_cli import compile_rules
from causalsynth.tools.llm.rule_compiler import NlRuleCompiler, RuleCompileError, clean_answer
from causalsynth.tools.relational.rule_lock import lock_path, read_lock
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT


class Recording(GenericFakeChatModel):
    """Replies in turn and keeps every prompt it was sent."""

    prompts: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.prompts.append([str(m.content) for m in messages])
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def model(*replies: str) -> Recording:
    return Recording(messages=iter([AIMessage(r) for r in replies]), prompts=[])


@pytest.fixture(scope="module")
def scope():
    domain = load_domain(ROOT / "examples" / "hospital.yaml")
    return domain.schema.scope("patients")


def test_a_valid_proposal_becomes_a_checked_rule(scope):
    fake = model("```\nsmoking_status == 'never' if age < 18\n```")
    compiled = NlRuleCompiler(fake).compile("patients under 18 cannot have a smoking history", scope)
    assert compiled.rule.text == "smoking_status == 'never' if age < 18"
    assert ("patients", "age") in compiled.rule.columns
    system, user = fake.prompts[0]
    assert "BODY if CONDITION" in system and "smoking_status: text one of 'never', 'former', 'current'" in user


def test_an_unparseable_proposal_gets_one_retry_with_the_parser_error(scope):
    fake = model("age => 18", "age >= 18")
    compiled = NlRuleCompiler(fake).compile("patients are adults", scope)
    assert compiled.answers == ("age => 18", "age >= 18")
    retry = fake.prompts[1][-1]
    assert "'age => 18' is not a valid expression" in retry and "compare with '==', not '='" in retry


def test_two_bad_proposals_fail_clearly_naming_both(scope):
    fake = model("agee >= 18", "smoking_status == 'sometimes'")
    with pytest.raises(RuleCompileError) as info:
        NlRuleCompiler(fake).compile("patients are adults", scope)
    message = str(info.value)
    assert "could not compile 'patients are adults'" in message
    assert "unknown column 'agee'" in message and "'sometimes' is not a value of smoking_status" in message


def test_a_hostile_proposal_is_refused_and_never_run(scope, tmp_path):
    marker = tmp_path / "pwned"
    fake = model(f"__import__('os').system('touch {marker}')", f"open('{marker}', 'w')")
    with pytest.raises(RuleCompileError) as info:
        NlRuleCompiler(fake).compile("anything", scope)
    assert "attempt 1" in str(info.value) and "unknown function 'open'" in str(info.value)
    assert not marker.exists()


def test_a_failing_model_is_one_clear_error(scope):
    class Down(GenericFakeChatModel):
        def _generate(self, *args, **kwargs):
            raise ConnectionError("server unreachable")

    with pytest.raises(RuleCompileError, match="the chat model failed: ConnectionError: server unreachable"):
        NlRuleCompiler(Down(messages=iter(()))).compile("patients are adults", scope)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("`age >= 18`", "age >= 18"), ("Answer: age >= 18\nBecause ...", "age >= 18"), ('"age >= 18"', "age >= 18")],
)
def test_answers_are_cleaned_of_fences_labels_and_quotes(content, expected):
    assert clean_answer(content) == expected


def test_compile_rules_writes_the_lock_and_the_spec_then_loads(tmp_path):
    # Setup: the hospital spec without its lock file
    spec = tmp_path / "hospital.yaml"
    shutil.copy(ROOT / "examples" / "hospital.yaml", spec)
    domain = load_domain(spec, allow_uncompiled=True)
    answers = {
        "patients under 18 cannot have a smoking history": "smoking_status == 'never' if age < 18",
        "diabetic patients are at least 10 years old": "age >= 10 if diabetic",
        "an intensive care stay costs at least 5,000": "cost >= 5000 if ward == 'icu'",
        "a note is written no later than the day of discharge": "written_on <= admissions.discharged_on",
    }
    replies = [answers[sentence] for _, sentence, _ in domain.schema.uncompiled]
    console = Console(record=True, width=200)
    # Run
    n = compile_rules(str(spec), model(*replies), "fake:model", False, console)
    # Assert
    assert n == 4
    assert read_lock(lock_path(spec)) == {(t, s): answers[s] for t, s, _ in domain.schema.uncompiled}
    assert "-> cost >= 5000 if ward == 'icu'" in console.export_text()
    assert len(load_domain(spec).schema.rules) == len(load_domain(ROOT / "examples" / "hospital.yaml").schema.rules)


def test_compile_rules_leaves_no_lock_when_a_sentence_fails(tmp_path):
    spec = tmp_path / "hospital.yaml"
    shutil.copy(ROOT / "examples" / "hospital.yaml", spec)
    with pytest.raises(RuleCompileError):
        compile_rules(str(spec), model("nonsense ((", "still nonsense (("), "fake:model", False, Console(record=True))
    assert not lock_path(spec).exists()
    assert not Path(str(lock_path(spec)) + ".tmp").exists()
