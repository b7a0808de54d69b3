"""Routing: pure functions of the state that name where the graph goes next (a record's own fate: ``agents.triage``)."""

from __future__ import annotations

from typing import Literal

from causalsynth.agents.state import RunFrame, RunState
from causalsynth.agents.table_state import TableRunState


def after_verify(state: RunState) -> Literal["generate", "assess"]:
    """Back to the Generator while any record of the batch awaits another attempt; else assess the batch."""
    return "generate" if state.get("records") else "assess"


def after_assess(state: RunState) -> Literal["generate", "write"]:
    """Back to the Generator with the records the privacy guard resampled; else write the batch."""
    return "generate" if state.get("records") else "write"


def after_write(state: RunFrame) -> Literal["sample", "__end__"]:
    """Next batch while records (root rows) remain to be requested; else the run ends (both topologies)."""
    return "sample" if state.get("next_id", 0) < state.get("n_requested", 0) else "__end__"


def after_validate_tables(state: TableRunState) -> Literal["repair", "write_tables"]:
    """Repair while records of the batch still have violations to fix; else write the batch."""
    return "repair" if state.get("violations") else "write_tables"


def after_repair(state: TableRunState) -> Literal["generate_text", "validate_tables"]:
    """To the Generator when texts must be rewritten; else straight back to validation."""
    return "generate_text" if state.get("feedback") else "validate_tables"
