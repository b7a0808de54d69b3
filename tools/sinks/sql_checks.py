"""Run a file of named SQL checks (``-- check: NAME`` then one query returning a count) against a database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from causalsynth.tools.errors import DataError
from causalsynth.tools.sinks.sqlite import connect


def read_checks(path: Path) -> dict[str, str]:
    """``name -> query`` from a checks file."""
    checks: dict[str, str] = {}
    name: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("-- check:"):
            name = stripped.removeprefix("-- check:").strip()
            checks[name] = ""
        elif name is not None and stripped and not stripped.startswith("--"):
            checks[name] += line + "\n"
    return {k: v.strip() for k, v in checks.items() if v.strip()}


def run_checks(database: Path, checks: dict[str, str]) -> dict[str, int]:
    """Each check's count of offending rows (0 everywhere means the data complies)."""
    conn = connect(database)
    try:
        return {name: int(conn.execute(query).fetchone()[0]) for name, query in checks.items()}
    except sqlite3.Error as exc:
        raise DataError(f"{database}: a check failed to run: {exc}") from None
    finally:
        conn.close()
