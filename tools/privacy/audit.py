"""A statistical audit of a DP fit.

Many fits on two neighbouring tables (one row apart), a distinguishing test on what they release, and the
empirical epsilon lower bound it implies (Clopper-Pearson).

A correct mechanism keeps the bound below the claimed epsilon; a bound above it is a privacy bug. The bound is a
lower bound: a small value says the test could not tell the tables apart, not that the claim is tight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta

from causalsynth.tools.privacy.domain import PublicBounds
from causalsynth.tools.privacy.fitting import FitOptions, fit_table


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit setting."""

    epsilon: float
    delta: float
    runs: int
    threshold: float
    fpr: float  # share of fits on D that the test flags
    tpr: float  # share of fits on D' that the test flags
    epsilon_lower: float  # empirical lower bound at the confidence level
    epsilon_point: float  # the same with point estimates instead of bounds
    confidence: float


def neighbours(n: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """D (``n`` rows, no row with a=1 and b=1) and D' = D plus the one row a=1, b=1."""
    a = np.array([0, 1] * (n // 2))
    b = np.where(a == 1, 0, (np.arange(n) // 2) % 2)
    base = pd.DataFrame({"a": a.astype(str), "b": b.astype(str)})
    return base, pd.concat([base, pd.DataFrame({"a": ["1"], "b": ["1"]})], ignore_index=True)


def outlier_neighbours(n: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """D (``n`` amounts from 1 to 100) and D' = D plus one row holding 1,000,000: where the range release could leak."""
    base = pd.DataFrame({"amount": np.round(np.linspace(1.0, 100.0, n), 2)})
    return base, pd.concat([base, pd.DataFrame({"amount": [1_000_000.0]})], ignore_index=True)


def released_top(table: pd.DataFrame, epsilon: float, delta: float) -> float:
    """What the range test looks at: the fitted top of ``amount`` (log10).

    A post-processing of the numeric releases (range, spikes, zoom, shape).
    """
    options = FitOptions(epsilon=epsilon, delta=delta, dag={"amount": []})
    spec = fit_table(table, "audit", options).spec
    return float(np.log10(max(1.0, float(spec["columns"]["amount"]["bins"][-1]["high"]))))


def released_statistic(table: pd.DataFrame, epsilon: float, delta: float) -> float:
    """What the test looks at: the fitted P(b=1 | a=1), a post-processing of the released CPT counts."""
    public = PublicBounds(categories=("0", "1"))
    options = FitOptions(epsilon=epsilon, delta=delta, dag={"a": [], "b": ["a"]}, bounds={"a": public, "b": public})
    spec = fit_table(table, "audit", options).spec
    for row in spec["model"]["nodes"]["b"]["cpt"]:
        if row["when"]["a"] == "1":
            return float(row["probs"][1])
    raise AssertionError("no CPT row for a=1")


def triple_neighbours(n: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """D (``n`` rows of three binary columns, none with a=b=c=1) and D' = D plus that row."""
    i = np.arange(n)
    a, b = i % 2, (i // 2) % 2
    c = np.where((a == 1) & (b == 1), 0, (i // 4) % 2)
    base = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "c": c.astype(str)})
    return base, pd.concat([base, pd.DataFrame({"a": ["1"], "b": ["1"], "c": ["1"]})], ignore_index=True)


def released_joint(table: pd.DataFrame, epsilon: float, delta: float) -> float:
    """The fitted P(a=1, b=1, c=1) of a learned structure (public categories, no DAG given).

    The structure search, the family tables and the refinement rounds all feed it.
    """
    public = PublicBounds(categories=("0", "1"))
    options = FitOptions(epsilon=epsilon, delta=delta, bounds=dict.fromkeys(table.columns, public))
    nodes = fit_table(table, "audit", options).spec["model"]["nodes"]
    p = 1.0
    for name, node in nodes.items():
        if not node.get("parents"):
            p *= float(node["probs"][1])
            continue
        row = next(r for r in node["cpt"] if all(v == "1" for v in r["when"].values()))
        p *= float(row["probs"][node["states"].index("1")])
    return p


def audit(epsilon: float, delta: float = 1e-6, runs: int = 200, confidence: float = 0.95, n: int = 40,
          statistic: Callable[[pd.DataFrame, float, float], float] = released_statistic,
          tables: Callable[[int], tuple[pd.DataFrame, pd.DataFrame]] = neighbours) -> AuditResult:  # fmt: skip
    """Fit ``runs`` times on each neighbour and bound epsilon from below.

    The test's threshold is chosen on the first half of the runs and measured on the second half (so it is not
    fitted to the evaluated runs).
    """
    d0, d1 = tables(n)
    s0 = np.array([statistic(d0, epsilon, delta) for _ in range(runs)])
    s1 = np.array([statistic(d1, epsilon, delta) for _ in range(runs)])
    half = runs // 2
    candidates = np.quantile(np.concatenate([s0[:half], s1[:half]]), np.linspace(0.05, 0.95, 19))
    best = max(candidates, key=lambda t: _point(np.mean(s0[:half] > t), np.mean(s1[:half] > t), delta))
    k0, k1, m = int(np.sum(s0[half:] > best)), int(np.sum(s1[half:] > best)), runs - half
    alpha = 1 - confidence
    fpr_hi = beta.ppf(1 - alpha / 2, k0 + 1, m - k0) if k0 < m else 1.0
    tpr_lo = beta.ppf(alpha / 2, k1, m - k1 + 1) if k1 > 0 else 0.0
    lower = math.log((tpr_lo - delta) / fpr_hi) if tpr_lo > delta and fpr_hi > 0 else 0.0
    return AuditResult(epsilon, delta, runs, float(best), k0 / m, k1 / m, max(0.0, lower),
                       _point(k0 / m, k1 / m, delta), confidence)  # fmt: skip


def _point(fpr: float, tpr: float, delta: float) -> float:
    if tpr <= delta:
        return 0.0
    return max(0.0, math.log((tpr - delta) / max(fpr, 1e-12))) if fpr > 0 else float("inf")
