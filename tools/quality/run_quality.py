"""Batch quality measures of a run: implied-CI false-positive rate and power, and selection bias (TVD).

Selection bias compares the accepted records with the SCM itself: the total variation distance between every
single-variable and every pairwise marginal of the accepted skeletons and the exact marginal computed by
inference (not another sample). A finite sample is never at distance 0, so the report also gives the same
distance for all requested skeletons: the sampling floor against which the accepted records' drift is read.
On networks with more than :data:`ALL_PAIRS_MAX` pairs of variables, the pairwise marginals are those of the
adjacent pairs (one exact query per edge instead of one per pair); ``pairs`` in the summary says which.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.causal.citests import CISet, CIStatement, adjacencies, ci_set_for, implied_cis, test_statements
from causalsynth.tools.causal.inference import exact_marginals, exact_pairs, store_arrays
from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.sources import cache_dir
from causalsynth.tools.tabular import columns_of

Codes = Mapping[str, NDArray[Any]]
PairSet = Literal["all", "adjacent"]
#: Above this many pairs of variables, the pairwise TVD is measured on the adjacent pairs only.
ALL_PAIRS_MAX = 5_000


@dataclass(frozen=True)
class CISummary:
    """Rejection rates of implied CIs (FPR) and of edge dependences (power) at level ``alpha``."""

    fpr: float | None
    power: float | None
    n_tests: int
    n_untestable: int
    n_rows: int
    ci_set: CISet = "minimal separators"  # which implied CIs were tested (see causalsynth.tools.causal.citests)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"fpr": self.fpr, "power": self.power, "n_tests": self.n_tests, "n_untestable": self.n_untestable,
                "n_rows": self.n_rows, "ci_set": self.ci_set}  # fmt: skip


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
    pairs: PairSet = "all"  # which pairwise marginals were compared

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def pair_set(network: Network) -> PairSet:
    """Which pairwise marginals the TVD compares: all pairs, or the adjacent ones on a large network."""
    n = len(network)
    return "all" if n * (n - 1) // 2 <= ALL_PAIRS_MAX else "adjacent"


def tvd_pairs(network: Network) -> list[tuple[str, str]]:
    """The pairs of :func:`pair_set`, each in declaration order."""
    if pair_set(network) == "all":
        return list(itertools.combinations(network.names, 2))
    index = {v: i for i, v in enumerate(network.names)}
    edges = {(a, b) if index[a] < index[b] else (b, a) for a, b in network.edges()}
    return sorted(edges, key=lambda pair: (index[pair[0]], index[pair[1]]))


def ci_summary(
    network: Network, codes: Codes, n_rows: int, *, observed: Sequence[str] | None = None, alpha: float = 0.05
) -> CISummary:
    """FPR of the implied CIs testable on ``observed`` (all variables if None) and power over its edges."""
    if n_rows == 0:
        return CISummary(None, None, 0, 0, 0)
    keep = frozenset(observed) if observed is not None else None
    cards = {v: network.node(v).card for v in network.names}
    ci_set = ci_set_for(network, keep)
    statements = implied_cis(network, keep, ci_set)
    edges = [s for s in adjacencies(network) if keep is None or (s.x in keep and s.y in keep)]

    def rate(stmts: list[CIStatement]) -> tuple[float | None, int, int]:
        results = test_statements(codes, cards, stmts)
        tested = [r for r in results if r.testable]
        if not tested:
            return None, 0, len(results)
        return sum(r.p_value < alpha for r in tested) / len(tested), len(tested), len(results) - len(tested)

    fpr, n_tests, n_untestable = rate(statements)
    power, _, _ = rate(edges)
    return CISummary(fpr, power, n_tests, n_untestable, n_rows, ci_set)


def tvd_summary(network: Network, codes: Codes, n_rows: int) -> TVDSummary:
    """TVD of the data's single and pairwise marginals from the exact SCM marginals."""
    if n_rows == 0:
        return TVDSummary(None, None, None, None, None, None, 0, pair_set(network))
    singles, joint = exact_tables(network)
    return _tvd(network, codes, n_rows, singles, joint)


def drift_summary(network: Network, codes: Codes, n_rows: int, reference: Codes, n_reference: int) -> TVDSummary:
    """TVD of the data's single and pairwise marginals from those of ``reference`` (e.g. all requested skeletons).

    When the data is a subset of the reference (the accepted records of a run), this is the drift that the
    selection alone causes, free of sampling noise: 0 when nothing is dropped.
    """
    if n_rows == 0 or n_reference == 0:
        return TVDSummary(None, None, None, None, None, None, n_rows, pair_set(network))
    cards = {v: network.node(v).card for v in network.names}
    singles = {v: np.bincount(reference[v], minlength=cards[v]) / n_reference for v in network.names}
    joint = {pair: table / n_reference for pair, table in pair_counts(reference, cards, tvd_pairs(network)).items()}
    return _tvd(network, codes, n_rows, singles, joint)


def no_drift(network: Network, n_rows: int) -> TVDSummary:
    """What :func:`drift_summary` gives when the data are the reference's own rows: every distance 0."""
    pairs = pair_set(network)
    pair = 0.0 if tvd_pairs(network) else None
    return TVDSummary(0.0, 0.0, 0.0, 0.0, pair, pair, n_rows, pairs)


def pair_counts(
    codes: Codes, cards: Mapping[str, int], pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], NDArray[np.float64]]:
    """Joint counts of each pair of coded variables, as ``cards[a] x cards[b]`` tables (one ``bincount`` each)."""
    wide = {v: codes[v].astype(np.intp) for v in dict.fromkeys(v for pair in pairs for v in pair)}
    return {
        (a, b): np.bincount(wide[a] * cards[b] + wide[b], minlength=cards[a] * cards[b])
        .reshape(cards[a], cards[b])
        .astype(np.float64)
        for a, b in pairs
    }


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
    counts = pair_counts(codes, cards, list(joint))
    pair_tvd = [0.5 * float(np.abs(counts[pair] / n_rows - table).sum()) for pair, table in joint.items()]
    every = single_tvd + pair_tvd
    return TVDSummary(
        mean=float(np.mean(every)),
        max=float(np.max(every)),
        mean_single=float(np.mean(single_tvd)),
        max_single=float(np.max(single_tvd)),
        mean_pair=float(np.mean(pair_tvd)) if pair_tvd else None,
        max_pair=float(np.max(pair_tvd)) if pair_tvd else None,
        n_rows=n_rows,
        pairs=pair_set(network),
    )


@lru_cache(maxsize=8)
def exact_tables(
    network: Network,
) -> tuple[dict[str, NDArray[np.float64]], dict[tuple[str, str], NDArray[np.float64]]]:
    """Exact single and pairwise marginals (the pairs of :func:`tvd_pairs`), see ``causalsynth.tools.causal.inference``.

    Cached in memory and on disk.
    """
    path = cache_dir() / f"marginals-{network.digest}-{pair_set(network)}.npz"
    names = network.names
    wanted = tvd_pairs(network)
    try:
        with np.load(path) as stored:
            singles = {v: stored[f"s{i}"] for i, v in enumerate(names)}
            index = {v: i for i, v in enumerate(names)}
            joint = {(a, b): stored[f"p{index[a]}_{index[b]}"] for a, b in wanted}
        return singles, joint
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or unreadable
    singles = exact_marginals(network)
    joint = exact_pairs(network, wanted)
    index = {v: i for i, v in enumerate(names)}
    arrays = {f"s{index[v]}": p for v, p in singles.items()} | {
        f"p{index[a]}_{index[b]}": t for (a, b), t in joint.items()
    }
    store_arrays(path, arrays)
    return singles, joint


class Ledger:
    """Integer codes of a run's records, kept batch by batch for the run-level measures (int8 per value)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._parts: dict[str, list[dict[str, NDArray[Any]]]] = {}
        self.rows: dict[str, int] = {}

    def add(self, kind: str, rows: Sequence[Mapping[str, str | None]], variables: Sequence[str]) -> None:
        """Encode ``rows`` (variable -> state, every value a state of its variable) and keep them under ``kind``."""
        part = {}
        for var, column in zip(variables, columns_of(rows, variables), strict=True):
            index = {s: i for i, s in enumerate(self.network.states(var))}
            part[var] = np.fromiter(map(index.__getitem__, column), np.int16, len(rows))
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
