"""Arize Phoenix, self-hosted: ``causalsynth trace serve`` on 127.0.0.1 and ``run --trace phoenix``.

The end-to-end test starts Phoenix (from ``build/phoenix-venv``, made by ``make phoenix``), runs the embedded local
model on three ASIA records, reads the node and LLM spans back through Phoenix's REST API, and renders the trace page
in headless Chromium (Debian's ``chromium``; without it that part says so and skips). Phoenix is stopped whatever
happens. ``CAUSALSYNTH_PHOENIX_SHOT=PATH`` keeps a copy of the screenshot (bench/results/phoenix-trace.png).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import causalsynth as cs
from causalsynth.graphs import phoenix
from causalsynth.tools.errors import UsageError
from tests.conftest import ROOT, free_port, run_cli, stop_group, wait_serving
from tests.fakes import ScriptedChatModel
from tests.tracing.test_langsmith import backdoor

CLI = [sys.executable, "-c", "from causalsynth.graphs.cli import main; main()"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--mute-audio"]  # fmt: skip
NODES = {"sample", "generate", "verify_causal", "assess", "write"}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http only)
        return json.loads(response.read())


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp{,6}): hex, as the kernel writes them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture(scope="module")
def phoenix_server(tmp_path_factory) -> Iterator[str]:
    """A Phoenix started by ``causalsynth trace serve`` on free loopback ports; stopped at the end, whatever happens."""
    try:
        phoenix.find_phoenix()
    except UsageError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (make test runs 'make phoenix' first)")
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("phoenix")
    port, grpc_port = free_port(), free_port()
    log = (folder / "serve.log").open("wb")
    cmd = [*CLI, "trace", "serve", "--port", str(port), "--grpc-port", str(grpc_port), "--dir", str(folder / "data")]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(f"{url}/healthz", server, folder / "serve.log", seconds=180, name="phoenix")
        # Both of its ports listen on loopback only (127.0.0.1, or its IPv4-mapped IPv6 form)
        loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
        assert _listeners(port) <= loopback and _listeners(grpc_port) <= loopback, (
            _listeners(port), _listeners(grpc_port),
        )  # fmt: skip
        yield url
    finally:
        stop_group(server, timeout=30)
        log.close()


def _spans(url: str, project: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every span of ``project`` once the run's root span has arrived (Phoenix inserts spans in batches)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while True:
        spans: list[dict[str, Any]] = []
        cursor = None
        try:
            while True:
                query = f"{url}/v1/projects/{project}/spans?limit=1000" + (f"&cursor={cursor}" if cursor else "")
                page = _get(query)
                spans.extend(page["data"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        except OSError:
            spans = []
        if (any(s["parent_id"] is None for s in spans) and len(spans) == seen) or time.monotonic() > deadline:
            return spans
        seen = len(spans)  # once the root is there, until a second look finds no more
        time.sleep(1)


def _attribute(span: dict[str, Any], dotted: str) -> Any:
    """An attribute whether Phoenix returns it flat (``llm.token_count.prompt``) or nested."""
    attributes = span["attributes"]
    if dotted in attributes:
        return attributes[dotted]
    value: Any = attributes
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _metadata(span: dict[str, Any]) -> dict[str, Any]:
    """OpenInference's ``metadata`` attribute (a JSON string), which Phoenix returns flattened (``metadata.KEY``)."""
    flat = {k.removeprefix("metadata."): v for k, v in span["attributes"].items() if k.startswith("metadata.")}
    whole = span["attributes"].get("metadata")
    return {**flat, **(json.loads(whole) if isinstance(whole, str) else whole or {})}


def test_a_local_model_run_shows_in_phoenix_with_node_and_llm_spans(phoenix_server, tmp_path):
    # Setup
    from causalsynth.tools.llm.local_model import ensure_model

    ensure_model()
    out = tmp_path / "run"
    args = ["run", str(ROOT / "examples" / "asia.yaml"), "-n", "3", "--llm", "local", "--seed", "0",
            "--no-retrieval", "--trace", "phoenix", "--trace-endpoint", phoenix_server, "--out", str(out)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PHOENIX_COLLECTOR_ENDPOINT"}
    # Run
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    spans = _spans(phoenix_server, phoenix.PROJECT)
    # Assert: one root named after the spec, the node executions under it, the LLM calls under generate
    report = json.loads((out / "report.json").read_text())
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["asia"]
    root = roots[0]
    assert all(s["context"]["trace_id"] == root["context"]["trace_id"] for s in spans)
    by_id = {s["context"]["span_id"]: s for s in spans}
    nodes = [s for s in spans if s["parent_id"] == root["context"]["span_id"]]
    assert NODES <= {s["name"] for s in nodes}
    assert all(s["span_kind"] == "CHAIN" for s in nodes)
    assert not [s for s in spans if s["name"].startswith(("ChannelWrite", "_write", "Branch"))]  # hidden steps out
    # node inputs and outputs are summaries (ids, counts, violations), not whole batches
    verify = next(s for s in nodes if s["name"] == "verify_causal")
    assert '"ids"' in str(_attribute(verify, "output.value"))
    assert '"skeleton"' not in str(_attribute(verify, "input.value"))
    calls = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(calls) == report["llm_calls"] and len(calls) >= 3
    assert all(by_id[c["parent_id"]]["name"] == "generate" for c in calls)
    meta = [_metadata(c) for c in calls]
    assert {m["record_id"] for m in meta} == {0, 1, 2}
    assert all({"attempt", "batch"} <= m.keys() for m in meta)
    for call in calls:  # the prompt, the reply and the token counts are on every LLM span
        assert "asthma" in str(_attribute(call, "llm.input_messages")).lower() or _attribute(call, "input.value")
        assert _attribute(call, "llm.output_messages") or _attribute(call, "output.value")
        assert (_attribute(call, "llm.token_count.prompt") or 0) > 0
        assert (_attribute(call, "llm.token_count.completion") or 0) > 0
    # ... and the trace page renders in a browser
    if CHROMIUM is None:
        pytest.skip("the trace page screenshot needs Debian's chromium (apt-get install -y chromium; .ci/run does)")
    project = next(p for p in _get(f"{phoenix_server}/v1/projects")["data"] if p["name"] == phoenix.PROJECT)
    page = f"{phoenix_server}/projects/{project['id']}/traces/{root['context']['trace_id']}"
    shot = tmp_path / "phoenix-trace.png"
    browse = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
              "--window-size=1600,1000"]  # fmt: skip
    dom = subprocess.run([*browse, "--dump-dom", page], capture_output=True, text=True, timeout=180, check=False)
    subprocess.run([*browse, f"--screenshot={shot}", page], capture_output=True, timeout=180, check=False)
    assert "generate" in dom.stdout and "verify_causal" in dom.stdout, dom.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1000, 1600)
    assert float(pixels.std()) > 0.05, "the screenshot is blank"
    if os.environ.get("CAUSALSYNTH_PHOENIX_SHOT"):
        shutil.copyfile(shot, os.environ["CAUSALSYNTH_PHOENIX_SHOT"])


def test_a_record_sent_back_for_correction_shows_its_story_in_phoenix(phoenix_server, monkeypatch):
    # Setup: a model that writes non-smokers as smokers on a first attempt, in a project of its own
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", phoenix_server)
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", "corrections")
    model = ScriptedChatModel(first=backdoor)
    # Run
    result = cs.generate(
        ROOT / "examples" / "asia.yaml", 6, llm=model, realize="free", retrieval=False, batch_size=3, seed=1,
        trace="phoenix", config={"tags": ["nightly"], "metadata": {"team": "causal"}},
    )  # fmt: skip
    spans = _spans(phoenix_server, "corrections")
    # Assert: each LLM call carries its record, attempt and batch; a correction the violations it was asked to fix
    root = next(s for s in spans if s["parent_id"] is None)
    assert root["name"] == "asia" and _metadata(root)["team"] == "causal" and "nightly" in str(root["attributes"])
    assert _attribute(root, "session.id") == _attribute(spans[0], "session.id") != "causalsynth-run"  # its own
    calls = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(calls) == result.report["llm_calls"]
    meta = [_metadata(c) for c in calls]
    assert {(m["record_id"], m["attempt"]) for m in meta} >= {(i, 0) for i in range(6)}
    assert all(m["batch"] == m["record_id"] // 3 and m["team"] == "causal" for m in meta)
    corrections = [(c, m) for c, m in zip(calls, meta, strict=True) if m["attempt"] > 0]
    assert corrections, "the backdoor must have sent some record back for correction"
    for call, m in corrections:
        assert m["violations"] and any("smoke" in v for v in m["violations"])
        assert "smoke" in str(_attribute(call, "llm.input_messages") or call["attributes"]).lower()


# Malformed input: one readable line and exit code 2, before any model loads


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "phoenix", "--trace-endpoint", "not a url"], "--trace-endpoint must be an http(s)://HOST:PORT"),
        (["--trace", "phoenix", "--trace-endpoint", "http://127.0.0.1:99999"], "--trace-endpoint: not a URL"),
        (["--trace", "jsonl", "--trace-endpoint", "http://127.0.0.1:6006"], "applies to --trace phoenix"),
        (["--trace", "phoenyx"], "--trace must be one of off, jsonl, phoenix"),
    ],
)
def test_bad_trace_options_are_named(capsys, tmp_path, monkeypatch, args, message):
    # Setup
    monkeypatch.delenv("PHOENIX_COLLECTOR_ENDPOINT", raising=False)
    # Run
    code, _, err = run_cli(capsys, "run", "asia", "-n", "2", "--llm", "template", "--out", str(tmp_path / "o"), *args)
    # Assert
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_trace_phoenix_without_a_server_says_how_to_start_one(capsys, tmp_path, monkeypatch):
    # Setup: a loopback port nothing listens on
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    # Run
    code, _, err = run_cli(capsys, "run", "asia", "-n", "2", "--llm", "template", "--out", str(tmp_path / "o"),
                           "--trace", "phoenix")  # fmt: skip
    # Assert
    assert code == 2 and "no Phoenix server at http://127.0.0.1:" in err and "causalsynth trace serve" in err
    assert not (tmp_path / "o" / "records.parquet").exists()


def test_trace_serve_without_phoenix_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    # Setup: no checkout venv, nothing on PATH
    monkeypatch.setattr(phoenix, "VENV", tmp_path / "no-venv")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CAUSALSYNTH_PHOENIX", raising=False)
    # Run
    code, _, err = run_cli(capsys, "trace", "serve", "--dir", str(tmp_path / "data"))
    # Assert
    assert code == 2 and "Phoenix is not installed: run 'make phoenix'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "70000"], None, "--port must be a port number"),
        (["--port", "7000", "--grpc-port", "7000"], None, "--grpc-port 7000 is the HTTP port too"),
        ([], "missing", "CAUSALSYNTH_PHOENIX="),
    ],
)
def test_bad_serve_options_are_named(capsys, tmp_path, monkeypatch, args, env, message):
    # Setup
    if env is not None:
        monkeypatch.setenv("CAUSALSYNTH_PHOENIX", str(tmp_path / env))
    # Run
    code, _, err = run_cli(capsys, "trace", "serve", "--dir", str(tmp_path / "data"), *args)
    # Assert
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
