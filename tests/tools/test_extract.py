"""The deterministic extractor and the fact check: adversarial wordings a realiser (or an LLM) produces."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def asia_spec() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml")


def stated(domain: Domain, text: str) -> dict[str, str]:
    return extract(domain.lexicon, text).stated()


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("Denies shortness of breath.", {"dysp": "no"}),
        ("No dyspnea.", {"dysp": "no"}),
        ("Non-smoker.", {"smoke": "no"}),
        ("Patient is a nonsmoker", {"smoke": "no"}),
        ("Without dyspnoea, cough or fever.", {"dysp": "no"}),
        ("No fever, cough, or shortness of breath.", {"dysp": "no"}),
        ("Tuberculosis and lung cancer were ruled out.", {"tub": "no", "lung": "no"}),
        ("Negative for TB; smokes a pack a day.", {"tub": "no", "smoke": "yes"}),
        ("Dyspnea denied, smoker.", {"dysp": "no", "smoke": "yes"}),
        ("No dyspnea but a current smoker.", {"dysp": "no", "smoke": "yes"}),
        ("Not a non-smoker.", {"smoke": "yes"}),
        ("He doesn't smoke.", {"smoke": "no"}),
        ("Chest X-ray: normal.", {"xray": "no"}),
    ],
)
def test_negation_scope(asia_spec, text, facts):
    assert stated(asia_spec, text) == facts


@pytest.mark.parametrize(
    "text",
    ["SMOKER.", "smoker", "  Smoker!!  ", "The patient: smoker;", "smoker...", "Smokes — a pack a day."],
)
def test_case_and_punctuation_do_not_matter(asia_spec, text):
    assert stated(asia_spec, text) == {"smoke": "yes"}


@pytest.mark.parametrize(
    ("text", "var", "state"),
    [
        ("Complains of shortness of breath.", "dysp", "yes"),
        ("Breathless on exertion.", "dysp", "yes"),
        ("Dyspnoea at rest.", "dysp", "yes"),
        ("SOB since Tuesday.", "dysp", "yes"),
        ("Active TB.", "tub", "yes"),
        ("Bronchogenic carcinoma on biopsy.", "lung", "yes"),
        ("Returned from a trip to Asia.", "asia", "yes"),
    ],
)
def test_synonyms(asia_spec, text, var, state):
    assert stated(asia_spec, text) == {var: state}


def test_a_variable_stated_two_ways_is_a_contradiction(asia_spec):
    got = extract(asia_spec.lexicon, "Current smoker. Later in the note: non-smoker.")
    assert got.asserted["smoke"] == ["yes", "no"]
    assert "smoke" not in got.stated()
    skeleton = {"smoke": "yes"}
    kinds = {(v["kind"], v["variable"]) for v in check_facts(asia_spec.lexicon, _full(asia_spec, skeleton), got)}
    assert ("contradiction", "smoke") in kinds


def test_the_same_fact_twice_is_fine(asia_spec):
    assert stated(asia_spec, "Smoker. Smokes a pack a day.") == {"smoke": "yes"}


def test_uncertain_and_other_subject_mentions_state_nothing(asia_spec):
    got = extract(asia_spec.lexicon, "Possible tuberculosis. Family history of lung cancer. Mother smokes.")
    assert got.stated() == {}
    assert got.uncertain == {"tub"}
    violations = check_facts(asia_spec.lexicon, _full(asia_spec, {"tub": "yes"}), got)
    tub = [v for v in violations if v["variable"] == "tub"]
    assert tub[0]["kind"] == "omission" and "uncertain" in tub[0]["message"]


@pytest.mark.parametrize(
    ("text", "facts", "uncertain"),
    [
        ("Mother has tuberculosis.", {}, set()),  # a clause word does not end an other-subject scope
        ("Father with lung cancer, patient smokes.", {"smoke": "yes"}, set()),  # "patient" ends it
        ("Tuberculosis suspected.", {}, {"tub"}),  # uncertainty after the finding
        ("Lung cancer is likely.", {}, {"lung"}),
        ("Lung cancer not excluded.", {}, {"lung"}),
        ("No dyspnea, breathing comfortably.", {"dysp": "no"}, set()),  # a list does not flip a negative state
        ("No recent travel or smoking.", {"asia": "no", "smoke": "no"}, set()),  # a negative pattern's own "no"
        ("Never smoked, dyspnea on exertion.", {"smoke": "no", "dysp": "yes"}, set()),  # ... not across a comma
        ("Denies dyspnea and smoking.", {"dysp": "no", "smoke": "no"}, set()),
        # After a comma, a negation goes on only in a visible list; otherwise the reading is ambiguous and the
        # fact counts as not stated (so a wrong reading can never be accepted).
        ("No dyspnea, smoker.", {"dysp": "no"}, {"smoke"}),
        ("Without dyspnea, smokes daily.", {"dysp": "no"}, {"smoke"}),
        ("Denies tuberculosis, bronchitis, dyspnea.", {"tub": "no", "bronc": "no", "dysp": "no"}, set()),
        ("No recent travel, smoking or dyspnea.", {"asia": "no", "smoke": "no", "dysp": "no"}, set()),
        ("No bronchitis, tuberculosis confirmed.", {"bronc": "no", "tub": "yes"}, set()),
        ("Negative for tuberculosis and positive for lung cancer.", {"tub": "no", "lung": "yes"}, set()),
        # "Label: value" notes.
        ("Dyspnea: no.", {"dysp": "no"}, set()),
        ("TB: no, smoker: yes.", {"tub": "no", "smoke": "yes"}, set()),
        ("Dyspnea - none.", {"dysp": "no"}, set()),
        ("Dyspnea: absent.", {"dysp": "no"}, set()),
        ("Smoker no dyspnea.", {"smoke": "yes", "dysp": "no"}, set()),
    ],
)
def test_scopes_of_cues(asia_spec, text, facts, uncertain):
    got = extract(asia_spec.lexicon, text)
    assert got.stated() == facts
    assert got.uncertain == uncertain


@pytest.mark.parametrize(
    ("text", "facts", "vague"),
    [
        ("Troponin <14.", {"troponin": "normal"}, set()),  # below the bottom range's top: normal
        ("Troponin below 14 ng/L.", {"troponin": "normal"}, set()),
        ("Troponin above 20.", {"troponin": "raised"}, set()),
        ("Heart rate below 120.", {}, {"heart_rate"}),  # spans normal and high: states nothing
        ("Troponin 1,500 ng/L.", {"troponin": "raised"}, set()),  # thousands separator
        ("SpO2 on 4 L O2 was 92%.", {"spo2": "low"}, set()),  # an oxygen flow is not the reading
        ("SpO2 92% on room air.", {"spo2": "low"}, set()),
        ("Temp. 38.5 C.", {"temperature": "febrile"}, set()),  # abbreviation period, decimal point
        ("45 y.o. man.", {"age": "middle"}, set()),
        ("Aged 65.", {"age": "old"}, set()),  # a range's low bound belongs to it
    ],
)
def test_numbers(text, facts, vague):
    clinic = load_domain(ROOT / "examples" / "clinic.yaml")
    got = extract(clinic.lexicon, text)
    assert got.stated() == facts
    assert got.uncertain == vague


def test_negative_numbers_and_their_ranges(write_spec):
    spec = write_spec(
        """
        model:
          nodes:
            be: {states: [acidotic, normal], probs: [0.2, 0.8]}
        variables:
          be:
            numeric: {names: [base excess], unit: mmol/L, ranges: {acidotic: [-20, -2], normal: [-2, 2]}}
            states:
              acidotic: {phrases: ["Base excess {value} mmol/L."]}
              normal: {phrases: ["Base excess {value} mmol/L."]}
        """
    )
    domain = load_domain(spec)
    assert stated(domain, "Base excess -5.") == {"be": "acidotic"}
    assert stated(domain, "Base excess 1.") == {"be": "normal"}


def test_generic_mentions_and_numbers_after_the_value():
    clinic = load_domain(ROOT / "examples" / "clinic.yaml")
    lex = clinic.lexicon
    assert stated(clinic, "A 72-year-old man.") == {"age": "old"}
    assert stated(clinic, "Denies fever, cough or chest pain.") == {
        "temperature": "normal", "cough": "none", "chest_pain": "none"
    }  # fmt: skip
    got = extract(lex, "Cough for three days.")
    assert got.stated() == {} and got.excluded == {"cough": ["none"]}
    skeleton = {v: lex.states[v][0] for v in lex.order} | {"cough": "dry"}
    (cough,) = [v for v in check_facts(lex, skeleton, got) if v["variable"] == "cough"]
    assert cough["kind"] == "omission" and "only that it is not none" in cough["message"]
    skeleton["cough"] = "none"
    (cough,) = [v for v in check_facts(lex, skeleton, got) if v["variable"] == "cough"]
    assert cough["kind"] == "contradiction"


def test_fact_stated_for_the_wrong_variable_is_caught(asia_spec):
    # The skeleton has lung cancer and no bronchitis; the text puts the disease on the wrong variable.
    skeleton = _full(asia_spec, {"lung": "yes", "bronc": "no"})
    text = TemplateRealiser(asia_spec.lexicon).text(skeleton, 0)
    text = text.replace(_sentence(asia_spec, text, "bronc"), "")
    text = text.replace(_sentence(asia_spec, text, "lung"), "Findings consistent with bronchitis.")
    got = extract(asia_spec.lexicon, text)
    found = {(v["kind"], v["variable"]) for v in check_facts(asia_spec.lexicon, skeleton, got)}
    assert ("omission", "lung") in found
    assert ("contradiction", "bronc") in found


def test_latent_assertion_is_a_violation(asia_spec):
    skeleton = _full(asia_spec, {})
    text = TemplateRealiser(asia_spec.lexicon).text(skeleton, 3) + " Either tuberculosis or lung cancer is present."
    found = check_facts(asia_spec.lexicon, skeleton, extract(asia_spec.lexicon, text))
    assert [v["variable"] for v in found if v["kind"] == "latent"] == ["either"]


def test_contradiction_message_names_fact_and_required_value(asia_spec):
    skeleton = _full(asia_spec, {"smoke": "no"})
    text = TemplateRealiser(asia_spec.lexicon).text(skeleton, 1)
    text = text.replace(_sentence(asia_spec, text, "smoke"), "The patient smokes.")
    (violation,) = check_facts(asia_spec.lexicon, skeleton, extract(asia_spec.lexicon, text))
    assert violation["kind"] == "contradiction"
    assert violation["variable"] == "smoke" and violation["expected"] == "no" and violation["found"] == "yes"
    assert "smoke=yes" in violation["message"] and "the record says smoke=no" in violation["message"]


def test_omission_is_named(asia_spec):
    skeleton = _full(asia_spec, {"dysp": "yes"})
    text = TemplateRealiser(asia_spec.lexicon).text(skeleton, 2)
    text = text.replace(_sentence(asia_spec, text, "dysp"), "")
    (violation,) = check_facts(asia_spec.lexicon, skeleton, extract(asia_spec.lexicon, text))
    assert (violation["kind"], violation["variable"], violation["expected"]) == ("omission", "dysp", "yes")


@pytest.mark.parametrize("spec", ["asia.yaml", "alarm.yaml", "clinic.yaml"])
def test_template_realisations_read_back_exactly(spec):
    domain = load_domain(ROOT / "examples" / spec)
    data = Sampler(domain.network).sample(500, seed=7).data.astype(str)
    realiser = TemplateRealiser(domain.lexicon, seed=3)
    for i, skeleton in enumerate(data.to_dict("records")):
        got = extract(domain.lexicon, realiser.text(skeleton, i))
        assert check_facts(domain.lexicon, skeleton, got) == []
        assert got.stated() == {v: skeleton[v] for v in domain.lexicon.observed}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False))
def test_sentence_order_does_not_matter(asia_spec, seed, order):
    skeleton = Sampler(asia_spec.network).sample(1, seed=seed).data.astype(str).iloc[0].to_dict()
    text = TemplateRealiser(asia_spec.lexicon, seed=seed).text(skeleton, seed)
    sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
    order.shuffle(sentences)
    assert stated(asia_spec, " ".join(sentences)) == {v: skeleton[v] for v in asia_spec.lexicon.observed}


def test_numbers_map_to_states_by_range(tmp_path):
    domain = load_domain(ROOT / "examples" / "clinic.yaml")
    lex = domain.lexicon
    var, rule = next(iter(lex.numeric.items()))
    low, high, state = rule.ranges[0]
    name = _numeric_name(domain, var)
    assert stated(domain, f"{name} {low:g}.") == {var: state}
    top_low, top_high, top_state = rule.ranges[-1]
    assert stated(domain, f"{name} of {top_high:g}.") == {var: top_state}  # the top range includes its bound
    got = extract(lex, f"{name} {top_high + 1000:g}.")
    assert var in got.out_of_range
    skeleton = {v: lex.states[v][0] for v in lex.order}
    assert any(v["variable"] == var and v["kind"] == "contradiction" for v in check_facts(lex, skeleton, got))


def _numeric_name(domain: Domain, var: str) -> str:
    meta = domain.spec.variables[var]
    assert meta.numeric is not None
    return meta.numeric.names[0]


def _full(domain: Domain, partial: dict[str, str]) -> dict[str, str]:
    rng = random.Random(0)
    return {v: partial.get(v, rng.choice(domain.network.states(v))) for v in domain.network.names}


def _sentence(domain: Domain, text: str, var: str) -> str:
    """The sentence of ``text`` that states ``var``."""
    for sentence in (s.strip() + "." for s in text.split(".") if s.strip()):
        if var in stated(domain, sentence):
            return sentence
    raise AssertionError(f"{var} not stated in {text!r}")
