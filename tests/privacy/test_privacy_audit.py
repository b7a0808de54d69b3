"""A reduced statistical audit of the whole fit: neighbouring tables, a distinguishing test, an empirical epsilon.

The full audit (more runs, several epsilons) runs in bench/fit.py; this one keeps the suite quick.
"""

from __future__ import annotations

from causalsynth.tools.privacy.audit import audit, neighbours


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
