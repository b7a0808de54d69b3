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

from causalsynth.tools.tabular import columns_of
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
        self._codes = {var: {state: i for i, state in enumerate(phrases)} for var, phrases, _ in self._plan}
        self._ranges = {
            var: {state: (low, high, i == len(rule.ranges) - 1) for i, (low, high, state) in enumerate(rule.ranges)}
            for var, rule in lexicon.numeric.items()
        }

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One text per request: the same texts as ``text`` per record, chosen per variable and state at once."""
        if not requests:
            return []
        return [Realisation(text=t) for t in self.texts([r.skeleton for r in requests],
                                                        [r.record_id for r in requests],
                                                        [r.attempt for r in requests])]  # fmt: skip

    def texts(self, skeletons: Sequence[Mapping[str, str]], record_ids: Sequence[int],
              attempts: Sequence[int]) -> list[str]:  # fmt: skip
        """The realisations of many skeletons, vectorised: one column of phrases per variable, joined per record.

        Equal to ``text(skeleton, record_id, attempt)`` for each record (the same uniforms pick the same phrases).
        """
        n = len(skeletons)
        if n == 0:
            return []
        u = uniforms(self.seed, record_ids, attempts, 2 * len(self._plan) + 1)
        columns: list[list[str]] = []
        openings = self.lexicon.text.openings
        if openings:
            columns.append(np.asarray(openings, dtype=object)[(u[:, -1] * len(openings)).astype(np.int64)].tolist())
        observed = [var for var, _, _ in self._plan]
        by_var = columns_of(skeletons, observed)
        for j, (var, phrases, rule) in enumerate(self._plan):
            code_of = self._codes[var]
            codes = np.fromiter(map(code_of.__getitem__, by_var[j]), np.int64, n)  # KeyError: a state without phrases
            column = np.empty(n, dtype=object)
            for state, code in code_of.items():
                rows = np.flatnonzero(codes == code)
                if rows.size == 0:
                    continue
                options = phrases[state]
                pick = (u[rows, 2 * j] * len(options)).astype(np.int64)
                column[rows] = np.asarray(options, dtype=object)[pick]
                if rule is not None:
                    self._fill(column, rows, pick, options, u[rows, 2 * j + 1], var, state, rule.decimals)
            columns.append(column.tolist())
        return [" ".join(parts) for parts in zip(*columns, strict=True)]

    def _fill(self, column: NDArray[np.object_], rows: NDArray[np.intp], pick: NDArray[np.int64],
              options: Sequence[str], u: NDArray[np.float64], var: str, state: str, decimals: int) -> None:  # fmt: skip
        """Fill the drawn values of one measured variable's state into the chosen phrases that have a slot.

        ``%.Nf`` formats as ``fill_value``'s f-string does (both round the double half-even to N decimals).
        """
        slotted = np.asarray([VALUE_SLOT in p for p in options])[pick]
        if not slotted.any():
            return
        low, high, top = self._ranges[var][state]
        step = 10.0**-decimals
        hi = high if top else high - step  # [low, high): stay below the next range
        values = np.minimum(np.maximum(low + u[slotted] * (hi - low), low), hi)
        at = rows[slotted].tolist()
        chosen = pick[slotted].tolist()
        if decimals == 0 and low >= 0:  # whole numbers: rint rounds half-even exactly as the format does
            ints = np.rint(values).astype(np.int64)
            base = int(ints.min())
            names = [str(k) for k in range(base, int(ints.max()) + 1)]
            written = [names[k - base] for k in ints.tolist()]
        else:
            written = list(map(f"%.{decimals}f".__mod__, values.tolist()))
        split = [p.split(VALUE_SLOT, 1) if VALUE_SLOT in p else None for p in options]
        if all(part is None or VALUE_SLOT not in part[1] for part in split):  # one slot per phrase
            column[at] = [split[k][0] + w + split[k][1] for k, w in zip(chosen, written, strict=True)]
        else:
            column[at] = [options[k].replace(VALUE_SLOT, w) for k, w in zip(chosen, written, strict=True)]

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
