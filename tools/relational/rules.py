"""Business rules: a small expression language, parsed by a lark grammar, type-checked and interpreted.

A rule is checked per row of one table::

    discharge_date >= admission_date
    age >= 18 if contract == 'employment'        # the rule applies only where the condition holds
    status in ('open', 'closed')
    len(note) <= 2000
    total == sum(items.amount)                   # aggregate over the rows of a child table
    admission_date >= patients.birth_date        # a column of an ancestor table (through the foreign keys)

Why a grammar and not Python's ``ast``: the grammar *is* the allow-list, so attribute chains, subscripts,
lambdas, comprehensions, ``**`` and imports cannot even be written (nothing of Python's syntax is parsed and then
filtered), ``X if C`` without ``else`` reads as the implication users write, and parse errors carry our own
positions and wording. Nothing here calls ``eval``, ``exec`` or ``compile``: the parse tree becomes a few
dataclasses that :func:`tools.relational.rule_eval.evaluate` interprets over numpy arrays, one vectorised pass per rule.

Nulls follow SQL: a comparison with a null is unknown, ``and``/``or``/``not`` use three-valued logic, and a rule
is violated only where it is known to be false (like a SQL ``CHECK``). ``sum`` over no child rows is 0, ``count``
is 0, and ``min``/``max``/``mean`` over none are null.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from causalsynth.tools.errors import CausalSynthError

#: Longest rule text accepted.
MAX_CHARS = 1000
#: Deepest nesting of a parsed rule (parentheses, operators, calls).
MAX_DEPTH = 40
#: Largest magnitude of a numeric literal.
MAX_LITERAL = 1e15

Kind = Literal["num", "str", "bool", "date", "datetime", "null"]
FUNCTIONS: dict[str, tuple[tuple[str, ...], Kind]] = {
    "len": (("str",), "num"),
    "abs": (("num",), "num"),
    "lower": (("str",), "str"),
    "upper": (("str",), "str"),
    "year": (("date",), "num"),
    "days_between": (("date", "date"), "num"),
}
AGGREGATES = ("count", "sum", "min", "max", "mean")


class RuleError(CausalSynthError):
    """A rule cannot be parsed, names something unknown, or mixes types; says where in the rule text."""

    def __init__(self, rule: str, message: str, column: int | None = None) -> None:
        self.rule = rule
        self.message = message
        self.column = column
        shown = rule if len(rule) <= 120 else rule[:117] + "..."
        at = f" (at column {column})" if column else ""
        super().__init__(f"rule {shown!r}{at}: {message}")


# -- the parsed form ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lit:
    """A literal: a number, text, truth value, date or null."""

    value: Any
    kind: Kind


@dataclass(frozen=True)
class Col:
    """A column of the rule's table (``table`` None) or of an ancestor table."""

    table: str | None  # None: the rule's own table; else an ancestor table
    name: str
    pos: int


@dataclass(frozen=True)
class Op:
    """An operator applied to its operands (``implies`` is ``BODY if CONDITION``)."""

    op: str  # + - * / % neg not and or implies == != < <= > >= in notin isnull notnull
    args: tuple[Any, ...]
    pos: int = 0


@dataclass(frozen=True)
class Call:
    """A call of an allowed function."""

    fn: str
    args: tuple[Any, ...]
    pos: int


@dataclass(frozen=True)
class Agg:
    """An aggregate over a child table's rows (``column`` None: count the rows)."""

    fn: str
    table: str
    column: str | None
    pos: int


Expr = Lit | Col | Op | Call | Agg


_GRAMMAR = r"""
?start: cond
?cond: expr | expr "if" expr -> implies
?expr: and_expr | expr "or" and_expr -> or_
?and_expr: not_expr | and_expr "and" not_expr -> and_
?not_expr: comparison | "not" not_expr -> not_
?comparison: sum
    | sum (COMP sum)+ -> compare
    | sum "in" tuple -> in_
    | sum "not" "in" tuple -> notin
    | sum "is" "null" -> isnull
    | sum "is" "not" "null" -> notnull
?sum: product | sum (PLUS | MINUS) product -> arith
?product: unary | product (STAR | SLASH | PERCENT) unary -> arith
?unary: atom | MINUS unary -> neg
?atom: NUMBER -> number
    | STRING -> string
    | "true" -> true
    | "false" -> false
    | "null" -> null
    | NAME -> name
    | NAME "." NAME -> dotted
    | NAME "(" [expr ("," expr)*] ")" -> call
    | "(" cond ")"
tuple: "(" expr ("," expr)* [","] ")"
COMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /'[^'\\\n]*'/ | /"[^"\\\n]*"/
%ignore /[ \t\r\n]+/
"""


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


_HINTS = (
    ("**", "'**' (powers) is not part of the rule language"),
    ("=", "compare with '==', not '='"),
    ("&", "write 'and', not '&' or '&&'"),
    ("|", "write 'or', not '|' or '||'"),
    ("[", "lists, subscripts and comprehensions are not part of the rule language; write a tuple: ('a', 'b')"),
    ("{", "sets and dicts are not part of the rule language"),
    (":", "lambdas, slices and dicts are not part of the rule language"),
)


def _parse_error(text: str, exc: UnexpectedInput) -> RuleError:
    column = getattr(exc, "column", None)
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedEOF) or pos is None or pos < 0:
        return RuleError(text, "the rule ends too early (unbalanced parentheses or a missing operand?)", None)
    rest = text[pos:]
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)  # keywords inside string literals do not count
    for word in ("lambda", "import", "for", "class", "def", "exec", "eval"):
        if re.search(rf"\b{word}\b", bare):
            what = "comprehensions" if word == "for" else f"'{word}'"
            return RuleError(text, f"{what} are not part of the rule language", column)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return RuleError(text, "the rule ends too early (a missing operand?)", None)
    for start, hint in _HINTS:
        if rest.startswith(start) or (start == "**" and text[max(pos - 1, 0) : pos + 1] == "**"):
            return RuleError(text, hint, column)
    shown = rest[:20].split(maxsplit=1)[0] if rest.strip() else rest[:1]
    if isinstance(exc, UnexpectedCharacters):
        return RuleError(text, f"unexpected character {rest[:1]!r}", column)
    return RuleError(text, f"unexpected {shown!r}", column)


def parse(text: str) -> Expr:
    """Parse a rule into its expression (no schema check yet).

    Raises:
        RuleError: the text is not a rule of the language, is too long, or nests too deep.
    """
    if not isinstance(text, str):
        raise RuleError(str(text), "a rule must be a string")
    if len(text) > MAX_CHARS:
        raise RuleError(text, f"the rule is {len(text)} characters long; at most {MAX_CHARS} are allowed")
    if not text.strip():
        raise RuleError(text, "the rule is empty")
    _check_parentheses(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _parse_error(text, exc) from None
    except (LarkError, RecursionError) as exc:  # should not happen with LALR; never let another type escape
        raise RuleError(text, f"cannot parse: {type(exc).__name__}") from None
    _check_depth(text, tree)
    return _Build(text).build(tree)


def _check_parentheses(text: str) -> None:
    """Parentheses leave no node in the tree, so their nesting is counted on the text (outside strings)."""
    depth = 0
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote is not None:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise RuleError(text, f"the rule nests deeper than {MAX_DEPTH} levels", i + 1)
        elif ch == ")":
            depth -= 1


def _check_depth(text: str, tree: Tree[Token]) -> None:
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            column = getattr(getattr(node, "meta", None), "column", None) if isinstance(node, Tree) else None
            raise RuleError(text, f"the rule nests deeper than {MAX_DEPTH} levels", column)
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children if child is not None)


class _Build:
    """Parse tree -> expression dataclasses (recursion bounded by ``MAX_DEPTH``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, message: str, pos: int | None) -> RuleError:
        return RuleError(self.text, message, pos)

    def name(self, token: Token) -> str:
        value = str(token)
        if value.startswith("__"):
            raise self.fail(f"names may not start with '__' ({value!r})", token.column)
        return value

    def build(self, node: Tree[Token] | Token) -> Expr:
        if isinstance(node, Token):  # only reached through '?' rules that inline a bare token
            raise self.fail(f"unexpected {str(node)!r}", node.column)
        kind = str(node.data)
        kids = node.children
        pos = node.meta.column if not node.meta.empty else 0
        if kind == "number":
            return self.number(kids[0])  # type: ignore[arg-type]
        if kind == "string":
            return Lit(str(kids[0])[1:-1], "str")
        if kind in ("true", "false"):
            return Lit(kind == "true", "bool")
        if kind == "null":
            return Lit(None, "null")
        if kind == "name":
            token = kids[0]
            assert isinstance(token, Token)
            return Col(None, self.name(token), token.column or 0)
        if kind == "dotted":
            table, column = kids
            assert isinstance(table, Token) and isinstance(column, Token)
            return Col(self.name(table), self.name(column), table.column or 0)
        if kind == "call":
            return self.call(kids, pos)
        if kind == "arith":
            left, op, right = kids
            return Op(str(op), (self.build(left), self.build(right)), pos)
        if kind == "neg":
            return Op("neg", (self.build(kids[1]),), pos)
        if kind == "compare":
            return self.compare(kids, pos)
        if kind in ("in_", "notin"):
            items = tuple(self.build(k) for k in kids[1].children if k is not None)  # type: ignore[union-attr]
            return Op("in" if kind == "in_" else "notin", (self.build(kids[0]), *items), pos)
        if kind in ("isnull", "notnull", "not_"):
            return Op(kind.rstrip("_"), (self.build(kids[0]),), pos)
        if kind in ("and_", "or_", "implies"):
            return Op(kind.rstrip("_"), (self.build(kids[0]), self.build(kids[1])), pos)
        raise self.fail(f"unexpected construct {kind}", pos)

    def number(self, token: Token) -> Lit:
        raw = str(token)
        value = float(raw)
        if not np.isfinite(value) or abs(value) > MAX_LITERAL:
            raise self.fail(f"the number {raw[:30]} is too large (at most {MAX_LITERAL:g})", token.column)
        return Lit(int(raw) if raw.isdigit() else value, "num")

    def compare(self, kids: Sequence[Any], pos: int) -> Expr:
        operands = [self.build(k) for k in kids[0::2]]
        ops = [str(k) for k in kids[1::2]]
        parts: list[Expr] = [Op(op, (a, b), pos) for op, a, b in zip(ops, operands, operands[1:], strict=False)]
        out = parts[0]
        for part in parts[1:]:  # a < b < c  means  a < b and b < c
            out = Op("and", (out, part), pos)
        return out

    def call(self, kids: Sequence[Any], pos: int) -> Expr:
        fn_token = kids[0]
        fn = self.name(fn_token)
        args = [k for k in kids[1:] if k is not None]
        if fn == "date":
            if len(args) != 1 or str(args[0].data) != "string":
                raise self.fail("date(...) takes one quoted ISO date, e.g. date('2024-01-31')", pos)
            raw = str(args[0].children[0])[1:-1]
            try:
                value = pd.Timestamp(raw)
            except (ValueError, OverflowError):
                raise self.fail(f"date({raw!r}) is not an ISO date (YYYY-MM-DD)", pos) from None
            if pd.isna(value) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?", raw):
                raise self.fail(f"date({raw!r}) is not an ISO date (YYYY-MM-DD)", pos)
            return Lit(value.to_datetime64().astype("datetime64[s]"), "date")
        if fn in AGGREGATES:
            if len(args) != 1 or str(args[0].data) not in ("name", "dotted"):
                what = "count(TABLE) or count(TABLE.COLUMN)" if fn == "count" else f"{fn}(TABLE.COLUMN)"
                raise self.fail(f"{fn} takes a child table's column: {what}", pos)
            target = self.build(args[0])
            assert isinstance(target, Col)
            if target.table is None:  # count(admissions): a bare name is the child table
                if fn != "count":
                    raise self.fail(f"{fn} needs TABLE.COLUMN, e.g. {fn}(items.amount)", pos)
                return Agg(fn, target.name, None, pos)
            return Agg(fn, target.table, target.name, pos)
        if fn not in FUNCTIONS:
            known = ", ".join([*FUNCTIONS, "date", *AGGREGATES])
            raise self.fail(f"unknown function {fn!r} (known: {known})", pos)
        return Call(fn, tuple(self.build(a) for a in args), pos)


# -- the schema a rule is checked against ------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnType:
    """What a rule needs to know of a column: its kind and, for categories, the allowed values."""

    kind: Kind
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    """The tables a rule of ``table`` can see: its own columns, its ancestors' and its children's."""

    table: str
    tables: Mapping[str, Mapping[str, ColumnType]]
    parent: Mapping[str, str | None]  # each table's parent table (through its foreign key), None for roots

    def ancestors(self) -> list[str]:
        """The parent, grandparent, ... of the rule's table."""
        out, seen = [], {self.table}
        up = self.parent.get(self.table)
        while up is not None and up not in seen:
            out.append(up)
            seen.add(up)
            up = self.parent.get(up)
        return out

    def children(self) -> list[str]:
        """Tables whose foreign key points at the rule's table."""
        return [t for t, p in self.parent.items() if p == self.table]


@dataclass(frozen=True)
class Rule:
    """A checked rule: its text, expression, table and the columns it reads (``(table, column)``)."""

    text: str
    table: str
    expr: Expr
    columns: tuple[tuple[str, str], ...] = field(default=())
    name: str = ""


def compile_rule(text: str, scope: Scope, name: str = "") -> Rule:
    """Parse ``text`` and check it against the schema; the result can be evaluated.

    Raises:
        RuleError: a syntax error, an unknown column/table/function or category value, or a type mismatch.
    """
    expr = parse(text)
    checker = _Checker(text, scope)
    kind = checker.kind(expr)
    if kind not in ("bool", "null"):
        raise RuleError(text, f"a rule must be true or false for each row; this is a {_KIND_WORDS[kind]}")
    return Rule(text=text, table=scope.table, expr=expr, columns=tuple(dict.fromkeys(checker.used)), name=name)


@dataclass(frozen=True)
class Expression:
    """A checked value expression (a derived column): its text, table, parsed form, kind and the columns it reads."""

    text: str
    table: str
    expr: Expr
    kind: Kind
    columns: tuple[tuple[str, str], ...] = field(default=())


def compile_expression(text: str, scope: Scope) -> Expression:
    """Parse ``text`` as a value of ``scope.table``'s rows (e.g. ``sum(items.amount)``) and check it.

    Raises:
        RuleError: as :func:`compile_rule`.
    """
    expr = parse(text)
    checker = _Checker(text, scope)
    kind = checker.kind(expr)
    return Expression(text, scope.table, expr, kind, tuple(dict.fromkeys(checker.used)))


_KIND_WORDS = {
    "num": "number",
    "str": "text",
    "bool": "truth value",
    "date": "date",
    "datetime": "date-time",
    "null": "null",
}


def _comparable(a: Kind, b: Kind) -> bool:
    dates = ("date", "datetime")
    return a == b or "null" in (a, b) or (a in dates and b in dates)


class _Checker:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope
        self.used: list[tuple[str, str]] = []

    def fail(self, message: str, pos: int | None) -> RuleError:
        return RuleError(self.text, message, pos or None)

    def column(self, col: Col) -> ColumnType:
        scope = self.scope
        table = col.table or scope.table
        if col.table is not None and col.table != scope.table:
            if col.table not in scope.tables:
                raise self.fail(f"unknown table {col.table!r}{_suggest(col.table, scope.tables)}", col.pos)
            if col.table not in scope.ancestors():
                kids = scope.children()
                hint = (
                    f"; aggregate a child table instead, e.g. sum({col.table}.{col.name})" if col.table in kids else ""
                )
                raise self.fail(
                    f"{col.table} is not an ancestor of {scope.table} (a rule reads its own row, its ancestors' "
                    f"columns through the foreign keys, and aggregates of child tables){hint}",
                    col.pos,
                )
        columns = scope.tables[table]
        if col.name not in columns:
            raise self.fail(f"unknown column {col.name!r} in {table}{_suggest(col.name, columns)}", col.pos)
        self.used.append((table, col.name))
        return columns[col.name]

    def kind(self, e: Expr) -> Kind:
        if isinstance(e, Lit):
            return e.kind
        if isinstance(e, Col):
            return self.column(e).kind
        if isinstance(e, Agg):
            return self.aggregate(e)
        if isinstance(e, Call):
            wanted, result = FUNCTIONS[e.fn]
            if len(e.args) != len(wanted):
                raise self.fail(f"{e.fn} takes {len(wanted)} argument(s), got {len(e.args)}", e.pos)
            for arg, want in zip(e.args, wanted, strict=True):
                got = self.kind(arg)
                if not (got == want or got == "null" or (want == "date" and got == "datetime")):
                    raise self.fail(f"{e.fn} needs a {_KIND_WORDS[want]}, got a {_KIND_WORDS[got]}", e.pos)
            return result
        return self.op(e)

    def aggregate(self, e: Agg) -> Kind:
        scope = self.scope
        if e.table not in scope.children():
            kids = ", ".join(scope.children()) or "none"
            raise self.fail(
                f"{e.fn}({e.table}{'.' + e.column if e.column else ''}): {e.table} is not a child table of "
                f"{scope.table} (children: {kids})",
                e.pos,
            )
        if e.column is None:
            return "num"
        kind = self._child_column(e)
        if e.fn in ("sum", "mean") and kind != "num":
            raise self.fail(f"{e.fn} needs a numeric column; {e.table}.{e.column} is {_KIND_WORDS[kind]}", e.pos)
        return "num" if e.fn in ("count", "sum", "mean") else kind

    def _child_column(self, e: Agg) -> Kind:
        columns = self.scope.tables[e.table]
        assert e.column is not None
        if e.column not in columns:
            raise self.fail(f"unknown column {e.column!r} in {e.table}{_suggest(e.column, columns)}", e.pos)
        self.used.append((e.table, e.column))
        return columns[e.column].kind

    def op(self, e: Op) -> Kind:
        kinds = [self.kind(a) for a in e.args]
        o = e.op
        if o in ("and", "or", "implies", "not"):
            for k in kinds:
                if k not in ("bool", "null"):
                    raise self.fail(f"'{o}' needs truth values, got a {_KIND_WORDS[k]}", e.pos)
            return "bool"
        if o in ("isnull", "notnull"):
            return "bool"
        if o in ("+", "-", "*", "/", "%", "neg"):
            for k in kinds:
                if k != "num":
                    hint = " (use days_between(a, b) for dates)" if k in ("date", "datetime") else ""
                    raise self.fail(f"'{o.replace('neg', '-')}' needs numbers, got a {_KIND_WORDS[k]}{hint}", e.pos)
            return "num"
        if o in ("==", "!=", "<", "<=", ">", ">=", "in", "notin"):
            left, rest = kinds[0], kinds[1:]
            for k, arg in zip(rest, e.args[1:], strict=True):
                if k == "null" or (isinstance(arg, Lit) and arg.kind == "null"):
                    raise self.fail("compare with null using 'is null' or 'is not null'", e.pos)
                if not _comparable(left, k):
                    raise self.fail(f"cannot compare a {_KIND_WORDS[left]} with a {_KIND_WORDS[k]}", e.pos)
            if left == "bool" and o not in ("==", "!=", "in", "notin"):
                raise self.fail(f"truth values can only be compared with == or !=, not {o}", e.pos)
            self.categories(e)
            return "bool"
        raise self.fail(f"unknown operator {o}", e.pos)

    def categories(self, e: Op) -> None:
        """A category column compared with a text literal: the literal must be one of its values."""
        cols = [a for a in e.args if isinstance(a, Col)]
        lits = [a for a in e.args if isinstance(a, Lit) and a.kind == "str"]
        for col in cols:
            table = col.table or self.scope.table
            cats = self.scope.tables[table][col.name].categories
            for lit in lits:
                if cats and lit.value not in cats:
                    raise self.fail(f"{lit.value!r} is not a value of {col.name} (values: {', '.join(cats)})", col.pos)


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(list(known)[:12])})" if known else ""
