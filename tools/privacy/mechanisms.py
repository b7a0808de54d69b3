"""OpenDP measurements over the table, one constructor per kind of statistic.

Each takes a row-wise function of the table (a histogram, a column, a score vector) with its stability and an
OpenDP mechanism whose scale is found by OpenDP's own ``binary_search_param`` for the planned privacy loss. The
noise is OpenDP's (discrete Gaussian on counts, Gaussian threshold on unknown keys, exponential mechanism for
selection); none is drawn here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import pandas as pd

from causalsynth.tools.privacy.opendp_setup import dp, table_space

Table = pd.DataFrame


def _user_transformation(
    output_domain: Any, output_metric: Any, function: Callable[[Table], Any], stability: Any
) -> Any:
    domain, metric = table_space()
    return dp().t.make_user_transformation(domain, metric, output_domain, output_metric, function, stability)


def noisy_histogram(counts: Callable[[Table], Iterable[int]], rho: float) -> Any:
    """Discrete Gaussian on a histogram: adding or removing one row changes one count by one (L2 stability 1)."""
    lib = dp()
    space = (lib.vector_domain(lib.atom_domain(T=int)), lib.l2_distance(T=int))
    hist = _user_transformation(*space, lambda t: [int(c) for c in counts(t)], lambda d: d)
    scale = _gaussian_scale(rho, vector=True)
    return lib.c.make_approximate(hist >> lib.m.make_gaussian(*space, scale=scale))


def noisy_row_count(rho: float) -> Any:
    """Discrete Gaussian on the number of rows (OpenDP's own count transformation)."""
    lib = dp()
    space = (lib.vector_domain(lib.atom_domain(T=int)), lib.symmetric_distance())
    ones = _user_transformation(*space, lambda t: [1] * len(t), lambda d: d)
    count = lib.t.make_count(*space)
    out_space = (lib.atom_domain(T=int), lib.absolute_distance(T=int))
    scale = _gaussian_scale(rho, vector=False)
    return lib.c.make_approximate(ones >> count >> lib.m.make_gaussian(*out_space, scale=scale))


def thresholded_counts(keys: Callable[[Table], dict[str, int]], rho: float, delta: float, columns: int = 1) -> Any:
    """Counts of keys not known in advance, released only above a noisy threshold (Gaussian threshold, PTR).

    ``columns``: how many columns' keys the map holds (each row holds one key per column). One row changes one
    key's count by one in each: stability (l0, l2, linf) = (k d, ceil(sqrt(k) d), d) for ``k = columns``.
    """
    lib = dp()
    metric = lib.l02inf_distance(lib.absolute_distance(T=int))
    space = (lib.map_domain(lib.atom_domain(T=str), lib.atom_domain(T=int)), metric)
    hist = _user_transformation(*space, keys, lambda d: _threshold_stability(d, columns))

    scale, threshold = _threshold_params(rho, delta, columns)
    return hist >> lib.m.make_gaussian_threshold(*space, scale=scale, threshold=threshold)


def gaussian_scale(rho: float) -> float:
    """The discrete-Gaussian scale :func:`noisy_histogram` uses at ``rho`` (its noise standard deviation, nearly)."""
    return _gaussian_scale(rho, vector=True)


def threshold_scale(rho: float, delta: float, columns: int = 1) -> float:
    """The noise scale :func:`thresholded_counts` uses at ``(rho, delta)`` over ``columns`` columns' keys."""
    return _threshold_params(rho, delta, columns)[0]


def threshold_count(rho: float, delta: float, columns: int = 1) -> int:
    """The noisy count a key needs for :func:`thresholded_counts` to release it at ``(rho, delta)``."""
    return _threshold_params(rho, delta, columns)[1]


def _threshold_stability(d: int, columns: int) -> tuple[int, int, int]:
    """(l0, l2, linf) distance between the key-count maps of tables ``d`` rows apart, ``columns`` keys a row."""
    return d * columns, int(math.ceil(d * math.sqrt(columns) - 1e-9)), d


@lru_cache(maxsize=256)
def _gaussian_scale(rho: float, vector: bool) -> float:
    """The smallest discrete-Gaussian scale whose OpenDP privacy map at sensitivity 1 is within ``rho``."""
    lib = dp()
    space = (
        (lib.vector_domain(lib.atom_domain(T=int)), lib.l2_distance(T=int))
        if vector
        else (lib.atom_domain(T=int), lib.absolute_distance(T=int))
    )
    return float(lib.binary_search_param(lambda s: lib.m.make_gaussian(*space, scale=s), d_in=1, d_out=rho))


@lru_cache(maxsize=256)
def _threshold_params(rho: float, delta: float, columns: int = 1) -> tuple[float, int]:
    """Scale and threshold of the Gaussian threshold mechanism whose OpenDP map is within ``(rho, delta)``."""
    lib = dp()
    space = (
        lib.map_domain(lib.atom_domain(T=str), lib.atom_domain(T=int)),
        lib.l02inf_distance(lib.absolute_distance(T=int)),
    )

    def make(scale: float, threshold: int) -> Any:
        return lib.m.make_gaussian_threshold(*space, scale=scale, threshold=threshold)

    d_in = _threshold_stability(1, columns)
    scale = lib.binary_search(lambda s: make(s, 1 << 30).map(d_in)[0] <= rho, bounds=(1e-6, 1e9))
    threshold = lib.binary_search(lambda t: make(scale, t).map(d_in)[1] <= delta, bounds=(1, 1 << 30))
    return float(scale), int(threshold)


def noisy_argmax(scores: Callable[[Table], Sequence[float]], rho: float, sensitivity: float = 1.0) -> Any:
    """Exponential mechanism (OpenDP's noisy max): the index of a high score.

    ``sensitivity``: the most any score changes when one row is added or removed (the stated stability).
    """
    lib = dp()
    space = (lib.vector_domain(lib.atom_domain(T=float, nan=False)), lib.linf_distance(T=float))
    vec = _user_transformation(*space, lambda t: [float(s) for s in scores(t)], lambda d: float(d) * sensitivity)

    scale = _noisy_max_scale(rho) * sensitivity
    return lib.c.make_approximate(vec >> lib.m.make_noisy_max(*space, lib.zero_concentrated_divergence(), scale=scale))


@lru_cache(maxsize=256)
def _noisy_max_scale(rho: float) -> float:
    lib = dp()
    space = (lib.vector_domain(lib.atom_domain(T=float, nan=False)), lib.linf_distance(T=float))
    return float(
        lib.binary_search_param(
            lambda s: lib.m.make_noisy_max(*space, lib.zero_concentrated_divergence(), scale=s), d_in=1.0, d_out=rho
        )
    )
