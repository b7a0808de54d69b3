"""A SQLite database with the schema's declared constraints: the final check of keys and foreign keys.

Tables are created ``STRICT`` (SQLite checks each value's type) with ``PRIMARY KEY``, ``NOT NULL``, ``UNIQUE``,
``FOREIGN KEY ... REFERENCES`` and the column constraints that SQL states directly (category values, text length,
booleans as 0/1). Business rules are not copied into ``CHECK`` clauses: they are verified by the Schema Validator
and, independently, by SQL queries against the written file. ``PRAGMA foreign_keys=ON`` is set on every
connection, so an insert that references a missing parent fails, and with it the run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.tables import ColumnSpec, TableSchema

SQL_TYPES = {
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "category": "TEXT",
    "string": "TEXT",
    "email": "TEXT",
    "date": "TEXT",
    "datetime": "TEXT",
}


def quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column_sql(name: str, cs: ColumnSpec) -> str:
    parts = [quote(name), SQL_TYPES[cs.type]]
    if not cs.nullable:
        parts.append("NOT NULL")
    if cs.unique:
        parts.append("UNIQUE")
    checks = []
    if cs.type == "bool":
        checks.append(f"{quote(name)} IN (0, 1)")
    if cs.type == "category" and cs.values:
        checks.append(f"{quote(name)} IN ({', '.join(_literal(v) for v in cs.values)})")
    for bound, op in (("min", ">="), ("max", "<=")):
        value = getattr(cs, bound)
        if value is not None and cs.type in ("int", "float"):
            checks.append(f"{quote(name)} {op} {float(value)!r}")
    if cs.max_length is not None:
        checks.append(f"length({quote(name)}) <= {cs.max_length}")
    if cs.references is not None:
        table, _, column = cs.references.partition(".")
        parts.append(f"REFERENCES {quote(table)} ({quote(column)})")
    parts += [f"CHECK ({c})" for c in checks]
    return " ".join(parts)


def create_statements(schema: TableSchema) -> list[str]:
    """``CREATE TABLE`` statements, parents first."""
    out = []
    for table in schema.order:
        spec = schema.tables[table]
        cols = [_column_sql(c, cs) for c, cs in spec.columns.items()]
        cols.append(f"PRIMARY KEY ({quote(schema.pk(table))})")
        out.append(f"CREATE TABLE {quote(table)} (\n  " + ",\n  ".join(cols) + "\n) STRICT")
    return out


def connect(path: Path) -> sqlite3.Connection:
    """A connection with foreign keys enforced."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SqliteSink:
    """Creates the database and inserts batches of rows, parents first, one transaction per batch."""

    def __init__(self, path: Path, schema: TableSchema) -> None:
        self.path = path
        self.schema = schema
        try:
            path.unlink(missing_ok=True)
            self.conn = connect(path)
            with self.conn:
                for statement in create_statements(schema):
                    self.conn.execute(statement)
        except sqlite3.Error as exc:
            raise DataError(f"{path}: cannot create the database: {exc}") from None

    def insert(self, tables: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        """Insert one batch; a constraint the rows break aborts the run, naming it.

        Raises:
            DataError: SQLite refused a row (a key, foreign key, type or column constraint).
        """
        try:
            with self.conn:
                for table in self.schema.order:
                    cols = list(self.schema.tables[table].columns)
                    data = tables.get(table)
                    if not data or not data[cols[0]]:
                        continue
                    bools = {c for c in cols if self.schema.tables[table].columns[c].type == "bool"}
                    rows = zip(
                        *([int(v) if c in bools and v is not None else v for v in data[c]] for c in cols), strict=True
                    )
                    marks = ", ".join("?" for _ in cols)
                    self.conn.executemany(
                        f"INSERT INTO {quote(table)} ({', '.join(map(quote, cols))}) VALUES ({marks})", rows
                    )
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: SQLite refused the rows: {exc}") from None

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
