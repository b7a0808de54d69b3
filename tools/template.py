"""The template realiser: a deterministic, seeded choice among the spec's phrasings for each stated fact.

For each record it picks an opening (if the spec gives any) and one phrase per observed variable's state, in
the spec's variable order, filling a measured variable's ``{value}`` with a value drawn inside the state's range.
Choices depend only on ``(seed, record_id, attempt)``, so a record reads the same however runs are batched.
Latent variables are never written. Every phrase reads back as its own fact (checked when the spec loads), so
template realisations pass verification by construction; the realiser is the fast, LLM-free baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tools.lexicon import VALUE_SLOT, Lexicon, fill_value
from tools.realisation import Realisation, RealisationRequest


class TemplateRealiser:
    """Realise skeletons from the lexicon's phrases; no LLM calls."""

    name = "template"

    def __init__(self, lexicon: Lexicon, seed: int = 0) -> None:
        self.lexicon = lexicon
        self.seed = seed
        self._observed = lexicon.observed

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One text per request."""
        return [Realisation(text=self.text(r.skeleton, r.record_id, r.attempt)) for r in requests]

    def text(self, skeleton: object, record_id: int, attempt: int = 0) -> str:
        """The realisation of one skeleton (a mapping variable -> state)."""
        assert isinstance(skeleton, dict) or hasattr(skeleton, "__getitem__")
        lex = self.lexicon
        rng = np.random.default_rng([self.seed, record_id, attempt])
        picks = rng.random(len(self._observed) + 1)
        parts: list[str] = []
        openings = lex.text.openings
        if openings:
            parts.append(openings[int(picks[-1] * len(openings))])
        for var, u in zip(self._observed, picks, strict=False):
            state = skeleton[var]  # type: ignore[index]
            options = lex.phrases[var][state]
            phrase = options[int(u * len(options))]
            if VALUE_SLOT in phrase:
                phrase = fill_value(phrase, self._value(var, state, rng), lex.numeric[var].decimals)
            parts.append(phrase)
        return " ".join(parts)

    def _value(self, var: str, state: str, rng: np.random.Generator) -> float:
        rule = self.lexicon.numeric[var]
        i, (low, high, _) = next((i, r) for i, r in enumerate(rule.ranges) if r[2] == state)
        step = 10.0**-rule.decimals
        top = high if i == len(rule.ranges) - 1 else high - step  # [low, high): stay below the next range
        value = round(float(rng.uniform(low, max(low, top))), rule.decimals)
        return min(max(value, low), top)
