"""Seconds of ``verify`` on every bnlearn network pgmpy ships, at a small n, each in a fresh process.

Run: ``.venv/bin/python bench/networks.py [--rows 200] [--timeout 180] [--json PATH] [NAME ...]``. Each network is
loaded (parsed once, then cached), sampled (``--rows`` records, seed 0) and verified in a child process; a child
that runs past ``--timeout`` seconds is stopped and reported as such. ``verify s`` is the wall time of
``conformance.verify`` (CI enumeration, G-tests and exact marginals together, nothing cached but the parsed
network); ``marginals s`` is the share of it spent on exact marginals (measured again on their own). ``--json``
also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
from _common import ROOT, table

HEADER = ["network", "nodes", "non-adjacent pairs", "CI set", "CIs tested", "FPR", "verify s", "marginals s", "load"]


def measure(name: str, rows: int) -> dict[str, Any]:
    """Load, sample and verify one network in this process; the figures of one table row."""
    from causalsynth.tools.causal.conformance import verify
    from causalsynth.tools.causal.inference import exact_marginals
    from causalsynth.tools.causal.network import Network
    from causalsynth.tools.causal.sampler import Sampler
    from causalsynth.tools.causal.sources import load_bnlearn

    network = load_bnlearn(name, name)
    assert isinstance(network, Network)
    data = Sampler(network).sample(rows, seed=0).data
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CAUSALSYNTH_CACHE"] = empty  # nothing derived from the network is cached yet: a first run
        t0 = time.perf_counter()
        report = verify(network, data)
        seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CAUSALSYNTH_CACHE"] = empty
        network = load_bnlearn(name, name)  # a new object: nothing cached in memory either
        assert isinstance(network, Network)
        t0 = time.perf_counter()
        exact_marginals(network)
        marginal_seconds = time.perf_counter() - t0
    n = len(network)
    return {
        "load": round(os.getloadavg()[0], 1),  # the machine's 1-minute load average: other work slows the figures
        "network": name,
        "nodes": n,
        "non_adjacent": n * (n - 1) // 2 - network.graph.number_of_edges(),
        "ci_set": getattr(report, "ci_set", "minimal separators"),  # the field is newer than this script's first run
        "n_tests": report.n_tests,
        "fpr": report.fpr,
        "verify_s": round(seconds, 2),
        "marginals_s": round(marginal_seconds, 2),
    }


def _child(name: str, rows: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--rows", str(rows)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return {"network": name, "error": f"stopped after {timeout:.0f} s", "load": round(os.getloadavg()[0], 1)}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"network": name, "error": lines[-1] if lines else f"exit code {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(r: dict[str, Any]) -> list[Any]:
    if "error" in r:
        return [r["network"], "", "", "", "", "", r["error"], "", r.get("load", "")]
    return [r["network"], r["nodes"], r["non_adjacent"], r["ci_set"], r["n_tests"], r["fpr"], r["verify_s"],
            r["marginals_s"], r["load"]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="networks (default: every bnlearn network pgmpy ships)")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per network")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.rows)))
        return
    from causalsynth.tools.causal.sources import bnlearn_names

    results = []
    for name in args.names or bnlearn_names():
        results.append(_child(name, args.rows, args.timeout))
        print(" ".join(str(c) for c in _row(results[-1])), file=sys.stderr, flush=True)
    print(table(HEADER, [_row(r) for r in results]))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
