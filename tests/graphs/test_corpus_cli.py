"""``causalsynth corpus ingest|query`` and the run's retrieval flags: real Chroma, one-line errors, exit code 2."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import ROOT, run_cli


@pytest.fixture
def asia_corpus(tmp_path):
    folder = tmp_path / "asia"
    shutil.copytree(ROOT / "retrieval_corpus" / "asia", folder)
    return folder


def test_ingest_is_idempotent_follows_edits_and_query_shows_the_nearest_notes(capsys, tmp_path, asia_corpus):
    chroma = str(tmp_path / "chroma")
    ingest = ("corpus", "ingest", str(asia_corpus), "--collection", "asia-t", "--chroma-path", chroma)
    code, out, err = run_cli(capsys, *ingest)
    assert code == 0, err
    docs = int(re.search(r"(\d+) documents", out).group(1))
    assert f"added {docs}," in out and "unchanged 0" in out
    code, out, _ = run_cli(
        capsys, "corpus", "ingest", str(asia_corpus), "--collection", "asia-t", "--chroma-path", chroma
    )
    assert code == 0 and f"unchanged {docs};" in out and "embedded 0 chunks" in out
    (asia_corpus / "notes" / "001-terse.md").unlink()
    code, out, _ = run_cli(
        capsys, "corpus", "ingest", str(asia_corpus), "--collection", "asia-t", "--chroma-path", chroma
    )
    assert code == 0 and "removed 1" in out and f"{docs - 1} documents" in out

    query = "sputum culture confirms tuberculosis after travel to Asia"
    code, out, err = run_cli(capsys, "corpus", "query", query, "--collection", "asia-t", "--chroma-path", chroma,
                             "-k", "3", "--kinds", "note")  # fmt: skip
    assert code == 0, err
    ranks = re.findall(r"^(\d)\. (\d\.\d{3})  (\S+)  \[note\]$", out, re.MULTILINE)
    assert [r[0] for r in ranks] == ["1", "2", "3"]
    assert [float(r[1]) for r in ranks] == sorted(float(r[1]) for r in ranks)
    assert "001-terse.md" not in out and "tuberculosis" in out.lower()


def test_ingest_uses_the_environment_variable_when_no_path_is_given(capsys, tmp_path, asia_corpus, monkeypatch):
    monkeypatch.setenv("CAUSALSYNTH_CHROMA_PATH", str(tmp_path / "from-env"))
    code, _, err = run_cli(capsys, "corpus", "ingest", str(asia_corpus), "--collection", "envtest")
    assert code == 0, err
    assert (tmp_path / "from-env" / "chroma.sqlite3").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["corpus", "ingest", "{tmp}/missing", "--collection", "abc"], "not a folder"),
        (["corpus", "ingest", "{tmp}/bad", "--collection", "abc"], "bad.md:1: must start with front matter"),
        (["corpus", "ingest", "{tmp}/bad", "--collection", "a b"], "collection name has 3-63 characters"),
        (["corpus", "query", "cough", "--collection", "never-made"], "corpus ingest DIR --collection never-made"),
        (["corpus", "query", "  ", "--collection", "abc"], "the query text is empty"),
        (["corpus", "ingest", "{tmp}/bad"], "Missing option '--collection'"),
        (["run", "{asia}", "-n", "2", "--out", "{tmp}/o", "--top-k", "0"], "--top-k must be between 1 and 20"),
        (["run", "{asia}", "-n", "2", "--out", "{tmp}/o", "--retrieval-kinds", "memo"], "unknown kind 'memo'"),
        (["run", "{asia}", "-n", "2", "--out", "{tmp}/o", "--retrieval-kinds", ","], "at least one kind"),
        (["run", "{asia}", "-n", "2", "--out", "{tmp}/o", "--collection", "never-made"], "corpus ingest DIR"),
        (["run", "{moved}", "-n", "2", "--out", "{tmp}/o"], "retrieval.corpus"),
    ],
)
def test_bad_corpus_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, args, message):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bad.md").write_text("Seen in clinic, no front matter.\n")
    moved = tmp_path / "moved.yaml"  # a spec copied away from the corpus folder its retrieval block names
    shutil.copy(ROOT / "examples" / "asia.yaml", moved)
    chroma = tmp_path / "chroma"
    values = {"tmp": str(tmp_path), "asia": str(ROOT / "examples" / "asia.yaml"), "moved": str(moved)}
    argv = [a.format(**values) for a in args] + ["--chroma-path", str(chroma)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert err.startswith("error: ")
    assert not (tmp_path / "o" / "records.parquet").exists()


def test_a_template_run_says_retrieval_is_off_and_writes_no_references(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", str(ROOT / "examples" / "asia.yaml"), "-n", "5", "--llm", "template",
                             "--out", str(tmp_path / "o"), "--chroma-path", str(tmp_path / "chroma"))  # fmt: skip
    assert code == 0, err
    assert "retrieval: off (the template realiser uses no references)" in err
    assert not (tmp_path / "chroma").exists()
