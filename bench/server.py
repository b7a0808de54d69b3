"""The server path (issue 19 item 3): the same records through an OpenAI-compatible llama.cpp server on loopback.

Run: ``.venv/bin/python bench/server.py`` (replaces part (d) of ``bench/results/llm.md``; about ten minutes on a
quiet 2-core machine). ``--quick`` runs 8 records per arm and writes nothing.

Arms, each a ``causalsynth run`` of the default path (ASIA, anchored, retrieval on, iterative, max_rounds 2) on the
same records (seed 11) with ``--llm openai:smollm2 --base-url``, against the same GGUF (SmolLM2-135M Q4_0), the
server on 2 threads:

* ``llama_cpp.server`` (llama-cpp-python's server, the path tested until now): it answers one request at a time
  (a lock around its one model), so client concurrency only queues requests;
* ``llama-server --parallel 1`` with client concurrency 1 (one slot: no batching across records);
* ``llama-server --parallel 4`` with client concurrency 4: up to four records decoded together (continuous
  batching), each slot keeping its last prompt cached so that the prefix every record shares is read once per slot.

Arms run in the order A B C C B A so that the shared machine's load falls on all of them; the load average is
printed beside each run. ``llama-server`` is built by ``make test`` (``scripts/llama_server_build.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
from _common import ROOT, Check, Result, finish, run_main, table

OUT = Path(__file__).resolve().parent / "results" / "llm.md"
QUICK = "--quick" in sys.argv
N = 8 if QUICK else 40
SEED = 11
THREADS = 2
HEADING = "## (d) Server path: parallel slots against one request at a time (issue 19 item 3)"
ARMS = (  # (label, server, slots, client concurrency)
    ("llama_cpp.server (one request at a time), client concurrency 4", "llama_cpp.server", 1, 4),
    ("llama-server --parallel 1, client concurrency 1", "llama-server", 1, 1),
    ("llama-server --parallel 4, client concurrency 4", "llama-server", 4, 4),
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> Path:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "llama_server_build.py")], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


@contextmanager
def serving(kind: str, slots: int, log: Path) -> Iterator[str]:
    """A server of ``kind`` on 127.0.0.1 with ``slots`` parallel slots; yields its ``/v1`` base URL."""
    from causalsynth.tools.llm.local_model import default_model

    port = _port()
    model = str(default_model())
    if kind == "llama-server":
        cmd = [str(_binary()), "--model", model, "--host", "127.0.0.1", "--port", str(port), "--parallel",
               str(slots), "--ctx-size", str(2048 * slots), "--threads", str(THREADS),
               "--alias", "smollm2"]  # fmt: skip
        probe = f"http://127.0.0.1:{port}/health"
    else:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "2048", "--n_threads", str(THREADS), "--model_alias", "smollm2"]  # fmt: skip
        probe = f"http://127.0.0.1:{port}/v1/models"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(probe, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{kind} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def one_run(label: str, kind: str, slots: int, concurrency: int) -> dict[str, Any]:
    """One arm: a ``causalsynth run`` against a fresh server; the report and the load around it."""
    with tempfile.TemporaryDirectory() as tmp, serving(kind, slots, Path(tmp) / "server.log") as base:
        out = Path(tmp) / "run"
        cmd = [str(ROOT / ".venv" / "bin" / "causalsynth"), "run", str(ROOT / "examples" / "asia.yaml"), "-n", str(N),
               "--seed", str(SEED), "--llm", "openai:smollm2", "--base-url", base, "--concurrency", str(concurrency),
               "--out", str(out)]  # fmt: skip
        load0 = os.getloadavg()[0]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": "none"})
        load1 = os.getloadavg()[0]
        if done.returncode != 0:
            raise SystemExit(f"{label}: run failed: {done.stderr[-2000:]}")
        report = json.loads((out / "report.json").read_text())
    print(f"{label}: {report['records_per_second']:.2f} accepted/s, load {load0:.1f}-{load1:.1f}", file=sys.stderr)
    return {"label": label, "report": report, "load": (load0, load1)}


def run() -> Result:
    t0 = time.perf_counter()
    order = [*ARMS, *reversed(ARMS)]
    runs = [one_run(*arm) for arm in order]
    rows = []
    rates: dict[str, float] = {}
    for label, *_ in ARMS:
        mine = [r for r in runs if r["label"] == label]
        per_run = [r["report"]["records_per_second"] for r in mine]
        rates[label] = sum(per_run) / len(per_run)
        worst = min(r["report"]["realizability"] for r in mine)
        loads = [x for r in mine for x in r["load"]]
        rows.append([label, " / ".join(f"{x:.2f}" for x in per_run), f"{rates[label]:.3f}", f"{worst:.3f}",
                     f"{min(loads):.1f}-{max(loads):.1f}"])  # fmt: skip
    one_at_a_time, single, parallel = (rates[a[0]] for a in ARMS)
    for row, (label, *_) in zip(rows, ARMS, strict=True):
        row.insert(3, f"{rates[label] / one_at_a_time:.2f}")
    md = [
        HEADING,
        "",
        f"`causalsynth run examples/asia.yaml -n {N} --seed {SEED} --llm openai:smollm2 --base-url URL "
        f"--concurrency C` (anchored, retrieval on, iterative, max_rounds 2) against each server on 127.0.0.1, "
        f"the same GGUF (SmolLM2-135M Q4_0), {THREADS} server threads; arms in the order A B C C B A. Command: "
        f"`.venv/bin/python bench/server.py`. Compare the ratio column: the machine is shared.",
        "",
        table(
            ["arm", "accepted/s per run", "mean", "vs llama_cpp.server", "realizability (worst run)", "load average"],
            rows,
        ),  # fmt: skip
        "",
    ]
    checks = [
        Check("server", "llama-server 4 slots vs llama_cpp.server (one request at a time)", "faster",
              f"{parallel / one_at_a_time:.2f}x", parallel > one_at_a_time),
        Check("server", "llama-server 4 slots vs 1 slot", "faster", f"{parallel / single:.2f}x", parallel > single),
        Check("server", "realizability, every arm", ">= 0.99",
              f"{min(r['report']['realizability'] for r in runs):.3f}",
              min(r["report"]["realizability"] for r in runs) >= 0.99),
    ]  # fmt: skip
    return finish(md, checks, t0)


def _replace_section(text: str, section: str) -> str:
    """``text`` (llm.md) with part (d) replaced by ``section`` (or added before the portable part)."""
    start = text.find(HEADING.split(":")[0])
    if start >= 0:
        end = text.find("\n## ", start + 5)
        return text[:start] + section.rstrip() + "\n" + (text[end:] if end >= 0 else "")
    at = text.find("## Portable")
    return text[:at] + section.rstrip() + "\n\n" + text[at:] if at >= 0 else text + "\n" + section


if __name__ == "__main__":
    text = run_main(run)
    if not QUICK:
        OUT.write_text(_replace_section(OUT.read_text(), text))
        print(f"wrote {OUT}")
