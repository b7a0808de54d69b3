"""The Chroma store for real (PersistentClient on disk, MiniLM embeddings from the packaged model): sync mirrors a
folder by content hash, a malformed folder changes nothing, queries find the nearest chunk and honour filters."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from causalsynth.tools.errors import UsageError
from causalsynth.tools.retrieval.corpus import CorpusError
from causalsynth.tools.retrieval.embedding import mean_pairwise_distance, shared_embedder
from causalsynth.tools.retrieval.store import CorpusStore, check_collection_name, metadata_filter
from tests.conftest import ROOT

NOTE = "---\ntitle: {title}\ndomain: {domain}\nkind: {kind}\nsynthetic: true\n---\n\n{body}\n"


def doc(folder: Path, name: str, body: str, *, domain: str = "asia", kind: str = "note") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NOTE.format(title=name, domain=domain, kind=kind, body=body), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path) -> CorpusStore:
    return CorpusStore(tmp_path / "chroma")


def stored(store: CorpusStore, name: str) -> dict[str, str]:
    return dict(store.documents(name))


def test_sync_adds_then_leaves_unchanged_then_updates_and_removes_exactly_what_changed(store, tmp_path):
    corpus = tmp_path / "corpus"
    doc(corpus, "a.md", "Seen in the chest clinic with a dry cough.")
    doc(corpus, "b.md", "Follow-up in six weeks with the scan results.")
    long_body = "\n\n".join(f"Paragraph {i} about inhaler technique and spacer use at home." for i in range(40))
    doc(corpus, "guide.md", long_body, kind="style")

    first = store.sync(corpus, "test-col")
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)
    assert first.embedded == first.chunks == store.count("test-col") > 3  # the guide is cut into several chunks
    before = stored(store, "test-col")

    again = store.sync(corpus, "test-col")
    assert (again.added, again.updated, again.removed, again.unchanged, again.embedded) == (0, 0, 0, 3, 0)
    assert stored(store, "test-col") == before

    doc(corpus, "a.md", "Seen in the chest clinic; cough has settled.")
    doc(corpus, "guide.md", "A short guide now.", kind="style")
    (corpus / "b.md").unlink()
    doc(corpus, "c.md", "Seen with her daughter.")
    third = store.sync(corpus, "test-col")
    assert (third.added, third.updated, third.removed, third.unchanged) == (1, 2, 1, 0)
    after = stored(store, "test-col")
    assert after == {"a.md#0": "Seen in the chest clinic; cough has settled.", "c.md#0": "Seen with her daughter.",
                     "guide.md#0": "A short guide now."}  # fmt: skip
    assert store.count("test-col") == third.chunks == 3


def test_a_malformed_document_leaves_the_collection_as_it_was(store, tmp_path):
    corpus = tmp_path / "corpus"
    doc(corpus, "a.md", "Seen in the chest clinic.")
    store.sync(corpus, "test-col")
    before = stored(store, "test-col")
    doc(corpus, "a.md", "Seen again, changed.")
    (corpus / "bad.md").write_text("no front matter\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="bad.md:1"):
        store.sync(corpus, "test-col")
    assert stored(store, "test-col") == before


def test_the_nearest_chunk_comes_first_and_filters_hold(store, tmp_path):
    corpus = tmp_path / "corpus"
    texts = {
        "n1.md": "Current smoker with a productive cough; findings fit chronic bronchitis.",
        "n2.md": "Returned from a long trip to Asia; sputum culture confirms tuberculosis.",
        "n3.md": "Never smoked. Chest radiograph is clear. Breathing comfortably at rest.",
    }
    for name, body in texts.items():
        doc(corpus, name, body)
    doc(corpus, "gloss.md", "TB: tuberculosis. CXR: chest X-ray. SOB: shortness of breath.", kind="terminology")
    doc(corpus, "other.md", "Triage: chest pain, troponin pending.", domain="clinic")
    store.sync(corpus, "test-col")
    vectors = store.embedder.encode(["smoker, cough, bronchitis", "travel to Asia and TB"])
    found = store.query("test-col", vectors, 2, metadata_filter("asia", ["note"]))
    assert [f[0]["id"] for f in found] == ["n1.md#0", "n2.md#0"]
    assert all(p["kind"] == "note" and p["source"] != "other.md" for f in found for p in f)
    assert found[0][0]["distance"] < found[0][1]["distance"]
    [exact] = store.query("test-col", store.embedder.encode([texts["n3.md"]]), 1)
    assert exact[0]["id"] == "n3.md#0" and exact[0]["distance"] < 1e-4
    assert store.count("test-col", metadata_filter("clinic", ["note"])) == 1
    assert store.count("test-col", metadata_filter("asia", ["terminology", "style"])) == 1


def test_a_collection_embedded_with_another_model_or_missing_is_refused_with_the_fix(store):
    store.client.create_collection("foreign", metadata={"embedding_model": "text-embedding-3-large"},
                                   embedding_function=None)  # fmt: skip
    with pytest.raises(UsageError, match="embedded with 'text-embedding-3-large'"):
        store.count("foreign")
    with pytest.raises(UsageError, match="corpus ingest DIR --collection nothing-here"):
        store.count("nothing-here")


@pytest.mark.parametrize("name", ["ab", "-asia", "asia-", "my collection", "a..b", "x" * 64, "asia/notes"])
def test_bad_collection_names_are_refused_before_chroma_sees_them(name):
    with pytest.raises(UsageError, match="collection name has 3-63 characters"):
        check_collection_name(name)


def test_the_packaged_asia_corpus_ingests_and_its_notes_answer_a_clinical_query(store, tmp_path):
    corpus = tmp_path / "asia"
    shutil.copytree(ROOT / "retrieval_corpus" / "asia", corpus)
    report = store.sync(corpus, "asia")
    assert report.documents >= 32 and report.chunks >= report.documents
    [hits] = store.query("asia", store.embedder.encode(["sputum culture confirms tuberculosis after travel"]), 5,
                         metadata_filter("asia", ["note"]))  # fmt: skip
    assert sum("tuberculosis" in p["text"].lower() or "tb" in p["text"].lower().split() for p in hits) >= 3


def test_embeddings_are_unit_vectors_and_spread_is_the_mean_pairwise_cosine_distance():
    vectors = shared_embedder().encode(["Chest clinic visit.", "Chest clinic visit.", "The ward was quiet."])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors.T
    expected = 1 - (sims.sum() - np.trace(sims)) / 6
    assert mean_pairwise_distance(vectors) == pytest.approx(expected, abs=1e-5)
    assert mean_pairwise_distance(vectors[:2]) == pytest.approx(0, abs=1e-5)
    assert mean_pairwise_distance(vectors[:1]) is None
