"""Seeded, vectorised value providers for columns outside the causal model (names, emails, codes, dates, ...).

Each provider draws ``n`` values from a numpy ``Generator`` and the column's ``args``; the same seed gives the
same values. They know nothing of business rules: the Schema Validator finds what breaks one, and the repairer
draws again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from causalsynth.tools.plugins import PluginError, installed, load

FIRST = (
    "Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam", "Maya",
    "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
    "Amara", "Bruno", "Carmen", "Dmitri", "Eva", "Felix", "Gita", "Hugo", "Ivy", "Jamal", "Kai", "Lena", "Mateo",
    "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Uma", "Viktor", "Wanda", "Yara", "Zain",
)  # fmt: skip
LAST = (
    "Adams", "Bauer", "Chen", "Diaz", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Lopez", "Muller", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi", "Santos", "Tanaka", "Ueda", "Varga",
    "Walker", "Xu", "Yilmaz", "Zimmer", "Abbott", "Brennan", "Castillo", "Dubois", "Evans", "Fontaine", "Gupta",
    "Hansen", "Ibrahim", "Jovanovic", "Kim", "Larsen", "Moreau", "Novak", "Olsen", "Park", "Ramos", "Silva",
    "Torres", "Ulrich", "Vogel", "Weber", "Young", "Zhou",
)  # fmt: skip

Draw = Callable[[np.random.Generator, int, Any], Any]


def _pick(rng: np.random.Generator, n: int, options: Sequence[str]) -> Any:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


def _first_name(rng: np.random.Generator, n: int, col: Any) -> Any:
    return _pick(rng, n, FIRST)


def _last_name(rng: np.random.Generator, n: int, col: Any) -> Any:
    return _pick(rng, n, LAST)


def _full_name(rng: np.random.Generator, n: int, col: Any) -> Any:
    return _pick(rng, n, FIRST) + " " + _pick(rng, n, LAST)


def _email(rng: np.random.Generator, n: int, col: Any) -> Any:
    domain = str(col.args.get("domain", "example.org"))
    number = rng.integers(0, int(col.args.get("numbers", 100)), n).astype(str).astype(object)
    names = np.char.lower((_pick(rng, n, FIRST) + "." + _pick(rng, n, LAST)).astype(str)).astype(object)
    return names + number + "@" + domain


def _code(rng: np.random.Generator, n: int, col: Any) -> Any:
    """``format``: '#' a digit, '?' an upper-case letter, anything else as written (``MRN-######``)."""
    fmt = str(col.args.get("format", "########"))
    parts = []
    for ch in fmt:
        if ch == "#":
            parts.append(rng.integers(0, 10, n).astype(str).astype(object))
        elif ch == "?":
            parts.append(np.array([chr(65 + int(c)) for c in rng.integers(0, 26, n)], dtype=object))
        else:
            parts.append(np.full(n, ch, dtype=object))
    out = np.full(n, "", dtype=object)
    for part in parts:
        out = out + part
    return out


def _bounds(col: Any, convert: Callable[[Any], Any], default: tuple[Any, Any]) -> tuple[Any, Any]:
    low = col.args.get("min", col.min)
    high = col.args.get("max", col.max)
    return (convert(low) if low is not None else default[0], convert(high) if high is not None else default[1])


def _integer(rng: np.random.Generator, n: int, col: Any) -> Any:
    low, high = _bounds(col, int, (0, 100))
    return rng.integers(low, high + 1, n)


def _number(rng: np.random.Generator, n: int, col: Any) -> Any:
    low, high = _bounds(col, float, (0.0, 1.0))
    return np.round(rng.uniform(low, high, n), int(col.args.get("decimals", 2)))


def to_datetime64(value: Any) -> np.datetime64:
    """A YAML date, datetime or ISO string as ``datetime64[s]``."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return np.datetime64(value if not isinstance(value, str) else dt.datetime.fromisoformat(value), "s")


def _date(rng: np.random.Generator, n: int, col: Any) -> Any:
    low, high = _bounds(col, to_datetime64, (to_datetime64("2020-01-01"), to_datetime64("2024-12-31")))
    span = int((high - low) / np.timedelta64(1, "s"))
    if col.type == "date":
        days = rng.integers(0, span // 86400 + 1, n)
        return low + days.astype("timedelta64[D]")
    return low + rng.integers(0, span + 1, n).astype("timedelta64[s]")


def _choice(rng: np.random.Generator, n: int, col: Any) -> Any:
    values = list(col.args.get("values") or col.values or [])
    weights = col.args.get("weights")
    p = np.asarray(weights, dtype=float) / float(np.sum(weights)) if weights else None
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _boolean(rng: np.random.Generator, n: int, col: Any) -> Any:
    return rng.random(n) < float(col.args.get("p", 0.5))


#: name -> (draw, column types it can fill, args it accepts)
PROVIDERS: dict[str, tuple[Draw, tuple[str, ...], tuple[str, ...]]] = {
    "first_name": (_first_name, ("string",), ()),
    "last_name": (_last_name, ("string",), ()),
    "full_name": (_full_name, ("string",), ()),
    "email": (_email, ("email", "string"), ("domain", "numbers")),
    "code": (_code, ("string",), ("format",)),
    "integer": (_integer, ("int",), ("min", "max")),
    "number": (_number, ("float",), ("min", "max", "decimals")),
    "date": (_date, ("date", "datetime"), ("min", "max")),
    "choice": (_choice, ("category", "string", "int", "float"), ("values", "weights")),
    "bool": (_boolean, ("bool",), ("p",)),
}


@dataclass(frozen=True)
class ValueProvider:
    """A value provider a plugin registers (group ``causalsynth.value_providers``).

    ``draw(rng, n, column)`` returns ``n`` values (a sequence or array) from the numpy ``Generator`` and the
    column's spec (``column.args`` holds the spec's arguments); ``types`` are the column types it can fill and
    ``args`` the argument names it accepts.
    """

    draw: Draw
    types: tuple[str, ...] = ("string",)
    args: tuple[str, ...] = ()


def check_provider(obj: Any) -> str | None:
    """A plugin value provider must be a :class:`ValueProvider`."""
    if not isinstance(obj, ValueProvider) or not callable(obj.draw):
        return f"expected a causalsynth ValueProvider(draw, types, args), got {type(obj).__name__}"
    return None


def provider_names() -> list[str]:
    """Every provider a column can name: the built-in ones and the installed plugins' (nothing is imported)."""
    return sorted(set(PROVIDERS) | set(installed("value_providers")))


def provider(name: str) -> tuple[Draw, tuple[str, ...], tuple[str, ...]]:
    """A provider by name: built-in first, else the plugin registered under it (loaded once).

    Raises:
        PluginError: no such provider, or its plugin failed to load.
    """
    if name in PROVIDERS:
        return PROVIDERS[name]
    plugin = load("value_providers", name, check_provider)
    return plugin.draw, tuple(plugin.types), tuple(plugin.args)


def provider_problems(name: str, column_type: str, args: dict[str, Any], values: Sequence[str] | None) -> list[str]:
    """Why provider ``name`` with ``args`` cannot fill a ``column_type`` column (empty when it can)."""
    try:
        _, types, accepted = provider(name)
    except PluginError as exc:
        return [str(exc)]
    out = []
    if column_type not in types:
        out.append(f"provider {name} fills {' or '.join(types)} columns, not {column_type}")
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        out.append(f"provider {name} takes {', '.join(accepted) or 'no arguments'}; unknown: {', '.join(unknown)}")
    if name == "choice":
        options = args.get("values") or values
        weights = args.get("weights")
        if not options:
            out.append("provider choice needs 'values' (in args or on the column)")
        elif weights is not None and (
            not isinstance(weights, list)
            or len(weights) != len(options)
            or any(not isinstance(w, int | float) or w < 0 for w in weights)
            or not sum(weights) > 0
        ):
            out.append(f"weights must be {len(options)} non-negative numbers with a positive sum")
    if name == "date":
        for key in ("min", "max"):
            if key in args:
                try:
                    to_datetime64(args[key])
                except (TypeError, ValueError):
                    out.append(f"{key} {args[key]!r} is not an ISO date")
    return out
