"""Batched decoding with the real model: many records per llama.cpp call, each record's text its own.

The claim a user relies on: the same seed gives the same text whether a record is decoded alone, in a batch with
others, or on another context; and every batched text is the anchor's language (every fact phrase, in order, and
at most one well-formed free sentence per slot).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.llm.batch_decode import split_prompt
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.llm.local_chat import LocalChatModel
from causalsynth.tools.llm.local_model import ensure_model
from causalsynth.tools.llm.prompts import reference_block
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.text.realisation import RealisationRequest
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def asia_spec() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml")


@pytest.fixture(scope="module")
def requests(asia_spec) -> list[RealisationRequest]:
    data = Sampler(asia_spec.network).sample(5, seed=3).data
    notes = sorted((ROOT / "retrieval_corpus" / "asia" / "notes").glob("*.md"))
    # records 0 and 1 share their references, as records with similar facts do in a run
    refs = [(0, 1), (0, 1), (2, 3), (4,), ()]
    return [
        RealisationRequest(
            record_id=i,
            skeleton={k: str(v) for k, v in row.items()},
            references=tuple(notes[j].read_text()[:320] for j in refs[i]),
        )  # fmt: skip
        for i, row in enumerate(data.to_dict("records"))
    ]


def _realise(
    asia_spec: Domain, requests: list[RealisationRequest], chat: LocalChatModel | None = None, **model: object
) -> list[str]:
    chat = chat or LocalChatModel(model_path=str(ensure_model()), **model)  # type: ignore[arg-type]
    realiser = ChatRealiser(chat, asia_spec.lexicon, realize="anchored", anchoring="grammar", seeded_calls=True)
    out = realiser.realise(requests)
    assert all(r.error is None for r in out), [r.error for r in out]
    return [r.text for r in out]


def test_the_same_seed_gives_the_same_text_alone_batched_or_on_two_contexts(asia_spec, requests):
    # Setup
    realiser = ChatRealiser(LocalChatModel(model_path=str(ensure_model())), asia_spec.lexicon, realize="anchored")
    anchors = [realiser.anchor(r) for r in requests]

    # Run
    one_by_one = LocalChatModel(model_path=str(ensure_model()), contexts=1, threads=1, max_batch=1)
    alone = _realise(asia_spec, requests, one_by_one)
    batched = _realise(asia_spec, requests, contexts=1, threads=1)
    two_contexts = _realise(asia_spec, requests, contexts=2, threads=1)
    reordered = _realise(asia_spec, requests[::-1], contexts=1, threads=1)[::-1]

    # Assert
    assert batched == alone
    # one round per record: each distinct prefix (the reference header counts the excerpts) was evaluated once,
    # then kept for the later rounds
    prefixes = len({len(r.references) for r in requests})
    assert one_by_one._batcher is not None and one_by_one._batcher.decoders[0].prefix_evaluations == prefixes
    assert two_contexts == alone
    assert reordered == alone
    for anchor, text in zip(anchors, alone, strict=True):
        assert anchor is not None and anchor.matches(text), text
    assert any(text != anchor.skeleton_text for anchor, text in zip(anchors, alone, strict=True) if anchor)


def test_another_seed_gives_other_free_sentences(asia_spec, requests):
    # Setup
    first = _realise(asia_spec, requests, contexts=1, threads=1, seed=0)

    # Run
    chat = LocalChatModel(model_path=str(ensure_model()), contexts=1, threads=1)
    realiser = ChatRealiser(chat, asia_spec.lexicon, realize="anchored", anchoring="grammar", seeded_calls=True,
                            seed=99)  # fmt: skip
    other = [r.text for r in realiser.realise(requests)]

    # Assert
    assert other != first


def test_a_prompt_with_references_splits_into_prefix_blocks_and_tail(asia_spec):
    # Setup
    passages = ["Seen today. Smoker.", "Chest X-ray clear. No travel."]
    prompt = f"<system>\n{reference_block(asia_spec.lexicon, passages)}\n\nWrite the note.<end>\n"

    # Run
    prefix, blocks, tail = split_prompt(prompt)

    # Assert
    assert prefix + "".join(blocks) + tail == prompt
    assert len(blocks) == 2 and passages[1] in blocks[1] and blocks[0].startswith('<reference n="1">')
    assert prefix.endswith("instructions.\n") or "Reference material" in prefix
    assert tail.startswith("\nWrite the note.")
    assert split_prompt("no references here") == ("no references here", (), "")


def test_a_model_file_that_is_not_a_gguf_is_a_clear_error(tmp_path: Path):
    # Setup
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a model")

    # Run / Assert
    from causalsynth.tools.errors import UsageError

    with pytest.raises(UsageError, match="not a GGUF"):
        LocalChatModel(model_path=str(bad), batched=True)
