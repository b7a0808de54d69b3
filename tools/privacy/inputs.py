"""The files a fit reads: the real table (CSV or Parquet, typed) and the public bounds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.privacy.domain import PublicBounds
from causalsynth.tools.yamlio import load_yaml


def read_real_table(path: Path) -> pd.DataFrame:
    """A typed table: CSV cells parsed as numbers, empty cells as nulls; Parquet as stored.

    Raises:
        DataError: missing, unreadable or empty file.
    """
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise UsageError(f"{path}: unsupported extension {suffix or '(none)'!r}; fit reads .csv or .parquet")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the table is empty (no rows or no columns)") from None
    except Exception as exc:  # noqa: BLE001 - the parsers raise their own types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read as {suffix[1:]}: {detail}") from None


def read_bounds(path: Path) -> dict[str, PublicBounds]:
    """Public bounds: ``COLUMN: {low: L, high: H}`` or ``COLUMN: {categories: [...]}`` per column (YAML).

    Raises:
        UsageError: unreadable file or a malformed entry, named.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--bounds {path}: cannot read: {exc}") from None
    data, _ = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise UsageError(f"--bounds {path}: expected a mapping of column -> {{low, high}} or {{categories}}")
    out: dict[str, PublicBounds] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not set(entry) <= {"low", "high", "categories"}:
            raise UsageError(f"--bounds {path}: {name}: expected keys low, high or categories")
        try:
            low = float(entry["low"]) if entry.get("low") is not None else None
            high = float(entry["high"]) if entry.get("high") is not None else None
        except (TypeError, ValueError):
            raise UsageError(f"--bounds {path}: {name}: low and high must be numbers") from None
        if low is not None and high is not None and not low < high:
            raise UsageError(f"--bounds {path}: {name}: low {low:g} must be below high {high:g}")
        cats = entry.get("categories")
        if cats is not None and (not isinstance(cats, list) or not cats):
            raise UsageError(f"--bounds {path}: {name}: categories must be a non-empty list")
        out[str(name)] = PublicBounds(low, high, tuple(str(c) for c in cats) if cats is not None else None)
    return out
