"""CI machinery: implied CIs are real d-separations; the G-test agrees with scipy, rejects dependence."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from causalsynth.tools.causal import citests
from causalsynth.tools.causal.citests import adjacencies, ci_set_for, g_test, goodness_of_fit, implied_cis
from causalsynth.tools.causal.conformance import verify
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import Domain, load_domain


@pytest.fixture(scope="module")
def andes() -> Domain:
    return load_domain("andes")


def test_one_implied_ci_per_non_adjacent_pair_each_a_true_d_separation(asia, alarm):
    for domain in (asia, alarm):
        net = domain.network
        cis = implied_cis(net)
        n = len(net)
        assert len(cis) == n * (n - 1) // 2 - len(net.edges())
        for ci in cis:
            assert not net.graph.has_edge(ci.x, ci.y) and not net.graph.has_edge(ci.y, ci.x)
            assert nx.is_d_separator(net.graph, {ci.x}, {ci.y}, set(ci.z))
        assert len(adjacencies(net)) == len(net.edges())


def test_g_statistic_matches_scipy_log_likelihood_test():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, 5000)
    y = (x + rng.integers(0, 2, 5000)) % 4
    table = np.zeros((3, 4))
    np.add.at(table, (x, y), 1)
    stat, p, dof, _ = chi2_contingency(table, lambda_="log-likelihood", correction=False)
    # Run
    res = g_test(x, y, [], 3, 4, [])
    # Assert
    assert np.isclose(res.statistic, stat) and res.dof == dof and np.isclose(res.p_value, p)


def test_conditional_test_sums_strata_and_adjusts_dof_for_empty_cells():
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 20_000)
    x = np.where(z == 0, rng.integers(0, 3, 20_000), 0)  # x constant in stratum 1: that stratum has no dof
    y = rng.integers(0, 2, 20_000)
    # Run
    res = g_test(x, y, [z], 3, 2, [2])
    # Assert
    assert res.dof == (3 - 1) * (2 - 1)
    table = np.zeros((3, 2))
    np.add.at(table, (x[z == 0], y[z == 0]), 1)
    assert np.isclose(res.statistic, chi2_contingency(table, lambda_="log-likelihood", correction=False)[0])


def test_dependence_is_detected_and_constant_variables_are_untestable():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, 2000)
    y = np.where(rng.random(2000) < 0.8, x, 1 - x)
    assert g_test(x, y, [], 2, 2, []).p_value < 1e-10
    untestable = g_test(np.zeros(100, dtype=int), y[:100], [], 2, 2, [])
    assert not untestable.testable and untestable.p_value == 1.0


def test_goodness_of_fit_fails_on_impossible_state():
    assert goodness_of_fit(np.array([10, 0, 1]), np.array([0.5, 0.5, 0.0])).p_value == 0.0
    assert goodness_of_fit(np.array([500, 500]), np.array([0.5, 0.5])).p_value > 0.9


def test_verify_catches_a_violated_independence(asia):
    data = Sampler(asia.network).sample(20_000, seed=3).data
    clean = verify(asia.network, data)
    # Setup: make xray depend on smoke directly, which the DAG forbids given either
    broken = data.copy()
    flip = (broken["smoke"] == "yes").to_numpy() & (np.random.default_rng(0).random(len(broken)) < 0.3)
    broken.loc[flip, "xray"] = "yes"
    # Run
    report = verify(asia.network, broken)
    # Assert
    rejected = {(r.statement.x, r.statement.y) for r in report.cis if r.rejected}
    assert ("smoke", "xray") in rejected
    assert report.fpr > clean.fpr
    assert report.marginals and any(m.variable == "xray" and m.p_value < 1e-6 for m in report.marginals)


def test_verify_under_do_uses_the_mutilated_graph(asia):
    do = {"either": "yes"}
    data = Sampler(asia.network).sample(20_000, seed=5, do=do).data
    # Run
    report = verify(asia.network, data, do=do)
    observational = verify(asia.network, data)
    # Assert: under do(either) xray no longer depends on tub/lung; the observational model is contradicted
    assert report.n_untestable > 0  # tests involving the constant 'either'
    assert all(m.p_value > 1e-4 for m in report.marginals)
    assert any(m.p_value < 1e-6 for m in observational.marginals)


# -- the local Markov basis (large networks) and the batched G-tests -----------------------------------------
def test_a_large_network_tests_each_later_node_given_its_parents(andes):
    net = andes.network
    position = {v: i for i, v in enumerate(net.order)}
    # Run
    cis = implied_cis(net)
    # Assert
    n = len(net)
    assert ci_set_for(net) == "local Markov basis" and ci_set_for(load_domain("asia").network) == "minimal separators"
    assert len(cis) == n * (n - 1) // 2 - len(net.edges())
    assert len({frozenset((ci.x, ci.y)) for ci in cis}) == len(cis)
    for ci in cis:
        assert position[ci.x] > position[ci.y]
        assert set(ci.z) == set(net.graph.predecessors(ci.x)) and ci.y not in ci.z
    picked = np.random.default_rng(0).choice(len(cis), 200, replace=False)
    assert all(nx.is_d_separator(net.graph, {cis[i].x}, {cis[i].y}, set(cis[i].z)) for i in picked)


def test_basis_false_positive_rate_is_near_alpha_on_data_from_the_network(alarm):
    sampler = Sampler(alarm.network)
    # Run
    reports = [
        verify(alarm.network, sampler.sample(20_000, seed=seed).data, ci_set="local Markov basis", marginals=False)
        for seed in range(4)
    ]
    # Assert
    assert all(r.ci_set == "local Markov basis" and r.n_tests > 550 for r in reports)
    assert 0.03 <= float(np.mean([r.fpr for r in reports])) <= 0.07
    assert min(r.power for r in reports) > 0.9


def test_basis_catches_a_violated_independence(asia):
    data = Sampler(asia.network).sample(20_000, seed=3).data
    flip = (data["smoke"] == "yes").to_numpy() & (np.random.default_rng(0).random(len(data)) < 0.3)
    data.loc[flip, "xray"] = "yes"  # xray now depends on smoke given its parent, either
    # Run
    report = verify(asia.network, data, ci_set="local Markov basis", marginals=False)
    # Assert
    rejected = {(r.statement.x, r.statement.y) for r in report.cis if r.rejected}
    assert ("xray", "smoke") in rejected


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_batched_g_tests_equal_one_test_at_a_time(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.sampled_from([5, 40, 300]))
    rx = data.draw(st.integers(1, 4))
    zcards = data.draw(st.lists(st.integers(1, 4), max_size=3))
    rys = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    x = rng.integers(0, rx, n)
    z = [rng.integers(0, c, n) for c in zcards]
    ys = np.stack([np.minimum((x + rng.integers(0, 2, n)) % r, r - 1) if k % 2 else rng.integers(0, r, n)
                   for k, r in enumerate(rys)])  # fmt: skip
    # Run
    batched = citests.g_tests_shared(x, rx, z, zcards, ys, rys)
    # Assert
    for y, ry, got in zip(ys, rys, batched, strict=True):
        one = g_test(x, y, z, rx, ry, zcards)
        assert got.dof == one.dof
        assert np.isclose(got.statistic, one.statistic, atol=1e-7) and np.isclose(got.p_value, one.p_value, atol=1e-9)
