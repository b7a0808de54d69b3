"""Triage: where one checked record goes next (accept, another attempt, reject), a pure function of the record."""

from __future__ import annotations

from typing import Literal

from causalsynth.agents.state import Record


def record_route(record: Record, max_rounds: int) -> Literal["accept", "correct", "reject"]:
    """Where one verified record goes: accepted if clean, else another attempt while the budget allows.

    Both modes give a record ``1 + max_rounds`` generator calls; they differ in what the next attempt is told
    (iterative: the violations and the previous text; rejection: nothing, it starts from scratch).
    """
    if not record["violations"]:
        return "accept"
    if record["attempts"] <= max_rounds:
        return "correct"
    return "reject"
