"""Checking proposed lexicon entries: what reads back as exactly its own fact is kept; the rest says why not."""

from __future__ import annotations

import pytest

from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon_check import (
    Proposals,
    assemble,
    clean_pattern,
    clean_phrase,
    pattern_reason,
    phrase_reason,
)
from causalsynth.tools.text.round_trip import checked_lexicon
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def asia() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml", phrasebook=False)


@pytest.fixture(scope="module")
def clinic() -> Domain:
    return load_domain(ROOT / "examples" / "clinic.yaml", phrasebook=False)


@pytest.fixture(scope="module")
def smoking() -> Domain:
    return load_domain(ROOT / "examples" / "smoking.yaml", phrasebook=False)


def test_a_phrase_that_reads_back_as_its_own_fact_is_kept(asia):
    # Setup
    lex = asia.lexicon

    # Run
    reasons = [phrase_reason(lex, "smoke", "yes", p) for p in ("He smokes ten cigarettes daily.", "Smoker.")]

    # Assert
    assert reasons == [None, None]


@pytest.mark.parametrize(
    ("phrase", "why"),
    [
        ("Tuberculosis confirmed.", "reads back as tub=yes, not smoke=yes"),  # another fact
        ("Smoker with active TB.", "states two facts: smoke=yes, tub=yes"),  # two facts
        ("Never smoked.", "reads back as smoke=no, not smoke=yes"),  # the other state
        ("Enjoys long walks.", "reads back as no fact"),
        ("Possibly a smoker.", "states smoke only as uncertain"),
        ("Smoker, tuberculosis suspected.", "also mentions tub"),  # another variable, even as uncertain
        ("Smoker. Also coughs.", "not one sentence"),
        ("Smoker <VAR>.", "contains markup or a placeholder"),
        ("Smoker {value}.", "has no value range"),
        ("As an AI, I note the patient smokes.", "forbidden phrase"),
    ],
)
def test_a_phrase_that_states_another_fact_or_two_facts_is_dropped_with_its_reason(asia, phrase, why):
    # Run
    reason = phrase_reason(asia.lexicon, "smoke", "yes", phrase)

    # Assert
    assert reason is not None and why in reason, reason


def test_a_measured_phrase_is_read_at_both_ends_of_its_range(clinic):
    # Setup
    lex = clinic.lexicon

    # Run
    good = phrase_reason(lex, "heart_rate", "high", "Pulse {value} beats per minute.")
    wrong_state = phrase_reason(lex, "heart_rate", "normal", "Tachycardic, pulse {value}.")

    # Assert
    assert good is None
    assert wrong_state is not None and "heart_rate" in wrong_state


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("ruled out", "cue word"),
        ("normal", "generic word"),
        ("tuberculosis", "already means tub=yes"),
        ("smoker with tuberculosis", "contains a mention of tub"),
        ("pack a day", "already a pattern of this state"),
        ("one two three four five six seven", "longer than"),
    ],
)
def test_a_pattern_whose_words_already_mean_something_is_dropped(asia, pattern, why):
    # Run
    reason = pattern_reason(asia.lexicon, "smoke", "yes", pattern, frozenset({"yes", "no"}))

    # Assert
    assert reason is not None and why in reason, reason


def test_proposals_are_tidied_before_they_are_read():
    # Run / Assert
    assert clean_phrase('- "the patient smokes"') == "The patient smokes."
    assert clean_pattern("2. Pack-a-day.") == "pack a day"


def test_an_assembled_draft_loads_round_trips_and_lists_every_dropped_proposal(smoking):
    # Setup: a model that says each fact once well, once as another fact, and once as two facts
    proposals = Proposals()
    proposals.state("smoker", "yes").patterns += ["smoker", "smokes", "tobacco use", "no"]
    proposals.state("smoker", "yes").phrases += ["The patient smokes.", "Scan clear.", "Smokes, scan clear."]
    proposals.state("smoker", "no").patterns += ["non-smoker", "never smoked", "smoker"]
    proposals.state("smoker", "no").phrases += ["Never smoked.", "Non-smoker."]
    proposals.state("scan", "clear").patterns += ["scan clear", "clear scan"]
    proposals.state("scan", "clear").phrases += ["CT scan clear.", "Clear scan today."]
    proposals.state("scan", "abnormal").patterns += ["abnormal scan", "scan abnormal"]
    proposals.state("scan", "abnormal").phrases += ["Walked in today."]

    # Run
    result = assemble(smoking.network, smoking.spec.variables, smoking.spec.text, proposals, ["smoker", "scan"])

    # Assert: what is kept loads and round-trips as a whole
    variables = {**smoking.spec.variables, **result.variables}
    assert not isinstance(checked_lexicon(smoking.network, variables, smoking.spec.text, lambda _: "x"), list)
    assert result.variables["smoker"].states["yes"].phrases == ["The patient smokes."]
    dropped = {(d.kind, d.text): d.reason for d in result.dropped}
    assert dropped[("phrase", "Scan clear.")] == "reads back as scan=clear, not smoker=yes"
    assert dropped[("phrase", "Smokes, scan clear.")] == "states two facts: scan=clear, smoker=yes"
    assert "two facts" in dropped[("pattern", "smoker")]  # proposed for yes and for no: dropped from both
    assert "generic word" in dropped[("pattern", "no")]
    assert "no fact" in dropped[("phrase", "Walked in today.")]
    # scan=abnormal had no phrase that read back: it is written the plain way, and said so
    assert result.fallbacks == [("scan", "abnormal")]
    assert extract(result.lexicon, "scan: abnormal.").stated() == {"scan": "abnormal"}


def test_a_numeric_name_is_kept_only_when_values_read_back_as_their_state(clinic):
    # Setup: the clinic spec's heart rate, drafted again with more names
    proposals = Proposals()
    for state in ("normal", "high"):
        proposals.state("heart_rate", state).phrases.append("Pulse {value} bpm.")
    proposals.numeric_names["heart_rate"] = ["pulse rate", "temperature", "hr bpm"]
    proposals.numeric_names["cough"] = ["cough count"]  # not a measured variable

    # Run
    result = assemble(clinic.network, clinic.spec.variables, clinic.spec.text, proposals, ["heart_rate", "cough"])

    # Assert
    names = result.variables["heart_rate"].numeric.names  # type: ignore[union-attr]
    assert "pulse rate" in names and "temperature" not in names
    reasons = {d.text: d.reason for d in result.dropped if d.kind == "numeric name"}
    assert "already means temperature" in reasons["temperature"]
    assert "no 'numeric' ranges" in reasons["cough count"]
    assert extract(result.lexicon, "Pulse rate 130.").stated() == {"heart_rate": "high"}
