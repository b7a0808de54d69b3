"""Batch quality measures of a run: implied-CI false-positive rate and power, and selection bias (TVD).

Selection bias compares the accepted records with the SCM itself: the total variation distance between every
single-variable and every pairwise marginal of the accepted skeletons and the exact marginal computed by
inference (not another sample). A finite sample is never at distance 0, so the report also gives the same
distance for all requested skeletons: the sampling floor against which the accepted records' drift is read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.causal.citests import CIStatement, adjacencies, implied_cis, test_statement
from causalsynth.tools.causal.inference import _eliminator, exact_marginals
from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.sources import cache_dir

Codes = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class CISummary:
    """Rejection rates of implied CIs (FPR) and of edge dependences (power) at level ``alpha``."""

    fpr: float | None
    power: float | None
    n_tests: int
    n_untestable: int
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"fpr": self.fpr, "power": self.power, "n_tests": self.n_tests, "n_untestable": self.n_untestable,
                "n_rows": self.n_rows}  # fmt: skip


@dataclass(frozen=True)
class TVDSummary:
    """Total variation distances of single and pairwise marginals from the SCM's exact ones."""

    mean: float | None
    max: float | None
    mean_single: float | None
    max_single: float | None
    mean_pair: float | None
    max_pair: float | None
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def ci_summary(
    network: Network, codes: Codes, n_rows: int, *, observed: Sequence[str] | None = None, alpha: float = 0.05
) -> CISummary:
    """FPR of the implied CIs testable on ``observed`` (all variables if None) and power over its edges."""
    if n_rows == 0:
        return CISummary(None, None, 0, 0, 0)
    keep = frozenset(observed) if observed is not None else None
    cards = {v: network.node(v).card for v in network.names}
    statements = implied_cis(network, keep)
    edges = [s for s in adjacencies(network) if keep is None or (s.x in keep and s.y in keep)]

    def rate(stmts: list[CIStatement]) -> tuple[float | None, int, int]:
        results = [test_statement(codes, cards, s) for s in stmts]
        tested = [r for r in results if r.testable]
        if not tested:
            return None, 0, len(results)
        return sum(r.p_value < alpha for r in tested) / len(tested), len(tested), len(results) - len(tested)

    fpr, n_tests, n_untestable = rate(statements)
    power, _, _ = rate(edges)
    return CISummary(fpr, power, n_tests, n_untestable, n_rows)


def tvd_summary(network: Network, codes: Codes, n_rows: int) -> TVDSummary:
    """TVD of the data's single and pairwise marginals from the exact SCM marginals."""
    if n_rows == 0:
        return TVDSummary(None, None, None, None, None, None, 0)
    singles, joint = exact_tables(network)
    return _tvd(network, codes, n_rows, singles, joint)


def drift_summary(network: Network, codes: Codes, n_rows: int, reference: Codes, n_reference: int) -> TVDSummary:
    """TVD of the data's single and pairwise marginals from those of ``reference`` (e.g. all requested skeletons).

    When the data is a subset of the reference (the accepted records of a run), this is the drift that the
    selection alone causes, free of sampling noise: 0 when nothing is dropped.
    """
    if n_rows == 0 or n_reference == 0:
        return TVDSummary(None, None, None, None, None, None, n_rows)
    cards = {v: network.node(v).card for v in network.names}
    singles = {v: np.bincount(reference[v], minlength=cards[v]) / n_reference for v in network.names}
    joint = {
        (a, b): (
            np.bincount(reference[a].astype(np.intp) * cards[b] + reference[b], minlength=cards[a] * cards[b])
            / n_reference
        ).reshape(cards[a], cards[b])
        for a, b in itertools.combinations(network.names, 2)
    }
    return _tvd(network, codes, n_rows, singles, joint)


def _tvd(
    network: Network,
    codes: Codes,
    n_rows: int,
    singles: Mapping[str, NDArray[np.float64]],
    joint: Mapping[tuple[str, str], NDArray[np.float64]],
) -> TVDSummary:
    cards = {v: network.node(v).card for v in network.names}
    single_tvd = [
        0.5 * float(np.abs(np.bincount(codes[v], minlength=cards[v]) / n_rows - singles[v]).sum())
        for v in network.names
    ]
    pair_tvd = []
    for (a, b), table in joint.items():
        cell = codes[a].astype(np.intp) * cards[b] + codes[b]
        freq = np.bincount(cell, minlength=cards[a] * cards[b]) / n_rows
        pair_tvd.append(0.5 * float(np.abs(freq - table.ravel()).sum()))
    every = single_tvd + pair_tvd
    return TVDSummary(
        mean=float(np.mean(every)),
        max=float(np.max(every)),
        mean_single=float(np.mean(single_tvd)),
        max_single=float(np.max(single_tvd)),
        mean_pair=float(np.mean(pair_tvd)) if pair_tvd else None,
        max_pair=float(np.max(pair_tvd)) if pair_tvd else None,
        n_rows=n_rows,
    )


@lru_cache(maxsize=8)
def exact_tables(
    network: Network,
) -> tuple[dict[str, NDArray[np.float64]], dict[tuple[str, str], NDArray[np.float64]]]:
    """Exact single and pairwise marginals, by variable elimination; cached in memory and on disk."""
    key = hashlib.sha256(json.dumps(network.to_dict(), sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / f"marginals-{key}.npz"
    names = network.names
    wanted = list(itertools.combinations(names, 2))
    try:
        with np.load(path) as stored:
            singles = {v: stored[f"s{i}"] for i, v in enumerate(names)}
            index = {v: i for i, v in enumerate(names)}
            joint = {(a, b): stored[f"p{index[a]}_{index[b]}"] for a, b in wanted}
        return singles, joint
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or unreadable
    singles = exact_marginals(network)
    joint = {}
    if wanted:
        ve = _eliminator(network)
        for a, b in wanted:
            factor = ve.query([a, b], joint=True, show_progress=False)
            order = [list(factor.state_names[v]) for v in factor.variables]
            values = np.asarray(factor.values, dtype=float)
            if list(factor.variables) != [a, b]:
                values = values.T
                order.reverse()
            ia = [order[0].index(s) for s in network.states(a)]
            ib = [order[1].index(s) for s in network.states(b)]
            joint[(a, b)] = values[np.ix_(ia, ib)]
    index = {v: i for i, v in enumerate(names)}
    arrays = {f"s{index[v]}": p for v, p in singles.items()} | {
        f"p{index[a]}_{index[b]}": t for (a, b), t in joint.items()
    }
    _store(path, arrays)
    return singles, joint


def _store(path: os.PathLike[str], arrays: Mapping[str, NDArray[Any]]) -> None:
    try:
        folder = os.fspath(os.path.dirname(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


class Ledger:
    """Integer codes of a run's records, kept batch by batch for the run-level measures (int8 per value)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._parts: dict[str, list[dict[str, NDArray[Any]]]] = {}
        self.rows: dict[str, int] = {}

    def add(self, kind: str, rows: Sequence[Mapping[str, str | None]], variables: Sequence[str]) -> None:
        """Encode ``rows`` (variable -> state, every value a state of its variable) and keep them under ``kind``."""
        part = {}
        for var in variables:
            index = {s: i for i, s in enumerate(self.network.states(var))}
            part[var] = np.array([index[r[var]] for r in rows], dtype=np.int16)  # type: ignore[index]
        self.add_codes(kind, part, len(rows))

    def add_codes(self, kind: str, codes: Mapping[str, NDArray[Any]], n_rows: int) -> None:
        """Keep already-encoded columns under ``kind``."""
        self._parts.setdefault(kind, []).append(dict(codes))
        self.rows[kind] = self.rows.get(kind, 0) + n_rows

    def codes(self, kind: str) -> dict[str, NDArray[Any]]:
        """All codes kept under ``kind``, per variable."""
        parts = self._parts.get(kind, [])
        if not parts:
            return {}
        return {var: np.concatenate([p[var] for p in parts]) for var in parts[0]}
