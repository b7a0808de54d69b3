"""Kill tests with the real embedded model (SmolLM2 through llama.cpp): SIGKILL ``causalsynth run`` at 5 random
moments, resume each with ``--resume``, and compare with an uninterrupted run of the same seed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from causalsynth.tools.llm.local_model import ensure_model
from tests.conftest import ROOT
from tests.durable.test_resume import same_output

#: Long integration runs: `make test-slow` (and CI) runs them, `make test` leaves them out.
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from causalsynth.graphs.cli import main; main()"]
ARGS = ["run", str(ROOT / "examples" / "asia.yaml"), "-n", "8", "--batch-size", "2", "--seed", "5",
        "--no-retrieval", "--concurrency", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    ensure_model()
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([*CLI, *ARGS, "--out", str(out)], check=True, capture_output=True, timeout=600)
    return out


def _events(out: Path) -> int:
    try:
        return (out / "run.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def test_five_kill_points_with_the_local_model_resume_to_the_uninterrupted_result(reference, tmp_path):
    # Setup
    events = _events(reference)
    rng = random.Random(5)
    interrupted = 0
    for i in range(5):
        out = tmp_path / f"kill{i}"
        after_events, jitter = rng.randint(1, events - 2), rng.uniform(0, 0.5)
        process = subprocess.Popen([*CLI, *ARGS, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while process.poll() is None and _events(out) < after_events:
            time.sleep(0.01)
        time.sleep(jitter)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        interrupted += process.returncode == -signal.SIGKILL
        # Run
        if not (out / "report.json").exists():
            done = subprocess.run([*CLI, *ARGS, "--resume", str(out)], capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
        # Assert
        same_output(reference, out)
    assert interrupted >= 4
