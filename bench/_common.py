"""Shared helpers for the benchmarks: import path, warning filters, markdown tables, check records."""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.simplefilter("ignore", FutureWarning)  # pgmpy 1.1 warns about its own modules on import


@dataclass
class Check:
    """One target of a benchmark and whether it was met."""

    section: str
    name: str
    target: str
    value: str
    passed: bool | None  # None: informational only

    @property
    def verdict(self) -> str:
        return "info" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Result:
    """What a benchmark's ``run()`` returns."""

    markdown: str
    checks: list[Check]
    seconds: float


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.4g}"
        return f"{value:.3g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def checks_table(checks: list[Check]) -> str:
    return table(["check", "target", "measured", "verdict"], [[c.name, c.target, c.value, c.verdict] for c in checks])


def finish(md: list[str], checks: list[Check], t_start: float) -> Result:
    """Close a section: its markdown, then its checks table, and the time since ``t_start``."""
    return Result("\n".join([*md, "", checks_table(checks)]), checks, time.perf_counter() - t_start)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_do(do: dict[str, str]) -> str:
    return "do(" + ", ".join(f"{k}={v}" for k, v in do.items()) + ")"


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def run_main(run: Any) -> str:
    """Body of each script's ``main()``: run, print and return the markdown."""
    res = run()
    text = res.markdown + f"\n\n_Section runtime: {res.seconds:.1f} s._\n"
    print(text)
    return text


def baseline_view(commit: str) -> Path:
    """The package as it was at ``commit``, laid out as installed under ``build/baseline/<commit>``.

    A child process with this folder first on ``PYTHONPATH`` imports that version of ``causalsynth`` instead of the
    working tree's (``run_baseline``), so a benchmark can time the previous implementation in the same command.
    """
    import subprocess
    import tarfile
    import tempfile

    sys.path.insert(0, str(ROOT / "scripts"))
    from lint_view import lay_out

    sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()  # fmt: skip
    view = ROOT / "build" / "baseline" / sha
    if (view / "causalsynth" / "__init__.py").exists():
        return view
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.tar"
        subprocess.run(["git", "archive", "-o", str(archive), sha], cwd=ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "src", filter="data")
        lay_out(Path(tmp) / "src", view)
    return view


def run_baseline(view: Path, script: str, *args: str) -> str:
    """Run a bench script in a child process that imports ``causalsynth`` from ``view``; return its stdout."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(view), str(Path(script).parent)])}
    done = subprocess.run([sys.executable, script, *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout
