"""Realiser ``letter``: the template realiser's facts, framed as a letter to the patient's GP (no model needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from causalsynth.tools.text.realisation import Realisation, RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser

OPENING = "Dear colleague, I saw your patient in clinic today."
CLOSING = "Kind regards, the ward team."


class LetterRealiser:
    """Writes each record as a short letter: an opening, the facts in the spec's phrasings, a closing."""

    name = "letter"

    def __init__(self, lexicon: Any, seed: int = 0) -> None:
        self._facts = TemplateRealiser(lexicon, seed=seed)

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One letter per request."""
        return [replace(r, text=f"{OPENING} {r.text} {CLOSING}") for r in self._facts.realise(requests)]


def letter(lexicon: Any, seed: int) -> LetterRealiser:
    """The plugin's realiser factory: ``(lexicon, seed) -> realiser``."""
    return LetterRealiser(lexicon, seed)
