"""The private structure search: a target column gets children when the user names it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from causalsynth.tools.privacy.structure import private_bayes


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 4_000
    a = rng.integers(0, 3, n)
    b = rng.integers(0, 3, n)
    c = np.where(rng.random(n) < 0.9, (a + b) % 3, rng.integers(0, 3, n))  # c needs both a and b
    t = np.where(rng.random(n) < 0.3, a % 2, rng.integers(0, 2, n))  # the target: weakly tied to a
    return pd.DataFrame({"t": t, "a": a, "b": b, "c": c})


def _search(table: pd.DataFrame, bonus: float) -> dict[str, list[str]]:
    cards = {"t": 2, "a": 3, "b": 3, "c": 3}
    marginals = {n: np.bincount(table[n], minlength=k) / len(table) for n, k in cards.items()}

    def codes(frame: pd.DataFrame) -> dict[str, Any]:
        return {n: frame[n].to_numpy(np.int64) for n in cards}

    def measure(_step: str, measurement: Any) -> Any:
        return measurement(table)  # a large rho: the noisy max is all but exact

    return private_bayes(list(cards), cards, codes, marginals, 1e9, 1e4, measure, "t", bonus=bonus)


def test_target_bonus_favours_families_holding_the_target() -> None:
    # Setup
    table = _table()

    # Run
    plain = _search(table, 0.0)
    favoured = _search(table, 10.0 * len(table))  # more than any family's score

    # Assert: without the bonus c takes the two parents it depends on; with it every family holds the target
    assert sorted(plain["c"]) == ["a", "b"]
    assert all("t" in favoured[n] for n in ("a", "b", "c"))
