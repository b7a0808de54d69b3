"""Exact inference on a network, optionally under ``do(...)`` and evidence.

Queries go to pgmpy's variable elimination. Every variable's marginal at once (no evidence) comes from one
junction tree calibration (``junction_tree``) when the tree is small enough, else from one elimination per
variable; it is cached in memory and on disk by the network's content, so verifying and assessing the same
network again costs nothing.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.causal.junction_tree import Calibrated, calibrate
from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.sources import cache_dir

#: How :func:`all_marginals` computed its figures (both are exact).
JUNCTION_TREE = "junction tree"
VARIABLE_ELIMINATION = "variable elimination"


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
    if variables is None and not do and not evidence:
        return {v: p.copy() for v, p in _all_marginals(network)[0].items()}
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


def all_marginals(network: Network) -> tuple[dict[str, NDArray[np.float64]], str]:
    """Every variable's exact marginal, and how it was computed; cached in memory and on disk.

    The method is :data:`JUNCTION_TREE` when the network's junction tree is small enough, else
    :data:`VARIABLE_ELIMINATION` (one query per variable).
    """
    values, method = _all_marginals(network)
    return {v: p.copy() for v, p in values.items()}, method


def exact_pairs(network: Network, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], NDArray[np.float64]]:
    """``P(a, b)`` for each pair, axes ``(a, b)``.

    From the junction tree when one of its cliques holds the pair (every edge does), else by variable elimination.
    """
    wanted = list(pairs)
    tree = _calibrated(network)
    out: dict[tuple[str, str], NDArray[np.float64]] = {}
    for a, b in wanted:
        joint = tree.marginal((a, b)) if tree is not None else None
        if joint is not None:
            out[(a, b)] = joint
    missing = [pair for pair in wanted if pair not in out]
    if missing:
        ve = _eliminator(network)
        for a, b in missing:
            factor = ve.query([a, b], joint=True, show_progress=False)
            order = [list(factor.state_names[v]) for v in factor.variables]
            values = np.asarray(factor.values, dtype=float)
            if list(factor.variables) != [a, b]:
                values = values.T
                order.reverse()
            ia = [order[0].index(s) for s in network.states(a)]
            ib = [order[1].index(s) for s in network.states(b)]
            out[(a, b)] = values[np.ix_(ia, ib)]
    return {pair: out[pair] for pair in wanted}


@lru_cache(maxsize=2)
def _calibrated(network: Network) -> Calibrated | None:
    return calibrate(network)


@lru_cache(maxsize=8)
def _all_marginals(network: Network) -> tuple[dict[str, NDArray[np.float64]], str]:
    path = cache_dir() / f"exact-marginals-{network.digest}.npz"
    try:
        with np.load(path) as stored:
            out = {v: stored[f"m{i}"] for i, v in enumerate(network.names)}
            method = str(stored["method"])
        if all(out[v].shape == (network.node(v).card,) for v in network.names):
            return out, method
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or unreadable: compute again
    tree = _calibrated(network)
    if tree is not None:
        out = {v: tree.beliefs[v].sum(axis=tuple(range(1, tree.beliefs[v].ndim))) for v in network.names}
        method = JUNCTION_TREE
    else:
        out, method = exact_marginals(network, network.names), VARIABLE_ELIMINATION
    store_arrays(path, {f"m{i}": out[v] for i, v in enumerate(network.names)} | {"method": np.array(method)})
    return out, method


def store_arrays(path: os.PathLike[str], arrays: Mapping[str, NDArray[Any]]) -> None:
    """Write ``arrays`` to an ``.npz`` cache file atomically; a read-only cache only costs speed."""
    try:
        folder = os.fspath(os.path.dirname(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


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
