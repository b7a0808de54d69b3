"""The privacy guard of a run: which generated records sit closer to a real training row than real people do.

``run --privacy-reference TRAIN`` compares each accepted record's skeleton with the training rows, in the spec's
state space (a fitted spec's ``columns:`` map the table's values to states; otherwise the table holds state names).
The yardstick is the holdout: rows of the same population that the spec never saw. A record is too close when its
distance to the nearest training row is below the 5th percentile of the holdout rows' distances to theirs: closer
than 95% of real outsiders get by chance. Such records are resampled (a fresh skeleton from the SCM).

Distances: a variable with ordered bins contributes its bin position over the number of bins less one, a category
contributes 0 or 1 (one-hot scaled by 1/sqrt 2); a record's distance is the Euclidean norm over the variables.

Without ``--privacy-holdout``, a seeded fifth of the reference rows is held out to measure the yardstick and
records are still compared with every reference row.

A filter that reads the real rows is not covered by a DP guarantee, so a DP-fitted spec refuses it unless the user
accepts that (``allow_dp_break``); the report then says the guarantee no longer holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.privacy.columns import states_frame
from causalsynth.tools.quality.privacy import nearest
from causalsynth.tools.spec import Domain
from causalsynth.tools.tabular import read_table

#: The holdout's distances below which a record counts as too close (percentile).
PERCENTILE = 5.0
#: Share of the reference rows held out when no holdout is given.
HOLDOUT_SHARE = 0.2
MIN_ROWS = 20
#: Fresh skeletons a record may get before it is rejected as too close.
MAX_RESAMPLES = 3


@dataclass(frozen=True)
class _Axis:
    """How one variable's state codes become coordinates."""

    var: str
    ordinal: bool
    card: int


class PrivacyGuard:
    """Distances of skeletons to the reference's training rows, and the holdout's yardstick."""

    def __init__(self, domain: Domain, train: pd.DataFrame, holdout: pd.DataFrame | None, *, seed: int = 0,
                 source: str = "the privacy reference") -> None:  # fmt: skip
        self.domain = domain
        self._axes = _axes(domain)
        codes = _codes(domain, train, source)
        if holdout is None:
            if len(train) < MIN_ROWS:
                raise DataError(f"{source}: {len(train)} rows; the guard needs at least {MIN_ROWS}")
            order = np.random.default_rng((seed, 1)).permutation(len(train))
            cut = max(1, int(round(HOLDOUT_SHARE * len(train))))
            held, kept = order[:cut], order[cut:]
            self._train = self._embed(codes)
            yardstick = nearest(self._train[held], self._train[kept])[:, 0]
        else:
            self._train = self._embed(codes)
            hold = self._embed(_codes(domain, holdout, f"{source} (holdout)"))
            yardstick = nearest(hold, self._train)[:, 0]
        self.threshold = float(np.percentile(yardstick, PERCENTILE))
        self.n_train = len(train)
        self.n_holdout = len(yardstick)

    @classmethod
    def from_files(cls, domain: Domain, train: Path, holdout: Path | None, *, seed: int = 0) -> PrivacyGuard:
        """Read the reference (and holdout) tables, CSV or Parquet.

        Raises:
            DataError: a table cannot be read, lacks a variable of the spec, or holds a value that is no state.
        """
        return cls(domain, read_table(train), read_table(holdout) if holdout is not None else None, seed=seed,
                   source=str(train))  # fmt: skip

    def distances(self, skeletons: Sequence[Mapping[str, str]]) -> NDArray[np.float64]:
        """Each skeleton's distance to its nearest training row."""
        if not skeletons:
            return np.zeros(0)
        codes = {}
        for axis in self._axes:
            index = {s: i for i, s in enumerate(self.domain.network.states(axis.var))}
            codes[axis.var] = np.fromiter((index[sk[axis.var]] for sk in skeletons), np.int64, len(skeletons))
        return nearest(self._embed(codes), self._train)[:, 0]

    def too_close(self, skeletons: Sequence[Mapping[str, str]]) -> NDArray[np.bool_]:
        """True for the skeletons nearer to a training row than the holdout's 5th percentile."""
        return self.distances(skeletons) < self.threshold - 1e-12

    def describe(self) -> dict[str, Any]:
        """What the report says of the guard."""
        return {"threshold": self.threshold, "percentile": PERCENTILE, "reference_rows": self.n_train,
                "holdout_rows": self.n_holdout}  # fmt: skip

    def _embed(self, codes: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float64]:
        parts = []
        for axis in self._axes:
            c = codes[axis.var]
            if axis.ordinal:
                parts.append((c / max(axis.card - 1, 1))[:, None])
            else:
                parts.append(np.eye(axis.card)[c] / np.sqrt(2.0))
        return np.hstack(parts).astype(np.float64)


def _axes(domain: Domain) -> list[_Axis]:
    net = domain.network
    columns = domain.spec.columns or {}
    out = []
    for var in net.names:
        spec = columns.get(var)
        ordinal = spec is not None and bool(spec.bins) and not spec.null_state
        out.append(_Axis(var, ordinal, len(net.states(var))))
    return out


def _codes(domain: Domain, table: pd.DataFrame, source: str) -> dict[str, NDArray[np.int64]]:
    """The table's rows as state codes of the spec's variables (through ``columns:`` when the spec has them)."""
    net = domain.network
    missing = [v for v in net.names if v not in table.columns]
    if missing:
        raise DataError(f"{source}: no column for the spec's variable(s) {', '.join(missing[:5])}"
                        f"{' ...' if len(missing) > 5 else ''}")  # fmt: skip
    if len(table) == 0:
        raise DataError(f"{source}: the table has no rows")
    states = states_frame(table[list(net.names)], domain.spec.columns) if domain.spec.columns else table
    out = {}
    for var in net.names:
        names = net.states(var)
        index = {s: i for i, s in enumerate(names)}
        values = states[var].astype("string").fillna("<null>")
        bad = sorted(set(values) - set(index))
        if bad:
            raise DataError(f"{source}: column {var} holds {', '.join(map(repr, bad[:3]))}, not states of {var} "
                            f"(states: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''})")  # fmt: skip
        out[var] = np.asarray(values.map(index).to_numpy(), dtype=np.int64)
    return out


def check_dp(domain: Domain, allow_dp_break: bool) -> bool:
    """Whether the run's filter voids a DP guarantee; refuses it for a DP-fitted spec unless allowed.

    Raises:
        UsageError: the spec was fitted with differential privacy and ``allow_dp_break`` is False.
    """
    fit = domain.spec.fit
    if fit is None or not fit.dp:
        return False
    if not allow_dp_break:
        raise UsageError(
            f"{domain.source}: this spec was fitted with differential privacy (epsilon {fit.epsilon}); filtering "
            "records against the real rows (--privacy-reference) is not covered by that guarantee. Pass "
            "--privacy-filter-breaks-dp to run it anyway (the report will say the DP guarantee no longer holds)"
        )
    return True
