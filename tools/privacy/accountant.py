"""One privacy accountant for a whole fit.

OpenDP's adaptive compositor in approximate zCDP, converted to (epsilon, delta) by OpenDP's zCDP -> approximate-DP
conversion.

The plan (every query's (rho, delta), in the order they are issued) is fixed from the schema and the options
before any row is read; a plan that does not fit the budget is refused then. Queries go through the compositor,
which refuses any measurement costlier than its planned slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from causalsynth.tools.errors import UsageError
from causalsynth.tools.privacy.opendp_setup import dp, measure_type, table_space
from causalsynth.tools.privacy.schema import SpendSpec


class PrivacyBudgetError(UsageError):
    """A fit would spend more privacy than its budget, or the budget itself is malformed."""


@dataclass(frozen=True)
class Step:
    """A group of queries with a share of the budget: ``queries`` slots, each ``share / queries`` of rho."""

    name: str
    share: float
    queries: int
    thresholded: bool = False  # Gaussian-threshold queries: each also spends a share of delta


def check_budget(epsilon: float, delta: float) -> None:
    """Raise on epsilon <= 0 or delta outside (0, 1)."""
    if not epsilon > 0 or epsilon != epsilon or epsilon == float("inf"):
        raise PrivacyBudgetError(f"--epsilon must be a finite number above 0, got {epsilon}")
    if not 0 < delta < 1:
        raise PrivacyBudgetError(f"--delta must be in (0, 1), got {delta}")


class Accountant:
    """Plans, checks and spends a fit's budget; ``spent`` is the split that goes into the spec."""

    def __init__(self, epsilon: float, delta: float, slots: Sequence[tuple[str, float, float]]) -> None:
        """Accept a plan of ``(step, rho, delta)`` slots only if OpenDP says it fits ``(epsilon, delta)``.

        Raises:
            PrivacyBudgetError: the plan exceeds the budget (nothing has been read yet).
        """
        check_budget(epsilon, delta)
        self.epsilon, self.delta = epsilon, delta
        self.slots = list(slots)
        spent = composed_epsilon(self.slots, delta)
        if spent > epsilon * (1 + 1e-9):
            raise PrivacyBudgetError(
                f"the fit would spend epsilon={spent:.4g} at delta={delta:g}, above the budget epsilon={epsilon:g}; "
                "refused before reading the data"
            )
        self.planned_epsilon = spent
        self._queryable: Any = None
        self._next = 0

    @classmethod
    def for_steps(cls, epsilon: float, delta: float, steps: Sequence[Step]) -> Accountant:
        """Scale the steps' shares to the largest total rho that fits the budget (found with OpenDP's map).

        Half of delta goes to the thresholded queries (if any), the rest to the zCDP conversion.
        """
        check_budget(epsilon, delta)
        return cls(epsilon, delta, _scaled_slots(epsilon, delta, tuple(s for s in steps if s.queries > 0)))

    @property
    def rho(self) -> float:
        """Total zCDP rho planned."""
        return sum(r for _, r, _ in self.slots)

    def open(self, table: Any) -> None:
        """Start spending on ``table`` (the only moment the compositor sees the data)."""
        self._queryable = _compositor(self.slots)(table)

    def measure(self, step: str, measurement: Any) -> Any:
        """Run the next planned query; it must belong to ``step`` and cost no more than its slot."""
        if self._queryable is None:
            raise RuntimeError("open() the accountant on the table first")
        if self._next >= len(self.slots) or self.slots[self._next][0] != step:
            planned = self.slots[self._next][0] if self._next < len(self.slots) else "nothing"
            raise PrivacyBudgetError(f"query of step {step!r} not in the plan (next planned: {planned})")
        self._next += 1
        return self._queryable(measurement)

    def split(self) -> list[SpendSpec]:
        """The budget split by step, as stored in the spec's ``fit.budget``."""
        out: dict[str, list[float]] = {}
        for name, rho, delta in self.slots:
            acc = out.setdefault(name, [0.0, 0.0, 0])
            acc[0] += rho
            acc[1] += delta
            acc[2] += 1
        return [SpendSpec(step=k, rho=v[0], delta=v[1], queries=int(v[2])) for k, v in out.items()]


@lru_cache(maxsize=64)
def _scaled_slots(epsilon: float, delta: float, steps: tuple[Step, ...]) -> tuple[tuple[str, float, float], ...]:
    n_thresholded = sum(s.queries for s in steps if s.thresholded)
    delta_each = delta / 2 / n_thresholded if n_thresholded else 0.0
    total_share = sum(s.share for s in steps)

    def slots(total_rho: float) -> list[tuple[str, float, float]]:
        return [
            (s.name, total_rho * s.share / total_share / s.queries, delta_each if s.thresholded else 0.0)
            for s in steps
            for _ in range(s.queries)
        ]

    def lump(total_rho: float) -> list[tuple[str, float, float]]:  # zCDP composition adds rho and delta
        return [("all", total_rho, delta_each * n_thresholded)]

    low = _largest_rho(lump, epsilon, delta)  # the search on one slot: each try composes one measurement, not all
    if composed_epsilon(slots(low), delta) > epsilon:  # the plan itself is checked by OpenDP; searched if it differs
        low = _largest_rho(slots, epsilon, delta)
    if low <= 0:
        raise PrivacyBudgetError(f"epsilon={epsilon:g}, delta={delta:g} leaves no budget for the fit")
    return tuple(slots(low))


def _largest_rho(plan: Callable[[float], list[tuple[str, float, float]]], epsilon: float, delta: float) -> float:
    """The largest total rho whose plan OpenDP composes to at most ``epsilon`` (bisection)."""
    low, high = 0.0, max(epsilon, 1.0) ** 2
    for _ in range(50):
        mid = (low + high) / 2
        if composed_epsilon(plan(mid), delta) <= epsilon:
            low = mid
        else:
            high = mid
    return low


def _compositor(slots: Sequence[tuple[str, float, float]]) -> Any:
    lib = dp()
    domain, metric = table_space()
    return lib.c.make_adaptive_composition(
        domain, metric, measure_type(), d_in=1, d_mids=[(float(r), float(d)) for _, r, d in slots]
    )


def composed_epsilon(slots: Sequence[tuple[str, float, float]], delta: float) -> float:
    """Epsilon of the composed plan at ``delta``, by OpenDP's composition and zCDP -> approximate-DP conversion."""
    if not slots:
        return 0.0
    lib = dp()
    inner_delta = sum(d for _, _, d in slots)
    if inner_delta >= delta:
        return float("inf")
    converted = lib.c.make_fix_delta(lib.c.make_zCDP_to_approxDP(_compositor(slots)), delta)
    return float(converted.map(1)[0])
