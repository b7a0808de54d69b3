"""Relational schemas in a spec: tables, typed columns, keys, foreign keys, SCM bindings and business rules.

How the causal model maps onto tables: every SCM variable lives in exactly one table (``variables:``; variables
not listed live in the root table) and is sampled once per row of that table. A row sees its own variables and
those of its ancestors (the rows its foreign keys lead to), so a cause may live in the same table as its effect
or in an ancestor table (patient ``smoking`` -> admission ``diagnosis``), never in a descendant. Columns are
filled from a variable (the state itself, or a value, range or distribution per state), from a seeded provider
(``tools.relational.fake_values``), as an offset from another column, derived with the rule language, as a parent's or
lookup table's key, or realised by the Generator.

Loading checks the whole schema (``tools.relational.spec_check``) and reports every problem at once, each with file,
line and key path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from causalsynth.tools.relational.rules import ColumnType, Expression, Kind, Rule, Scope
from causalsynth.tools.yamlio import scalar_text

Name = Annotated[str, BeforeValidator(scalar_text)]
Where = Callable[[tuple[str | int, ...]], str]

ColumnKind = Literal["int", "float", "bool", "category", "string", "email", "date", "datetime"]
KINDS: dict[str, Kind] = {
    "int": "num",
    "float": "num",
    "bool": "bool",
    "category": "str",
    "string": "str",
    "email": "str",
    "date": "date",
    "datetime": "datetime",
}
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValueMap(_Strict):
    """A state -> value map: a fixed value, ``[low, high]`` (uniform) or ``{range: [low, high], mode: m}``."""

    variable: Name
    map: dict[Name, Any] | None = None


class Offset(_Strict):
    """A value computed from another column plus an amount (days for dates): ``by: [low, high]`` or per state."""

    from_: Name = Field(alias="from")
    by: Any = None
    variable: Name | None = None
    map: dict[Name, Any] | None = None


class ColumnSpec(_Strict):
    """A column: its type and constraints, and where its values come from (exactly one source)."""

    type: ColumnKind
    description: str | None = None
    nullable: bool = False
    unique: bool = False
    values: list[Name] | None = None
    min: Any = None
    max: Any = None
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None
    references: str | None = None
    variable: Name | None = None
    map: dict[Name, Any] | None = None
    provider: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    offset: Offset | None = None
    derive: str | None = None
    realise: bool = False
    null_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class RuleSpec(_Strict):
    """A business rule in the rule language (``rule``) or in natural language (``nl``, compiled by an LLM)."""

    name: str | None = None
    rule: str | None = None
    nl: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RuleSpec:
        if (self.rule is None) == (self.nl is None):
            raise ValueError("give exactly one of 'rule' (the rule language) or 'nl' (natural language)")
        return self


class TableSpec(_Strict):
    """A table: primary key, parent and rows per parent row, the SCM variables sampled per row, columns, rules."""

    primary_key: Name | None = None
    parent: Name | None = None
    rows: int | None = Field(default=None, ge=1, le=1_000_000)  # a lookup table: this many rows for the whole run
    cardinality: int | list[int] | ValueMap | None = None
    variables: list[Name] = Field(default_factory=list)
    columns: dict[Name, ColumnSpec]
    rules: list[str | RuleSpec] = Field(default_factory=list)


@dataclass
class TableSchema:
    """A checked relational schema: tables in parent-first order, keys, variable placement and compiled rules."""

    tables: dict[str, TableSpec]
    order: list[str]  # parents before children
    parent: dict[str, str | None]
    fk: dict[str, str]  # child table -> its column referencing the parent's primary key
    home: dict[str, str]  # SCM variable -> the table it is sampled in
    rules: list[Rule] = field(default_factory=list)
    nl: dict[str, str] = field(default_factory=dict)  # rule text -> the natural-language sentence it came from
    uncompiled: list[tuple[str, str, str]] = field(default_factory=list)  # (table, sentence, name) not in the lock
    derived: list[Expression] = field(default_factory=list)  # derived columns, each after what it reads
    derived_columns: list[tuple[str, str]] = field(default_factory=list)  # (table, column) of each, same order

    @property
    def root(self) -> str:
        """The entity table: one row per requested record."""
        return next(t for t in self.order if t not in self.lookups)

    @property
    def lookups(self) -> list[str]:
        """Lookup tables: a fixed number of rows drawn once per run, which other tables' rows reference."""
        return [t for t in self.order if self.tables[t].rows is not None]

    @property
    def record_tables(self) -> list[str]:
        """The root table and its descendants, parents first: the tables a record's rows live in."""
        return [t for t in self.order if self.tables[t].rows is None]

    def pk(self, table: str) -> str:
        """The table's primary key column."""
        key = self.tables[table].primary_key
        assert key is not None
        return key

    def kind(self, table: str, column: str) -> Kind:
        """The rule-language kind of a column."""
        return KINDS[self.tables[table].columns[column].type]

    def visible(self, table: str) -> list[str]:
        """The variables a row of ``table`` sees: its ancestors' and its own, causes first."""
        chain = [table]
        while (up := self.parent[chain[-1]]) is not None:
            chain.append(up)
        return [v for t in reversed(chain) for v, h in self.home.items() if h == t]

    def children(self, table: str) -> list[str]:
        """Tables whose parent is ``table``."""
        return [t for t in self.order if self.parent[t] == table]

    def realised(self) -> tuple[str, str] | None:
        """The (table, column) the Generator writes, if any."""
        for t in self.order:
            for c, spec in self.tables[t].columns.items():
                if spec.realise:
                    return t, c
        return None

    def scope(self, table: str) -> Scope:
        """What a rule of ``table`` may read."""
        types = {
            t: {c: ColumnType(KINDS[s.type], tuple(s.values or ())) for c, s in spec.columns.items()}
            for t, spec in self.tables.items()
        }
        return Scope(table, types, self.parent)


def convert_value(kind: str, value: Any) -> Any:
    """``value`` as a Python value of column type ``kind``, or None when it is not one."""
    if kind == "int":
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "float":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind in ("date", "datetime"):
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):  # YAML reads 2024-01-31 as a date
            return dt.datetime.combine(value, dt.time())
        try:
            return dt.datetime.fromisoformat(str(value)) if isinstance(value, str) else None
        except ValueError:
            return None
    return str(value) if isinstance(value, str) else None
