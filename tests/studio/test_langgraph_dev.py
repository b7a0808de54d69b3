"""``langgraph dev`` (LangGraph Studio's server, in memory) serves the repository's ``langgraph.json`` graph.

The server runs from its own venv (``build/langgraph-venv``, made by ``make test``: langgraph-api pins grpcio and
protobuf below ours) on 127.0.0.1, with the CLI's analytics, the version check and LangSmith tracing off. The test
talks to it with the LangGraph SDK over HTTP, as Studio does, and stops it whatever happens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

import causalsynth as cs
from tests.conftest import ROOT, free_port, stop_group
from tests.durable.test_tables import same_tables

LANGGRAPH = ROOT / "build" / "langgraph-venv" / "bin" / "langgraph"
GRAPH = "causalsynth"
TIMINGS = {"seconds", "records_per_second", "accepted_per_second"}
#: Nothing leaves the machine: no CLI analytics, no version check against PyPI, no LangSmith, no license beacon.
QUIET = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
         "LANGCHAIN_TRACING_V2": "false"}  # fmt: skip


@dataclass
class Server:
    url: str
    client: SyncLangGraphClient
    process: subprocess.Popen[bytes]
    log: Path


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_until_up(server: Server, timeout: float = 240.0) -> None:
    """Poll ``/ok`` until the server answers; fail with its log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"langgraph dev exited ({server.process.returncode}):\n{server.log.read_text()[-4000:]}")
        try:
            if server.client.http.get("/ok").get("ok"):
                return
        except Exception:  # not listening yet
            time.sleep(1.0)
    pytest.fail(f"langgraph dev did not answer within {timeout:.0f} s:\n{server.log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not LANGGRAPH.exists():
        message = f"{LANGGRAPH} is missing: 'make test' creates build/langgraph-venv"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Setup: the server keeps its in-memory store's snapshots in its working folder: a temporary one
    where = tmp_path_factory.mktemp("langgraph-dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_"))}
    log = where / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(LANGGRAPH), "dev", "--config", str(ROOT / "langgraph.json"), "--host", "127.0.0.1",
             "--port", str(port), "--no-browser", "--no-reload"],
            cwd=where, env=env | QUIET, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    running = Server(url=url, client=get_sync_client(url=url, api_key=None), process=process, log=log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop_group(process)
    # Assert: stopped, and the port is free again
    assert process.poll() is not None and refuses(port)


def test_a_template_run_through_the_server_gives_the_report_of_generate(server):
    # Setup
    settings = {"spec": "asia", "n": 20, "seed": 0, "llm": "template", "batch_size": 8}
    thread = server.client.threads.create()
    # Run: what Studio does when a user submits the form
    out = server.client.runs.wait(thread["thread_id"], GRAPH, input={}, context=settings)
    # Assert
    assert isinstance(out, dict)
    report = out["report"]
    assert report["n_requested"] == 20 and report["n_accepted"] + report["n_rejected"] == 20
    assert report["n_accepted"] > 0 and report["llm"] == "template" and report["spec"].endswith("asia")
    expected = cs.generate("asia", 20, seed=0, llm="template", batch_size=8).report
    assert {k: v for k, v in report.items() if k not in TIMINGS} == {
        k: v for k, v in expected.items() if k not in TIMINGS
    }
    assert [r["status"] for r in server.client.runs.list(thread["thread_id"])] == ["success"]


def test_the_server_shows_the_real_nodes_and_the_settings_form(server):
    # Setup
    (assistant,) = server.client.assistants.search(graph_id=GRAPH)
    # Run
    drawn = server.client.assistants.get_graph(assistant["assistant_id"], xray=True)
    schemas = server.client.assistants.get_schemas(assistant["assistant_id"])
    # Assert: the records graph's nodes inside 'run', and the context as plain settings
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {f"run:{name}" for name in ("sample", "retrieve", "generate", "validate_schema", "verify_causal",
                                       "assess", "write")} <= nodes  # fmt: skip
    assert {f"run_tables:{name}" for name in ("sample_tables", "generate_text", "validate_tables", "repair",
                                              "write_tables")} <= nodes  # fmt: skip
    assert "start_run" in nodes
    context = schemas["context_schema"]["properties"]
    assert {"spec", "n", "seed", "llm", "batch_size", "out"} <= set(context) and context["llm"]["default"] == "template"


def test_bad_settings_fail_the_run_with_a_message_naming_them(server):
    # Setup
    thread = server.client.threads.create()
    # Run
    out = server.client.runs.wait(thread["thread_id"], GRAPH, input={}, context={"spec": "no-such-network"},
                                  raise_error=False)  # fmt: skip
    # Assert
    assert isinstance(out, dict)
    error = out["__error__"]
    assert error["error"] == "SettingsError" and "no-such-network" in error["message"]
    assert [r["status"] for r in server.client.runs.list(thread["thread_id"])] == ["error"]


def test_a_relational_run_through_the_server_writes_the_run_folder_of_causalsynth_run(server, tmp_path):
    # Setup
    settings = {"spec": "hospital", "n": 60, "seed": 4, "llm": "template", "batch_size": 20}
    reference = tmp_path / "reference"
    expected = cs.generate("hospital", 60, seed=4, llm="template", batch_size=20, out=reference).report
    expected = json.loads(json.dumps(expected))  # as it comes over HTTP (round numbers as string keys)
    # Run: in memory, then into a folder
    in_memory = server.client.runs.wait(server.client.threads.create()["thread_id"], GRAPH, input={},
                                        context=settings)  # fmt: skip
    thread = server.client.threads.create()
    written = server.client.runs.wait(thread["thread_id"], GRAPH, input={},
                                      context={**settings, "out": str(tmp_path / "studio")})  # fmt: skip
    # Assert: the table graph's report either way, and the folder equals the CLI's (tables, CSV, database)
    for out in (in_memory, written):
        assert isinstance(out, dict)
        assert {k: v for k, v in out["report"].items() if k not in TIMINGS} == {
            k: v for k, v in expected.items() if k not in TIMINGS
        }
    same_tables(reference, tmp_path / "studio")
    assert [r["status"] for r in server.client.runs.list(thread["thread_id"])] == ["success"]
