"""The server path with parallel slots: llama.cpp's own ``llama-server`` on loopback (built by ``make test`` from the
llama.cpp that llama-cpp-python vendors: ``scripts/llama_server_build.py``), reached through langchain-openai by
``--llm openai:NAME --base-url`` with several requests in flight.

``llama_cpp.server`` (tests/llm/test_http_server.py) answers one request at a time; ``llama-server --parallel N``
decodes up to N requests together (continuous batching) and keeps each slot's prompt in its KV cache, so the part
of a prompt that is the same for every record (system prompt, style examples) is read once per slot, not once per
record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalsynth.graphs.cli import app
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.llm.chat_realiser import ChatRealiser
from causalsynth.tools.llm.local_model import default_model
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.realisation import RealisationRequest
from tests.conftest import ROOT, free_port, stop_group, wait_serving
from tests.fakes import ScriptedChatModel

#: Long integration runs: `make test-slow` (and CI) runs them, `make test` leaves them out.
pytestmark = pytest.mark.slow

SLOTS = 4


def _binary() -> Path:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "llama_server_build.py"), "--path"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    binary = _binary()
    if not binary.is_file():
        message = f"{binary} is missing: 'make test' builds llama-server (scripts/llama_server_build.py)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [str(binary), "--model", str(default_model()), "--host", "127.0.0.1", "--port", str(port),
           "--parallel", str(SLOTS), "--ctx-size", str(2048 * SLOTS), "--threads", "2", "--alias", "smollm2",
           "--slots"]  # fmt: skip
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(f"{base}/health", proc, log, seconds=120, name="llama-server")
        yield base, log
    finally:
        stop_group(proc)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return dict(json.loads(reply.read()))


def test_a_run_keeps_several_slots_busy_and_every_accepted_text_reads_back(server, tmp_path):
    # Setup
    base, log = server
    out = tmp_path / "run"
    args = ["run", str(ROOT / "examples" / "asia.yaml"), "-n", "8", "--seed", "4", "--llm", "openai:smollm2",
            "--base-url", f"{base}/v1", "--concurrency", str(SLOTS), "--out", str(out)]  # fmt: skip

    # Run
    result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": ""})

    # Assert
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_accepted"] + report["n_rejected"] == 8 and report.get("n_failed", 0) == 0
    assert report["realizability"] >= 0.9, report["violations"]
    assert report["tokens"] > 0 and not report["tokens_estimated"]
    # the requests were decoded side by side: the server ran tasks on more than one slot
    slots_used = {int(line.split("id", 1)[1].split("|", 1)[0]) for line in log.read_text().splitlines()
                  if "launch_slot_" in line and "processing task" in line}  # fmt: skip
    assert len(slots_used) >= 2, log.read_text()[-3000:]
    domain = load_domain(ROOT / "examples" / "asia.yaml")
    for _, row in pd.read_parquet(out / "records.parquet").iterrows():
        skeleton = {v: row[v] for v in domain.network.names}
        assert not check_facts(domain.lexicon, skeleton, extract(domain.lexicon, row.text)), row.text


def test_records_share_a_prompt_prefix_that_the_server_reads_once_per_slot(server):
    # Setup: the prompts our realiser sends for two different records, without references (retrieval is per record)
    base, _ = server
    domain = load_domain(ROOT / "examples" / "asia.yaml")
    realiser = ChatRealiser(ScriptedChatModel(), domain.lexicon, realize="anchored")
    data = Sampler(domain.network).sample(2, seed=9).data
    skeletons = [{k: str(v) for k, v in row.items()} for row in data.to_dict("records")]
    bodies = []
    for i, skeleton in enumerate(skeletons):
        request = RealisationRequest(record_id=i, skeleton=skeleton)
        messages = realiser.messages(request, realiser.anchor(request))
        roles = {"system": "system", "human": "user"}
        bodies.append({"model": "smollm2", "max_tokens": 8, "temperature": 0, "id_slot": 0, "cache_prompt": True,
                       "messages": [{"role": roles[m.type], "content": m.content} for m in messages]})  # fmt: skip

    # Run: two records on the same slot, one after the other
    first = _post(f"{base}/v1/chat/completions", bodies[0])
    second = _post(f"{base}/v1/chat/completions", bodies[1])

    # Assert: the second record's prompt reused the first's common prefix from the slot's cache
    system_tokens = len(_post(f"{base}/tokenize", {"content": bodies[0]["messages"][0]["content"]})["tokens"])
    assert bodies[0]["messages"][0] == bodies[1]["messages"][0]  # the same system prompt for every record
    read, cached = second["timings"]["prompt_n"], second["timings"]["cache_n"]
    assert first["choices"][0]["message"]["content"] and second["choices"][0]["message"]["content"]
    assert cached >= system_tokens, (second["timings"], system_tokens)  # the shared prefix was not read again
    assert read > 0  # only the record's own part of the prompt was read
