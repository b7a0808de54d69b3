"""Peer synthesisers for bench/fit.py, run inside their own venv (build/peers).

smartnoise-synth MST and AIM (sampled independently, not with mbi's default randomized rounding), SDV
GaussianCopula and CTGAN.

Usage: python bench/_fit_peers.py ARM EPSILON TRAIN OUT ROWS SEED [EPOCHS]
Writes OUT (CSV) and OUT.json (fit and sample seconds). Never imported by causalsynth.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd


def independent(model: object) -> None:
    """Make the fitted mbi model sample rows i.i.d. ('sample') instead of its default coupled rounding."""
    cls = type(model.synthesizer)  # type: ignore[attr-defined]  # a frozen dataclass: patch its class
    original = cls.synthetic_data

    def iid(self: object, rows: int | None = None, method: str = "sample") -> object:
        return original(self, rows=rows, method="sample")

    cls.synthetic_data = iid


#: The parts of epsilon a raw-input run tries for smartnoise's private column bounds (``preprocessor_eps``), the
#: smallest first: at 0.1 of epsilon 1, split over loans_full_schema's 17 continuous columns, the bounds are not
#: found ("BinTransformer could not find bounds"), as a user would see before raising it.
RAW_PREPROCESSOR = (0.1, 0.2, 0.3, 0.5)


def raw_input(arm: str, epsilon: float, train_path: str, rows: int) -> tuple[pd.DataFrame, float, float, str]:
    """MST or AIM on the raw table, as smartnoise's own preprocessing takes it.

    smartnoise infers the column types from the data: text columns categorical and integer ones ordinal (their
    values read from the data without DP, as smartnoise does), float ones continuous (10 equal-width bins between
    bounds found with a part of epsilon, ``RAW_PREPROCESSOR``). Returns the sample, the start and fitted times and
    a note of the part spent on bounds.
    """
    from snsynth import Synthesizer

    train = pd.read_parquet(train_path)
    text = [c for c in train.columns if train[c].dtype == object]
    nulls = {c: bool(train[c].isna().any()) for c in text}
    train[text] = train[text].astype(str)  # a null is the category "nan", restored below
    for share in RAW_PREPROCESSOR:
        start = time.perf_counter()
        model = Synthesizer.create(arm, epsilon=epsilon, delta=1e-6)
        try:
            model.fit(train, preprocessor_eps=share * epsilon)
        except ValueError as exc:
            if "could not find bounds" in str(exc) and share != RAW_PREPROCESSOR[-1]:
                continue
            raise
        break
    fitted = time.perf_counter()
    independent(model)
    synth = pd.DataFrame(model.sample(rows))
    for c in text:
        if nulls[c]:
            synth[c] = synth[c].where(synth[c].astype(str) != "nan")
    spent = epsilon - model.epsilon  # smartnoise takes what its bounds spent off the model's epsilon
    note = f"preprocessor_eps {share:g} x epsilon" if spent > 0 else "no continuous column: nothing spent on bounds"
    return synth, start, fitted, note


def main() -> None:
    arm, epsilon, train_path, out, rows, seed = sys.argv[1:7]
    epochs = int(sys.argv[7]) if len(sys.argv) > 7 else 10
    np.random.seed(int(seed))
    note = ""
    if arm in {"mst-raw", "aim-raw"}:
        synth, start, fitted, note = raw_input(arm.removesuffix("-raw"), float(epsilon), train_path, int(rows))
    elif arm in {"mst", "aim"}:
        from snsynth import Synthesizer

        train = pd.read_csv(train_path, dtype=str, keep_default_na=False)
        start = time.perf_counter()
        model = Synthesizer.create(arm, epsilon=float(epsilon), delta=1e-6)
        model.fit(train, categorical_columns=list(train.columns), preprocessor_eps=0.0)
        fitted = time.perf_counter()
        independent(model)
        synth = model.sample(int(rows))
    else:
        from sdv.metadata import Metadata
        from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

        train = pd.read_parquet(train_path)
        start = time.perf_counter()
        metadata = Metadata.detect_from_dataframes({"table": train}, infer_keys=None)
        model = (
            GaussianCopulaSynthesizer(metadata)
            if arm == "gaussian_copula"
            else CTGANSynthesizer(metadata, epochs=epochs, enable_gpu=False)
        )
        model.fit({"table": train})  # SDV 2.0 takes a dict of one table
        fitted = time.perf_counter()
        synth = model.sample(int(rows))
        if isinstance(synth, dict):
            synth = next(iter(synth.values()))
    done = time.perf_counter()
    pd.DataFrame(synth).to_parquet(out) if out.endswith(".parquet") else pd.DataFrame(synth).to_csv(out, index=False)
    with open(out + ".json", "w") as f:
        json.dump({"fit_s": fitted - start, "sample_s": done - fitted, "note": note}, f)


if __name__ == "__main__":
    main()
