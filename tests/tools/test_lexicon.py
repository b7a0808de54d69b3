"""Lexicons in specs: every authoring mistake is reported with its location; defaults exist for bare networks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.causal.network import Network, Node
from causalsynth.tools.errors import SpecError
from causalsynth.tools.spec import VariableMeta, load_domain
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import Lexicon, StateWords, TextSpec
from causalsynth.tools.text.round_trip import checked_lexicon
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT, run_cli

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


# -- the default lexicon of a network without one: any state name is written and read back --------------------
AWKWARD_STATES = [
    "<7.5", ">=7.5", "<=3", ">12", "-", "+", "--", "12+", "5-12", "-5", "absent", "no", "none", "possible",
    "not present", "ruled out", "family history", "1", "01", "1.0", "a-b", "a_b", "a b", "a/b", "A.B", "a,b", "High",
    "high", "Transp.", "x;y", "?", "don't", "50%", "_",
]  # fmt: skip
AWKWARD_VARIABLES = ["CO2Report", "Dyspnea", "no", "possible", "Family_history", "x.y", "LowerBodyO2"]


def _flat_network(states: dict[str, list[str]]) -> Network:
    nodes = [Node(var, tuple(s), (), np.full((1, len(s)), 1 / len(s))) for var, s in states.items()]
    return Network(nodes, name="awkward")


def _assert_round_trips(network: Network, lexicon: Lexicon | list) -> None:
    assert isinstance(lexicon, Lexicon), [str(p) for p in lexicon]
    record = {}
    for var in network.names:
        for state in network.states(var):
            (phrase,) = lexicon.phrases[var][state]
            assert extract(lexicon, phrase).stated() == {var: state}, (var, state, phrase)
        record[var] = network.states(var)[-1]
    text = TemplateRealiser(lexicon).text(record, record_id=0)
    assert extract(lexicon, text).stated() == record, text


def test_default_phrases_spell_symbols_and_tell_apart_states_that_read_alike():
    # Setup
    network = _flat_network({"CO2Report": AWKWARD_STATES, "Dysp": ["absent", "present"], "Level": ["Low", "low"]})
    # Run
    lexicon = checked_lexicon(network, {}, TextSpec(), lambda _path: "test")
    # Assert
    _assert_round_trips(network, lexicon)
    assert isinstance(lexicon, Lexicon)
    assert lexicon.phrases["CO2Report"]["<7.5"] == ("CO2Report: below 7.5.",)
    assert lexicon.phrases["CO2Report"][">=7.5"] == ("CO2Report: at least 7.5.",)
    assert lexicon.phrases["CO2Report"]["-"] == ("CO2Report: minus.",)
    assert lexicon.phrases["Dysp"]["absent"] == ("Dysp: absent.",)  # a cue word as a state is still the state
    assert lexicon.phrases["Level"]["low"] == ("Level: low (state 2 of 2).",)  # differ only in case
    assert lexicon.phrases["CO2Report"]["a_b"] != lexicon.phrases["CO2Report"]["a-b"]


def test_a_default_phrase_avoids_a_pattern_the_spec_wrote_for_another_variable():
    # Setup: "smoke yes" is smoke=yes by the spec's own pattern, and would be the default reading of smoke yes
    network = _flat_network({"smoker": ["yes", "no"], "smoke": ["yes", "no"]})
    variables = {
        "smoker": VariableMeta(
            states={
                "yes": StateWords(phrases=["Smokes."], patterns=["smokes", "smoke yes"]),
                "no": StateWords(phrases=["Non-smoker."], patterns=["non smoker"]),
            }
        )
    }
    # Run
    lexicon = checked_lexicon(network, variables, TextSpec(), lambda _path: "test")
    # Assert
    assert isinstance(lexicon, Lexicon), [str(p) for p in lexicon]
    assert lexicon.phrases["smoke"]["yes"] == ("smoke: yes (state 1 of 2).",)
    assert extract(lexicon, "smoke: yes (state 1 of 2).").stated() == {"smoke": "yes"}
    assert extract(lexicon, "smoke: yes.").stated() == {"smoker": "yes"}


_state_names = st.one_of(st.sampled_from(AWKWARD_STATES), st.text(min_size=1, max_size=8).filter(str.strip))


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(AWKWARD_VARIABLES), st.lists(_state_names, min_size=1, max_size=6, unique=True), min_size=1
    )
)
def test_any_state_names_get_a_default_lexicon_that_round_trips(states):
    # Setup
    network = _flat_network(states)
    # Run
    lexicon = checked_lexicon(network, {}, TextSpec(), lambda _path: "test")
    # Assert
    _assert_round_trips(network, lexicon)


def test_commands_that_write_no_text_build_no_lexicon(capsys, tmp_path, monkeypatch):
    # Setup: compiling a lexicon fails, as it did for CHILD's '<7.5' and '>=7.5'
    def broken(*_args, **_kwargs):
        raise AssertionError("a lexicon was compiled")

    monkeypatch.setattr("causalsynth.tools.spec.checked_lexicon", broken)
    data = tmp_path / "child.csv"
    # Run
    sampled = run_cli(capsys, "sample", "child", "-n", "50", "--out", str(data))
    verified = run_cli(capsys, "verify", str(data), "--spec", "child")
    twins = run_cli(
        capsys, "counterfactual", "child", "-n", "20", "--do", "Disease=TGA", "--out", str(tmp_path / "twins.csv")
    )
    # Assert
    assert [r[0] for r in (sampled, verified, twins)] == [0, 0, 0], [r[2] for r in (sampled, verified, twins)]


def test_a_spec_that_writes_a_lexicon_is_checked_when_it_loads(write_spec):
    # Setup: a spec whose only lexicon entry is an opening that states a fact
    text = HEAD + "text:\n  openings: ['Smoke: yes.']\n"
    # Run
    found = problems(write_spec, text)
    # Assert
    assert any("spec.yaml:" in p and "text.openings[0]" in p and "must state no fact" in p for p in found), found
