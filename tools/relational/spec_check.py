"""Load-time checks of a spec's tables: against each other and the causal model, every problem at once.

Foreign keys to unknown tables or columns, missing primary keys, cyclic table dependencies, columns that cannot
hold their variable's states, causes placed below their effects, providers and their arguments, derived columns
and rules that do not parse or type-check, natural-language rules missing from the lock file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import networkx as nx

from causalsynth.tools.causal.network import Network
from causalsynth.tools.errors import Problem
from causalsynth.tools.relational.fake_values import provider_names, provider_problems
from causalsynth.tools.relational.rules import Expression, RuleError, compile_expression, compile_rule
from causalsynth.tools.relational.tables import (
    IDENTIFIER,
    KINDS,
    ColumnSpec,
    RuleSpec,
    TableSchema,
    TableSpec,
    ValueMap,
    Where,
    convert_value,
)


def build_schema(
    tables: Mapping[str, TableSpec],
    network: Network,
    where: Where,
    locked: Mapping[tuple[str, str], str],
    allow_uncompiled: bool = False,
) -> TableSchema | list[Problem]:
    """Check the tables against each other and the causal network; compile the rules.

    ``locked`` maps ``(table, natural-language rule)`` to its compiled expression (the rule lock file); with
    ``allow_uncompiled`` a sentence missing from it is listed in ``schema.uncompiled`` instead of a problem.
    Returns the schema, or every problem found.
    """
    return _SchemaChecker(tables, network, where, locked, allow_uncompiled).run()


class _SchemaChecker:
    def __init__(
        self,
        tables: Mapping[str, TableSpec],
        network: Network,
        where: Where,
        locked: Mapping[tuple[str, str], str],
        allow_uncompiled: bool,
    ) -> None:
        self.allow_uncompiled = allow_uncompiled
        self.tables = dict(tables)
        self.network = network
        self.where = where
        self.locked = locked
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.where(("tables", *path)), message))

    def run(self) -> TableSchema | list[Problem]:
        parent = self.parents()
        order = self.order(parent)
        fk = self.keys(parent)
        home = self.homes(order, parent)
        for table, spec in self.tables.items():
            if not IDENTIFIER.match(table):
                self.problem((table,), f"table name {table!r} must be a letter followed by letters, digits or _")
            for col, cspec in spec.columns.items():
                if not IDENTIFIER.match(col):
                    self.problem(
                        (table, "columns", col),
                        f"column name {col!r} must be a letter followed by letters, digits or _",
                    )
                self.column(table, col, cspec, home, parent)
            self.cardinality(table, spec, home, parent)
        realised = [(t, c) for t, s in self.tables.items() for c, cs in s.columns.items() if cs.realise]
        for t, c in realised[1:]:
            self.problem(
                (t, "columns", c, "realise"),
                f"only one column may be realised; {realised[0][0]}.{realised[0][1]} already is",
            )
        schema = TableSchema(self.tables, order, parent, fk, home)
        if not self.problems:
            self.derived(schema)
        if realised and not self.problems:
            blind = [v for v in self.network.names if v not in schema.visible(realised[0][0])]
            if blind:
                self.problem(
                    (realised[0][0], "columns", realised[0][1]),
                    f"the realised text states every variable, but {realised[0][0]} cannot see {', '.join(blind)} "
                    "(they live in a descendant table)",
                )
        if not self.problems:
            self.rules(schema)
        return self.problems if self.problems else schema

    def parents(self) -> dict[str, str | None]:
        parent: dict[str, str | None] = {}
        for table, spec in self.tables.items():
            if spec.parent is not None and spec.parent not in self.tables:
                self.problem(
                    (table, "parent"), f"unknown parent table {spec.parent!r} (tables: {', '.join(self.tables)})"
                )
                parent[table] = None
            elif spec.parent == table:
                self.problem((table, "parent"), f"{table} is its own parent")
                parent[table] = None
            else:
                parent[table] = spec.parent
            if spec.parent is not None and spec.cardinality is None:
                self.problem(
                    (table, "cardinality"), f"{table} has a parent and needs 'cardinality' (rows per {spec.parent} row)"
                )
            if spec.rows is not None and (spec.parent is not None or spec.variables):
                self.problem(
                    (table, "rows"), f"{table} is a lookup table ('rows'): it has no parent and no SCM variables"
                )
            if spec.parent is None and spec.cardinality is not None:
                self.problem(
                    (table, "cardinality"), f"{table} is a root table (one row per record); drop 'cardinality'"
                )
        return parent

    def order(self, parent: Mapping[str, str | None]) -> list[str]:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.tables)
        graph.add_edges_from((p, t) for t, p in parent.items() if p is not None)
        for t, spec in self.tables.items():
            for c, cs in spec.columns.items():
                if cs.references and "." in cs.references:
                    target = cs.references.split(".", 1)[0]
                    if target in self.tables and target != t:
                        graph.add_edge(target, t)
        cyclic = False
        for component in nx.strongly_connected_components(graph):
            if len(component) > 1:
                cyclic = True
                cycle = [e[0] for e in nx.find_cycle(graph.subgraph(component))]
                self.problem((cycle[0],), "cyclic table dependencies: " + " -> ".join([*cycle, cycle[0]]))
        roots = [t for t, p in parent.items() if p is None and self.tables[t].rows is None]
        if not cyclic and len(roots) != 1 and self.tables:
            self.problem(
                (),
                f"exactly one table must have no parent (the record's root table); found {len(roots)}: "
                + (", ".join(roots) or "none"),
            )
        if cyclic:
            return list(self.tables)
        return list(nx.lexicographical_topological_sort(graph, key=list(self.tables).index))

    def keys(self, parent: Mapping[str, str | None]) -> dict[str, str]:
        fk: dict[str, str] = {}
        for table, spec in self.tables.items():
            pk = spec.primary_key
            if pk is None:
                self.problem((table,), f"{table} has no primary key ('primary_key: COLUMN')")
            elif pk not in spec.columns:
                self.problem((table, "primary_key"), f"primary key {pk!r} is not a column of {table}")
            for col, cs in spec.columns.items():
                if cs.references is None:
                    continue
                here = (table, "columns", col, "references")
                target_table, _, target_col = cs.references.partition(".")
                if target_table not in self.tables:
                    self.problem(
                        here, f"foreign key to unknown table {target_table!r} (tables: {', '.join(self.tables)})"
                    )
                    continue
                target = self.tables[target_table]
                if target_col not in target.columns:
                    self.problem(
                        here, f"foreign key to unknown column {cs.references!r} (columns: {', '.join(target.columns)})"
                    )
                    continue
                if target_col != target.primary_key:
                    self.problem(
                        here, f"{cs.references} is not the primary key of {target_table}; a foreign key references one"
                    )
                    continue
                if cs.type != target.columns[target_col].type:
                    self.problem(
                        here, f"{table}.{col} is {cs.type} but {cs.references} is {target.columns[target_col].type}"
                    )
                if target_table == parent.get(table):
                    fk[table] = col
                elif target.rows is None:
                    self.problem(
                        here,
                        f"{table} may reference its parent table ({parent.get(table) or 'none'}) or a lookup table "
                        f"('rows: N'); {target_table} is neither",
                    )
            if parent.get(table) is not None and table not in fk and parent[table] in self.tables:
                p = str(parent[table])
                key = self.tables[p].primary_key or "(its primary key)"
                self.problem(
                    (table, "parent"),
                    f"{table} has parent {p} but no column references {p}.{key} ('references: TABLE.COLUMN')",
                )
        return fk

    def homes(self, order: list[str], parent: Mapping[str, str | None]) -> dict[str, str]:
        home: dict[str, str] = {}
        for table, spec in self.tables.items():
            for i, var in enumerate(spec.variables):
                if var not in self.network:
                    self.problem(
                        (table, "variables", i),
                        f"unknown SCM variable {var!r} (model: {', '.join(self.network.names)})",
                    )
                elif var in home:
                    self.problem(
                        (table, "variables", i),
                        f"{var} is already sampled in {home[var]}; a variable lives in one table",
                    )
                else:
                    home[var] = table
        root = next((t for t in order if self.tables[t].rows is None), None)
        for var in self.network.names:
            if var not in home and root is not None:
                home[var] = root
        for cause, effect in self.network.edges():
            tc, te = home.get(cause), home.get(effect)
            if tc is None or te is None or tc == te:
                continue
            if tc not in self.ancestors(te, parent):
                self.problem(
                    (te, "variables"),
                    f"SCM edge {cause} -> {effect} goes from {tc} to {te}: a cause must live in the same table as its "
                    "effect or in an ancestor table",
                )
        return home

    @staticmethod
    def ancestors(table: str, parent: Mapping[str, str | None]) -> list[str]:
        out: list[str] = []
        up = parent.get(table)
        while up is not None and up not in out:
            out.append(up)
            up = parent.get(up)
        return out

    def sees(self, table: str, var: str, home: Mapping[str, str], parent: Mapping[str, str | None]) -> bool:
        return home.get(var) in (table, *self.ancestors(table, parent))

    def column(
        self, table: str, col: str, cs: ColumnSpec, home: Mapping[str, str], parent: Mapping[str, str | None]
    ) -> None:
        here = (table, "columns", col)
        spec = self.tables[table]
        sources = [s for s in ("references", "variable", "provider", "offset", "derive") if getattr(cs, s) is not None]
        sources += ["realise"] if cs.realise else []
        if len(sources) > 1:
            self.problem(here, f"give one source for {col}, not {' and '.join(sources)}")
        if not sources and col != spec.primary_key:
            self.problem(
                here, f"{col} has no source: give 'variable', 'provider', 'offset', 'derive', 'references' or 'realise'"
            )
        if not sources and col == spec.primary_key and cs.type != "int":
            self.problem(
                here, f"primary key {col} is {cs.type}: give it a provider, or make it int (numbered 1, 2, ...)"
            )
        if cs.type == "category" and not cs.values:
            self.problem(here, f"category column {col} needs 'values'")
        if cs.values is not None and cs.type != "category":
            self.problem((*here, "values"), "'values' applies to category columns")
        if cs.pattern is not None:
            try:
                re.compile(cs.pattern)
            except re.error as exc:
                self.problem((*here, "pattern"), f"invalid regular expression: {exc}")
        if (cs.max_length is not None or cs.pattern is not None) and KINDS[cs.type] != "str":
            self.problem(here, f"'max_length' and 'pattern' apply to text columns, not {cs.type}")
        for bound in ("min", "max"):
            value = getattr(cs, bound)
            if value is not None and convert_value(cs.type, value) is None:
                self.problem((*here, bound), f"{bound} {value!r} is not a {cs.type} value")
        if cs.null_rate and not cs.nullable:
            self.problem((*here, "null_rate"), f"{col} is not nullable; a null_rate needs 'nullable: true'")
        if cs.realise and KINDS[cs.type] != "str":
            self.problem((*here, "realise"), f"only text columns can be realised; {col} is {cs.type}")
        if cs.variable is not None:
            self.binding(here, table, cs, cs.variable, cs.map, home, parent)
        if cs.provider is not None:
            if cs.provider not in provider_names():  # a name, never an import path (tools.plugins)
                self.problem(
                    (*here, "provider"), f"unknown provider {cs.provider!r} (known: {', '.join(provider_names())})"
                )
            else:
                for message in provider_problems(cs.provider, cs.type, cs.args, cs.values):
                    self.problem((*here, "args"), message)
        if cs.offset is not None:
            self.offset(here, table, cs, home, parent)

    def binding(
        self,
        here: tuple[str | int, ...],
        table: str,
        cs: ColumnSpec,
        var: str,
        mapping: Mapping[str, Any] | None,
        home: Mapping[str, str],
        parent: Mapping[str, str | None],
        *,
        key: str = "variable",
    ) -> None:
        if var not in self.network:
            self.problem((*here, key), f"unknown SCM variable {var!r}")
            return
        if not self.sees(table, var, home, parent):
            self.problem(
                (*here, key), f"{var} is sampled in {home.get(var)}, which is not {table} or an ancestor of it"
            )
            return
        states = self.network.states(var)
        if mapping is None:
            if cs.type == "category":
                extra = [s for s in states if s not in (cs.values or [])]
                if extra:
                    self.problem((*here, key), f"states of {var} missing from the column's values: {', '.join(extra)}")
            elif cs.type != "string":
                self.problem(
                    (*here, key), f"a {cs.type} column needs a 'map' from the states of {var} ({', '.join(states)})"
                )
            return
        missing = [s for s in states if s not in mapping]
        unknown = [s for s in mapping if s not in states]
        if missing or unknown:
            parts = ([f"missing state(s) {', '.join(missing)}"] if missing else []) + (
                [f"unknown state(s) {', '.join(unknown)}"] if unknown else []
            )
            self.problem((*here, "map"), f"map of {var}: {'; '.join(parts)} (states: {', '.join(states)})")
        for state, value in mapping.items():
            reason = _value_problem(cs, value)
            if reason:
                self.problem((*here, "map", state), f"{var}={state}: {reason}")

    def offset(
        self,
        here: tuple[str | int, ...],
        table: str,
        cs: ColumnSpec,
        home: Mapping[str, str],
        parent: Mapping[str, str | None],
    ) -> None:
        off = cs.offset
        assert off is not None
        src_table, _, src_col = off.from_.rpartition(".")
        src_table = src_table or table
        if src_table != table and src_table not in self.ancestors(table, parent):
            self.problem(
                (*here, "offset", "from"), f"{off.from_}: offsets start from a column of {table} or an ancestor"
            )
            return
        source = self.tables.get(src_table, None)
        if source is None or src_col not in source.columns:
            self.problem((*here, "offset", "from"), f"unknown column {off.from_!r}")
            return
        st = source.columns[src_col].type
        if KINDS[st] != KINDS[cs.type] or KINDS[cs.type] not in ("num", "date", "datetime"):
            self.problem(
                (*here, "offset"),
                f"an offset adds to a number or date of the same type; {off.from_} is {st}, {cs.type} here",
            )
        amount = ColumnSpec(type="float")
        if (off.by is None) == (off.variable is None):
            self.problem(
                (*here, "offset"), "give the amount as 'by: [low, high]' or per state with 'variable' and 'map'"
            )
        elif off.by is not None:
            reason = _value_problem(amount, off.by)
            if reason:
                self.problem((*here, "offset", "by"), reason)
        else:
            assert off.variable is not None
            if off.map is None:
                self.problem((*here, "offset"), "an offset by a variable needs a 'map' from its states to amounts")
            else:
                self.binding((*here, "offset"), table, amount, off.variable, off.map, home, parent)

    def cardinality(
        self, table: str, spec: TableSpec, home: Mapping[str, str], parent: Mapping[str, str | None]
    ) -> None:
        card = spec.cardinality
        here = (table, "cardinality")
        count = ColumnSpec(type="int", min=0)
        if card is None or parent.get(table) is None:
            return
        if isinstance(card, ValueMap):
            if card.map is None:
                self.problem(here, "a cardinality driven by a variable needs a 'map' from its states to counts")
                return
            up = parent[table]
            assert up is not None
            self.binding(here, up, count, card.variable, card.map, home, parent)
        else:
            reason = _value_problem(count, card)
            if reason:
                self.problem(here, reason)

    def derived(self, schema: TableSchema) -> None:
        """Compile derived columns, check their kinds, and order them so each follows what it reads."""
        exprs: dict[tuple[str, str], Expression] = {}
        for table, spec in self.tables.items():
            for col, cs in spec.columns.items():
                if cs.derive is None:
                    continue
                here = (table, "columns", col, "derive")
                try:
                    expression = compile_expression(cs.derive, schema.scope(table))
                except RuleError as exc:
                    self.problem(here, str(exc))
                    continue
                want = KINDS[cs.type]
                if not (expression.kind == want or {expression.kind, want} <= {"date", "datetime"}):
                    self.problem(here, f"{col} is {cs.type} but {cs.derive!r} gives a {expression.kind}")
                    continue
                exprs[(table, col)] = expression
        graph = nx.DiGraph()
        graph.add_nodes_from(exprs)
        for node, expression in exprs.items():
            graph.add_edges_from((used, node) for used in expression.columns if used in exprs)
        if not nx.is_directed_acyclic_graph(graph):
            cycle = [f"{t}.{c}" for (t, c), _ in nx.find_cycle(graph)]
            self.problem(
                (cycle[0].split(".")[0],), "derived columns depend on each other in a cycle: " + " -> ".join(cycle)
            )
            return
        for node in nx.lexicographical_topological_sort(graph, key=str):
            schema.derived.append(exprs[node])
            schema.derived_columns.append(node)

    def rules(self, schema: TableSchema) -> None:
        for table, spec in self.tables.items():
            scope = schema.scope(table)
            for i, item in enumerate(spec.rules):
                rs = RuleSpec(rule=item) if isinstance(item, str) else item
                here = (table, "rules", i)
                text = rs.rule
                if rs.nl is not None:
                    text = self.locked.get((table, rs.nl.strip()))
                    if text is None and self.allow_uncompiled:
                        schema.uncompiled.append((table, rs.nl.strip(), rs.name or f"{table}.rules[{i}]"))
                        continue
                    if text is None:
                        self.problem(
                            here,
                            f"natural-language rule {rs.nl!r} is not compiled yet: run 'causalsynth compile-rules SPEC "
                            "--llm PROVIDER:MODEL', review the result in the lock file, then run again",
                        )
                        continue
                assert text is not None
                try:
                    rule = compile_rule(text, scope, name=rs.name or f"{table}.rules[{i}]")
                except RuleError as exc:
                    origin = f" (compiled from {rs.nl!r}; fix or recompile the lock file)" if rs.nl else ""
                    self.problem(here, f"{exc}{origin}")
                    continue
                schema.rules.append(rule)
                if rs.nl is not None:
                    schema.nl[text] = rs.nl


def _value_problem(cs: ColumnSpec, value: Any) -> str | None:
    """Why ``value`` (a fixed value, ``[low, high]`` or ``{range, mode}``) cannot fill column ``cs``, or None."""
    if isinstance(value, dict):
        if set(value) - {"range", "mode"} or not isinstance(value.get("range"), list):
            return "a distribution is {range: [low, high], mode: M} (triangular)"
        reason = _value_problem(cs, value["range"])
        if reason:
            return reason
        if "mode" in value:
            low, high = value["range"]
            mode = convert_value(cs.type, value["mode"])
            if mode is None or not low <= mode <= high:
                return f"mode {value['mode']!r} must lie in {value['range']}"
        return None
    if isinstance(value, list):
        if len(value) != 2 or cs.type in ("bool", "category", "string", "email"):
            return f"a range is [low, high] and applies to numbers and dates, not {cs.type}"
        low, high = (convert_value(cs.type, v) for v in value)
        if low is None or high is None:
            return f"{value} is not a range of {cs.type} values"
        if low > high:
            return f"range {value}: low is above high"
        return _bounds_problem(cs, low, high)
    converted = convert_value(cs.type, value)
    if converted is None:
        return f"{value!r} is not a {cs.type} value"
    if cs.type == "category" and cs.values and converted not in cs.values:
        return f"{value!r} is not one of the column's values ({', '.join(cs.values)})"
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        return _bounds_problem(cs, converted, converted)
    return None


def _bounds_problem(cs: ColumnSpec, low: Any, high: Any) -> str | None:
    lo = convert_value(cs.type, cs.min) if cs.min is not None else None
    hi = convert_value(cs.type, cs.max) if cs.max is not None else None
    if lo is not None and low < lo:
        return f"{low} is below the column's min {cs.min}"
    if hi is not None and high > hi:
        return f"{high} is above the column's max {cs.max}"
    return None
