"""Corpus documents: the packaged corpora are complete and synthetic; malformed documents are refused clearly;
chunking loses no text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.tools.retrieval.corpus import CorpusError, Document, chunk_document, load_corpus
from causalsynth.tools.retrieval.leakage import CopyIndex, tokens
from tests.conftest import ROOT

DOMAINS = ("asia", "clinic", "hospital")
GOOD = "---\ntitle: A note\ndomain: asia\nkind: note\nregister: terse\nsynthetic: true\n---\n\nSeen in clinic. Well.\n"


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_packaged_corpus_has_thirty_synthetic_notes_in_three_registers_and_its_guides(domain):
    docs = load_corpus(ROOT / "retrieval_corpus" / domain)
    assert all(d.synthetic and d.domain == domain for d in docs)
    notes = [d for d in docs if d.kind == "note"]
    assert len(notes) >= 30
    registers = Counter(d.register for d in notes)
    assert set(registers) == {"terse", "narrative", "bulleted"} and min(registers.values()) >= 8, registers
    assert {d.kind for d in docs} == {"note", "style", "terminology"}
    assert len({d.body for d in notes}) == len(notes), "duplicate notes"


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("Seen in clinic.\n", 1, "must start with front matter"),
        ("---\ndomain: asia\nkind: note\nsynthetic: true\n\nSeen.\n", 1, "not closed"),
        ("---\ndomain: [asia\nkind: note\n---\nSeen.\n", 3, "not valid YAML"),
        ("---\n- a\n- b\n---\nSeen.\n", 2, "key: value"),
        ("---\ndomain: asia\nkind: note\nsynthetic: true\nauthor: me\n---\nSeen.\n", 5, "unknown field 'author'"),
        ("---\ndomain: asia\nkind: memo\nsynthetic: true\n---\nSeen.\n", 3, "'kind' must be one of"),
        ("---\ndomain: asia\nkind: note\nregister: chatty\nsynthetic: true\n---\nSeen.\n", 4, "'register'"),
        ("---\ndomain: asia\nkind: note\n---\nSeen.\n", 2, "'synthetic' is required"),
        ("---\ndomain: asia\nkind: note\nsynthetic: yes please\n---\nSeen.\n", 4, "'synthetic' is required"),
        ("---\ndomain: Asia Clinic\nkind: note\nsynthetic: true\n---\nSeen.\n", 2, "'domain' must be"),
        ("---\ndomain: asia\nkind: note\nsynthetic: true\n---\n\n   \n", 5, "no text after the front matter"),
        (b"---\ndomain: asia\nkind: note\nsynthetic: true\n---\nSeen \xff\xfe.\n", 6, "not UTF-8"),
        ("---\ndomain: asia\nkind: note\nsynthetic: true\n---\nSeen\x00.\n", 6, "NUL byte"),
    ],
)
def test_a_malformed_document_is_named_with_its_line_and_the_problem(tmp_path, content, line, message):
    write(tmp_path, "good.md", GOOD)
    bad = write(tmp_path, "sub/bad.md", content)
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path)
    text = str(info.value)
    assert f"{bad}:{line}" in text and message in text, text
    assert "good.md" not in text


def test_every_bad_document_is_reported_at_once_and_readmes_are_skipped(tmp_path):
    write(tmp_path, "README.md", "# About this corpus\nNo front matter here.\n")
    write(tmp_path, "a.md", "no front matter")
    write(tmp_path, "b.txt", "---\ndomain: asia\nkind: note\n---\nSeen.\n")
    write(tmp_path, "ignored.json", "{}")
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path)
    assert "2 problems" in str(info.value) and "a.md:1" in str(info.value) and "b.txt:2" in str(info.value)
    assert "README" not in str(info.value)


def test_an_oversized_document_is_refused_before_it_is_read_as_text(tmp_path):
    write(tmp_path, "big.md", GOOD + "word " * 250_000)
    with pytest.raises(CorpusError, match="a document must be under"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_a_missing_or_empty_folder_is_refused(tmp_path, make):
    with pytest.raises(CorpusError, match="not a folder|no documents"):
        load_corpus(make(tmp_path))


def test_content_hash_changes_with_body_and_metadata_not_with_line_endings(tmp_path):
    write(tmp_path, "a.md", GOOD)
    [first] = load_corpus(tmp_path)
    write(tmp_path, "a.md", GOOD.replace("\n", "\r\n"))
    [crlf] = load_corpus(tmp_path)
    write(tmp_path, "a.md", GOOD.replace("terse", "narrative"))
    [meta] = load_corpus(tmp_path)
    write(tmp_path, "a.md", GOOD.replace("Well.", "Unwell."))
    [body] = load_corpus(tmp_path)
    assert first.digest == crlf.digest
    assert len({first.digest, meta.digest, body.digest}) == 3


_WORD = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1, max_size=30)
_LINE = st.one_of(st.lists(_WORD, min_size=1, max_size=40).map(" ".join), _WORD.map(lambda w: "# " + w))
_BODY = st.lists(st.lists(_LINE, min_size=1, max_size=5).map("\n".join), min_size=1, max_size=12).map("\n\n".join)


@settings(max_examples=150, deadline=None)
@given(body=_BODY, max_chars=st.integers(min_value=20, max_value=400))
def test_chunks_fit_and_joined_back_give_the_whole_text(body, max_chars):
    doc = Document("d.md", "", "asia", "note", "", True, body.strip() or "x", "h")
    chunks = chunk_document(doc, max_chars)
    assert all(len(c.text) <= max_chars for c in chunks)
    assert "".join("".join(c.text.split()) for c in chunks) == "".join(doc.body.split())
    assert [c.id for c in chunks] == [f"d.md#{i}" for i in range(len(chunks))]
    assert all(c.metadata["chunks"] == len(chunks) and c.metadata["synthetic"] is True for c in chunks)


def test_a_copied_run_of_n_tokens_is_found_whatever_its_case_and_punctuation():
    corpus = [("notes/1.md#0", "Seen with her daughter, who drove her in. Follow-up in six weeks with results.")]
    index = CopyIndex(corpus, n=8)
    copy = index.longest_copy("Chest clinic visit. SEEN with her daughter who drove her in; follow up in two weeks.")
    assert copy is not None and copy.source == "notes/1.md#0"
    assert copy.length == 11 and copy.excerpt == "seen with her daughter who drove her in follow up in"
    assert index.longest_copy("Seen with her daughter who drove.") is None  # 6 tokens < 8
    assert CopyIndex(corpus, n=11).longest_copy("Seen with her daughter, who drove her in. Follow up.") is None


@settings(max_examples=100, deadline=None)
@given(
    doc=st.lists(st.sampled_from("abcdefgh"), min_size=0, max_size=40),
    text=st.lists(st.sampled_from("abcdefgh"), min_size=0, max_size=40),
    n=st.integers(2, 6),
)
def test_a_copy_is_found_exactly_when_the_text_shares_a_run_of_n_tokens(doc, text, n):
    longest = max(
        (k for i in range(len(text)) for j in range(len(doc)) for k in range(1, len(text) - i + 1)
         if text[i : i + k] == doc[j : j + k]),
        default=0,
    )  # fmt: skip
    copy = CopyIndex([("d", " ".join(doc))], n).longest_copy(" ".join(text))
    assert (copy is not None) == (longest >= n)
    if copy is not None:  # the span covers the longest common run (chained n-grams may make it longer)
        assert copy.length >= longest and copy.excerpt in " ".join(text)
    assert tokens(" ".join(text)) == text
