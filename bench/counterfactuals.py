"""(d) Counterfactuals: invariants of the twins, their distribution, determinism, and abduction.

Run: ``.venv/bin/python bench/counterfactuals.py``. For ASIA and ALARM under InverseCDF and GumbelMax noise:
n=100k records sampled with their noise, twins under several ``do(...)`` via ``Sampler.counterfactual``.
"""

from __future__ import annotations

import time
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
import numpy as np
import pandas as pd
from _common import Check, Result, finish, fmt_do, run_main, table

N = 100_000
LEVEL = 0.001
ABDUCT_SEED = 1
INTERVENTIONS: dict[str, list[dict[str, str]]] = {
    "asia": [{"smoke": "no"}, {"either": "yes"}, {"lung": "yes", "bronc": "no"}, {"asia": "yes"}],
    "alarm": [
        {"LVFAILURE": "TRUE"},
        {"INTUBATION": "ONESIDED"},
        {"HYPOVOLEMIA": "TRUE", "KINKEDTUBE": "TRUE"},
        {"VENTLUNG": "ZERO"},
    ],
}
EVIDENCE = {"asia": {"dysp": "yes"}, "alarm": {"LVFAILURE": "TRUE"}}


def _codes(df: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([df[v].cat.codes.to_numpy() for v in names])


def _gof(twins: np.ndarray, names: tuple[str, ...], cards: dict[str, int], exact: dict[str, Any]) -> list[float]:
    """p-values of each variable's twin counts against the exact interventional marginal (tested vars only)."""
    from causalsynth.tools.causal.citests import goodness_of_fit

    out = []
    for j, v in enumerate(names):
        fit = goodness_of_fit(np.bincount(twins[:, j], minlength=cards[v]), exact[v])
        if fit.dof > 0 or fit.p_value < 1.0:
            out.append(fit.p_value)
    return out


def _homogeneity(a: np.ndarray, b: np.ndarray, card: int) -> float:
    """G-test that two samples of (factual, twin) code pairs come from the same joint distribution."""
    from scipy.stats import chi2_contingency

    ca = np.bincount(a, minlength=card * card)
    cb = np.bincount(b, minlength=card * card)
    keep = (ca + cb) > 0
    if keep.sum() < 2:
        return 1.0
    return float(chi2_contingency(np.vstack([ca[keep], cb[keep]]), lambda_="log-likelihood")[1])


def run() -> Result:
    from causalsynth.tools.causal.inference import exact_marginals
    from causalsynth.tools.causal.noise import GumbelMax, InverseCDF
    from causalsynth.tools.causal.sampler import Sampler
    from causalsynth.tools.spec import load_domain

    t_start = time.perf_counter()
    inv_rows, dist_rows, det_rows, abd_rows = [], [], [], []
    all_pvalues: list[float] = []
    abd_pvalues: list[float] = []
    joint_pvalues: list[float] = []
    ok_nondesc = ok_consistent = ok_det = ok_replay = True
    n_interventions = 0
    for net_name, dos in INTERVENTIONS.items():
        net = load_domain(net_name).network
        names = net.names
        cards = {v: net.node(v).card for v in names}
        exacts = {fmt_do(do): exact_marginals(net, do=do) for do in dos}
        for model in (InverseCDF(), GumbelMax()):
            s = Sampler(net, model)
            t0 = time.perf_counter()
            res = s.sample(N, seed=0, with_noise=True)
            t_sample = time.perf_counter() - t0
            fact = _codes(res.data, names)

            # determinism: chunk size and seed
            other = s.sample(N, seed=0, with_noise=True, chunk_size=777)
            same_chunk = res.data.equals(other.data) and all(
                np.array_equal(res.noise[v], other.noise[v])
                for v in names  # type: ignore[index]
            )
            again = s.sample(N, seed=0, with_noise=True)
            same_seed = res.data.equals(again.data) and all(
                np.array_equal(res.noise[v], again.noise[v])
                for v in names  # type: ignore[index]
            )
            diff_seed = not res.data.equals(s.sample(N, seed=1).data)
            ev = EVIDENCE[net_name]
            ev_a = s.sample(10_000, seed=3, evidence=ev)
            ev_b = s.sample(10_000, seed=3, evidence=ev, chunk_size=777)
            same_ev_chunk = ev_a.data.equals(ev_b.data)
            do0 = dos[0]
            same_do_chunk = s.sample(N, seed=4, do=do0).data.equals(s.sample(N, seed=4, do=do0, chunk_size=777).data)
            det_ok = same_chunk and same_seed and diff_seed and same_ev_chunk and same_do_chunk
            ok_det &= det_ok
            det_rows.append(
                [
                    net_name.upper(),
                    model.name,
                    same_chunk,
                    same_ev_chunk,
                    same_do_chunk,
                    same_seed,
                    diff_seed,
                    f"{t_sample:.3f}",
                ]
            )
            del other, again, ev_a, ev_b

            # abduction: records sampled without noise, posterior noise, replay and twins
            plain = s.sample(N, seed=2)
            t0 = time.perf_counter()
            u_abd = s.abduct(plain.data, seed=ABDUCT_SEED)
            t_abduct = time.perf_counter() - t0
            plain_codes = _codes(plain.data, names)

            for do in dos:
                n_interventions += 1
                key = fmt_do(do)
                affected = net.descendants(do) | set(do)
                nondesc = [j for j, v in enumerate(names) if v not in affected]
                t0 = time.perf_counter()
                twin_df = s.counterfactual(res.data, res.noise, do)  # type: ignore[arg-type]
                t_cf = time.perf_counter() - t0
                twin = _codes(twin_df, names)
                same_nd = float((twin[:, nondesc] == fact[:, nondesc]).mean()) if nondesc else 1.0
                do_idx = [names.index(v) for v in do]
                do_codes = np.array([net.states(v).index(x) for v, x in do.items()])
                match = (fact[:, do_idx] == do_codes).all(axis=1)
                consistent = float((twin[match] == fact[match]).all(axis=1).mean()) if match.any() else float("nan")
                set_ok = bool((twin[:, do_idx] == do_codes).all())
                changed = float((twin != fact).any(axis=1).mean())
                desc = [j for j, v in enumerate(names) if v in affected and v not in do]
                desc_changed = float((twin[:, desc] != fact[:, desc]).any(axis=1).mean()) if desc else 0.0
                ok_nondesc &= same_nd == 1.0
                ok_consistent &= (consistent == 1.0) and set_ok
                inv_rows.append(
                    [
                        net_name.upper(),
                        model.name,
                        key,
                        f"{len(nondesc)}/{len(names)}",
                        f"{100 * same_nd:.4f}%",
                        f"{int(match.sum()):,}",
                        f"{100 * consistent:.4f}%",
                        set_ok,
                        f"{100 * changed:.2f}%",
                        f"{100 * desc_changed:.2f}%",
                        f"{t_cf:.3f}",
                    ]
                )
                # twins with prior noise are draws of P(. | do)
                pvals = _gof(twin, names, cards, exacts[key])
                all_pvalues += pvals
                tvd = max(
                    0.5 * float(np.abs(np.bincount(twin[:, j], minlength=cards[v]) / N - exacts[key][v]).sum())
                    for j, v in enumerate(names)
                )
                # twins from abducted noise: replay checked by counterfactual(check=True), which raises otherwise
                try:
                    twin_abd = _codes(s.counterfactual(plain.data, u_abd, do, check=True), names)
                    replay_ok = True
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    replay_ok = False
                    twin_abd = None
                    print(f"abduction replay failed for {net_name} {model.name} {key}: {exc}")
                ok_replay &= replay_ok
                if twin_abd is not None:
                    abd_p = _gof(twin_abd, names, cards, exacts[key])
                    abd_pvalues += abd_p
                    # joint (factual, twin) of each affected variable: prior-noise twins vs abducted twins
                    jp = []
                    for v in sorted(affected - set(do)):
                        j = names.index(v)
                        c = cards[v]
                        jp.append(_homogeneity(fact[:, j] * c + twin[:, j], plain_codes[:, j] * c + twin_abd[:, j], c))
                    joint_pvalues += jp
                    abd_rows.append(
                        [
                            net_name.upper(),
                            model.name,
                            key,
                            replay_ok,
                            len(abd_p),
                            sum(p < LEVEL for p in abd_p),
                            f"{min(abd_p):.3g}",
                            len(jp),
                            sum(p < LEVEL for p in jp),
                            f"{min(jp):.3g}" if jp else "-",
                            f"{t_abduct:.3f}",
                        ]
                    )
                else:
                    abd_rows.append([net_name.upper(), model.name, key, False, "-", "-", "-", "-", "-", "-", "-"])
                dist_rows.append(
                    [
                        net_name.upper(),
                        model.name,
                        key,
                        len(pvals),
                        sum(p < LEVEL for p in pvals),
                        f"{min(pvals):.3g}",
                        f"{tvd:.4f}",
                    ]
                )
    k = len(all_pvalues)
    fails = sum(p < LEVEL for p in all_pvalues)
    bonf = min(1.0, min(all_pvalues) * k)
    k_abd = len(abd_pvalues) + len(joint_pvalues)
    bonf_abd = min(1.0, min(abd_pvalues + joint_pvalues) * k_abd) if k_abd else float("nan")
    checks = [
        Check(
            "d", "non-descendants identical, factual vs twin", "100%", "100%" if ok_nondesc else "< 100%", ok_nondesc
        ),
        Check(
            "d",
            "records with factual X = x: twin under do(X=x) equals the record",
            "100%",
            "100%" if ok_consistent else "< 100%",
            ok_consistent,
        ),
        Check(
            "d",
            "twin marginals vs exact P(.|do), prior noise",
            f"Bonferroni min(1, min p x {k} tests) >= {LEVEL}",
            f"{fails} tests p<{LEVEL} (expected {LEVEL * k:.2f}); min p x k = {bonf:.3g}",
            bonf >= LEVEL,
        ),
        Check(
            "d",
            "chunk-size invariance (777 vs 65536), seed reproducibility",
            "identical",
            "identical" if ok_det else "differs",
            ok_det,
        ),
        Check(
            "d",
            "abducted noise replays the factual records (check=True)",
            "always",
            "always" if ok_replay else "failed",
            ok_replay,
        ),
        Check(
            "d",
            "abducted twins: marginals vs P(.|do) and joint (factual, twin) vs prior-noise twins",
            f"Bonferroni min(1, min p x {k_abd} tests) >= {LEVEL}",
            f"{sum(p < LEVEL for p in abd_pvalues + joint_pvalues)} tests p<{LEVEL} "
            f"(expected {LEVEL * k_abd:.2f}); min p x k = {bonf_abd:.3g}",
            bool(bonf_abd >= LEVEL),
        ),
    ]
    md = [
        "## (d) Counterfactuals",
        "",
        f"`s = Sampler(net, model)`; `res = s.sample({N:,}, seed=0, with_noise=True)`; "
        "`twins = s.counterfactual(res.data, res.noise, do)` (check=True: the noise is first replayed and must "
        "reproduce the records). Non-descendants = variables that are neither intervened nor descendants of an "
        "intervened variable; 'consistent' = among records whose factual values already equal the intervention, "
        "the share whose twin equals the whole record; 'changed' = share of records whose twin differs anywhere "
        "(intervened variables included); 'descendant changed' = share whose twin differs in a strict "
        "descendant of the intervention; 'cf s' = seconds for `counterfactual` (check=True) on 100k records.",
        "",
        table(
            [
                "network",
                "noise",
                "intervention",
                "non-desc vars",
                "non-desc identical",
                "records with X=x",
                "consistent",
                "do vars set",
                "changed",
                "descendant changed",
                "cf s",
            ],
            inv_rows,
        ),
        "",
        "Twins computed with the records' prior noise are draws from P(. | do): G-test of each variable's twin "
        f"counts (n={N:,}) against `exact_marginals(net, do=...)` (variables with a single possible state "
        "are skipped unless a count falls outside the support).",
        "",
        table(["network", "noise", "intervention", "tests", f"p<{LEVEL}", "min p", "max TVD"], dist_rows),
        "",
        f"All {k} twin-marginal tests: {fails} with p < {LEVEL} (expected {LEVEL * k:.2f}); "
        f"smallest p = {min(all_pvalues):.3g}.",
        "",
        "Determinism (same data and noise arrays): `chunk_size=777` vs the default 65536 for plain sampling "
        f"(n={N:,}, with noise), under evidence ({', '.join(f'{k}: {v}' for k, v in EVIDENCE.items())}; "
        "n=10,000) and under the first intervention; the same seed twice; seed 0 vs seed 1 must differ.",
        "",
        table(
            [
                "network",
                "noise",
                "chunk 777 = default",
                "evidence: chunk 777 = default",
                "do: chunk 777 = default",
                "same seed = same",
                "seed 1 != seed 0",
                f"sample {N:,} w/ noise s",
            ],
            det_rows,
        ),
        "",
        f"Abduction: `plain = s.sample({N:,}, seed=2)` (no noise kept), `u = s.abduct(plain.data, "
        f"seed={ABDUCT_SEED})`, then `s.counterfactual(plain.data, u, do, check=True)`, which raises unless "
        "replaying the factual equations with u reproduces every record. The abducted twins' marginals are "
        "tested against P(. | do), and for each affected (descendant) variable V the joint distribution of "
        "(factual V, twin V) is compared with that of the prior-noise twins above (G-test of homogeneity of "
        "the two pair-count tables): abduction samples the noise posterior, so both are draws of the same "
        "counterfactual joint.",
        "",
        table(
            [
                "network",
                "noise",
                "intervention",
                "replay ok",
                "marginal tests",
                f"p<{LEVEL}",
                "min p",
                "joint tests",
                f"p<{LEVEL}",
                "min p",
                "abduct s",
            ],
            abd_rows,
        ),
    ]
    return finish(md, checks, t_start)


def main() -> str:
    return run_main(run)


if __name__ == "__main__":
    main()
