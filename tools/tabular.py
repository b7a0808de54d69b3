"""Tables in and out: Parquet, CSV or JSONL chosen by extension; writes are atomic."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd

from causalsynth.tools.errors import DataError, UsageError

FORMATS = (".parquet", ".csv", ".jsonl")


def columns_of(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[tuple[Any, ...]]:
    """The values of ``names`` in ``rows``, one tuple per name: a C-level transposition, not a lookup per value.

    Raises:
        KeyError: a row lacks one of the names.
    """
    if not names:
        return []
    if len(names) == 1:
        return [tuple(r[names[0]] for r in rows)]
    if not rows:
        return [() for _ in names]
    return list(zip(*map(itemgetter(*names), rows), strict=True))


def table_format(path: Path) -> str:
    """Return the format for ``path`` from its extension, or raise naming the supported ones."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{path}: unsupported extension {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    return suffix


def read_table(path: Path) -> pd.DataFrame:
    """Read a table; state columns come back as text (CSV cells are never parsed as numbers or NaN)."""
    fmt = table_format(path)
    if not (path.is_file() or (fmt == ".parquet" and path.is_dir())):  # a folder: a Parquet dataset (its files)
        raise DataError(f"{path}: file not found")
    try:
        if fmt == ".parquet":
            return pd.read_parquet(path)
        if fmt == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read as {fmt[1:]}: {detail}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow and the parsers raise their own types
        raise DataError(f"{path}: cannot read as {fmt[1:]}: {type(exc).__name__}: {exc}") from None


def write_table(data: pd.DataFrame, path: Path) -> None:
    """Write a table atomically: a reader never sees a half-written file under the final name."""
    fmt = table_format(path)

    def write(tmp: Path) -> None:
        if fmt == ".parquet":
            data.to_parquet(tmp, index=False)
        elif fmt == ".csv":
            data.to_csv(tmp, index=False)
        else:
            data.to_json(tmp, orient="records", lines=True)

    write_atomic(path, write)


def write_text(text: str, path: Path) -> None:
    """Write a text file atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Run ``write`` on a temporary file beside ``path``, then rename it into place (mode from the umask).

    Raises:
        DataError: the folder cannot be created or written, or ``path`` is a folder.
    """
    tmp: Path | None = None
    try:
        if path.is_dir():
            raise DataError(f"{path}: is a folder, not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, plain_file_mode())  # mkstemp creates 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def plain_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
