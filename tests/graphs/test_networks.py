"""Every bnlearn network pgmpy ships, by name, through the command line: sample, verify, counterfactual, run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from causalsynth.tools.causal.citests import ci_set_for
from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.sources import bnlearn_names
from causalsynth.tools.spec import load_domain
from tests.conftest import run_cli

NETWORKS = bnlearn_names()
#: Over 500 nodes: the slowest cases, about half the time of this module.
LARGE = {"link", "munin", "munin2", "munin3", "munin4"}


def _intervention(network: Network) -> tuple[str, str]:
    """A node with descendants (the first such in topological order), set to its last state."""
    var = next(v for v in network.order if network.graph.out_degree(v) > 0)
    return var, network.states(var)[-1]


def test_pgmpy_ships_the_networks_this_module_runs():
    assert len(NETWORKS) >= 24 and {"child", "munin", "link", "diabetes"} <= set(NETWORKS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in NETWORKS])
def test_a_bundled_network_samples_verifies_intervenes_and_runs_by_name(capsys, tmp_path, name):
    # Setup
    network = load_domain(name).network
    data, twins, out = tmp_path / "data.parquet", tmp_path / "twins.parquet", tmp_path / "run"
    var, state = _intervention(network)
    # Run
    sampled = run_cli(capsys, "sample", name, "-n", "30", "--seed", "0", "--out", str(data))
    verified = run_cli(capsys, "verify", str(data), "--spec", name)
    counterfactual = run_cli(
        capsys, "counterfactual", name, "-n", "30", "--seed", "1", "--do", f"{var}={state}", "--out", str(twins)
    )
    ran = run_cli(capsys, "run", name, "-n", "20", "--llm", "template", "--no-retrieval", "--out", str(out))
    # Assert
    results = {"sample": sampled, "verify": verified, "counterfactual": counterfactual, "run": ran}
    assert {k: r[0] for k, r in results.items()} == dict.fromkeys(results, 0), {k: r[2] for k, r in results.items()}
    assert f"implied CIs ({ci_set_for(network)}) tested" in " ".join(verified[1].split())
    table = pd.read_parquet(twins)
    assert (table[f"{var}__cf"] == state).all()
    untouched = [v for v in network.names if v not in network.descendants([var]) and v != var]
    assert all((table[v] == table[f"{v}__cf"]).all() for v in untouched)
    report = json.loads((out / "report.json").read_text())
    assert report["realizability"] == 1.0  # every default phrase reads back as its own fact


def test_verify_says_which_implied_cis_it_tested(capsys, tmp_path):
    # Setup: PATHFINDER has 5,691 non-adjacent pairs, over the threshold; ALARM 620
    paths = {name: (tmp_path / f"{name}.parquet", tmp_path / f"{name}.json") for name in ("pathfinder", "alarm")}
    for name, (data, _) in paths.items():
        run_cli(capsys, "sample", name, "-n", "200", "--seed", "0", "--out", str(data))
    # Run
    large = run_cli(
        capsys, "verify", str(paths["pathfinder"][0]), "--spec", "pathfinder", "--json", str(paths["pathfinder"][1])
    )
    small = run_cli(capsys, "verify", str(paths["alarm"][0]), "--spec", "alarm", "--json", str(paths["alarm"][1]))
    # Assert
    assert large[0] == 0 and small[0] == 0, (large[2], small[2])
    big, few = (json.loads(paths[name][1].read_text()) for name in ("pathfinder", "alarm"))
    assert big["ci_set"] == "local Markov basis" and len(big["cis"]) == 5691
    assert few["ci_set"] == "minimal separators" and len(few["cis"]) == 620
    text = " ".join(large[1].split())
    assert "implied CIs (local Markov basis) tested" in text
    assert "only the rejected ones are listed" in text and text.count("_||_") == big["n_rejected"]
    assert "implied CIs (minimal separators) tested" in " ".join(small[1].split())
    assert big["marginals_method"] == "junction tree" and len(big["marginals"]) == 109
