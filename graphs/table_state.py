"""State of a relational run: batches of whole records (a root row and all its descendants), JSON-like.

``tables`` holds the batch's rows still in flight, column by column per table (hidden columns included:
``_entity``, ``_v_VAR``, ``_attempts``); ``violations`` the last validation's findings on them; ``feedback`` the
text rows the Generator must rewrite, keyed by the row's primary key, with what was wrong.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

from graphs.state import add_counts
from tools.realisation import Violation
from tools.table_check import TableViolation

Columns = dict[str, list[Any]]
Tables = dict[str, Columns]


class TableRunState(TypedDict, total=False):
    """The state of a relational run."""

    n_requested: int
    next_id: int  # first root row (entity) of the next batch
    batch: int
    round: int  # validation rounds so far in this batch
    tables: Tables
    violations: list[TableViolation]
    feedback: dict[str, list[Violation]]
    accepted: Annotated[list[Tables], operator.add]
    rejected: Annotated[list[TableViolation], operator.add]
    totals: Annotated[dict[str, float], add_counts]
    report: dict[str, Any] | None
    info: dict[str, Any]
