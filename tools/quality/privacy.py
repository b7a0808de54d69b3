"""Privacy attacks on a synthetic table, each against its baseline, with a confidence interval.

The holdout (real rows the generator never saw) is what makes a baseline possible: a generator that learned the
population and not its training rows is as close to a holdout row as to a training row. So every measure compares
the training rows with as many holdout rows (the training table is subsampled to the holdout's size where sizes
would bias the comparison):

- exact matches: share of synthetic rows equal to some training row against the share equal to some holdout row;
- distance to closest record (DCR): synthetic-to-train against holdout-to-train, their 5th percentiles, the share
  of synthetic rows nearer to the training rows than to the holdout (0.5 is chance) and the share nearer to a
  training row than the holdout's own 5th percentile;
- membership inference: a distance attack (a candidate is called a member the closer it lies to a synthetic row)
  and a DOMIAS-style attack (the ratio of the synthetic density to a reference density at the candidate); AUC over
  training rows (members) and holdout rows (non-members), 0.5 meaning no leakage;
- the three risks of anonymeter (singling out, linkability, attribute inference): an attack guided by the synthetic
  rows is scored on training targets and on holdout (control) targets; the risk is the excess success on the
  training targets, (attack - control) / (1 - control), 0 meaning no leakage. anonymeter itself cannot be installed
  beside this package (its numpy < 1.27 and pyarrow < 22 pins), so its published method is reimplemented here;
  ``bench/privacy.py`` runs the real anonymeter from a venv of its own for comparison.
- text columns: synthetic texts that repeat a run of ``ngram`` tokens from a training text, against holdout texts
  that do (shared boilerplate is not a leak).

Distances are Euclidean in :meth:`Frame.embed` (numbers by the real range, each differing category counts 1).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from causalsynth.tools.quality.frame import Encoded, Frame

Z95 = 1.959963984540054
CHUNK = 2048


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 %)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def _prop(successes: float, n: int) -> dict[str, Any]:
    low, high = wilson(successes, n)
    return {"value": successes / n if n else None, "low": low, "high": high, "n": n}


def nearest(queries: NDArray[np.float64], refs: NDArray[np.float64], k: int = 1) -> NDArray[np.float64]:
    """Distances from each query to its ``k`` nearest reference points (sorted), by chunks of BLAS products."""
    out = np.empty((len(queries), k))
    if len(refs) == 0:
        out.fill(np.inf)
        return out
    ref_sq = np.einsum("ij,ij->i", refs, refs)
    for start in range(0, len(queries), CHUNK):
        q = queries[start : start + CHUNK]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * q @ refs.T
        np.maximum(d2, 0.0, out=d2)
        if k == 1:
            out[start : start + CHUNK, 0] = np.sqrt(d2.min(axis=1))
            continue
        part = np.partition(d2, min(k, d2.shape[1]) - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
        out[start : start + CHUNK] = np.sqrt(np.sort(part, axis=1)[:, :k])
    return out


def nearest_index(queries: NDArray[np.float64], refs: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Indices of each query's ``k`` nearest reference points."""
    out = np.empty((len(queries), k), dtype=np.int64)
    ref_sq = np.einsum("ij,ij->i", refs, refs)
    for start in range(0, len(queries), CHUNK):
        q = queries[start : start + CHUNK]
        d2 = ref_sq[None, :] - 2.0 * q @ refs.T  # the query's own norm does not change the order
        if k == 1:
            out[start : start + CHUNK, 0] = d2.argmin(axis=1)
        elif k < d2.shape[1]:
            out[start : start + CHUNK] = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            out[start : start + CHUNK] = np.argsort(d2, axis=1)[:, :k]
    return out


def _auc_ci(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """Hanley-McNeil 95 % interval of an AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    half = Z95 * float(np.sqrt(max(var, 1e-12)))
    return (max(0.0, auc - half), min(1.0, auc + half))


def _roc(members: NDArray[np.float64], others: NDArray[np.float64]) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.r_[np.ones(members.size), np.zeros(others.size)]
    s = np.r_[members, others]
    auc = float(roc_auc_score(y, s))
    fpr, tpr, _ = roc_curve(y, s)
    keep = np.unique(np.linspace(0, fpr.size - 1, min(fpr.size, 200)).astype(int))
    low, high = _auc_ci(auc, members.size, others.size)
    return {"auc": auc, "low": low, "high": high, "n_members": int(members.size), "n_non_members": int(others.size),
            "roc": {"fpr": fpr[keep].round(4).tolist(), "tpr": tpr[keep].round(4).tolist()}}  # fmt: skip


# -- exact matches and distances ------------------------------------------------------------------------------
def exact_matches(
    keys_synth: NDArray[Any],
    keys_train_all: NDArray[Any],
    keys_train: NDArray[Any],
    keys_hold: NDArray[Any],
    rng: np.random.Generator,
    n_boot: int = 200,
) -> dict[str, Any]:
    """Synthetic rows equal to a training row; the excess is against a holdout row, training at the holdout's size.

    The excess's interval is a bootstrap over the synthetic rows and both reference sets: which rare rows a
    reference set happens to hold moves the match rates more than the synthetic rows do.
    """
    copies = np.isin(keys_synth, keys_train_all)
    in_train = np.isin(keys_synth, keys_train)
    in_hold = np.isin(keys_synth, keys_hold)
    n = keys_synth.size
    boots = np.empty(n_boot)
    for b in range(n_boot):
        s = keys_synth[rng.integers(n, size=n)]
        t = keys_train[rng.integers(keys_train.size, size=keys_train.size)]
        h = keys_hold[rng.integers(keys_hold.size, size=keys_hold.size)]
        boots[b] = np.isin(s, t).mean() - np.isin(s, h).mean()
    # centre the bootstrap spread on the observed difference (resampling a reference set thins its distinct rows)
    diff = float(in_train.mean() - in_hold.mean())
    lo, hi = np.percentile(boots - boots.mean(), [2.5, 97.5])
    return {
        "copies_of_training_rows": _prop(float(copies.sum()), n),
        "train": _prop(float(in_train.sum()), n),
        "holdout": _prop(float(in_hold.sum()), n),
        "excess": {"value": diff, "low": diff + float(lo), "high": diff + float(hi)},
    }


def nearest_k(
    queries: NDArray[np.float64], refs: NDArray[np.float64], k: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distances and indices of each query's ``k`` nearest reference points, nearest first."""
    k = min(k, len(refs))
    dist = np.empty((len(queries), k))
    idx = np.empty((len(queries), k), dtype=np.int64)
    ref_sq = np.einsum("ij,ij->i", refs, refs)
    for start in range(0, len(queries), CHUNK):
        q = queries[start : start + CHUNK]
        d2 = np.maximum(np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * q @ refs.T, 0.0)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.argsort(d2, axis=1)
        pd2 = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd2, axis=1)
        idx[start : start + CHUNK] = np.take_along_axis(part, order, axis=1)
        dist[start : start + CHUNK] = np.sqrt(np.take_along_axis(pd2, order, axis=1))
    return dist, idx


def _share_closer(dist: NDArray[np.float64], in_a: NDArray[np.bool_]) -> float:
    """Share of rows whose nearest point in set A is nearer than their nearest in set B (ties half)."""
    rows = np.arange(len(dist))
    has_a, has_b = in_a.any(axis=1), (~in_a).any(axis=1)
    d_a = np.where(has_a, dist[rows, in_a.argmax(axis=1)], np.inf)
    d_b = np.where(has_b, dist[rows, (~in_a).argmax(axis=1)], np.inf)
    return float(np.mean((d_a < d_b) + 0.5 * np.isclose(d_a, d_b)))


def dcr(
    x_synth: NDArray[np.float64],
    x_train: NDArray[np.float64],
    x_hold: NDArray[np.float64],
    x_train_same_size: NDArray[np.float64],
    rng: np.random.Generator,
    n_null: int = 200,
) -> dict[str, Any]:
    """Distance to closest record, synthetic and holdout rows against the training rows.

    The share of synthetic rows nearer to the training rows than to the holdout (both of the holdout's size) is
    read against random re-splits of those two sets into halves of the same sizes: which set happens to hold rows
    near a synthetic row moves the share more than the synthetic rows do, so a binomial interval would be too
    narrow (it called independent marginals a leak). The interval is the observed share minus the re-splits' spread.
    """
    synth_train = nearest(x_synth, x_train)[:, 0]
    hold_train = nearest(x_hold, x_train)[:, 0]
    pooled = np.vstack([x_train_same_size, x_hold])
    n_a = len(x_train_same_size)
    dist, idx = nearest_k(x_synth, pooled, 24)
    share = _share_closer(dist, idx < n_a)
    null = np.empty(n_null)
    for r in range(n_null):
        is_a = np.zeros(len(pooled), dtype=bool)
        is_a[rng.permutation(len(pooled))[:n_a]] = True
        null[r] = _share_closer(dist, is_a[idx])
    lo, hi = np.percentile(null - null.mean(), [2.5, 97.5])
    p5 = float(np.percentile(hold_train, 5))
    below_synth = float(np.sum(synth_train < p5 - 1e-9))
    below_hold = float(np.sum(hold_train < p5 - 1e-9))
    return {
        "synth_to_train_p5": float(np.percentile(synth_train, 5)),
        "holdout_to_train_p5": p5,
        "synth_to_train_median": float(np.median(synth_train)),
        "holdout_to_train_median": float(np.median(hold_train)),
        "share_closer_to_train": {
            "value": share,
            "low": share - float(hi),
            "high": share - float(lo),
            "n": int(len(x_synth)),
            "interval": f"{n_null} no-leak re-splits",
        },  # fmt: skip
        "share_below_holdout_p5": _prop(below_synth, synth_train.size),
        "holdout_share_below_holdout_p5": _prop(below_hold, hold_train.size),
        "histogram": _hist(synth_train, hold_train),
    }


def _hist(a: NDArray[np.float64], b: NDArray[np.float64]) -> dict[str, Any]:
    top = float(np.percentile(np.r_[a, b], 99)) or 1.0
    edges = np.linspace(0, top, 31)
    return {"edges": edges.round(4).tolist(),
            "synth": (np.histogram(np.clip(a, 0, top), edges)[0] / max(a.size, 1)).round(5).tolist(),
            "holdout": (np.histogram(np.clip(b, 0, top), edges)[0] / max(b.size, 1)).round(5).tolist()}  # fmt: skip


# -- membership inference ----------------------------------------------------------------------------------
def _kde_log_density(points: NDArray[np.float64], data: NDArray[np.float64], h: float) -> NDArray[np.float64]:
    """Gaussian-kernel log density (up to the same constant for any data of the same dimension) at ``points``."""
    data_sq = np.einsum("ij,ij->i", data, data)
    out = np.empty(len(points))
    for start in range(0, len(points), 512):
        q = points[start : start + 512]
        d2 = np.maximum(np.einsum("ij,ij->i", q, q)[:, None] + data_sq[None, :] - 2.0 * q @ data.T, 0.0)
        out[start : start + 512] = logsumexp(-d2 / (2 * h * h), axis=1) - np.log(len(data))
    return out


def membership(x_synth: NDArray[np.float64], x_members: NDArray[np.float64], x_non: NDArray[np.float64],
               x_reference: NDArray[np.float64]) -> dict[str, Any]:  # fmt: skip
    """Distance attack and DOMIAS-style density-ratio attack; AUC over members vs non-members."""
    distance = _roc(-nearest(x_members, x_synth)[:, 0], -nearest(x_non, x_synth)[:, 0])
    # bandwidth: the median distance from a reference row to its nearest other reference row (scale of the data)
    # a narrow kernel: a tenth of the median distance between a reference row and its nearest other one
    within = nearest(x_reference, x_reference, k=2)[:, 1]
    h = 0.1 * float(np.median(within[within > 0])) if np.any(within > 0) else 0.1
    h = max(h, 0.01)

    def ratio(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return _kde_log_density(x, x_synth, h) - _kde_log_density(x, x_reference, h)

    domias = _roc(ratio(x_members), ratio(x_non))
    domias["bandwidth"] = h
    domias["n_reference"] = int(len(x_reference))
    return {"distance": distance, "domias": domias}


# -- anonymeter's three risks --------------------------------------------------------------------------------
def _risk(attack_ok: float, n_attack: int, control_ok: float, n_control: int, baseline_ok: float) -> dict[str, Any]:
    a_lo, a_hi = wilson(attack_ok, n_attack)
    c_lo, c_hi = wilson(control_ok, n_control)
    a, c = attack_ok / max(n_attack, 1), control_ok / max(n_control, 1)

    def excess(att: float, ctl: float) -> float:
        return (att - ctl) / (1 - ctl) if ctl < 1 else 0.0

    return {
        "risk": excess(a, c),
        "low": excess(a_lo, c_hi),
        "high": excess(a_hi, c_lo),
        "attack_rate": a,
        "control_rate": c,
        "baseline_rate": baseline_ok / max(n_attack, 1),
        "n_attacks": n_attack,
    }


def _queries_from(frame: Frame, synth: Encoded, rng: np.random.Generator, n: int, n_cols: int) -> list[list[tuple]]:
    """Conjunctions of ``n_cols`` predicates read off random synthetic rows (anonymeter's multivariate mode)."""
    cols = frame.measured
    out: list[list[tuple]] = []
    for _ in range(n):
        row = int(rng.integers(synth.n))
        chosen = rng.choice(len(cols), size=min(n_cols, len(cols)), replace=False)
        query: list[tuple] = []
        for ci in chosen:
            col = cols[int(ci)]
            if col.kind == "categorical":
                query.append((col.name, "==", int(synth.codes[col.name][row])))
            else:
                v = float(synth.numbers[col.name][row])
                query.append((col.name, ">=" if v >= col.median else "<=", v))
        out.append(query)
    return out


def _random_queries(frame: Frame, train: Encoded, rng: np.random.Generator, n: int, n_cols: int) -> list[list[tuple]]:
    """The baseline attacker's queries: values drawn uniformly from each column's real domain."""
    cols = frame.measured
    out: list[list[tuple]] = []
    for _ in range(n):
        chosen = rng.choice(len(cols), size=min(n_cols, len(cols)), replace=False)
        query: list[tuple] = []
        for ci in chosen:
            col = cols[int(ci)]
            if col.kind == "categorical":
                query.append((col.name, "==", int(rng.integers(max(len(col.categories), 1)))))
            else:
                v = float(rng.uniform(col.lo, col.hi))
                query.append((col.name, ">=" if v >= col.median else "<=", v))
        out.append(query)
    return out


def _matches(query: list[tuple], enc: Encoded) -> NDArray[np.bool_]:
    mask = np.ones(enc.n, dtype=bool)
    for name, op, v in query:
        values = enc.codes[name] if op == "==" else enc.numbers[name]
        mask &= (values == v) if op == "==" else (values >= v) if op == ">=" else (values <= v)
    return mask


def singling_out(frame: Frame, synth: Encoded, train: Encoded, hold: Encoded, rng: np.random.Generator,
                 n_attacks: int, n_null: int = 200) -> dict[str, Any]:  # fmt: skip
    """Predicates that single out one synthetic row: how often do they single out a training row vs a holdout row."""
    n_cols = min(4, len(frame.measured))
    queries: list[list[tuple]] = []
    seen: set[frozenset[tuple]] = set()
    tries = 0
    # keep distinct queries that single out a synthetic row (repeats of one query are not independent attacks)
    while len(queries) < n_attacks and tries < 20 * n_attacks:
        batch = _queries_from(frame, synth, rng, n_attacks, n_cols)
        tries += n_attacks
        for q in batch:
            key = frozenset(q)
            if len(queries) < n_attacks and key not in seen and int(_matches(q, synth).sum()) == 1:
                seen.add(key)
                queries.append(q)
    if not queries:
        return {"risk": None, "note": "no predicate singles out a synthetic row"}
    baseline = _random_queries(frame, train, rng, len(queries), n_cols)
    m_train = np.stack([_matches(q, train) for q in queries])
    m_hold = np.stack([_matches(q, hold) for q in queries])
    attack_ok = int((m_train.sum(axis=1) == 1).sum())
    control_ok = int((m_hold.sum(axis=1) == 1).sum())
    baseline_ok = sum(int(_matches(q, train).sum()) == 1 for q in baseline)
    out = _risk(attack_ok, len(queries), control_ok, len(queries), baseline_ok)
    # The queries are scored on the whole training table (a subsample would lose the row a query was drawn from)
    # and on the smaller holdout, and a predicate is less often unique in a smaller table: the raw risk is biased.
    # Queries drawn from the same rare synthetic rows also single out the same cells, so their outcomes are not
    # independent and a binomial interval is far too narrow. Both are read off random re-splits of the training and
    # holdout rows into sets of the same two sizes (no leak by construction): the risk reported is the raw risk
    # less the re-splits' mean, with their 95 % spread as its interval.
    pooled = np.hstack([m_train, m_hold])
    n_t = m_train.shape[1]
    null = np.empty(n_null)
    for r in range(n_null):
        order = rng.permutation(pooled.shape[1])
        a = float((pooled[:, order[:n_t]].sum(axis=1) == 1).mean())
        c = float((pooled[:, order[n_t:]].sum(axis=1) == 1).mean())
        null[r] = (a - c) / (1 - c) if c < 1 else 0.0
    lo, hi = np.percentile(null - null.mean(), [2.5, 97.5])
    out["risk_raw"] = out["risk"]
    out["risk"] = out["risk_raw"] - float(null.mean())
    out["low"], out["high"] = out["risk"] - float(hi), min(1.0, out["risk"] - float(lo))
    out["interval"] = f"raw risk less the mean of {n_null} no-leak re-splits, their 95 % spread"
    return out | {"n_columns_per_query": n_cols}


def linkability(x_synth_a: NDArray[np.float64], x_synth_b: NDArray[np.float64], targets: tuple, controls: tuple,
                rng: np.random.Generator, k: int = 5) -> dict[str, Any]:  # fmt: skip
    """An attacker holding two halves of a record (columns A, B) links them through the synthetic rows.

    Success: among the ``k`` synthetic rows nearest on A and the ``k`` nearest on B, one is the same row.
    """

    def hits(a: NDArray[np.float64], b: NDArray[np.float64]) -> int:
        ia, ib = nearest_index(a, x_synth_a, k), nearest_index(b, x_synth_b, k)
        return sum(bool(set(r1) & set(r2)) for r1, r2 in zip(ia.tolist(), ib.tolist(), strict=True))

    n = len(targets[0])
    ra = rng.integers(len(x_synth_a), size=(n, k))
    rb = rng.integers(len(x_synth_a), size=(n, k))
    baseline_ok = sum(bool(set(r1) & set(r2)) for r1, r2 in zip(ra.tolist(), rb.tolist(), strict=True))
    return _risk(hits(*targets), n, hits(*controls), len(controls[0]), baseline_ok) | {"k": k}


def inference(frame: Frame, synth: Encoded, train_t: Encoded, hold_t: Encoded, secrets: list[str],
              rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
    """For each secret column: guess it as the value of the nearest synthetic row on every other column."""
    per: dict[str, Any] = {}
    pooled = [0.0, 0.0, 0.0, 0]
    for secret in secrets:
        col = frame.by_name[secret]
        keep = [c for c in frame.measured if c.name != secret]
        sub = _SubFrame(frame, keep)
        xs, xt, xh = sub.embed(synth), sub.embed(train_t), sub.embed(hold_t)

        def ok(x: NDArray[np.float64], enc: Encoded) -> NDArray[np.bool_]:
            guess_row = nearest_index(x, xs, 1)[:, 0]
            if col.kind == "categorical":
                return synth.codes[secret][guess_row] == enc.codes[secret]
            truth = enc.numbers[secret]
            return np.abs(synth.numbers[secret][guess_row] - truth) <= 0.05 * col.span

        attack, control = ok(xt, train_t), ok(xh, hold_t)
        rows = rng.integers(synth.n, size=train_t.n)  # baseline: the secret of a random synthetic row
        if col.kind == "categorical":
            base = synth.codes[secret][rows] == train_t.codes[secret]
        else:
            base = np.abs(synth.numbers[secret][rows] - train_t.numbers[secret]) <= 0.05 * col.span
        per[secret] = _risk(float(attack.sum()), attack.size, float(control.sum()), control.size, float(base.sum()))
        pooled[0] += float(attack.sum())
        pooled[1] += float(control.sum())
        pooled[2] += float(base.sum())
        pooled[3] += attack.size
    worst = max(per, key=lambda s: per[s]["risk"]) if per else None
    # the summary pools every secret's guesses (the worst single secret would be a maximum of noisy estimates)
    summary = _risk(pooled[0], int(pooled[3]), pooled[1], int(pooled[3]), pooled[2]) if per else {"risk": None}
    return summary | {"worst_secret": worst, "per_secret": per}


class _SubFrame:
    """A frame restricted to some columns, for embedding."""

    def __init__(self, frame: Frame, columns: list[Any]) -> None:
        self._frame = frame
        self._cols = columns

    def embed(self, enc: Encoded) -> NDArray[np.float64]:
        saved = self._frame.measured
        self._frame.measured = self._cols
        try:
            return self._frame.embed(enc)
        finally:
            self._frame.measured = saved


def subset(enc: Encoded, rows: NDArray[np.int64]) -> Encoded:
    """The encoded table restricted to ``rows``."""
    return Encoded(
        n=len(rows),
        codes={k: v[rows] for k, v in enc.codes.items()},
        numbers={k: v[rows] for k, v in enc.numbers.items()},
        labels={k: v.iloc[rows].reset_index(drop=True) for k, v in enc.labels.items()},
        texts={k: [v[i] for i in rows] for k, v in enc.texts.items()},
    )


# -- text ------------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\w+")


def _ngrams(text: str, n: int) -> set[int]:
    tokens = _TOKEN.findall(text.lower())
    return {hash(tuple(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


def text_copies(synth: list[str], train: list[str], hold: list[str] | None, n: int = 12) -> dict[str, Any]:
    """Texts that repeat a run of ``n`` tokens of a training text (synthetic vs holdout texts)."""
    seen: set[int] = set()
    for t in train:
        seen |= _ngrams(t, n)
    s_hits = sum(bool(_ngrams(t, n) & seen) for t in synth)
    out: dict[str, Any] = {"ngram": n, "synth": _prop(float(s_hits), len(synth))}
    if hold is not None:
        h_hits = sum(bool(_ngrams(t, n) & seen) for t in hold)
        out["holdout"] = _prop(float(h_hits), len(hold))
    return out


# -- all of it ----------------------------------------------------------------------------------------------------
def privacy(frame: Frame, synth: Encoded, train: Encoded, hold: Encoded, *, seed: int = 0,
            n_attacks: int = 500, max_secrets: int = 8, ngram: int = 12) -> dict[str, Any]:  # fmt: skip
    """Every attack, seeded; the training table is subsampled to the holdout's size where sizes matter."""
    rng = np.random.default_rng(seed)
    n_h = hold.n
    same = np.sort(rng.choice(train.n, size=min(n_h, train.n), replace=False))
    xs, xt, xh = frame.embed(synth), frame.embed(train), frame.embed(hold)
    xt_same = xt[same]
    keys_train = frame.row_keys(train)
    out: dict[str, Any] = {
        "n_synth": synth.n, "n_train": train.n, "n_holdout": n_h,
        "exact_match": exact_matches(
            frame.row_keys(synth), keys_train, keys_train[same], frame.row_keys(hold), np.random.default_rng((seed, 1))
        ),
        "dcr": dcr(xs, xt, xh, xt_same, np.random.default_rng((seed, 5))),
    }  # fmt: skip
    # membership: half of the holdout is the attacker's reference sample, the other half the non-members
    order = rng.permutation(n_h)
    ref_rows, non_rows = order[: n_h // 2], order[n_h // 2 :]
    mem_rows = rng.choice(train.n, size=min(len(non_rows), train.n), replace=False)
    out["membership"] = membership(xs, xt[mem_rows], xh[non_rows], xh[ref_rows])
    # anonymeter's risks, on as many training targets as control targets
    n_att = int(min(n_attacks, n_h, train.n))
    t_rows = rng.choice(train.n, size=n_att, replace=False)
    c_rows = rng.choice(n_h, size=n_att, replace=False)
    tgt, ctl = subset(train, t_rows), subset(hold, c_rows)
    # each attack draws from a stream of its own: changing one attack does not move the others
    out["singling_out"] = singling_out(frame, synth, train, hold, np.random.default_rng((seed, 2)), n_att)
    cols = list(frame.measured)
    if len(cols) >= 2:
        link_rng = np.random.default_rng((seed, 3))
        perm = link_rng.permutation(len(cols))
        half_a, half_b = [cols[i] for i in perm[: len(cols) // 2]], [cols[i] for i in perm[len(cols) // 2 :]]
        fa, fb = _SubFrame(frame, half_a), _SubFrame(frame, half_b)
        out["linkability"] = linkability(
            fa.embed(synth), fb.embed(synth), (fa.embed(tgt), fb.embed(tgt)), (fa.embed(ctl), fb.embed(ctl)), link_rng
        ) | {"columns_a": [c.name for c in half_a], "columns_b": [c.name for c in half_b]}
        inf_rng = np.random.default_rng((seed, 4))
        secrets = [cols[i].name for i in inf_rng.permutation(len(cols))[:max_secrets]]
        out["inference"] = inference(frame, synth, tgt, ctl, secrets, inf_rng)
    texts = {}
    for name in train.texts:
        if name in synth.texts:
            texts[name] = text_copies(synth.texts[name], train.texts[name], hold.texts.get(name), ngram)
    out["text_copies"] = texts
    out["verdict"] = verdict(out)
    return out


def verdict(p: dict[str, Any]) -> dict[str, Any]:
    """Which attacks find more than chance: an interval that excludes its no-leak value."""
    found: list[str] = []
    if p["exact_match"]["excess"]["low"] > 0:
        found.append("exact_match")
    if p["dcr"]["share_closer_to_train"]["low"] > 0.5:
        found.append("dcr_share_closer_to_train")
    for name in ("distance", "domias"):
        if p["membership"][name]["low"] > 0.5:
            found.append(f"membership_{name}")
    for name in ("singling_out", "linkability", "inference"):
        r = p.get(name) or {}
        if r.get("low") is not None and r["low"] > 0:
            found.append(name)
    e = p["exact_match"]
    copied = e["excess"]["low"] > 0 and e["copies_of_training_rows"]["value"] - e["holdout"]["value"] >= 0.5
    # high: a strong signal, not just one above chance: a membership AUC of 0.8, half the rows copied beyond the
    # holdout's own matches, 60 % of the rows nearer the training rows than the holdout, or a risk of at least 0.2
    strong_risk = any((p.get(n) or {}).get("low") is not None and p[n]["low"] >= 0.2
                      for n in ("singling_out", "linkability", "inference"))  # fmt: skip
    high = (p["membership"]["distance"]["auc"] >= 0.8 or p["membership"]["domias"]["auc"] >= 0.8 or copied
            or p["dcr"]["share_closer_to_train"]["low"] >= 0.6 or strong_risk)  # fmt: skip
    level = "high" if high else "elevated" if found else "no more than chance"
    return {"leaks": found, "level": level}


def chance_covered(p: dict[str, Any]) -> dict[str, bool]:
    """For each attack, whether its interval covers the no-leak value (used by tests and the bench)."""
    cover = {
        "exact_match": p["exact_match"]["excess"]["low"] <= 0 <= p["exact_match"]["excess"]["high"] + 1e-12,
        "dcr_share": p["dcr"]["share_closer_to_train"]["low"] <= 0.5 <= p["dcr"]["share_closer_to_train"]["high"],
        "membership_distance": p["membership"]["distance"]["low"] <= 0.5 <= p["membership"]["distance"]["high"],
        "membership_domias": p["membership"]["domias"]["low"] <= 0.5 <= p["membership"]["domias"]["high"],
    }
    for name in ("singling_out", "linkability", "inference"):
        r = p.get(name) or {}
        if r.get("low") is not None:
            cover[name] = r["low"] <= 0 <= r["high"]
    return cover
