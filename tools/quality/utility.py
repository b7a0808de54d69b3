"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR), with XGBoost.

Both models see the same features (the real table's measured columns but the target; categories as real-table
codes) and are scored on the same real test rows: the holdout when there is one. Each is trained ``folds`` times,
on the training table (or the synthetic table) less one fold, seeded; the interval is a t-interval over the folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from causalsynth.tools.errors import UsageError
from causalsynth.tools.quality.frame import Column, Encoded, Frame

N_ESTIMATORS = 100


def _features(frame: Frame, enc: Encoded, target: str) -> NDArray[np.float64]:
    cols: list[NDArray[np.float64]] = []
    for col in frame.measured:
        if col.name == target:
            continue
        if col.kind == "numeric":
            cols.append(enc.numbers[col.name])
        else:
            c = enc.codes[col.name].astype(float)
            c[c >= len(col.categories)] = np.nan  # an unseen category is a missing value to the trees
            cols.append(c)
    return np.column_stack(cols) if cols else np.zeros((enc.n, 0))


def mean_ci(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and t-interval of per-fold scores."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": None, "low": None, "high": None, "folds": []}
    mean = float(arr.mean())
    if arr.size < 2:
        return {"mean": mean, "low": mean, "high": mean, "folds": arr.tolist()}
    half = float(stats.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "folds": arr.round(6).tolist()}


def utility(
    frame: Frame,
    train: Encoded,
    synth: Encoded,
    test: Encoded,
    target: str,
    *,
    seed: int = 0,
    folds: int = 5,
    test_is_holdout: bool = True,
) -> dict[str, Any]:
    """TSTR and TRTR scores with intervals over folds."""
    import xgboost as xgb
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    col = frame.by_name.get(target)
    if col is None or col.kind not in ("numeric", "categorical"):
        kinds = ", ".join(c.name for c in frame.measured)
        raise UsageError(f"--target {target!r}: not a number or category column of the real table (have: {kinds})")
    task = "regression" if col.kind == "numeric" else "classification"
    x_test = _features(frame, test, target)
    y_test = _target(col, test)
    arms = {"trtr": (_features(frame, train, target), _target(col, train)),
            "tstr": (_features(frame, synth, target), _target(col, synth))}  # fmt: skip
    rng = np.random.default_rng(seed)
    scores: dict[str, dict[str, list[float]]] = {arm: {} for arm in arms}
    notes: list[str] = []
    classes = np.unique(y_test) if task == "classification" else np.zeros(0)
    for arm, (x, y) in arms.items():
        if task == "classification":
            keep = np.isin(y, classes)
            x, y = x[keep], y[keep]
        fold_of = rng.permutation(len(y)) % folds
        for k in range(folds):
            fit_rows = fold_of != k
            xf, yf = x[fit_rows], y[fit_rows]
            params = dict(n_estimators=N_ESTIMATORS, max_depth=6, learning_rate=0.1, tree_method="hist",
                          n_jobs=1, random_state=seed + k)  # fmt: skip
            if task == "regression":
                if len(yf) < 2:
                    notes.append(f"{arm}: fewer than 2 training rows")
                    break
                reg = xgb.XGBRegressor(**params).fit(xf, yf)
                scores[arm].setdefault("r2", []).append(float(r2_score(y_test, reg.predict(x_test))))
                continue
            present = np.unique(yf)
            if present.size < 2:
                notes.append(f"{arm}: the training rows hold one class only; no classifier to score")
                break
            remap = {c: i for i, c in enumerate(present)}
            clf_params = params | ({"objective": "binary:logistic"} if present.size == 2 else {})
            clf = xgb.XGBClassifier(**clf_params).fit(xf, np.vectorize(remap.get)(yf))
            proba = clf.predict_proba(x_test)
            full = np.zeros((len(y_test), classes.size))  # classes the model never saw get probability 0
            for i, c in enumerate(present):
                full[:, int(np.searchsorted(classes, c))] = proba[:, i]
            pred = classes[full.argmax(axis=1)]
            scores[arm].setdefault("accuracy", []).append(float(accuracy_score(y_test, pred)))
            if classes.size == 2:
                scores[arm].setdefault("roc_auc", []).append(float(roc_auc_score(y_test == classes[1], full[:, 1])))
            elif classes.size > 2:
                sums = full.sum(axis=1, keepdims=True)
                norm = np.divide(full, sums, out=np.full_like(full, 1 / classes.size), where=sums > 0)
                scores[arm].setdefault("roc_auc", []).append(
                    float(roc_auc_score(y_test, norm, multi_class="ovr", average="macro", labels=classes))
                )
    metrics = ["r2"] if task == "regression" else ["roc_auc", "accuracy"]
    result: dict[str, Any] = {
        "target": target,
        "task": task,
        "model": f"xgboost {xgb.__version__} ({N_ESTIMATORS} trees, depth 6)",
        "folds": folds,
        "seed": seed,
        "n_test": int(len(y_test)),
        "test": "holdout" if test_is_holdout else "a split of the real table (no holdout given)",
        "notes": notes,
    }
    for m in metrics:
        trtr, tstr = mean_ci(scores["trtr"].get(m, [])), mean_ci(scores["tstr"].get(m, []))
        ratio = tstr["mean"] / trtr["mean"] if tstr["mean"] is not None and trtr["mean"] else None
        result[m] = {"trtr": trtr, "tstr": tstr, "ratio": ratio}
    return result


def _target(col: Column, enc: Encoded) -> NDArray[Any]:
    if col.kind == "numeric":
        return enc.numbers[col.name]
    return enc.codes[col.name]
