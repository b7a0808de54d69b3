"""State of a relational run: batches of whole records (a root row and all its descendants), JSON-like.

``tables`` holds the batch's rows still in flight, column by column per table (hidden columns included:
``_entity``, ``_v_VAR``, ``_attempts``, and ``_failed``: why a text's model call failed for infrastructure reasons);
``violations`` the last validation's findings on them; ``feedback`` the text rows the Generator must rewrite, keyed
by the row's primary key, with what was wrong; ``before`` the first validation's findings on the records still in
flight (a record that fails later is taken out of the measures with them); ``failed`` one row per text of a record
set aside because its model call failed for infrastructure reasons (neither accepted nor rejected).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from causalsynth.agents.state import RunFrame
from causalsynth.tools.relational.checks import TableViolation
from causalsynth.tools.text.realisation import Violation

#: Hidden column of the realised table: why the row's text call failed for infrastructure reasons (else None).
FAILED = "_failed"

Columns = dict[str, list[Any]]
Tables = dict[str, Columns]


class TableRunState(RunFrame, total=False):
    """The state of a relational run (``next_id`` counts root rows; ``round`` validation rounds)."""

    tables: Tables
    violations: list[TableViolation]
    feedback: dict[str, list[Violation]]
    accepted: Annotated[list[Tables], operator.add]
    rejected: Annotated[list[TableViolation], operator.add]
    failed: Annotated[list[TableViolation], operator.add]
    before: list[TableViolation]
