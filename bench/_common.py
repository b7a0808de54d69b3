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
