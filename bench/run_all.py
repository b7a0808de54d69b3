"""Run every benchmark and write ``bench/results/causal.md``.

Run: ``make bench`` or ``.venv/bin/python bench/run_all.py`` from the repository root.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (sets sys.path and warning filters)
import ci_fpr
import counterfactuals
import interventions
import sampler
from _common import Result, table

OUT = Path(__file__).resolve().parent / "results" / "causal.md"
SECTIONS = (("a", sampler), ("b", ci_fpr), ("c", interventions), ("d", counterfactuals))


def _machine() -> list[list[str]]:
    import numpy
    import pandas
    import pgmpy
    import scipy

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    try:
        import subprocess

        root = Path(__file__).resolve().parents[1]
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tools", "graphs"], cwd=root, capture_output=True, text=True
        )
        commit = rev.stdout.strip() + (" (tools/graphs modified)" if dirty.stdout.strip() else "")
    except OSError:
        commit = "?"
    return [
        ["git commit", commit or "?"],
        ["nproc", str(os.cpu_count())],
        ["CPU", cpu],
        ["memory", mem],
        ["OS", platform.platform()],
        ["python", sys.version.split()[0]],
        ["numpy", numpy.__version__],
        ["pandas", pandas.__version__],
        ["scipy", scipy.__version__],
        ["pgmpy", pgmpy.__version__],
    ]


def main() -> str:
    t0 = time.perf_counter()
    started = dt.datetime.now().astimezone()
    results: list[tuple[str, Result]] = []
    for key, module in SECTIONS:
        print(f"--- running ({key}) {module.__name__} ...", flush=True)
        res = module.run()
        print(res.markdown + f"\n\n_Section runtime: {res.seconds:.1f} s._\n", flush=True)
        results.append((key, res))
    total = time.perf_counter() - t0
    checks = [c for _, r in results for c in r.checks if c.passed is not None]
    failed = [c for c in checks if not c.passed]
    md = [
        "# causalsynth benchmarks: sampler speed and memory, CI calibration, interventions, counterfactuals",
        "",
        f"Generated {started:%Y-%m-%d %H:%M %Z} by `make bench` (= `.venv/bin/python bench/run_all.py`, from the "
        f"repository root); total runtime {total:.0f} s. Each section can be run alone: "
        "`.venv/bin/python bench/{sampler,ci_fpr,interventions,counterfactuals}.py`.",
        "",
        table(["machine", ""], _machine()),
        "",
        "The machine is shared and noisy: timings are best-of-N wall-clock and can move by tens of percent "
        "between runs; the statistical results are deterministic given the seeds.",
        "",
        "## Summary",
        "",
        f"{len(checks) - len(failed)} of {len(checks)} targets met"
        + (": FAIL on " + "; ".join(f"({c.section}) {c.name} = {c.value}" for c in failed) if failed else "."),
        "",
        table(
            ["section", "check", "target", "measured", "verdict"],
            [[f"({k})", c.name, c.target, c.value, c.verdict] for k, r in results for c in r.checks],
        ),
        "",
        table(["section", "runtime s"], [[f"({k})", f"{r.seconds:.1f}"] for k, r in results]),
        "",
    ]
    for _, res in results:
        md += [res.markdown, "", f"_Section runtime: {res.seconds:.1f} s._", ""]
    text = "\n".join(md)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT} in {total:.0f} s")
    return text


if __name__ == "__main__":
    main()
