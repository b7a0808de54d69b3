"""The HTTP client path for real: llama-cpp-python's OpenAI-compatible server on loopback, reached through
langchain-openai by ``--llm openai:NAME --base-url``; the same GGUF as the local backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalsynth.graphs.cli import app
from causalsynth.tools.llm.local_model import ensure_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from tests.conftest import ROOT, free_port, wait_serving


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(ensure_model()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"]  # fmt: skip
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_serving(f"{base}/models", proc, log, seconds=90, name="llama_cpp.server")
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_run_through_the_openai_compatible_server(server, tmp_path):
    base, log = server
    out = tmp_path / "run"
    args = ["run", str(ROOT / "examples" / "asia.yaml"), "-n", "10", "--seed", "2", "--llm", "openai:smollm2",
            "--base-url", base, "--concurrency", "2", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["llm"] == "openai:smollm2" and report["realize"] == "anchored"
    assert report["n_accepted"] + report["n_rejected"] == 10
    assert report["realizability"] >= 0.9, report["violations"]
    # Usage comes from the server's replies, not estimated.
    assert report["tokens"] > 0 and not report["tokens_estimated"] and report["llm_calls"] >= 10
    assert log.read_text().count('POST /v1/chat/completions HTTP/1.1" 200') >= 10  # really went over HTTP
    domain = load_domain(ROOT / "examples" / "asia.yaml")
    records = pd.read_parquet(out / "records.parquet")
    for _, row in records.iterrows():
        skeleton = {v: row[v] for v in domain.network.names}
        assert not check_facts(domain.lexicon, skeleton, extract(domain.lexicon, row.text)), row.text


def test_an_unknown_server_is_a_clear_error(tmp_path):
    port = free_port()  # nothing listens there
    args = ["run", "asia", "-n", "2", "--llm", "openai:x", "--base-url", f"http://127.0.0.1:{port}/v1",
            "--retries", "0", "--timeout", "5", "--out", str(tmp_path / "o")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    # A connection failure is transient: retried, then the records fail (an infrastructure outcome, not a rejection
    # of their text) with the reason; the run ends.
    assert result.exit_code == 0, result.output
    rejects = pd.read_parquet(tmp_path / "o" / "rejects.parquet")
    failed = pd.read_parquet(tmp_path / "o" / "failed.parquet")
    assert len(rejects) == 0 and len(failed) == 2 and all("Connection" in r for r in failed.reason)
