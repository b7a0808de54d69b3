"""Run the real anonymeter (1.1) on CSV files and print its three risks as JSON: for ``bench/privacy.py``.

anonymeter pins numpy < 1.27 and pyarrow < 22, so it cannot live in the project's venv; ``bench/privacy.py`` makes a
venv of its own under ``build/anonymeter-venv`` and runs this file there:

    build/anonymeter-venv/bin/python bench/anonymeter_peer.py TRAIN.csv SYNTH.csv CONTROL.csv N_ATTACKS SEED
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd


def main() -> None:
    train_path, synth_path, control_path, n_attacks, seed = sys.argv[1:6]
    warnings.simplefilter("ignore")
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    np.random.seed(int(seed))
    ori, syn, ctl = (pd.read_csv(p) for p in (train_path, synth_path, control_path))
    n = min(int(n_attacks), len(ctl))
    import anonymeter

    out: dict[str, object] = {"anonymeter": getattr(anonymeter, "__version__", "1.1.0")}

    def risk(ev: object) -> dict[str, float]:
        r = ev.risk(confidence_level=0.95)  # type: ignore[attr-defined]
        return {"risk": float(r.value), "low": float(r.ci[0]), "high": float(r.ci[1])}

    so = SinglingOutEvaluator(ori=ori, syn=syn, control=ctl, n_attacks=n, n_cols=4, seed=int(seed))
    so.evaluate(mode="multivariate")
    out["singling_out"] = risk(so)
    cols = list(ori.columns)
    rng = np.random.default_rng(int(seed))
    perm = [cols[i] for i in rng.permutation(len(cols))]
    aux = (perm[: len(cols) // 2], perm[len(cols) // 2 :])
    lk = LinkabilityEvaluator(ori=ori, syn=syn, control=ctl, n_attacks=n, aux_cols=aux, n_neighbors=5)
    lk.evaluate(n_jobs=2)
    out["linkability"] = risk(lk)
    per = {}
    for secret in perm[:8]:
        inf = InferenceEvaluator(ori=ori, syn=syn, control=ctl, aux_cols=[c for c in cols if c != secret],
                                 secret=secret, n_attacks=n)  # fmt: skip
        inf.evaluate(n_jobs=2)
        per[secret] = risk(inf)
    worst = max(per, key=lambda s: per[s]["risk"])
    out["inference"] = {
        "worst_secret": worst,
        **per[worst],
        "mean_risk": float(np.mean([v["risk"] for v in per.values()])),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
