"""Validator tool ``formulary_check``: every drug a note names must be on the hospital's formulary.

A word that is not on the formulary but close to an entry (a misspelling such as ``metfromin``) is a violation
whose message names the formulary spelling, so the Generator's correction round is told exactly what to write.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from langchain_core.tools import tool

FORMULARY = (
    "amoxicillin", "aspirin", "atorvastatin", "bisoprolol", "clopidogrel", "co-amoxiclav", "furosemide",
    "gliclazide", "insulin", "metformin", "paracetamol", "prednisolone", "ramipril", "salbutamol", "tiotropium",
)  # fmt: skip
_WORD = re.compile(r"[a-z][a-z-]{4,}")


@lru_cache(maxsize=100_000)
def _closest(word: str) -> str | None:
    """The formulary drug ``word`` misspells, if any (notes repeat their words: each is compared once)."""
    if word in FORMULARY:
        return None
    close = difflib.get_close_matches(word, FORMULARY, n=1, cutoff=0.8)
    return close[0] if close else None


def misspelt_drugs(text: str) -> list[tuple[str, str]]:
    """``(word, formulary spelling)`` for each word of ``text`` that is close to a formulary drug but not one."""
    found = []
    for word in sorted(set(_WORD.findall(text.lower()))):
        drug = _closest(word)
        if drug is not None:
            found.append((word, drug))
    return found


@tool
def formulary_check(text: str) -> list[dict[str, str]]:
    """Check that every drug named in a clinical note is spelled as on the hospital formulary."""
    return [
        {"kind": "formulary", "variable": "text", "found": word, "expected": drug,
         "message": f"'{word}' is not on the formulary: did you mean '{drug}'? Write '{drug}'."}
        for word, drug in misspelt_drugs(text)
    ]  # fmt: skip
