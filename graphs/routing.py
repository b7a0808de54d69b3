"""Routing: pure functions of the state (or of one record) that name where work goes next."""

from __future__ import annotations

from typing import Literal

from graphs.state import Record, RunState
from graphs.table_state import TableRunState

Mode = Literal["iterative", "rejection"]


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


def after_verify(state: RunState) -> Literal["generate", "assess"]:
    """Back to the Generator while any record of the batch awaits another attempt; else assess the batch."""
    return "generate" if state.get("records") else "assess"


def after_write(state: RunState) -> Literal["sample", "__end__"]:
    """Next batch while records remain to be requested; else the run ends."""
    return "sample" if state.get("next_id", 0) < state.get("n_requested", 0) else "__end__"


def after_validate_tables(state: TableRunState) -> Literal["repair", "write_tables"]:
    """Repair while records of the batch still have violations to fix; else write the batch."""
    return "repair" if state.get("violations") else "write_tables"


def after_repair(state: TableRunState) -> Literal["generate_text", "validate_tables"]:
    """To the Generator when texts must be rewritten; else straight back to validation."""
    return "generate_text" if state.get("feedback") else "validate_tables"


def after_write_tables(state: TableRunState) -> Literal["sample_tables", "__end__"]:
    """Next batch while root rows remain to be requested; else the run ends."""
    return "sample_tables" if state.get("next_id", 0) < state.get("n_requested", 0) else "__end__"
