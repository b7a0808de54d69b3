"""Triage: where one checked record goes next (accept, another attempt, reject), a pure function of the record."""

from __future__ import annotations

from typing import Literal

from causalsynth.agents.state import Record


def record_route(record: Record, max_rounds: int) -> Literal["accept", "correct", "reject", "fail"]:
    """Where one verified record goes: accepted if clean, else another attempt while the budget allows.

    A record whose generator call failed for infrastructure reasons (after the realiser's retries) is ``fail``:
    it says nothing about the text, so it is neither corrected nor rejected (a resumed run can retry it).

    Both modes give a record ``1 + max_rounds`` generator calls; they differ in what the next attempt is told
    (iterative: the violations and the previous text; rejection: nothing, it starts from scratch).
    """
    if not record["violations"]:
        return "accept"
    if any(v["kind"] == "infrastructure" for v in record["violations"]):
        return "fail"
    if record["attempts"] <= max_rounds:
        return "correct"
    return "reject"
