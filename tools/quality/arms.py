"""Reference generators for checking the privacy attacks: what a leaking and a non-leaking generator look like.

- :func:`laplace_perturbation`: SynthTab-style output perturbation, each training row released with Laplace noise
  on each number. It is called "privacy" in the SynthTab design, but every released row is a training row moved a
  little: the attacks must find it.
- :func:`independent_marginals`: rows drawn column by column from the training table's marginals (numbers from a
  histogram on the 1st to 99th percentiles, uniform within a bin, rounded as the column is), so no row depends on
  any one training row beyond its share in a marginal: the attacks must find no more than chance. The extremes are
  left out on purpose: a marginal that releases the training minimum and maximum releases two rows' values, and
  singling out finds them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _numeric(values: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    present = values.notna() & (values.astype("string") != "")
    if present.any() and bool(numbers[present].notna().all()) and values.nunique() > 10:
        return numbers.astype(float)
    return None


def _decimals(x: np.ndarray) -> int:
    for d in range(0, 6):
        if np.allclose(x, np.round(x, d)):
            return d
    return 6


def laplace_perturbation(train: pd.DataFrame, scale: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Every training row, each number moved by Laplace noise of ``scale`` times its column's range."""
    rng = np.random.default_rng(seed)
    out = train.copy()
    for name in train.columns:
        numbers = _numeric(train[name])
        if numbers is None:
            continue
        x = numbers.to_numpy()
        span = float(np.nanmax(x) - np.nanmin(x)) or 1.0
        noisy = x + rng.laplace(0.0, scale * span, size=x.size)
        out[name] = np.round(noisy, _decimals(x[~np.isnan(x)]))
    return out


def independent_marginals(train: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows with every column drawn independently from the training table's marginal."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for name in train.columns:
        numbers = _numeric(train[name])
        if numbers is None:
            counts = train[name].astype("string").fillna("").value_counts(normalize=True)
            cols[name] = rng.choice(counts.index.to_numpy(dtype=str), size=n, p=counts.to_numpy(dtype=float))
            continue
        x = numbers.dropna().to_numpy()
        # outer edges at the 1st and 99th percentiles: the minimum and maximum are single training rows' values
        # (with them as edges, singling out found those rows: "total_charges >= 8587" held one training row)
        edges = np.unique(np.quantile(x, np.linspace(0.01, 0.99, 21)))
        if edges.size < 2:  # nearly constant between the percentiles
            cols[name] = np.full(n, edges[0])
            continue
        hist = np.histogram(np.clip(x, edges[0], edges[-1]), edges)[0]
        weights = hist / hist.sum()
        b = rng.choice(len(weights), size=n, p=weights)
        cols[name] = np.round(rng.uniform(edges[b], edges[b + 1]), _decimals(x))
    return pd.DataFrame(cols)
