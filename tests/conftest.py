"""Shared fixtures: loaded domains (cached per session) and a spec-file writer."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from causalsynth.tools.spec import Domain, load_domain

ROOT = Path(__file__).resolve().parent.parent
# Parsed networks are cached per test session, not in the user's home.
# So is the Chroma store that runs with retrieval sync the example corpora into (subprocesses inherit both).
for _var, _prefix in (("CAUSALSYNTH_CACHE", "causalsynth-cache-"), ("CAUSALSYNTH_CHROMA_PATH", "causalsynth-chroma-")):
    os.environ[_var] = tempfile.mkdtemp(prefix=_prefix)
    atexit.register(shutil.rmtree, os.environ[_var], ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop a server started with its own process group: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_serving(url: str, process: subprocess.Popen[bytes], log: Path, *, seconds: float, name: str) -> None:
    """Poll ``url`` until it answers 200; fail the test with the log's tail if the server exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (a loopback URL of the test's)
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{name} did not start within {seconds:.0f} s: {log.read_text()[-3000:]}")
        time.sleep(0.5)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``causalsynth ARGS`` in-process: (exit code, stdout, stderr)."""
    from causalsynth.graphs.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="session")
def asia() -> Domain:
    return load_domain("asia")


@pytest.fixture(scope="session")
def alarm() -> Domain:
    return load_domain("alarm")


@pytest.fixture(scope="session")
def smoking() -> Domain:
    return load_domain(ROOT / "examples" / "smoking.yaml")


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


#: Report entries that measure time or name the engine: a run compared with another must equal it in everything else.
UNTIMED = ("seconds", "records_per_second", "accepted_per_second", "engine")


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in record-id order (sharded runs write them shard by shard)."""
    return frame.sort_values("record_id").reset_index(drop=True)


def same_report(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two run reports are equal apart from timings and the engine's name."""
    for key in sorted(set(a) | set(b)):
        if key not in UNTIMED:
            assert a.get(key) == b.get(key), key
