"""Verification of a table against its causal model: implied CIs (FPR), adjacencies (power), marginals.

Under ``do(...)`` the data should obey the mutilated network, so its CIs and exact marginals are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causalsynth.tools.causal.citests import (
    CISet,
    CIStatement,
    adjacencies,
    ci_set_for,
    goodness_of_fit,
    implied_cis,
    test_statements,
)
from causalsynth.tools.causal.inference import all_marginals
from causalsynth.tools.causal.network import Network


@dataclass(frozen=True)
class CIResult:
    """One tested statement and its G-test."""

    statement: CIStatement
    statistic: float
    dof: int
    p_value: float
    rejected: bool | None  # None: untestable (no degrees of freedom left)


@dataclass(frozen=True)
class MarginalResult:
    """A variable's empirical marginal against exact inference."""

    variable: str
    states: tuple[str, ...]
    expected: tuple[float, ...]
    observed: tuple[float, ...]
    tvd: float
    statistic: float
    dof: int
    p_value: float


@dataclass
class VerificationReport:
    """Everything :func:`verify` measured."""

    alpha: float
    n_rows: int
    network: str
    do: dict[str, str]
    cis: list[CIResult]
    dependences: list[CIResult]
    marginals: list[MarginalResult] = field(default_factory=list)
    ci_set: CISet = "minimal separators"  # which implied CIs were tested (see causalsynth.tools.causal.citests)
    marginals_method: str | None = (
        None  # how the exact marginals were computed (see causalsynth.tools.causal.inference)
    )

    @property
    def n_tests(self) -> int:
        """Implied CIs that could be tested."""
        return sum(r.rejected is not None for r in self.cis)

    @property
    def n_untestable(self) -> int:
        """Implied CIs left with zero degrees of freedom (constant or perfectly sparse variables)."""
        return sum(r.rejected is None for r in self.cis)

    @property
    def fpr(self) -> float:
        """Share of testable implied CIs rejected at ``alpha`` (NaN if none was testable)."""
        tested = [r for r in self.cis if r.rejected is not None]
        return float(np.mean([r.rejected for r in tested])) if tested else float("nan")

    @property
    def power(self) -> float:
        """Share of testable adjacent pairs found dependent at ``alpha``."""
        tested = [r for r in self.dependences if r.rejected is not None]
        return float(np.mean([r.rejected for r in tested])) if tested else float("nan")

    def marginal_failures(self, level: float) -> list[MarginalResult]:
        """Variables whose goodness-of-fit p-value is below ``level``."""
        return [m for m in self.marginals if m.p_value < level]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and details."""

        def ci(r: CIResult) -> dict[str, Any]:
            return {
                "x": r.statement.x,
                "y": r.statement.y,
                "z": list(r.statement.z),
                "statistic": r.statistic,
                "dof": r.dof,
                "p_value": r.p_value,
                "rejected": r.rejected,
            }

        return {
            "network": self.network,
            "n_rows": self.n_rows,
            "alpha": self.alpha,
            "do": self.do,
            "ci_set": self.ci_set,
            "marginals_method": self.marginals_method,
            "n_tests": self.n_tests,
            "n_untestable": self.n_untestable,
            "n_rejected": sum(bool(r.rejected) for r in self.cis),
            "fpr": _nan_to_none(self.fpr),
            "n_adjacent_tested": sum(r.rejected is not None for r in self.dependences),
            "power": _nan_to_none(self.power),
            "max_marginal_tvd": max((m.tvd for m in self.marginals), default=None),
            "cis": [ci(r) for r in self.cis],
            "dependences": [ci(r) for r in self.dependences],
            "marginals": [
                {
                    "variable": m.variable,
                    "states": list(m.states),
                    "expected": list(m.expected),
                    "observed": list(m.observed),
                    "tvd": m.tvd,
                    "statistic": m.statistic if np.isfinite(m.statistic) else None,
                    "dof": m.dof,
                    "p_value": m.p_value,
                }
                for m in self.marginals
            ],
        }


def _nan_to_none(x: float) -> float | None:
    return None if np.isnan(x) else x


def verify(
    network: Network,
    data: pd.DataFrame,
    *,
    alpha: float = 0.05,
    do: Mapping[str, str] | None = None,
    marginals: bool = True,
    source: str = "data",
    ci_set: CISet | None = None,
) -> VerificationReport:
    """Test ``data`` against ``network`` (mutilated by ``do`` if given).

    ``ci_set`` chooses the implied CIs tested; by default minimal separators, or the local Markov basis on a
    large network (see ``causalsynth.tools.causal.citests``).

    Raises:
        DataError: a column is missing or holds a value that is not a state.
        UsageError: ``alpha`` outside (0, 1) or a bad ``do``.
    """
    from causalsynth.tools.errors import DataError, UsageError

    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    if len(data) == 0:
        raise DataError(f"{source}: no rows to verify")
    net = network.mutilate(do) if do else network
    codes = dict(zip(net.names, net.encode(data, source), strict=True))
    cards = {name: net.node(name).card for name in net.names}

    def run(statements: list[CIStatement]) -> list[CIResult]:
        return [
            CIResult(s, res.statistic, res.dof, res.p_value, (res.p_value < alpha) if res.testable else None)
            for s, res in zip(statements, test_statements(codes, cards, statements), strict=True)
        ]

    ci_set = ci_set or ci_set_for(net)
    report = VerificationReport(
        alpha=alpha,
        n_rows=len(data),
        network=net.name,
        do=dict(do or {}),
        cis=run(implied_cis(net, ci_set=ci_set)),
        dependences=run(adjacencies(net)),
        ci_set=ci_set,
    )
    if marginals and len(data):
        exact, report.marginals_method = all_marginals(net)
        for name in net.names:
            counts = np.bincount(codes[name], minlength=cards[name])
            fit = goodness_of_fit(counts, exact[name])
            observed = counts / counts.sum()
            report.marginals.append(
                MarginalResult(
                    variable=name,
                    states=net.states(name),
                    expected=tuple(float(p) for p in exact[name]),
                    observed=tuple(float(p) for p in observed),
                    tvd=0.5 * float(np.abs(observed - exact[name]).sum()),
                    statistic=fit.statistic,
                    dof=fit.dof,
                    p_value=fit.p_value,
                )
            )
    return report
