"""Assessor measures: implied CIs on observed variables only, and TVD against exact SCM marginals."""

from __future__ import annotations

import numpy as np

from causalsynth.tools.causal.citests import implied_cis
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.quality.run_quality import ci_summary, exact_tables, tvd_summary
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT


def test_observed_cis_use_only_observed_variables_and_are_implied():
    domain = load_domain(ROOT / "examples" / "asia.yaml")
    net = domain.network
    observed = frozenset(domain.lexicon.observed)
    statements = implied_cis(net, observed)
    assert statements
    import networkx as nx

    for s in statements:
        assert {s.x, s.y, *s.z} <= observed
        assert nx.is_d_separator(net.graph, {s.x}, {s.y}, set(s.z))
    # xray and dysp share only the latent 'either': no observed set separates them.
    assert not any({s.x, s.y} == {"xray", "dysp"} for s in statements)
    assert any({s.x, s.y} == {"xray", "dysp"} for s in implied_cis(net))


def test_exact_pair_marginals_are_consistent_with_singles(asia):
    singles, pairs = exact_tables(asia.network)
    for (a, b), table in pairs.items():
        assert np.allclose(table.sum(axis=1), singles[a]) and np.allclose(table.sum(axis=0), singles[b])


def test_tvd_sees_selection_bias_beyond_the_sampling_floor(asia):
    net = asia.network
    data = Sampler(net).sample(20_000, seed=3).data
    codes = dict(zip(net.names, net.encode(data), strict=True))
    floor = tvd_summary(net, codes, len(data))
    assert floor.mean is not None and floor.mean < 0.01
    keep = codes["smoke"] == net.states("smoke").index("no")  # drop every smoker: a biased selection
    biased = {v: c[keep | (np.arange(len(keep)) % 2 == 0)] for v, c in codes.items()}
    worse = tvd_summary(net, biased, int(next(iter(biased.values())).size))
    assert worse.mean is not None and worse.mean > 5 * floor.mean
    assert worse.max_single is not None and worse.max_single > 0.1


def test_empty_selection_reports_none(asia):
    assert tvd_summary(asia.network, {}, 0).mean is None
    assert ci_summary(asia.network, {}, 0).fpr is None


def test_drift_is_zero_without_selection_and_grows_with_it(asia):
    from causalsynth.tools.quality.run_quality import drift_summary, no_drift

    net = asia.network
    data = Sampler(net).sample(5_000, seed=4).data
    codes = dict(zip(net.names, net.encode(data), strict=True))
    same = drift_summary(net, codes, 5_000, codes, 5_000)
    assert same.mean == 0.0 and same.max == 0.0
    # the report's short cut when every judged record is accepted says exactly what the measure says
    shuffled = {v: c[np.random.default_rng(1).permutation(5_000)] for v, c in codes.items()}
    assert no_drift(net, 5_000) == drift_summary(net, shuffled, 5_000, codes, 5_000) == same
    keep = codes["lung"] == net.states("lung").index("no")  # drop every lung cancer: biased
    kept = {v: c[keep] for v, c in codes.items()}
    biased = drift_summary(net, kept, int(keep.sum()), codes, 5_000)
    assert biased.max_single is not None and biased.max_single > 0.03
