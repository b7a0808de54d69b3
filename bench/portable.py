"""The speed cost of the portable llama.cpp build: portable (x86-64-v3) against native (-march=native), same runs.

Both wheels come from ``scripts/llama_build.py`` (the native one is built with ``CAUSALSYNTH_LLAMA_NATIVE=1`` into
its own keyed folder). The native wheel is unpacked under ``build/llama-native`` and put first on ``PYTHONPATH`` for
its arm, so both arms run the same code, spec, seeds and model; they alternate, run by run, so that the shared
machine's load falls on both alike. The measure is accepted records per second of ``causalsynth run`` on ASIA,
anchored, with the default retrieval (``make demo``'s path), read from each run's ``report.json``.

    python bench/portable.py [--records 30] [--repeats 3]

Appends a section to ``bench/results/llm.md``. On a CPU that reports AMX, do not run the native arm: that build is
the one that crashed there (see the README).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401  (sets sys.path and warning filters)
from _common import ROOT, table

NATIVE_DIR = ROOT / "build" / "llama-native"


def _llama_build() -> object:
    spec = importlib.util.spec_from_file_location("llama_build", ROOT / "scripts" / "llama_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def native_site() -> Path:
    """The native wheel, unpacked once under ``build/llama-native`` (compiled first if no set-up left one)."""
    build = _llama_build()
    wheel = build.built_wheel(build.cmake_args(True))  # type: ignore[attr-defined]
    stamp = NATIVE_DIR / ".wheel"
    if not stamp.is_file() or stamp.read_text() != str(wheel):
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(NATIVE_DIR)]
        subprocess.run([*cmd, str(wheel)], check=True)
        stamp.write_text(str(wheel))
    return NATIVE_DIR


def system_info(pythonpath: str | None) -> str:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def one_run(pythonpath: str | None, n: int, seed: int) -> dict[str, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "causalsynth.graphs.cli", "run", "examples/asia.yaml", "-n", str(n),
               "--seed", str(seed), "--out", tmp]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        report = json.loads((Path(tmp) / "report.json").read_text())
    seconds = report["n_requested"] / report["records_per_second"]
    return {"accepted_per_s": report["n_accepted"] / seconds, "realizability": report["realizability"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    native = str(native_site())
    arms = {"portable (x86-64-v3)": None, "native (-march=native)": native}
    infos = {name: system_info(path) for name, path in arms.items()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for repeat in range(args.repeats):
        for name, path in arms.items():
            results[name].append(one_run(path, args.records, seed=repeat))
            print(name, repeat, results[name][-1], flush=True)
    rows = []
    for name, runs in results.items():
        rates = [r["accepted_per_s"] for r in runs]
        rows.append([name, statistics.median(rates), min(rates), max(rates),
                     statistics.mean(r["realizability"] for r in runs)])  # fmt: skip
    ratio = rows[0][1] / rows[1][1]
    features = {
        name: " ".join(p for p in info.split("|") if "= 1" in p and "CPU" not in p) for name, info in infos.items()
    }
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown")  # fmt: skip
    md = [
        "",
        "## Portable against native llama.cpp build (`python bench/portable.py`)",
        "",
        f"ASIA, anchored, retrieval on (the `make demo` path), {args.records} records per run, {args.repeats} runs per "
        f"arm alternating, same seeds; CPU: {cpu}, {os.cpu_count()} cores, shared with other work (load varies).",
        "",
        table(["build", "accepted/s (median)", "min", "max", "realizability"], rows),
        "",
        f"Portable / native (medians): **{ratio:.2f}x**.",
        "",
        *(f"- {name}: `{feat.strip()}`" for name, feat in features.items()),
        "",
    ]
    text = "\n".join(md)
    print(text)
    with (ROOT / "bench" / "results" / "llm.md").open("a", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
