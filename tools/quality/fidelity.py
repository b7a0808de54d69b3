"""Fidelity: how close a synthetic table's distribution is to the real one's.

Per column: total variation distance (categories), Wasserstein-1 normalised by the real range and the
Kolmogorov-Smirnov statistic (numbers), KL divergence of the real distribution from the synthetic one (numbers on
the real table's 5-quantile bins), coverage of real categories and of real bins, range violations. Over all pairs
of columns: the TVD of their joint distribution on a fixed discretisation (categories as they are, numbers in the
real table's 5-quantile bins), and the difference of the association matrices (Cramer's V on the same
discretisation; Pearson for number pairs).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from causalsynth.tools.quality.frame import Column, Encoded, Frame

KL_SMOOTHING = 0.5  # add-half pseudo-counts keep the KL finite when the synthetic data misses a bin


def _dist(codes: NDArray[np.int64], card: int) -> NDArray[np.float64]:
    counts = np.bincount(codes, minlength=card).astype(float)
    return counts / max(counts.sum(), 1.0)


def _kl(p_counts: NDArray[np.float64], q_counts: NDArray[np.float64]) -> float:
    p = (p_counts + KL_SMOOTHING) / (p_counts.sum() + KL_SMOOTHING * p_counts.size)
    q = (q_counts + KL_SMOOTHING) / (q_counts.sum() + KL_SMOOTHING * q_counts.size)
    return float(np.sum(p * np.log(p / q)))


def column_fidelity(frame: Frame, real: Encoded, synth: Encoded) -> list[dict[str, Any]]:
    """One row of measures per measured column."""
    out: list[dict[str, Any]] = []
    for col in frame.measured:
        card = frame.card(col)
        rc = np.bincount(real.codes[col.name], minlength=card).astype(float)
        sc = np.bincount(synth.codes[col.name], minlength=card).astype(float)
        row: dict[str, Any] = {"column": col.name, "kind": col.kind, "kl": _kl(rc, sc)}
        if col.kind == "categorical":
            k = len(col.categories)
            p, q = rc / rc.sum(), sc / max(sc.sum(), 1)
            present = sc[:k] > 0
            row |= {
                "tvd": 0.5 * float(np.abs(p - q).sum()),
                "coverage": float(present[rc[:k] > 0].mean()) if k else 1.0,
                "missed_categories": [c for c, hit in zip(col.categories, present, strict=True) if not hit][:20],
                "violations": float(q[k]),  # share of synthetic rows with a category the real table lacks
                "unseen_categories": sorted(set(synth.labels[col.name][synth.codes[col.name] == k]))[:20],
            }
        else:
            x, y = real.numbers[col.name], synth.numbers[col.name]
            ks = stats.ks_2samp(x, y) if y.size else None
            covered = sc > 0
            row |= {
                "w1": float(stats.wasserstein_distance(x, y) / col.span) if y.size else None,
                "ks": float(ks.statistic) if ks is not None else None,
                "coverage": float(covered[rc > 0].mean()),
                "range_coverage": _range_coverage(col, y),
                "violations": float(np.mean((y < col.lo) | (y > col.hi))) if y.size else 0.0,
            }
        out.append(row)
    return out


def _range_coverage(col: Column, y: NDArray[np.float64]) -> float:
    """Share of the real range that the synthetic values span."""
    if not y.size or col.hi <= col.lo:
        return 1.0
    lo, hi = max(col.lo, float(y.min())), min(col.hi, float(y.max()))
    return max(0.0, hi - lo) / (col.hi - col.lo)


def _joint(a: NDArray[np.int64], b: NDArray[np.int64], ca: int, cb: int) -> NDArray[np.float64]:
    counts = np.bincount(a * cb + b, minlength=ca * cb).astype(float).reshape(ca, cb)
    return counts / max(counts.sum(), 1.0)


def _cramers_v(joint: NDArray[np.float64], n: int) -> float:
    """Bias-uncorrected Cramer's V of a joint distribution over ``n`` rows."""
    rows, cols = joint.sum(axis=1), joint.sum(axis=0)
    keep_r, keep_c = rows > 0, cols > 0
    j = joint[np.ix_(keep_r, keep_c)]
    r, c = rows[keep_r], cols[keep_c]
    k = min(j.shape) - 1
    if k < 1:
        return 0.0
    expected = np.outer(r, c)
    chi2 = float(np.sum((j - expected) ** 2 / expected))
    return float(np.sqrt(chi2 / k))


def pair_fidelity(frame: Frame, real: Encoded, synth: Encoded) -> dict[str, Any]:
    """2-way TVD and association differences over every pair of measured columns."""
    cols = frame.measured
    names = [c.name for c in cols]
    m = len(cols)
    tvd = np.zeros((m, m))
    assoc_real = np.eye(m)
    assoc_synth = np.eye(m)
    for i, j in itertools.combinations(range(m), 2):
        a, b = cols[i], cols[j]
        ca, cb = frame.card(a), frame.card(b)
        pr = _joint(real.codes[a.name], real.codes[b.name], ca, cb)
        ps = _joint(synth.codes[a.name], synth.codes[b.name], ca, cb)
        tvd[i, j] = tvd[j, i] = 0.5 * float(np.abs(pr - ps).sum())
        assoc_real[i, j] = assoc_real[j, i] = _cramers_v(pr, real.n)
        assoc_synth[i, j] = assoc_synth[j, i] = _cramers_v(ps, synth.n) if synth.n else 0.0
    upper = np.triu_indices(m, 1)
    diff = np.abs(assoc_real - assoc_synth)
    numeric = [i for i, c in enumerate(cols) if c.kind == "numeric"]
    pearson: dict[str, Any] | None = None
    if len(numeric) >= 2 and synth.n > 1:
        xr = np.column_stack([real.numbers[cols[i].name] for i in numeric])
        xs = np.column_stack([synth.numbers[cols[i].name] for i in numeric])
        with np.errstate(invalid="ignore", divide="ignore"):
            cr, cs = np.nan_to_num(np.corrcoef(xr, rowvar=False)), np.nan_to_num(np.corrcoef(xs, rowvar=False))
        pu = np.triu_indices(len(numeric), 1)
        pdiff = np.abs(cr - cs)[pu]
        pearson = {"columns": [cols[i].name for i in numeric], "mean_abs_diff": float(pdiff.mean()),
                   "max_abs_diff": float(pdiff.max())}  # fmt: skip
    return {
        "columns": names,
        "discretisation": "categories as they are (unseen synthetic ones pooled); numbers in 5 real-quantile bins",
        "tvd_matrix": tvd.round(4).tolist(),
        "tvd_mean": float(tvd[upper].mean()) if m > 1 else None,
        "tvd_max": float(tvd[upper].max()) if m > 1 else None,
        "association_real": assoc_real.round(4).tolist(),
        "association_synth": assoc_synth.round(4).tolist(),
        "association_mean_abs_diff": float(diff[upper].mean()) if m > 1 else None,
        "association_max_abs_diff": float(diff[upper].max()) if m > 1 else None,
        "pearson": pearson,
    }


def fidelity(frame: Frame, real: Encoded, synth: Encoded) -> dict[str, Any]:
    """Column and pair measures, and their summary."""
    columns = column_fidelity(frame, real, synth)
    pairs = pair_fidelity(frame, real, synth)
    tvds = [c["tvd"] for c in columns if c["kind"] == "categorical"]
    w1s = [c["w1"] for c in columns if c["kind"] == "numeric" and c["w1"] is not None]
    kss = [c["ks"] for c in columns if c["kind"] == "numeric" and c["ks"] is not None]
    return {
        "summary": {
            "mean_tvd": float(np.mean(tvds)) if tvds else None,
            "mean_w1": float(np.mean(w1s)) if w1s else None,
            "mean_ks": float(np.mean(kss)) if kss else None,
            "mean_kl": float(np.mean([c["kl"] for c in columns])) if columns else None,
            "pair_tvd_mean": pairs["tvd_mean"],
            "pair_tvd_max": pairs["tvd_max"],
            "association_mean_abs_diff": pairs["association_mean_abs_diff"],
            "coverage": float(np.mean([c["coverage"] for c in columns])) if columns else None,
            "violations": float(np.mean([c["violations"] for c in columns])) if columns else None,
        },
        "columns": columns,
        "pairs": pairs,
    }
