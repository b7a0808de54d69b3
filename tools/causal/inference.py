"""Exact inference (pgmpy variable elimination) on a network, optionally under ``do(...)`` and evidence."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.causal.network import Network


def _eliminator(network: Network) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pgmpy 1.1 warns about its own estimators on import
        from pgmpy.inference import VariableElimination
    return VariableElimination(network.pgmpy)


def exact_marginals(
    network: Network,
    variables: Iterable[str] | None = None,
    *,
    do: Mapping[str, str] | None = None,
    evidence: Mapping[str, str] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Return ``P(X | evidence; do)`` for each variable, as arrays in the variable's state order."""
    net = network.mutilate(do) if do else network
    network.resolve_assignment(evidence or {}, "evidence")
    wanted = [v for v in (variables if variables is not None else net.names) if v not in (evidence or {})]
    out: dict[str, NDArray[np.float64]] = {}
    if wanted:
        ve = _eliminator(net)
        for var in wanted:  # one query per variable: pgmpy's joint=False contraction can explode on ALARM
            factor = ve.query([var], evidence=dict(evidence or {}) or None, show_progress=False)
            states = list(factor.state_names[var])
            values = np.asarray(factor.values, dtype=float)
            out[var] = np.array([values[states.index(s)] for s in net.states(var)])
    for var, state in (evidence or {}).items():
        if variables is None or var in set(variables):
            point = np.zeros(len(net.states(var)))
            point[net.states(var).index(state)] = 1.0
            out[var] = point
    return {v: out[v] for v in (variables if variables is not None else net.names) if v in out}


def evidence_probability(
    network: Network, evidence: Mapping[str, str], *, do: Mapping[str, str] | None = None
) -> float:
    """Return ``P(evidence; do)`` exactly."""
    net = network.mutilate(do) if do else network
    codes = net.resolve_assignment(evidence, "evidence")
    if not codes:
        return 1.0
    factor = _eliminator(net).query(list(codes), joint=True, show_progress=False)
    index = tuple(list(factor.state_names[v]).index(evidence[v]) for v in factor.variables)
    return float(factor.values[index])
