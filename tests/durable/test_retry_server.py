"""``--resume`` retries failed records against a real OpenAI-compatible server (llama-cpp-python's, on loopback):
a run whose server is not up finishes with every record failed; once the server is up, ``--resume`` turns them
into records accepted or rejected by the real checker, and the folder equals a run that never failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from causalsynth.tools.llm.local_model import ensure_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from tests.conftest import ROOT, free_port, stop_group, wait_serving

#: Long integration runs: `make test-slow` (and CI) runs them, `make test` leaves them out.
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from causalsynth.graphs.cli import main; main()"]
SPEC = ROOT / "examples" / "asia.yaml"
N = 6


def _args(port: int) -> list[str]:
    return ["run", str(SPEC), "-n", str(N), "--seed", "2", "--llm", "openai:smollm2", "--base-url",
            f"http://127.0.0.1:{port}/v1", "--concurrency", "2", "--retries", "0", "--timeout", "60",
            "--batch-size", "3", "--no-retrieval"]  # fmt: skip


def _serve(port: int, log: Path) -> subprocess.Popen[bytes]:
    """llama_cpp.server with the embedded GGUF on 127.0.0.1:``port``, once it answers."""
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(ensure_model()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"]  # fmt: skip
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_serving(f"http://127.0.0.1:{port}/v1/models", proc, log, seconds=90, name="llama_cpp.server")
    except BaseException:
        stop_group(proc)
        raise
    return proc


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "x"}  # the server takes any key
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900, env=env)


def test_resume_retries_failed_records_once_the_real_server_is_up(tmp_path):
    # Setup: nothing listens on the port yet: every call is refused, every record fails
    port = free_port()
    out, reference = tmp_path / "run", tmp_path / "reference"
    down = _cli(*_args(port), "--out", str(out))
    assert down.returncode == 0, down.stderr
    first = json.loads((out / "report.json").read_text())
    assert first["n_failed"] == N and first["n_accepted"] == first["n_rejected"] == 0
    server = _serve(port, tmp_path / "server.log")
    try:
        # Run
        resumed = _cli(*_args(port), "--resume", str(out))
        done = _cli(*_args(port), "--out", str(reference))  # the run that never failed, same seed
    finally:
        stop_group(server)
    # Assert
    assert resumed.returncode == 0 and done.returncode == 0, resumed.stderr + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert "n_failed" not in report and report["n_accepted"] + report["n_rejected"] == N
    assert not (out / "failed.parquet").exists() and not (out / ".parts").exists()
    records, rejects = pd.read_parquet(out / "records.parquet"), pd.read_parquet(out / "rejects.parquet")
    ids = [*records["record_id"], *rejects["record_id"]]
    assert sorted(ids) == list(range(N))  # each record once
    domain = load_domain(SPEC)
    for _, row in records.iterrows():  # accepted by the real checker
        skeleton = {v: row[v] for v in domain.network.names}
        assert not check_facts(domain.lexicon, skeleton, extract(domain.lexicon, row.text)), row.text
    assert all(r for r in rejects["reason"])
    assert (tmp_path / "server.log").read_text().count("POST /v1/chat/completions") >= N
    expected = json.loads((reference / "report.json").read_text())
    for key in ("n_accepted", "n_rejected", "realizability", "selection_bias_tvd", "rounds_histogram"):
        assert report[key] == expected[key], key
