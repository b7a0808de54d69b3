"""Fact anchoring: the grammar, the regular expression and the pruning of fact-stating free sentences.

The property that matters: an anchored text, after its fact-stating free sentences are dropped, reads back as
exactly its record's facts, whatever the model wrote in the free slots.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.anchoring import drop_fact_sentences, make_anchor
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT

SPECS = ("asia", "clinic", "alarm")


@pytest.fixture(scope="module")
def domains() -> dict[str, Domain]:
    return {name: load_domain(ROOT / "examples" / f"{name}.yaml") for name in SPECS}


def _records(domain: Domain, n: int, seed: int) -> list[dict[str, str]]:
    data = Sampler(domain.network).sample(n, seed=seed).data
    return [{k: str(v) for k, v in row.items()} for row in data.to_dict("records")]


@pytest.mark.parametrize("name", SPECS)
def test_grammar_parses_in_llama_cpp_and_regex_accepts_the_bare_and_the_filled_text(domains, name):
    from llama_cpp import LlamaGrammar

    domain = domains[name]
    planner = TemplateRealiser(domain.lexicon, seed=1)
    for i, skeleton in enumerate(_records(domain, 20, seed=3)):
        anchor = make_anchor(planner.parts(skeleton, i), domain.lexicon.text.max_chars)
        LlamaGrammar.from_string(anchor.gbnf(), verbose=False)
        LlamaGrammar.from_string(anchor.gap_gbnf(), verbose=False)
        assert anchor.matches(anchor.skeleton_text)
        assert re.fullmatch(anchor.regex()[1:-1], anchor.skeleton_text)
        slot = max(anchor.slots)
        filled = " ".join(
            p + (" He was seen with his wife." if j == slot else "") for j, p in enumerate(anchor.phrases)
        )
        assert anchor.split(filled) is not None


def test_a_text_that_drops_or_changes_a_phrase_is_outside_the_anchor(domains):
    anchor = make_anchor(["Chest clinic visit.", "Non-smoker.", "TB screen negative."], 2000)
    assert not anchor.matches("Chest clinic visit. TB screen negative.")
    assert not anchor.matches("Chest clinic visit. Smoker. TB screen negative.")
    assert not anchor.matches("Chest clinic visit. Non-smoker. TB screen negative. Two. Three.")
    # A free sentence may not hold sentence punctuation or a label colon.
    assert not anchor.matches("Chest clinic visit. Non-smoker. TB screen negative. Smoking: yes.")
    assert anchor.matches("Chest clinic visit. Non-smoker. TB screen negative. Follow up in two weeks.")


def test_parts_without_a_full_stop_get_one_and_tiny_budgets_leave_no_slot():
    anchor = make_anchor(["Age 45", "Smoker"], 2000)
    assert anchor.phrases == ("Age 45.", "Smoker.")
    tight = make_anchor(["Age 45", "Smoker"], 16)
    assert tight.free_chars < 2 and tight.matches("Age 45. Smoker.")
    assert tight.gbnf().startswith('root ::= "Age 45." " " "Smoker."')


def test_drop_fact_sentences_removes_restated_and_contradicting_facts_only(domains):
    lex = domains["asia"].lexicon
    anchor = make_anchor(["Chest clinic visit.", "Never smoked.", "TB screen negative."], 2000)
    text = "Chest clinic visit. Never smoked. The patient smokes. TB screen negative. Follow up in a month."
    pruned, dropped = drop_fact_sentences(anchor, text, lex)
    assert pruned == "Chest clinic visit. Never smoked. TB screen negative. Follow up in a month."
    assert dropped == 1


FREE_WORDS = (
    "no not denies never smoker smokes tuberculosis TB lung cancer bronchitis travel Asia x-ray breath dyspnea "
    "either or possible he she the patient was is seen today follow up plan wife cough weeks ruled out negative "
    "positive abnormal clear history of family mother 20 45 pack years chest film"
).split()


@st.composite
def free_sentence(draw) -> str:
    first = draw(st.sampled_from([w for w in FREE_WORDS if w[0].isalpha()]))
    words = [first, *draw(st.lists(st.sampled_from(FREE_WORDS), max_size=8))]
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


@settings(max_examples=150, deadline=None)
@given(record=st.integers(0, 199), frees=st.lists(free_sentence(), min_size=3, max_size=3))
def test_any_free_sentences_after_pruning_leave_exactly_the_records_facts(domains, record, frees):
    domain = domains["asia"]
    skeleton = _records(domain, 200, seed=9)[record]
    lex = domain.lexicon
    anchor = make_anchor(TemplateRealiser(lex, seed=2).parts(skeleton, record), lex.text.max_chars)
    slots = sorted(anchor.slots)
    chosen = dict(zip(slots, frees, strict=False))
    text = " ".join(p + (" " + chosen[j] if j in chosen else "") for j, p in enumerate(anchor.phrases))
    assert anchor.matches(text)
    pruned, _ = drop_fact_sentences(anchor, text, lex)
    assert anchor.matches(pruned)
    assert not check_facts(lex, skeleton, extract(lex, pruned)), pruned
