"""The template realiser: a deterministic, seeded choice among the spec's phrasings for each stated fact.

For each record it picks an opening (if the spec gives any) and one phrase per observed variable's state, in
the spec's variable order, filling a measured variable's ``{value}`` with a value drawn inside the state's range.
Choices depend only on ``(seed, record_id, attempt)``, so a record reads the same however runs are batched.
Latent variables are never written. Every phrase reads back as its own fact (checked when the spec loads), so
template realisations pass verification by construction; the realiser is the fast, LLM-free baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.text.lexicon import VALUE_SLOT, Lexicon, fill_value
from causalsynth.tools.text.realisation import Realisation, RealisationRequest


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a fast, well-mixed 64-bit hash (element-wise)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, record_ids: Sequence[int], attempts: Sequence[int], k: int) -> NDArray[np.float64]:
    """``(n, k)`` uniforms in [0, 1) that depend only on ``(seed, record_id, attempt, column)``."""
    with np.errstate(over="ignore"):
        base = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        base = _mix(base ^ np.uint64((seed >> 64) & 0xFFFFFFFFFFFFFFFF))
        ids = np.asarray(record_ids, dtype=np.uint64)[:, None]
        att = np.asarray(attempts, dtype=np.uint64)[:, None]
        col = np.arange(k, dtype=np.uint64)[None, :]
        x = _mix(_mix(base ^ ids) ^ (att * np.uint64(0xD1B54A32D192ED03)) ^ (col * np.uint64(0x8CB92BA72F3D8DD7)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class TemplateRealiser:
    """Realise skeletons from the lexicon's phrases; no LLM calls."""

    name = "template"

    def __init__(self, lexicon: Lexicon, seed: int = 0) -> None:
        self.lexicon = lexicon
        self.seed = seed
        observed = lexicon.observed
        self._plan = [(var, lexicon.phrases[var], lexicon.numeric.get(var)) for var in observed]
        self._ranges = {
            var: {state: (low, high, i == len(rule.ranges) - 1) for i, (low, high, state) in enumerate(rule.ranges)}
            for var, rule in lexicon.numeric.items()
        }

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One text per request."""
        if not requests:
            return []
        u = uniforms(self.seed, [r.record_id for r in requests], [r.attempt for r in requests], 2 * len(self._plan) + 1)
        rows = u.tolist()
        return [Realisation(text=" ".join(self._parts(r.skeleton, row))) for r, row in zip(requests, rows, strict=True)]

    def text(self, skeleton: Mapping[str, str], record_id: int, attempt: int = 0) -> str:
        """The realisation of one skeleton."""
        return " ".join(self.parts(skeleton, record_id, attempt))

    def parts(self, skeleton: Mapping[str, str], record_id: int, attempt: int = 0) -> list[str]:
        """The chosen opening (if the spec has openings) and one phrase per observed fact, in the spec's order."""
        row = uniforms(self.seed, [record_id], [attempt], 2 * len(self._plan) + 1)[0].tolist()
        return self._parts(skeleton, row)

    def _parts(self, skeleton: Mapping[str, str], u: list[float]) -> list[str]:
        openings = self.lexicon.text.openings
        parts = [openings[int(u[-1] * len(openings))]] if openings else []
        for j, (var, phrases, rule) in enumerate(self._plan):
            state = skeleton[var]
            options = phrases[state]
            phrase = options[int(u[2 * j] * len(options))]
            if rule is not None and VALUE_SLOT in phrase:
                low, high, top = self._ranges[var][state]
                step = 10.0**-rule.decimals
                hi = high if top else high - step  # [low, high): stay below the next range
                value = min(max(low + u[2 * j + 1] * (hi - low), low), hi)
                phrase = fill_value(phrase, value, rule.decimals)  # rounds half-even, within [low, hi]
            parts.append(phrase)
        return parts
