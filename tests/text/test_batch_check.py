"""The vectorised template path gives what the per-record path gives: texts, sentence splits and fact verdicts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.batch_check import states_exactly
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.realisation import RealisationRequest
from causalsynth.tools.text.sentences import sentences, sentences_of
from causalsynth.tools.text.template import TemplateRealiser

#: Sentences a model writes that qualify facts: negation, uncertainty, other subjects, contrasts, values out of range.
ADVERSARIAL = [
    "No dyspnea, denies cough.", "Possible tuberculosis.", "Tuberculosis ruled out.", "Mother had lung cancer.",
    "Family history of bronchitis but the patient smokes.", "Not a non-smoker.", "Smoker and tuberculosis ruled out.",
    "Dyspnea: no.", "Suspected lung cancer.", "Heart rate 900 bpm.", "HR approx. 75 bpm.", "SpO2 on 4 L O2 was 92%.",
    "Either tuberculosis or lung cancer is present.", "Visited Asia recently.", "No recent travel or smoking.",
    "Temp. 38.5 and resp. rate 22.", "Blood pressure 2,500.", "The patient has bronchitis; no dyspnea!",
]  # fmt: skip


def _generated(domain: Domain, n: int, seed: int) -> tuple[list[dict[str, str]], list[str]]:
    skeletons = Sampler(domain.network).sample(n, seed=seed).data.astype(str).to_dict("records")
    texts = TemplateRealiser(domain.lexicon, seed=seed).texts(skeletons, list(range(n)), [0] * n)
    return skeletons, texts


def _reference(domain: Domain, skeleton: dict[str, str], text: str) -> bool:
    """The per-text verdict: no violation, and the extracted facts are the skeleton's observed values."""
    lexicon = domain.lexicon
    got = extract(lexicon, text)
    return not check_facts(lexicon, skeleton, got) and got.facts(lexicon.observed) == {
        v: skeleton[v] for v in lexicon.observed
    }


def _tamper(skeletons: list[dict[str, str]], texts: list[str], seed: int) -> list[str]:
    """Every third text broken or qualified in one of several ways (the rest stay as written)."""
    rnd = random.Random(seed)
    out = list(texts)
    for i in range(0, len(out), 3):
        how = rnd.randrange(6)
        if how == 0:  # another record's text: contradictions
            out[i] = texts[(i + 1) % len(texts)]
        elif how == 1:  # a sentence dropped: an omission
            out[i] = ". ".join(texts[i].split(". ")[1:])
        elif how == 2:  # a qualified sentence added
            out[i] = f"{texts[i]} {rnd.choice(ADVERSARIAL)}"
        elif how == 3:  # a sentence negated
            out[i] = texts[i].replace(".", " was ruled out.", 1)
        elif how == 4:  # a skeleton value that is not a state
            skeletons[i] = {**skeletons[i], next(iter(skeletons[i])): "not-a-state"}
        else:  # sentences split differently
            out[i] = texts[i].replace(". ", "; ").replace(" ", "\n", 2)
    return out


@pytest.mark.parametrize(("name", "n"), [("asia", 40_000), ("clinic", 30_000), ("alarm", 30_000)])
def test_batch_verdicts_equal_the_per_text_check_on_100k_generated_records(name: str, n: int) -> None:
    # Setup: 100,000 records over the three specs; a third of the texts broken or qualified
    domain = load_domain(name)
    skeletons, texts = _generated(domain, n, seed=5)
    texts = _tamper(skeletons, texts, seed=5)

    # Run
    fast = states_exactly(domain.lexicon, skeletons, texts).tolist()
    slow = [_reference(domain, sk, t) for sk, t in zip(skeletons, texts, strict=True)]

    # Assert: the same verdict on every text, and both kinds of verdict occur
    disagree = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert not disagree, f"{len(disagree)} verdicts differ, first: {texts[disagree[0]]!r}"
    assert 0.5 * n < sum(fast) < n


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ADVERSARIAL), min_size=1, max_size=4), st.integers(0, 10_000))
def test_qualified_sentences_get_the_per_text_verdict(added: list[str], seed: int) -> None:
    # Setup: ASIA template texts with hand-written qualifying sentences in front or behind
    domain = load_domain("asia")
    skeletons, texts = _generated(domain, 4, seed)
    texts = [" ".join(added) + " " + texts[0], texts[1] + " " + " ".join(added), " ".join(added), texts[3]]

    # Run
    fast = states_exactly(domain.lexicon, skeletons, texts).tolist()

    # Assert
    assert fast == [_reference(domain, sk, t) for sk, t in zip(skeletons, texts, strict=True)]
    assert fast[3]  # an untouched template text passes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab1 2.;!?\n\x00\x01²٣eETgmpoxy", max_size=30), max_size=5))
def test_batch_sentence_split_equals_the_per_text_split(texts: list[str]) -> None:
    # Decimals, abbreviations, non-ASCII digits and NULs: the batch split takes the same cuts as the per-text one
    assert sentences_of(texts) == [sentences(t) for t in texts]


@pytest.mark.parametrize("name", ["asia", "alarm", "clinic", "sachs"])
def test_vectorised_realisation_equals_the_per_record_text(name: str) -> None:
    # Setup: records with scattered ids and several attempts, numeric values included (alarm, clinic)
    domain = load_domain(name)
    skeletons = Sampler(domain.network).sample(3_000, seed=2).data.astype(str).to_dict("records")
    realiser = TemplateRealiser(domain.lexicon, seed=9)
    requests = [RealisationRequest(record_id=7 * i + 3, skeleton=sk, attempt=i % 4) for i, sk in enumerate(skeletons)]

    # Run
    batch = [r.text for r in realiser.realise(requests)]

    # Assert: the same text as the record realised alone, and every text states exactly its facts
    assert batch == [realiser.text(q.skeleton, q.record_id, q.attempt) for q in requests]
    assert states_exactly(domain.lexicon, skeletons, batch).all()


def test_a_state_without_phrases_fails_the_batch_as_the_single_record_does() -> None:
    domain = load_domain("asia")
    realiser = TemplateRealiser(domain.lexicon)
    skeleton = Sampler(domain.network).sample(1, seed=0).data.astype(str).to_dict("records")[0]
    broken = {**skeleton, domain.lexicon.observed[0]: "not-a-state"}
    with pytest.raises(KeyError):
        realiser.text(broken, 0)
    with pytest.raises(KeyError):
        realiser.realise([RealisationRequest(record_id=0, skeleton=broken)])
