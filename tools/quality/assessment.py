"""The whole assessment of a synthetic table against a real one: fidelity, the DAG's CI tests, utility, privacy.

``assess_table`` measures one table; ``assess_tables`` measures a relational set table by table and adds the
foreign-key cardinality distributions (children per parent row, real against synthetic).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from causalsynth.tools.causal.citests import CIStatement, adjacencies, implied_cis, test_statement
from causalsynth.tools.causal.network import Network
from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.quality.fidelity import fidelity
from causalsynth.tools.quality.frame import build_frame
from causalsynth.tools.quality.privacy import privacy
from causalsynth.tools.quality.utility import utility


def dag_checks(network: Network, tables: Mapping[str, pd.DataFrame], alpha: float = 0.05) -> dict[str, Any]:
    """The DAG's implied CIs and its edges' dependences, G-tested on each table over the variables it holds."""
    present = [n for n in network.names if all(n in t.columns for t in tables.values())]
    observed = frozenset(present)
    if len(present) < 2:
        return {"error": f"the tables hold {len(present)} of the DAG's variables; nothing to test"}
    cards = {n: network.node(n).card for n in present}
    codes: dict[str, dict[str, Any]] = {}
    for label, table in tables.items():
        per: dict[str, Any] = {}
        for n in present:
            states = {s: i for i, s in enumerate(network.states(n))}
            values = table[n].astype("string").fillna("").astype(str)
            coded = values.map(states)
            if coded.isna().any():
                bad = values[coded.isna()].iloc[0]
                raise DataError(
                    f"{label} table: column {n} holds {bad!r}, not a state of the DAG ({', '.join(states)})"
                )
            per[n] = coded.to_numpy(dtype=np.int64)
        codes[label] = per
    statements: list[CIStatement] = implied_cis(network, observed) + [
        s for s in adjacencies(network) if s.x in observed and s.y in observed
    ]
    results = []
    for s in statements:
        row: dict[str, Any] = {"x": s.x, "y": s.y, "z": list(s.z), "implied_independent": s.implied}
        for label in tables:
            g = test_statement(codes[label], cards, s)
            row[label] = {"p_value": g.p_value if g.testable else None,
                          "rejected": bool(g.p_value < alpha) if g.testable else None}  # fmt: skip
        results.append(row)
    summary: dict[str, Any] = {}
    for label in tables:
        ci = [r[label]["rejected"] for r in results if r["implied_independent"] and r[label]["rejected"] is not None]
        dep = [
            r[label]["rejected"] for r in results if not r["implied_independent"] and r[label]["rejected"] is not None
        ]
        summary[label] = {"fpr": float(np.mean(ci)) if ci else None, "power": float(np.mean(dep)) if dep else None,
                          "n_ci_tests": len(ci), "n_edge_tests": len(dep)}  # fmt: skip
    return {
        "alpha": alpha,
        "variables": present,
        "edges": [list(e) for e in network.edges() if e[0] in observed and e[1] in observed],
        "latent": [n for n in network.names if n not in observed],
        "summary": summary,
        "tests": results,
    }


def assess_table(
    synth: pd.DataFrame,
    real: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    *,
    network: Network | None = None,
    target: str | None = None,
    seed: int = 0,
    folds: int = 5,
    n_attacks: int = 500,
) -> dict[str, Any]:
    """Assess one synthetic table against its training table (and a holdout of real rows it never saw)."""
    if len(synth) == 0:
        raise DataError("synthetic table: no rows")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frame = build_frame(real, "real table")
    if not frame.measured and not frame.texts:
        raise DataError("real table: no column to measure (only ids or run bookkeeping)")
    enc_real = frame.encode(real, "real table")
    enc_synth = frame.encode(synth, "synthetic table")
    enc_hold = frame.encode(holdout, "holdout table") if holdout is not None else None
    timings["encode"] = time.perf_counter() - t0
    out: dict[str, Any] = {
        "n_synth": len(synth),
        "n_real": len(real),
        "n_holdout": len(holdout) if holdout is not None else None,
        "seed": seed,
        "columns": [{"name": c.name, "kind": c.kind} for c in frame.columns],
        "only_in_synth": [c for c in synth.columns if c not in real.columns],
    }
    t0 = time.perf_counter()
    out["fidelity"] = fidelity(frame, enc_real, enc_synth)
    timings["fidelity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["dag"] = dag_checks(network, {"real": real, "synth": synth}) if network is not None else None
    timings["dag"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if target is not None:
        if target not in real.columns:
            raise UsageError(f"--target {target!r}: no such column in the real table")
        if enc_hold is not None:
            out["utility"] = utility(frame, enc_real, enc_synth, enc_hold, target, seed=seed, folds=folds)
        else:  # no holdout: the real table is split, a third for testing (the synthetic data may have seen it)
            from causalsynth.tools.quality.privacy import subset

            rows = np.random.default_rng(seed).permutation(len(real))
            test_rows, fit_rows = rows[: len(real) // 3], rows[len(real) // 3 :]
            out["utility"] = utility(frame, subset(enc_real, fit_rows), enc_synth, subset(enc_real, test_rows),
                                     target, seed=seed, folds=folds, test_is_holdout=False)  # fmt: skip
    else:
        out["utility"] = {"skipped": "no target column given (--target)"}
    timings["utility"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if enc_hold is not None:
        out["privacy"] = privacy(frame, enc_synth, enc_real, enc_hold, seed=seed, n_attacks=n_attacks)
    else:
        out["privacy"] = {"skipped": "no holdout given (--holdout): every privacy measure needs real rows the "
                                     "generator never saw as its baseline"}  # fmt: skip
    timings["privacy"] = time.perf_counter() - t0
    out["seconds"] = timings
    out["scorecard"] = scorecard(out)
    return out


def fk_cardinality(
    synth: Mapping[str, pd.DataFrame], real: Mapping[str, pd.DataFrame], links: list[tuple[str, str, str, str]]
) -> list[dict[str, Any]]:
    """Children per parent row for each link (child, fk column, parent, parent key): real vs synthetic."""
    out = []
    for child, fk, parent, pk in links:
        dists = {}
        for label, tables in (("real", real), ("synth", synth)):
            counts = tables[child][fk].astype(str).value_counts()
            per_parent = tables[parent][pk].astype(str).map(counts).fillna(0).astype(int).to_numpy()
            dists[label] = per_parent
        top = int(max(dists["real"].max(initial=0), dists["synth"].max(initial=0)))
        hist = {k: (np.bincount(v, minlength=top + 1) / max(v.size, 1)).round(5).tolist() for k, v in dists.items()}
        tvd = 0.5 * float(np.abs(np.array(hist["real"]) - np.array(hist["synth"])).sum())
        from scipy import stats

        w1 = float(stats.wasserstein_distance(dists["real"], dists["synth"])) if dists["synth"].size else None
        out.append({"child": child, "foreign_key": fk, "parent": parent, "parent_key": pk, "tvd": tvd, "w1": w1,
                    "mean_real": float(dists["real"].mean()), "mean_synth": float(dists["synth"].mean()),
                    "histogram": hist})  # fmt: skip
    return out


def infer_links(real: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str, str]]:
    """Foreign keys read from the data: a child column named as a parent's all-distinct column, values inside it."""
    links = []
    for parent, ptable in real.items():
        for pk in ptable.columns:
            if not (pk.lower() == "id" or pk.lower().endswith("id")) or not ptable[pk].is_unique:
                continue
            keys = set(ptable[pk].astype(str))
            for child, ctable in real.items():
                if child == parent or pk not in ctable.columns or ctable[pk].is_unique:
                    continue
                if set(ctable[pk].astype(str)) <= keys:
                    links.append((child, pk, parent, pk))
    return links


def scorecard(a: dict[str, Any]) -> list[dict[str, Any]]:
    """The few numbers a reader looks at first, each with a status: good, warn or bad."""
    cards: list[dict[str, Any]] = []
    fs = a["fidelity"]["summary"]

    def add(name: str, value: Any, status: str, note: str) -> None:
        cards.append({"name": name, "value": value, "status": status, "note": note})

    def grade(v: float | None, good: float, warn: float) -> str:
        if v is None:
            return "n/a"
        return "good" if v <= good else "warn" if v <= warn else "bad"

    add("column TVD", fs["mean_tvd"], grade(fs["mean_tvd"], 0.05, 0.15), "mean over category columns; 0 is identical")
    add("column W1", fs["mean_w1"], grade(fs["mean_w1"], 0.02, 0.08), "mean over number columns, share of range")
    add("2-way TVD", fs["pair_tvd_mean"], grade(fs["pair_tvd_mean"], 0.08, 0.2), "mean over column pairs")
    dag = a.get("dag")
    if dag and "summary" in dag:
        fpr = dag["summary"]["synth"]["fpr"]
        add("DAG CI FPR", fpr, grade(fpr, 0.1, 0.25), "implied CIs rejected on the synthetic table (alpha 0.05)")
    u = a.get("utility", {})
    for m in ("roc_auc", "r2"):
        if m in u and u[m]["ratio"] is not None:
            r = u[m]["ratio"]
            add(f"TSTR/TRTR {m}", r, "good" if r >= 0.9 else "warn" if r >= 0.75 else "bad",
                f"TSTR {u[m]['tstr']['mean']:.3f} vs TRTR {u[m]['trtr']['mean']:.3f}")  # fmt: skip
    p = a.get("privacy", {})
    if "verdict" in p:
        level = p["verdict"]["level"]
        status = {"high": "bad", "elevated": "warn"}.get(level, "good")
        add("privacy", level, status, "attacks above chance: " + (", ".join(p["verdict"]["leaks"]) or "none"))
        auc = max(p["membership"]["distance"]["auc"], p["membership"]["domias"]["auc"])
        add("membership AUC", auc, "good" if auc < 0.55 else "warn" if auc < 0.7 else "bad", "best attack; 0.5 = none")
        ex = p["exact_match"]["copies_of_training_rows"]["value"]
        hold = p["exact_match"]["holdout"]["value"]
        add("copies of training rows", ex, "good" if p["exact_match"]["excess"]["low"] <= 0 else "bad",
            f"holdout-row matches: {hold:.3f}")  # fmt: skip
    return cards
