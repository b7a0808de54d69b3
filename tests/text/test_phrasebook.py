"""The phrasebook beside a spec: loaded and checked with it, drawn from by the planner, every line read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.errors import SpecError
from causalsynth.tools.spec import example_names, load_domain
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.phrasebook import Phrasebook, phrasebook_path, read_phrasebook, write_phrasebook
from causalsynth.tools.text.template import TemplateRealiser
from tests.conftest import ROOT


@pytest.fixture
def asia_copy(tmp_path: Path) -> Path:
    spec = tmp_path / "asia.yaml"
    shutil.copy(ROOT / "examples" / "asia.yaml", spec)
    return spec


def _skeletons(domain, n: int, seed: int) -> list[dict[str, str]]:
    data = Sampler(domain.network).sample(n, seed=seed).data
    return [{k: str(v) for k, v in row.items()} for row in data.to_dict("records")]


def test_phrasings_beside_the_spec_are_drawn_by_the_planner_and_every_text_reads_back(asia_copy):
    # Setup
    book = Phrasebook(model="hand")
    book.add("smoke", "yes", "terse", "Smokes daily.")
    book.add("smoke", "yes", "narrative", "On questioning, he admits to smoking.")
    book.add("dysp", "no", "bulleted", "Breathing: comfortable at rest, breathing comfortably.")
    write_phrasebook(phrasebook_path(asia_copy), book)

    # Run
    domain = load_domain(asia_copy)
    plain = load_domain(asia_copy, phrasebook=False)
    realiser = TemplateRealiser(domain.lexicon, seed=3)
    skeletons = _skeletons(domain, 300, seed=4)
    texts = [realiser.text(s, i) for i, s in enumerate(skeletons)]

    # Assert
    assert "Smokes daily." in domain.lexicon.phrases["smoke"]["yes"]
    assert "Smokes daily." not in plain.lexicon.phrases["smoke"]["yes"]
    assert any("On questioning, he admits to smoking." in t for t in texts)
    assert any("Smokes daily." in t for t in texts)
    for skeleton, text in zip(skeletons, texts, strict=True):
        observed = {v: skeleton[v] for v in domain.lexicon.observed}
        assert extract(domain.lexicon, text).stated() == observed, text


def test_a_written_phrasebook_reads_back_the_same(tmp_path):
    # Setup
    book = Phrasebook(model="m")
    book.add("smoke", "yes", "narrative", "He smokes.")
    book.add("smoke", "yes", "terse", "Smoker.")
    book.add("smoke", "no", "terse", "Never smoked.")
    path = tmp_path / "x.phrases.yaml"

    # Run
    write_phrasebook(path, book)
    again, problems = read_phrasebook(path)

    # Assert
    assert problems == []
    assert again.model == "m" and again.phrases == book.phrases
    assert again.of("smoke", "yes") == ["Smoker.", "He smokes."]  # registers in their fixed order


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('phrases:\n  either:\n    "yes": ["Either one."]\n', "either is latent"),
        ('phrases:\n  smoke:\n    maybe: ["Smokes."]\n', "smoke has no state 'maybe'"),
        ('phrases:\n  smokes:\n    "yes": ["Smokes."]\n', "unknown variable 'smokes'"),
        ('phrases:\n  smoke:\n    "yes": [1, 2]\n', "expected a list of strings"),
        ('phrases:\n  smoke:\n    "yes":\n      terse: ["Smoker and TB confirmed."]\n', "states two facts"),
        ("phrase: {}\n", "unknown key(s): phrase"),
        ("phrases: [\n", "asia.phrases.yaml"),
    ],
)
def test_a_malformed_phrasebook_stops_the_load_naming_the_file_and_what(asia_copy, body, message):
    # Setup
    phrasebook_path(asia_copy).write_text(body)

    # Run
    with pytest.raises(SpecError) as info:
        load_domain(asia_copy)

    # Assert
    assert message in str(info.value)
    assert "asia.phrases.yaml" in str(info.value)


def test_phrasebooks_are_not_example_specs():
    # Run / Assert
    assert not any(name.endswith(".phrases") for name in example_names())


@pytest.mark.parametrize("name", ["asia", "clinic"])
def test_the_shipped_phrasebooks_load_and_add_phrasings(name):
    # Setup
    path = ROOT / "examples" / f"{name}.phrases.yaml"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run causalsynth lexicon expand examples/{name}.yaml")

    # Run
    with_book = load_domain(ROOT / "examples" / f"{name}.yaml")
    without = load_domain(ROOT / "examples" / f"{name}.yaml", phrasebook=False)

    # Assert: loading checked that each phrasing reads back; here, that they add phrasings and keep the spec's first
    added = sum(
        len(with_book.lexicon.phrases[v][s]) - len(without.lexicon.phrases[v][s])
        for v in without.lexicon.observed
        for s in without.lexicon.states[v]
    )
    assert added >= 1
    for v in without.lexicon.observed:
        for s in without.lexicon.states[v]:
            own = without.lexicon.phrases[v][s]
            assert with_book.lexicon.phrases[v][s][: len(own)] == own
