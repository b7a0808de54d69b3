"""A reduced statistical audit of the whole fit: neighbouring tables, a distinguishing test, an empirical epsilon.

The full audit (more runs, several epsilons) runs in bench/fit.py; this one keeps the suite quick.
"""

from __future__ import annotations

import pandas as pd

from causalsynth.tools.privacy.audit import (
    audit,
    neighbours,
    outlier_neighbours,
    released_joint,
    released_top,
    triple_neighbours,
)


def test_neighbours_differ_in_exactly_one_row() -> None:
    d0, d1 = neighbours(40)
    assert len(d1) == len(d0) + 1
    assert d1.iloc[:-1].equals(d0)


def test_empirical_epsilon_stays_below_the_claim() -> None:
    # Run
    result = audit(epsilon=2.0, runs=60)

    # Assert
    assert result.epsilon_lower <= 2.0
    assert 0.0 <= result.fpr <= 1.0 and 0.0 <= result.tpr <= 1.0


def test_range_audit_stays_below_the_claim() -> None:
    # Setup: D' adds one amount of 1,000,000 to amounts from 1 to 100; the test looks at the fitted top bound

    # Run
    result = audit(epsilon=2.0, runs=60, statistic=released_top, tables=outlier_neighbours)

    # Assert
    assert result.epsilon_lower <= 2.0


def test_learned_structure_audit_stays_below_the_claim() -> None:
    # Setup: D' adds the one row a=b=c=1 to 40 rows without it; no DAG, so the structure search, the family tables
    # and a refinement round all read the rows; the test looks at the fitted P(a=b=c=1)
    d0, d1 = triple_neighbours(40)
    assert len(d1) == len(d0) + 1 and d1.iloc[:-1].equals(d0)
    assert not ((d0 == "1").all(axis=1)).any()

    # Run
    result = audit(epsilon=2.0, runs=60, statistic=released_joint, tables=triple_neighbours)

    # Assert
    assert result.epsilon_lower <= 2.0


def test_the_audit_catches_a_statistic_that_leaks_the_row() -> None:
    # Setup: a "release" that reports whether the raw maximum is an outlier: no noise at all
    def leaky(table: pd.DataFrame, epsilon: float, delta: float) -> float:
        return float(table["amount"].max() > 1000)

    # Run
    result = audit(epsilon=1.0, runs=60, statistic=leaky, tables=outlier_neighbours)

    # Assert: the same test that passes the fit flags this one far above its claim
    assert result.epsilon_lower > 1.5
