"""The accountant: one OpenDP composition for the whole fit; overspend refused before any data is read."""

from __future__ import annotations

import pandas as pd
import pytest
from opendp.mod import OpenDPException

from causalsynth.tools.privacy.accountant import Accountant, PrivacyBudgetError, Step, composed_epsilon
from causalsynth.tools.privacy.mechanisms import noisy_histogram


def test_scaled_plan_spends_the_budget_and_no_more() -> None:
    # Setup
    steps = [Step("domain", 0.2, 3, thresholded=True), Step("cpts", 0.8, 3)]

    # Run
    accountant = Accountant.for_steps(1.0, 1e-6, steps)

    # Assert
    assert accountant.planned_epsilon <= 1.0
    assert accountant.planned_epsilon == pytest.approx(1.0, rel=1e-3)
    split = {s.step: s for s in accountant.split()}
    assert split["cpts"].rho == pytest.approx(4 * split["domain"].rho)
    assert split["domain"].delta == pytest.approx(0.5e-6)


def test_plan_over_budget_is_refused_before_the_data() -> None:
    # Setup: rho 0.5 is about epsilon 5.8 at delta 1e-6
    slots = [("cpts", 0.25, 0.0), ("cpts", 0.25, 0.0)]

    # Run / Assert
    with pytest.raises(PrivacyBudgetError, match="above the budget epsilon=1"):
        Accountant(1.0, 1e-6, slots)
    assert composed_epsilon(slots, 1e-6) > 5


def test_a_query_costlier_than_its_slot_is_refused() -> None:
    # Setup
    accountant = Accountant(1.0, 1e-6, [("cpts", 0.001, 0.0)])
    accountant.open(pd.DataFrame({"a": [1, 2, 3]}))

    # Run / Assert: a measurement at rho 0.01 does not fit a 0.001 slot
    with pytest.raises(OpenDPException, match="insufficient budget"):
        accountant.measure("cpts", noisy_histogram(lambda t: [len(t)], 0.01))


def test_a_query_outside_the_plan_is_refused() -> None:
    # Setup
    accountant = Accountant(1.0, 1e-6, [("cpts", 0.001, 0.0)])
    accountant.open(pd.DataFrame({"a": [1, 2, 3]}))
    accountant.measure("cpts", noisy_histogram(lambda t: [len(t)], 0.001))

    # Run / Assert
    with pytest.raises(PrivacyBudgetError, match="not in the plan"):
        accountant.measure("cpts", noisy_histogram(lambda t: [len(t)], 0.001))


@pytest.mark.parametrize(
    ("epsilon", "delta"), [(0.0, 1e-6), (-1.0, 1e-6), (float("nan"), 1e-6), (1.0, 0.0), (1.0, 1.0)]
)
def test_malformed_budget_is_refused(epsilon: float, delta: float) -> None:
    with pytest.raises(PrivacyBudgetError):
        Accountant.for_steps(epsilon, delta, [Step("cpts", 1.0, 1)])
