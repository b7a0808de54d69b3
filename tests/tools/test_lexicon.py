"""Lexicons in specs: every authoring mistake is reported with its location; defaults exist for bare networks."""

from __future__ import annotations

import pytest

from causalsynth.tools.errors import SpecError
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.extract import extract
from tests.conftest import ROOT

HEAD = """
model:
  nodes:
    smoke: {states: ["yes", "no"], probs: [0.3, 0.7]}
    hr:
      states: [LOW, NORMAL, HIGH]
      parents: [smoke]
      cpt:
        - {when: {smoke: "yes"}, probs: [0.1, 0.6, 0.3]}
        - {when: {smoke: "no"}, probs: [0.1, 0.8, 0.1]}
"""

GOOD_VARS = """
variables:
  smoke:
    states:
      "yes": {phrases: ["Smoker."], patterns: [smoker]}
      "no": {phrases: ["Non-smoker."], patterns: [non smoker]}
  hr:
    numeric: {names: [heart rate], unit: bpm, ranges: {LOW: [30, 60], NORMAL: [60, 100], HIGH: [100, 180]}}
    states:
      LOW: {phrases: ["Heart rate {value} bpm."], patterns: [bradycardic]}
      NORMAL: {phrases: ["Heart rate {value} bpm."]}
      HIGH: {phrases: ["Heart rate {value} bpm.", "Tachycardic."], patterns: [tachycardic, tachycardia]}
"""


def problems(write_spec, text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_domain(write_spec(text))
    return [str(p) for p in info.value.problems]


def test_a_good_lexicon_loads_and_reads_numbers(write_spec):
    domain = load_domain(write_spec(HEAD + GOOD_VARS))
    assert extract(domain.lexicon, "Heart rate 130 bpm, non-smoker.").stated() == {"hr": "HIGH", "smoke": "no"}
    assert extract(domain.lexicon, "Heart rate of 59.").stated() == {"hr": "LOW"}


@pytest.mark.parametrize(
    ("variables", "where", "message"),
    [
        (  # a state that does not exist
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smoker."], patterns: [smoker]}
                  "no": {phrases: ["Non-smoker."], patterns: [non smoker]}
                  sometimes: {phrases: ["Smokes sometimes."]}
            """,
            "variables.smoke.states.sometimes",
            "has no state 'sometimes'",
        ),
        (  # an observed variable that cannot be stated in one of its states
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smoker."], patterns: [smoker]}
            """,
            "variables.smoke.states.no",
            "needs phrases for state 'no'",
        ),
        (  # one pattern, two facts
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smoker."], patterns: [smoker, tobacco]}
                  "no": {phrases: ["Non-smoker."], patterns: [non smoker, tobacco]}
            """,
            "variables.smoke.states.no.patterns[1]",
            "would mean both smoke=yes",
        ),
        (  # a phrase the extractor would read as something else
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smoker.", "Uses cigarettes."], patterns: [smoker]}
                  "no": {phrases: ["Non-smoker."], patterns: [non smoker]}
            """,
            "variables.smoke.states.yes.phrases[1]",
            "reads back as no fact, not smoke=yes",
        ),
        (  # a phrase that contradicts itself
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smoker, though denies being a smoker."], patterns: [smoker]}
                  "no": {phrases: ["Never smoked."], patterns: [never smoked]}
            """,
            "variables.smoke.states.yes.phrases[0]",
            "reads back as no fact",
        ),
        (  # overlapping numeric ranges
            """
            variables:
              hr:
                numeric: {names: [heart rate], ranges: {LOW: [30, 70], NORMAL: [60, 100], HIGH: [100, 180]}}
            """,
            "variables.hr.numeric",
            "overlap",
        ),
        (  # a value slot without a numeric block
            """
            variables:
              smoke:
                states:
                  "yes": {phrases: ["Smokes {value} a day."], patterns: [smokes]}
                  "no": {phrases: ["Non-smoker."], patterns: [non smoker]}
            """,
            "variables.smoke.states.yes.phrases[0]",
            "needs a 'numeric' block",
        ),
        (  # an unknown lexicon key
            """
            variables:
              smoke:
                states:
                  "yes": {phrase: ["Smoker."]}
            """,
            "variables.smoke.states.yes.phrase",
            "unknown key",
        ),
    ],
)
def test_lexicon_mistakes_are_located(write_spec, variables, where, message):
    import textwrap

    found = problems(write_spec, HEAD + textwrap.dedent(variables))
    hits = [p for p in found if where in p and message in p]
    assert hits, found
    assert "spec.yaml:" in hits[0]  # with the line


def test_an_opening_must_state_nothing(write_spec):
    found = problems(write_spec, HEAD + GOOD_VARS + "text:\n  openings: ['Smoker seen in clinic.']\n")
    assert any("text.openings[0]" in p and "must state no fact" in p for p in found), found


def test_every_problem_at_once(write_spec):
    text = (
        HEAD
        + """
variables:
  smoke:
    states:
      "yes": {phrases: ["Uses cigarettes."], patterns: [smoker]}
      maybe: {phrases: ["Maybe."]}
  hr:
    negation: {HIGH: LOUD}
"""
    )
    found = problems(write_spec, text)
    assert len(found) >= 3, found


def test_bare_network_gets_key_value_phrases():
    domain = load_domain("asia")
    assert domain.lexicon.phrases["smoke"]["yes"] == ("smoke: yes.",)
    assert extract(domain.lexicon, "smoke: yes. lung: no.").stated() == {"smoke": "yes", "lung": "no"}


@pytest.mark.parametrize("spec", ["asia.yaml", "alarm.yaml", "clinic.yaml"])
def test_example_lexicons_are_complete(spec):
    domain = load_domain(ROOT / "examples" / spec)
    lex = domain.lexicon
    assert lex.latent, "each example has a latent variable"
    for var in lex.observed:
        assert var in domain.spec.variables, f"{var} has no authored lexicon"
        for state in domain.network.states(var):
            assert lex.phrases[var][state], (var, state)
    assert len(lex.text.openings) >= 3
