"""The rule interpreter: evaluates checked rules and expressions over a table's rows, vectorised with numpy.

Nulls follow SQL (three-valued logic; a rule is violated only where it is known to be false); numbers compare
equal within ``TOLERANCE``. See :mod:`causalsynth.tools.relational.rules` for the language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.relational.rules import Agg, Call, Col, Expr, Expression, Kind, Lit, Op, Rule


class RuleData(Protocol):
    """The rows a rule is evaluated on: its table's columns, ancestors' values and child aggregates."""

    n: int

    def column(self, table: str | None, name: str) -> pd.Series:
        """A column of the rule's table (``table`` None) or of an ancestor, aligned with the table's rows."""
        ...

    def aggregate(self, fn: str, child: str, column: str | None) -> pd.Series:
        """``fn`` over each row's child rows, aligned with the table's rows (count and sum of none are 0)."""
        ...


@dataclass
class Val:
    """A vector (or scalar) of values with its null mask."""

    data: Any
    null: Any


def evaluate(rule: Rule, data: RuleData, kinds: Mapping[tuple[str, str], Kind]) -> NDArray[np.bool_]:
    """Per row, whether the rule is violated (known to be false; unknown passes, as in SQL)."""
    val = _Interpreter(data, kinds, rule.table).value(rule.expr)
    known_false = ~np.asarray(val.null, dtype=bool) & ~np.asarray(val.data, dtype=bool)
    return np.broadcast_to(known_false, (data.n,)).copy()


def _as_val(series: pd.Series, kind: Kind) -> Val:
    null = series.isna().to_numpy()
    if kind == "num":
        data = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        null = null | np.isnan(data)
    elif kind in ("date", "datetime"):
        stamps = pd.to_datetime(series, errors="coerce", format="ISO8601")
        data = stamps.to_numpy(dtype="datetime64[s]")
        null = null | np.isnat(data)
    elif kind == "bool":
        data = series.fillna(False).astype(bool).to_numpy()
    else:
        data = series.astype(object).where(~series.isna(), "").to_numpy(dtype=object)
    return Val(data, null)


class _Interpreter:
    def __init__(self, data: RuleData, kinds: Mapping[tuple[str, str], Kind], table: str) -> None:
        self.data = data
        self.kinds = kinds
        self.table = table

    def value(self, e: Expr) -> Val:
        if isinstance(e, Lit):
            if e.kind == "null":
                return Val(np.False_, np.True_)
            return Val(np.array(e.value, dtype=object) if e.kind == "str" else e.value, np.False_)
        if isinstance(e, Col):
            table = e.table or self.table
            return _as_val(
                self.data.column(e.table if e.table != self.table else None, e.name), self.kinds[(table, e.name)]
            )
        if isinstance(e, Agg):
            series = self.data.aggregate(e.fn, e.table, e.column)
            kind: Kind = (
                "num" if e.column is None or e.fn in ("count", "sum", "mean") else self.kinds[(e.table, e.column)]
            )
            return _as_val(series, kind)
        if isinstance(e, Call):
            return self.call(e)
        return self.op(e)

    def call(self, e: Call) -> Val:
        args = [self.value(a) for a in e.args]
        a = args[0]
        null = a.null if len(args) == 1 else a.null | args[1].null
        if e.fn == "len":
            return Val(_strmap(a.data, len, float), null)
        if e.fn == "lower":
            return Val(_strmap(a.data, str.lower, object), null)
        if e.fn == "upper":
            return Val(_strmap(a.data, str.upper, object), null)
        if e.fn == "abs":
            return Val(np.abs(a.data), null)
        if e.fn == "year":
            years = np.asarray(a.data, dtype="datetime64[Y]").astype(np.int64) + 1970
            return Val(years.astype(float), null)
        # days_between(a, b) = b - a in days
        b = args[1]
        delta = np.asarray(b.data, dtype="datetime64[s]") - np.asarray(a.data, dtype="datetime64[s]")
        return Val(delta.astype(np.int64) / 86400.0, null)

    def op(self, e: Op) -> Val:
        o = e.op
        if o in ("and", "or", "implies"):
            a, b = self.value(e.args[0]), self.value(e.args[1])
            if o == "implies":  # body if cond  ==  (not cond) or body
                a, b = Val(~np.asarray(b.data, dtype=bool), b.null), a
                o = "or"
            return _and(a, b) if o == "and" else _or(a, b)
        args = [self.value(x) for x in e.args]
        if o == "not":
            return Val(~np.asarray(args[0].data, dtype=bool), args[0].null)
        if o in ("isnull", "notnull"):
            null = np.asarray(args[0].null, dtype=bool)
            return Val(null if o == "isnull" else ~null, np.False_)
        if o == "neg":
            return Val(-np.asarray(args[0].data, dtype=float), args[0].null)
        a = args[0]
        if o in ("in", "notin"):
            hit: Any = np.False_
            for item in args[1:]:
                hit = hit | (~np.asarray(item.null, dtype=bool) & _compare("==", a.data, item.data))
            return Val(hit if o == "in" else ~hit, a.null)
        b = args[1]
        if o in ("+", "-", "*", "/", "%"):
            x, y = np.asarray(a.data, dtype=float), np.asarray(b.data, dtype=float)
            with np.errstate(all="ignore"):
                out = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod}[o](x, y)
            null = a.null | b.null
            if o in ("/", "%"):
                null = null | (y == 0)  # x / 0 is null, as in SQLite
            return Val(out, null | ~np.isfinite(out))
        return Val(_compare(o, a.data, b.data), a.null | b.null)


def _strmap(data: Any, fn: Callable[[str], Any], dtype: Any) -> Any:
    arr = np.asarray(data, dtype=object)
    if arr.ndim == 0:
        return fn(str(arr.item()))
    return np.fromiter((fn(str(x)) for x in arr), dtype=dtype, count=len(arr))


#: Numbers closer than this (relative, or absolute near zero) are equal: sums of money differ in the last bits.
TOLERANCE = 1e-9


def _compare(op: str, x: Any, y: Any) -> Any:
    if isinstance(x, np.ndarray) and x.dtype.kind == "M" or isinstance(y, np.ndarray) and y.dtype.kind == "M":
        x, y = np.asarray(x, dtype="datetime64[s]"), np.asarray(y, dtype="datetime64[s]")
    elif op in ("==", "!=") and _is_float(x) and _is_float(y):
        with np.errstate(invalid="ignore"):
            close = np.isclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=TOLERANCE, atol=TOLERANCE)
        return close if op == "==" else ~close
    fns = {
        "==": np.equal,
        "!=": np.not_equal,
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
    }
    with np.errstate(invalid="ignore"):
        return np.asarray(fns[op](x, y), dtype=bool)


def _and(a: Val, b: Val) -> Val:
    an, bn = np.asarray(a.null, dtype=bool), np.asarray(b.null, dtype=bool)
    ad, bd = np.asarray(a.data, dtype=bool), np.asarray(b.data, dtype=bool)
    false = (~an & ~ad) | (~bn & ~bd)
    return Val(ad & bd & ~an & ~bn, ~false & (an | bn))


def _or(a: Val, b: Val) -> Val:
    an, bn = np.asarray(a.null, dtype=bool), np.asarray(b.null, dtype=bool)
    ad, bd = np.asarray(a.data, dtype=bool), np.asarray(b.data, dtype=bool)
    true = (~an & ad) | (~bn & bd)
    return Val(true, ~true & (an | bn))


def _is_float(x: Any) -> bool:
    return np.asarray(x).dtype.kind in "fiu" and not isinstance(x, bool | np.bool_)


def values(expression: Expression, data: RuleData, kinds: Mapping[tuple[str, str], Kind]) -> pd.Series:
    """The expression's value for each row (None where null): numbers as floats, dates as ``datetime64``."""
    val = _Interpreter(data, kinds, expression.table).value(expression.expr)
    out = pd.Series(np.broadcast_to(np.asarray(val.data), (data.n,)).copy(), dtype=object)
    null = np.broadcast_to(np.asarray(val.null, dtype=bool), (data.n,))
    out[null] = None
    return out
