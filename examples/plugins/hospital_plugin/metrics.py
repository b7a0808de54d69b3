"""Metric ``drug_mentions``: how often the accepted notes name a formulary drug."""

from __future__ import annotations

from typing import Any

from .formulary import FORMULARY


def drug_mentions(records: Any) -> dict[str, float]:
    """Share of accepted notes naming at least one formulary drug, and drugs named per note."""
    texts = [str(t).lower() for t in records["text"]] if len(records) else []
    counts = [sum(drug in text for drug in FORMULARY) for text in texts]
    n = len(counts)
    return {"share": sum(c > 0 for c in counts) / n if n else 0.0, "per_note": sum(counts) / n if n else 0.0}
