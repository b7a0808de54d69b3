"""Every marginal at once: the junction tree agrees with pgmpy's variable elimination, and says which it used."""

from __future__ import annotations

import numpy as np
import pytest

from causalsynth.tools.causal import inference
from causalsynth.tools.causal.inference import (
    JUNCTION_TREE,
    VARIABLE_ELIMINATION,
    all_marginals,
    exact_marginals,
    exact_pairs,
)
from causalsynth.tools.causal.junction_tree import calibrate
from causalsynth.tools.spec import load_domain


@pytest.mark.parametrize(
    ("name", "do"), [("asia", {}), ("child", {}), ("alarm", {}), ("alarm", {"HYPOVOLEMIA": "TRUE"})]
)
def test_junction_tree_marginals_and_edge_joints_equal_variable_elimination(name, do):
    # Setup
    network = load_domain(name).network
    network = network.mutilate(do) if do else network
    expected = exact_marginals(network, network.names)  # naming the variables: one elimination each
    edges = network.edges()[:12]
    # Run
    got, method = all_marginals(network)
    joints = exact_pairs(network, edges)
    # Assert
    assert method == JUNCTION_TREE
    for var in network.names:
        np.testing.assert_allclose(got[var], expected[var], atol=1e-7)
    for a, b in edges:
        assert joints[(a, b)].shape == (network.node(a).card, network.node(b).card)
        np.testing.assert_allclose(joints[(a, b)].sum(axis=1), expected[a], atol=1e-7)
        np.testing.assert_allclose(joints[(a, b)].sum(axis=0), expected[b], atol=1e-7)


def test_a_tree_over_budget_falls_back_to_variable_elimination(monkeypatch, tmp_path):
    # Setup: ASIA's tree has a few dozen cells; nothing cached on disk
    monkeypatch.setenv("CAUSALSYNTH_CACHE", str(tmp_path))
    network = load_domain("asia").network.mutilate({"smoke": "yes"})
    assert calibrate(network, max_cells=10) is None
    monkeypatch.setattr(inference, "calibrate", lambda net: calibrate(net, max_cells=10))
    inference._calibrated.cache_clear()
    # Run
    got, method = all_marginals(network)
    # Assert
    assert method == VARIABLE_ELIMINATION
    np.testing.assert_allclose(got["lung"], exact_marginals(network, ["lung"])["lung"])
