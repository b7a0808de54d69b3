"""Node ``redact_identifiers``: after generation, identifiers a model wrote into a note are replaced.

A small model sometimes invents record numbers and phone numbers; none may reach the output files. The node runs
right after the Generator, so the validators and the writer only ever see the redacted text. It works on both
run topologies: records (``state["records"]``) and tables (the spec's realised text column).
"""

from __future__ import annotations

import re
from typing import Any

IDENTIFIER = re.compile(r"\b(?:MRN[-: ]?\d{4,}|H\d{7}|\+?\d[\d -]{8,}\d)\b")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every identifier replaced."""
    return IDENTIFIER.sub(REDACTED, text)


def redact_identifiers(state: Any, runtime: Any) -> dict[str, Any]:
    """Redact the texts in flight; report how many texts changed."""
    if "records" in state:
        records = [{**r, "text": redact(r["text"])} for r in state["records"]]
        changed = sum(a["text"] != b["text"] for a, b in zip(records, state["records"], strict=True))
        return {"records": records, "info": {"redacted_texts": changed}}
    realised = runtime.context.schema.realised()
    tables = state.get("tables", {})
    if realised is None or realised[0] not in tables:
        return {"info": {"redacted_texts": 0}}
    table, column = realised
    cols = dict(tables[table])
    before = list(cols[column])
    cols[column] = [redact(t) if t else t for t in before]
    changed = sum(a != b for a, b in zip(before, cols[column], strict=True))
    return {"tables": {**tables, table: cols}, "info": {"redacted_texts": changed}}
