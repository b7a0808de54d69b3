"""(c) Interventional sampling: marginals under do(...) against exact inference on the mutilated network.

Run: ``.venv/bin/python bench/interventions.py``. For each intervention, 20 seeds of n=10k rows
``sample(n, seed, do=...)``; for each variable a G-test of its state counts against ``exact_marginals(net, do=...)``:
single-seed tests, and one pooled test per variable (counts summed over the seeds). One
``verify(..., do=...)`` per intervention shows the CI tests on the mutilated graph.
"""

from __future__ import annotations

import time

import _common  # noqa: F401  (sets sys.path and warning filters)
import numpy as np
from _common import Check, Result, finish, fmt_do, run_main, table

SEEDS = 20
N = 10_000
LEVEL = 0.001
VERIFY_N = 100_000
CASES: list[tuple[str, dict[str, str]]] = [
    ("asia", {"smoke": "no"}),
    ("asia", {"either": "yes"}),
    ("asia", {"lung": "yes", "bronc": "no"}),
    ("alarm", {"LVFAILURE": "TRUE"}),
    ("alarm", {"INTUBATION": "ONESIDED"}),
    ("alarm", {"HYPOVOLEMIA": "TRUE", "KINKEDTUBE": "TRUE"}),
]


def run() -> Result:
    from causalsynth.tools.causal.citests import goodness_of_fit
    from causalsynth.tools.causal.conformance import verify
    from causalsynth.tools.causal.inference import exact_marginals
    from causalsynth.tools.causal.sampler import Sampler
    from causalsynth.tools.spec import load_domain

    t_start = time.perf_counter()
    rows, verify_rows, worst_rows = [], [], []
    checks: list[Check] = []
    total_single = total_single_fail = 0
    total_pooled_fail = 0
    nets = {}
    for net_name, do in CASES:
        if net_name not in nets:
            nets[net_name] = load_domain(net_name).network
        net = nets[net_name]
        sampler = Sampler(net)
        exact = exact_marginals(net, do=do)
        cards = {v: net.node(v).card for v in net.names}
        pooled = {v: np.zeros(cards[v], dtype=np.int64) for v in net.names}
        single_tests = single_fail = 0
        single_min_p = 1.0
        max_tvd_single = 0.0
        do_ok = True
        for seed in range(SEEDS):
            df = sampler.sample(N, seed=seed, do=do).data
            for var, state in do.items():
                do_ok &= bool((df[var] == state).all())
            for var in net.names:
                counts = np.bincount(df[var].cat.codes.to_numpy(), minlength=cards[var])
                pooled[var] += counts
                fit = goodness_of_fit(counts, exact[var])
                obs = counts / counts.sum()
                max_tvd_single = max(max_tvd_single, 0.5 * float(np.abs(obs - exact[var]).sum()))
                if fit.dof > 0:  # the intervened (point-mass) variables have nothing to test
                    single_tests += 1
                    single_fail += fit.p_value < LEVEL
                    single_min_p = min(single_min_p, fit.p_value)
                elif fit.p_value < LEVEL:  # a value outside the support, e.g. an intervened var not at its state
                    single_fail += 1
        pooled_fail = []
        pooled_tests = 0
        pooled_min = (1.0, "")
        max_tvd_pooled = 0.0
        for var in net.names:
            fit = goodness_of_fit(pooled[var], exact[var])
            obs = pooled[var] / pooled[var].sum()
            max_tvd_pooled = max(max_tvd_pooled, 0.5 * float(np.abs(obs - exact[var]).sum()))
            if fit.dof > 0:
                pooled_tests += 1
                if fit.p_value < pooled_min[0]:
                    pooled_min = (fit.p_value, var)
            if fit.p_value < LEVEL:
                pooled_fail.append(var)
        total_single += single_tests
        total_single_fail += single_fail
        total_pooled_fail += len(pooled_fail)
        rows.append(
            [
                net_name.upper(),
                fmt_do(do),
                pooled_tests,
                len(pooled_fail),
                f"{pooled_min[0]:.3g} ({pooled_min[1]})",
                single_tests,
                single_fail,
                f"{LEVEL * single_tests:.2f}",
                f"{single_min_p:.3g}",
                f"{max_tvd_single:.4f}",
                f"{max_tvd_pooled:.5f}",
                "yes" if do_ok else "NO",
            ]
        )
        if pooled_fail:
            worst_rows.append([net_name.upper(), fmt_do(do), ", ".join(pooled_fail)])
        checks.append(
            Check(
                "c",
                f"{net_name.upper()} {fmt_do(do)}: pooled marginal tests failing at {LEVEL}",
                "0",
                str(len(pooled_fail)),
                not pooled_fail and do_ok,
            )
        )
        # CI tests on the mutilated graph, once per intervention
        df = sampler.sample(VERIFY_N, seed=12345, do=do).data
        rep = verify(net, df, alpha=0.05, do=do)
        verify_rows.append(
            [
                net_name.upper(),
                fmt_do(do),
                f"{VERIFY_N:,}",
                rep.n_tests,
                rep.n_untestable,
                f"{rep.fpr:.4f}",
                f"{rep.power:.4f}",
                len(rep.marginal_failures(LEVEL)),
                f"{max(m.tvd for m in rep.marginals):.4f}",
            ]
        )
    # single-seed failures: compare with the binomial expectation
    from scipy.stats import binom

    expected = LEVEL * total_single
    p_excess = float(binom.sf(total_single_fail - 1, total_single, LEVEL))  # P(X >= observed) under the null
    checks.append(
        Check(
            "c",
            "single-seed tests with p < 0.001 (all interventions)",
            f"consistent with {expected:.2f} expected (binomial P(X >= obs) > 0.001)",
            f"{total_single_fail} of {total_single} (P(X >= {total_single_fail}) = {p_excess:.3g})",
            p_excess > 0.001,
        )
    )
    md = [
        "## (c) Interventions: sampled marginals vs exact P(. | do) on the mutilated network",
        "",
        f"{SEEDS} seeds x n={N:,} per intervention, `Sampler(net).sample(n, seed=s, do=...)`. G-test goodness of fit "
        f"(`tools.causal.citests.goodness_of_fit`) of each variable's counts against `exact_marginals(net, do=...)` "
        "(pgmpy variable elimination). *Pooled*: counts summed over the seeds, one test per variable "
        f"(n={SEEDS * N:,}) at level {LEVEL}. *Single*: one test per variable per seed; with hundreds of them a "
        f"few p < {LEVEL} are expected by chance, so the count is compared with {LEVEL} x tests. The intervened "
        "variables are point masses (0 degrees of freedom, not counted as tests; a single value off the set "
        "state would still fail them). TVD = total variation distance to the exact marginal.",
        "",
        table(
            [
                "network",
                "intervention",
                "pooled tests",
                f"pooled p<{LEVEL}",
                "min pooled p (var)",
                "single tests",
                f"single p<{LEVEL}",
                "expected",
                "min single p",
                "max TVD single",
                "max TVD pooled",
                "do var always set",
            ],
            rows,
        ),
        "",
        f"Single-seed tests over all interventions: {total_single_fail} with p < {LEVEL} out of {total_single} "
        f"(expected under the null {expected:.2f}; P(X >= {total_single_fail}) = {p_excess:.3g}).",
        "",
        ("Variables failing the pooled test: " + "; ".join(f"{r[0]} {r[1]}: {r[2]}" for r in worst_rows))
        if worst_rows
        else "No variable fails the pooled test.",
        "",
        f"`verify(net, df, alpha=0.05, do=...)` on one n={VERIFY_N:,} interventional sample (seed 12345): FPR of the "
        "CIs implied by the mutilated graph, power on its edges, marginal failures at 0.001.",
        "",
        table(
            [
                "network",
                "intervention",
                "n",
                "CIs tested",
                "untestable",
                "FPR",
                "power",
                f"marginals p<{LEVEL}",
                "max marginal TVD",
            ],
            verify_rows,
        ),
    ]
    return finish(md, checks, t_start)


def main() -> str:
    return run_main(run)


if __name__ == "__main__":
    main()
