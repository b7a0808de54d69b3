"""Vectorised ancestral sampling with retained exogenous noise, interventions, evidence and counterfactuals.

Determinism: each node draws its noise from its own random stream, spawned from the seed by the node's
declaration index (``SeedSequence(seed).spawn``). Streams are consumed in record order, so the same seed
gives the same records whatever the chunk size, and evidence (rejection of non-matching rows) keeps the first
``n`` matching rows of the same candidate sequence.

Counterfactuals: a twin re-runs the structural equations of the intervened nodes' descendants with the
record's own noise on the mutilated graph; every other variable is copied, so non-descendants are identical
by construction.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.causal.network import Network
from causalsynth.tools.causal.noise import InverseCDF, NoiseModel
from causalsynth.tools.errors import DataError, EvidenceTooRareError, UsageError

DEFAULT_CHUNK = 1 << 16
DEFAULT_MAX_DRAWS = 20_000_000
CF_SUFFIX = "__cf"
NOISE_SUFFIX = "__u"

Codes = NDArray[np.integer[Any]]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class _Plan:
    name: str
    index: int  # declaration index: names the node's random stream
    card: int
    parents: tuple[int, ...]  # declaration indices of parents
    parent_cards: tuple[int, ...]
    params: Any


@dataclass
class SampleResult:
    """Sampled records and, on request, their exogenous noise.

    Attributes:
        data: one categorical column per variable, in declaration order.
        noise: per variable, an array ``(n, dim)`` of the noise that produced each record (None if not kept).
        draws: candidate records drawn (more than ``len(data)`` when sampling given evidence).
    """

    data: pd.DataFrame
    noise: dict[str, NDArray[np.float64]] | None
    draws: int

    def noise_frame(self) -> pd.DataFrame:
        """The noise as float columns ``VAR__u`` (one-dimensional noise) or ``VAR__u0, VAR__u1, ...``."""
        if self.noise is None:
            raise UsageError("noise was not kept: sample with with_noise=True")
        return noise_to_frame(self.noise, self.data.index)


def noise_columns(name: str, dim: int) -> list[str]:
    """Column names of a variable's noise: ``VAR__u`` when one-dimensional, else ``VAR__u0, VAR__u1, ...``."""
    return [f"{name}{NOISE_SUFFIX}"] if dim == 1 else [f"{name}{NOISE_SUFFIX}{k}" for k in range(dim)]


def noise_to_frame(noise: Mapping[str, NDArray[np.float64]], index: pd.Index) -> pd.DataFrame:
    """Flatten per-variable noise arrays into named float columns."""
    cols: dict[str, NDArray[np.float64]] = {}
    for name, arr in noise.items():
        cols.update(dict(zip(noise_columns(name, arr.shape[1]), arr.T, strict=True)))
    return pd.DataFrame(cols, index=index)


def noise_from_frame(
    data: pd.DataFrame, network: Network, noise_model: NoiseModel, source: str = "data"
) -> dict[str, NDArray[np.float64]] | None:
    """Inverse of :func:`noise_to_frame`; None if ``data`` has no noise columns at all.

    Raises:
        DataError: some noise columns are present but not all, or they are not numbers.
    """
    expected = {name: noise_columns(name, noise_model.dim(network.node(name).card)) for name in network.names}
    if not any(c in data.columns for cols in expected.values() for c in cols):
        return None
    noise: dict[str, NDArray[np.float64]] = {}
    for name, cols in expected.items():
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(
                f"{source}: has noise columns but lacks {', '.join(missing)} (noise model {noise_model.name})"
            )
        try:
            noise[name] = data[cols].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{source}: noise columns of {name} are not numbers") from None
    return noise


class Sampler:
    """Ancestral sampler over a :class:`Network` for a given :class:`NoiseModel`.

    Args:
        network: the causal network.
        noise_model: the structural form of each node; :class:`InverseCDF` by default.
    """

    def __init__(self, network: Network, noise_model: NoiseModel | None = None) -> None:
        self.network = network
        self.noise_model = noise_model or InverseCDF()
        position = {name: i for i, name in enumerate(network.names)}
        self._position = position
        plans = []
        for name in network.order:
            node = network.node(name)
            plans.append(
                _Plan(
                    name=name,
                    index=position[name],
                    card=node.card,
                    parents=tuple(position[p] for p in node.parents),
                    parent_cards=tuple(network.node(p).card for p in node.parents),
                    params=self.noise_model.prepare(node.cpt),
                )
            )
        self._plans = plans
        self._dtype = network.code_dtype

    # -- sampling ---------------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        seed: int,
        do: Mapping[str, str] | None = None,
        evidence: Mapping[str, str] | None = None,
        with_noise: bool = False,
        chunk_size: int = DEFAULT_CHUNK,
        max_draws: int = DEFAULT_MAX_DRAWS,
        progress: Progress | None = None,
        start: int = 0,
    ) -> SampleResult:
        """Draw ``n`` records, optionally under ``do(...)`` and conditioned on ``evidence``.

        Args:
            n: number of records to return.
            seed: non-negative integer; equal seeds give equal output for any ``chunk_size``.
            do: hard interventions ``{variable: state}`` (graph mutilation).
            evidence: ``{variable: state}`` to condition on; exact (rejection of non-matching draws).
            with_noise: keep each record's exogenous noise (needed for counterfactuals).
            chunk_size: records generated per vectorised pass; bounds temporary memory.
            max_draws: budget of candidate records when sampling given evidence.
            progress: called with the number of records accepted by each pass.
            start: return records ``start .. start + n`` of the seed's sequence (a shard of a larger sample,
                equal to that slice of ``sample(start + n)``): each node's stream skips ahead exactly. Needs the
                inverse-CDF noise model (one uniform per record and node) and no evidence.

        Raises:
            UsageError: bad ``n``, seed, chunk size, ``start`` (with evidence or another noise model), or an
                unknown variable/state in ``do``/``evidence``.
            EvidenceTooRareError: the evidence is impossible, or too rare to sample within ``max_draws``.
        """
        if n < 0:
            raise UsageError(f"n must be >= 0, got {n}")
        if seed < 0:
            raise UsageError(f"seed must be >= 0, got {seed}")
        if chunk_size < 1:
            raise UsageError(f"chunk_size must be >= 1, got {chunk_size}")
        self._check_memory(n, with_noise)
        do_codes = self.network.resolve_assignment(do or {}, "do")
        ev_codes = self.network.resolve_assignment(evidence or {}, "evidence")
        p_evidence = self._check_evidence_budget(n, do or {}, evidence or {}, max_draws) if ev_codes else 1.0
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(self.network))]
        if start:
            self._skip(streams, start, bool(ev_codes))
        codes = [np.empty(n, dtype=self._dtype) for _ in self.network.names]
        noise = (
            [np.empty((n, self.noise_model.dim(p.card))) for p in sorted(self._plans, key=lambda p: p.index)]
            if with_noise
            else None
        )
        done = draws = 0
        while done < n:
            if draws >= max_draws and ev_codes:
                raise EvidenceTooRareError(
                    f"evidence {_fmt_assignment(evidence or {})}: only {done} of {n} matching records in "
                    f"{draws} draws (budget {max_draws}); raise max_draws or relax the evidence"
                )
            if ev_codes:  # enough candidates for the rest, within the budget (the result does not depend on m)
                m = min(chunk_size, max_draws - draws, max(1024, math.ceil(1.2 * (n - done) / p_evidence)))
            else:
                m = min(chunk_size, n - done)
            c_codes, c_noise = self._chunk(streams, m, do_codes, keep_noise=noise is not None)
            draws += m
            if ev_codes:
                keep = np.ones(m, dtype=bool)
                for var, code in ev_codes.items():
                    keep &= c_codes[self._position[var]] == code
                rows = np.flatnonzero(keep)[: n - done]
            else:
                rows = None
            k = m if rows is None else len(rows)
            for j in range(len(codes)):
                codes[j][done : done + k] = c_codes[j] if rows is None else c_codes[j][rows]
                if noise is not None:
                    noise[j][done : done + k] = c_noise[j] if rows is None else c_noise[j][rows]
            done += k
            if progress is not None and k:
                progress(k)
        data = self._frame(codes)
        kept = None if noise is None else dict(zip(self.network.names, noise, strict=True))
        return SampleResult(data=data, noise=kept, draws=draws)

    def _skip(self, streams: list[np.random.Generator], start: int, evidence: bool) -> None:
        """Advance every node's stream past the first ``start`` records (PCG64 jumps; one draw per uniform)."""
        if start < 0:
            raise UsageError(f"start must be >= 0, got {start}")
        if evidence:
            raise UsageError("start: evidence is sampled by rejection, so record k depends on every draw before it")
        if not isinstance(self.noise_model, InverseCDF):
            raise UsageError(f"start: needs the inverse_cdf noise model (got {self.noise_model.name})")
        for stream in streams:  # Generator.random takes exactly one 64-bit output per float64
            stream.bit_generator.advance(start)  # type: ignore[attr-defined]

    def _check_memory(self, n: int, with_noise: bool) -> None:
        """Refuse at once an ``n`` whose output alone would not fit in this machine's memory."""
        per_row = len(self.network) * np.dtype(self._dtype).itemsize
        if with_noise:
            per_row += 8 * sum(self.noise_model.dim(p.card) for p in self._plans)
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, OSError, ValueError):  # not every platform reports it
            return
        if n * per_row > total:
            raise UsageError(
                f"n={n:,} records need about {n * per_row / 2**30:,.1f} GiB, more than this machine's "
                f"{total / 2**30:,.1f} GiB: sample in several runs with different seeds"
            )

    def _chunk(
        self, streams: list[np.random.Generator], m: int, do_codes: Mapping[str, int], *, keep_noise: bool
    ) -> tuple[list[Codes], list[NDArray[np.float64]]]:
        codes: list[Codes] = [np.empty(0, dtype=self._dtype)] * len(streams)
        noise: list[NDArray[np.float64]] = [np.empty((0, 0))] * len(streams)
        for plan in self._plans:
            u = self.noise_model.draw(streams[plan.index], m, plan.card)  # drawn even under do: keeps U
            if keep_noise:  # otherwise drop it now: holding every node's noise would double peak memory
                noise[plan.index] = u
            out = np.empty(m, dtype=self._dtype)
            if plan.name in do_codes:
                out[:] = do_codes[plan.name]
            else:
                self.noise_model.assign(plan.params, self._config(plan, codes), u, out)
            codes[plan.index] = out
        return codes, noise

    @staticmethod
    def _config(plan: _Plan, codes: list[Codes]) -> NDArray[np.intp] | None:
        if not plan.parents:
            return None
        cfg = codes[plan.parents[0]].astype(np.intp)
        for p, card in zip(plan.parents[1:], plan.parent_cards[1:], strict=True):
            cfg *= card  # Horner: row index with the last parent varying fastest
            cfg += codes[p]
        return cfg

    def _frame(self, codes: list[Codes], index: pd.Index | None = None) -> pd.DataFrame:
        return pd.DataFrame(
            {
                name: pd.Categorical.from_codes(codes[i], categories=pd.Index(self.network.states(name)))
                for i, name in enumerate(self.network.names)
            },
            index=index,
            copy=False,
        )

    def _check_evidence_budget(
        self, n: int, do: Mapping[str, str], evidence: Mapping[str, str], max_draws: int
    ) -> float:
        """Return ``P(evidence; do)``, or raise if it is zero or too small for the budget."""
        from causalsynth.tools.causal.inference import evidence_probability

        p = evidence_probability(self.network, evidence, do=do)
        text = _fmt_assignment(evidence)
        if p <= 0.0:
            raise EvidenceTooRareError(f"evidence {text} is impossible under the model (probability 0)")
        needed = n / p
        if needed > max_draws:
            raise EvidenceTooRareError(
                f"evidence {text} has probability {p:.3g}; {n} records would need about "
                f"{math.ceil(needed):,} draws, above the budget of {max_draws:,} (raise max_draws)"
            )
        return p

    # -- counterfactuals -------------------------------------------------------------------------------
    def counterfactual(
        self,
        data: pd.DataFrame,
        noise: Mapping[str, NDArray[np.float64]],
        do: Mapping[str, str],
        *,
        check: bool = True,
    ) -> pd.DataFrame:
        """Return each record's twin under ``do(...)``, computed with the record's own noise.

        Args:
            data: factual records (one column per variable).
            noise: the noise that produced them (from ``sample(with_noise=True)`` or :meth:`abduct`).
            do: the intervention.
            check: verify first that the noise reproduces the factual records.

        Raises:
            DataError: the noise does not reproduce the factual records, or has the wrong shape.
        """
        do_codes = self.network.resolve_assignment(do, "do")
        if not do_codes:
            raise UsageError("counterfactual needs at least one intervention (do VAR=STATE)")
        factual = self.network.encode(data)
        n = len(data)
        for name in self.network.names:
            want = (n, self.noise_model.dim(self.network.node(name).card))
            if name not in noise or noise[name].shape != want:
                got = None if name not in noise else noise[name].shape
                raise DataError(f"noise for {name}: expected shape {want}, got {got}")
            invalid = np.flatnonzero(~self.noise_model.valid(noise[name]))
            if len(invalid):
                row = int(invalid[0])
                raise DataError(
                    f"noise for {name}, row {row}: {noise[name][row].tolist()} is not valid {self.noise_model.name} "
                    f"noise ({self.noise_model.domain}); {len(invalid)} rows affected"
                )
        if check:
            replay = self._replay(factual, noise, {}, set(self.network.names))
            for i, name in enumerate(self.network.names):
                bad = np.flatnonzero(replay[i] != factual[i])
                if len(bad):
                    raise DataError(
                        f"the noise does not reproduce the factual records: {name} differs in "
                        f"{len(bad)} rows (first row {int(bad[0])}); was it sampled with another spec, "
                        f"seed or noise model?"
                    )
        affected = self.network.descendants(do_codes) | set(do_codes)
        return self._frame(self._replay(factual, noise, do_codes, affected), index=data.index)

    def _replay(
        self,
        factual: list[Codes],
        noise: Mapping[str, NDArray[np.float64]],
        do_codes: Mapping[str, int],
        affected: set[str],
    ) -> list[Codes]:
        out = list(factual)
        for plan in self._plans:
            if plan.name in do_codes:
                out[plan.index] = np.full(len(factual[plan.index]), do_codes[plan.name], dtype=self._dtype)
            elif plan.name in affected:
                codes = np.empty(len(factual[plan.index]), dtype=self._dtype)
                self.noise_model.assign(plan.params, self._config(plan, out), noise[plan.name], codes)
                out[plan.index] = codes
        return out

    def abduct(self, data: pd.DataFrame, *, seed: int) -> dict[str, NDArray[np.float64]]:
        """Sample noise from its posterior given fully observed records (for data sampled without noise).

        Raises:
            DataError: a record has probability zero under the model (no noise can produce it).
        """
        codes = self.network.encode(data)
        rng = np.random.default_rng(seed)
        noise: dict[str, NDArray[np.float64]] = {}
        for plan in self._plans:
            cfg = self._config(plan, codes)
            own = codes[plan.index]
            prob = self.network.node(plan.name).cpt[0 if cfg is None else cfg, own]
            impossible = np.flatnonzero(prob <= 0)
            if len(impossible):
                row = int(impossible[0])
                given = ", ".join(f"{p}={data[p].iloc[row]}" for p in self.network.node(plan.name).parents)
                raise DataError(
                    f"row {row} is impossible under the model: P({plan.name}={data[plan.name].iloc[row]}"
                    f"{' | ' + given if given else ''}) = 0 ({len(impossible)} such rows)"
                )
            noise[plan.name] = self.noise_model.abduct(plan.params, cfg, own, rng)
        return {name: noise[name] for name in self.network.names}


def _fmt_assignment(assignment: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in assignment.items())
