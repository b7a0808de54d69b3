"""The Schema Validator's checks over tables: types, nulls, ranges, lengths, patterns, keys and business rules.

Every violation is listed at once, each naming its table, row (primary key), column or rule, value and entity
(the root row it belongs to), and how it can be fixed: ``resample`` (the columns in ``targets`` are drawn again,
no LLM), ``generate`` (the Generator rewrites the text) or ``none`` (nothing in the record can change it, e.g. a
rule that contradicts the causal model's states; the record is rejected with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from typing_extensions import TypedDict

from causalsynth.tools.relational.frame_data import FrameData, column_kinds
from causalsynth.tools.relational.rule_eval import evaluate
from causalsynth.tools.relational.rules import Rule
from causalsynth.tools.relational.sampling import ENTITY, var_column
from causalsynth.tools.relational.tables import EMAIL, KINDS, ColumnSpec, TableSchema, convert_value
from causalsynth.tools.text.consistency import check_facts
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import Lexicon


class TableViolation(TypedDict):
    """One broken constraint or rule on one row."""

    kind: str  # null, type, range, length, pattern, category, unique, foreign_key, rule, or a text check's kind
    table: str
    row: Any  # the row's primary key
    entity: int
    column: str | None
    rule: str | None
    value: str | None
    message: str
    fix: str  # resample | generate | none
    targets: list[str]  # columns to draw again, for fix == resample


def _short(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_tables(
    schema: TableSchema,
    frames: Mapping[str, pd.DataFrame],
    seen: Mapping[tuple[str, str], set[Any]] | None = None,
    resamplable: Mapping[str, set[str]] | None = None,
    tables: Sequence[str] | None = None,
    owners: Mapping[tuple[str, str], pd.Series] | None = None,
) -> list[TableViolation]:
    """Every violation in ``frames`` (one batch of whole records, plus the lookup tables they reference).

    ``seen`` holds unique values taken elsewhere; ``owners`` maps, per unique ``(table, column)``, each value the
    run drew to the entity that drew it first (``unique_owners``): a row holding a value another entity owns is a
    duplicate, whichever batch or shard that entity is in. ``resamplable`` names, per table, the columns the
    repairer may draw again; ``tables`` the tables to check (default: the record tables).
    """
    out: list[TableViolation] = []
    seen = seen or {}
    owners = owners or {}
    resamplable = resamplable or {}
    for table in schema.record_tables if tables is None else tables:
        frame = frames[table]
        pk = schema.pk(table)
        spec = schema.tables[table]
        for col, cs in spec.columns.items():
            out += _column_checks(
                schema, frames, table, col, cs, seen.get((table, col), set()), resamplable.get(table, set()),
                owners.get((table, col)),
            )  # fmt: skip
        for rule in (r for r in schema.rules if r.table == table):
            bad = evaluate(rule, FrameData(schema, frames, table), column_kinds(schema))
            if not bad.any():
                continue
            fix, targets = _rule_fix(schema, rule, resamplable)
            shown = [c for t, c in rule.columns if t == table][:3]
            arrays = [(c, frame[c].to_numpy(dtype=object)) for c in shown]
            keys, entities = frame[pk].to_numpy(dtype=object), frame[ENTITY].to_numpy()
            label = f"{rule.name}: " if rule.name else ""
            origin = f" [from {schema.nl[rule.text]!r}]" if rule.text in schema.nl else ""
            for i in np.flatnonzero(bad):
                values = ", ".join(f"{c}={_short(a[i])}" for c, a in arrays)
                out.append(
                    TableViolation(
                        kind="rule", table=table, row=_py(keys[i]), entity=int(entities[i]),
                        column=shown[0] if shown else None, rule=rule.text, value=values or None,
                        message=f"{table} row {pk}={_py(keys[i])} breaks rule {label}{rule.text}{origin}"
                        + (f" ({values})" if values else ""),
                        fix=fix, targets=targets,
                    )
                )  # fmt: skip
    return out


def unique_owners(schema: TableSchema, frames: Mapping[str, pd.DataFrame]) -> dict[tuple[str, str], pd.Series]:
    """Per unique column (and primary key) of the record tables, each value drawn -> the first entity drawing it.

    ``frames`` are the run's rows as first drawn, for every requested record. A value belongs to the first record
    (in record id order) that drew it; any other row holding it is a duplicate. This depends on the draw alone,
    not on which records were validated or accepted before, so a record is checked the same way in any batch or
    shard (``graphs.dask_tables``). A value that two repairs draw anew is caught by ``seen`` (values accepted
    in earlier batches of the same run or shard), else by the database's ``UNIQUE`` constraint.
    """
    out: dict[tuple[str, str], pd.Series] = {}
    for table in schema.record_tables:
        frame = frames[table]
        spec = schema.tables[table]
        for col, cs in spec.columns.items():
            if not (cs.unique or col == spec.primary_key) or col not in frame:
                continue
            values = frame[[col, ENTITY]].dropna(subset=[col]).drop_duplicates(col, keep="first")
            out[(table, col)] = pd.Series(values[ENTITY].to_numpy(dtype=np.int64), index=values[col].to_numpy())
    return out


def _rule_fix(schema: TableSchema, rule: Rule, resamplable: Mapping[str, set[str]]) -> tuple[str, list[str]]:
    """How a violation of ``rule`` can be fixed: the realised text, own columns that can be drawn again, or not."""
    realised = schema.realised()
    own = [c for t, c in rule.columns if t == rule.table]
    if realised is not None and realised[0] == rule.table and realised[1] in own:
        return "generate", []
    spec = schema.tables[rule.table]
    targets: list[str] = []
    for col in own:  # the rule's columns, then the columns they are computed from
        chain = [col]
        while (off := spec.columns[chain[-1]].offset) is not None and "." not in off.from_:
            chain.append(off.from_)
        targets += [c for c in chain if c in resamplable.get(rule.table, set()) and c not in targets]
    return ("resample", targets) if targets else ("none", [])


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


#: One finding of a column check: the rows (positions) that break it, the violation's kind, and why.
Finding = tuple[NDArray[np.intp], str, str]


def _column_checks(
    schema: TableSchema,
    frames: Mapping[str, pd.DataFrame],
    table: str,
    col: str,
    cs: ColumnSpec,
    seen: set[Any],
    resamplable: set[str],
    owners: pd.Series | None = None,
) -> list[TableViolation]:
    frame = frames[table]
    pk = schema.pk(table)
    series = frame[col]
    fix = "resample" if col in resamplable else "generate" if cs.realise else "none"
    targets = [col] if fix == "resample" else []
    raw = series.to_numpy(dtype=object)
    keys, entities = frame[pk].to_numpy(dtype=object), frame[ENTITY].to_numpy()
    null = series.isna().to_numpy()
    if cs.realise:
        null = null | (series.astype(str).str.strip() == "").to_numpy()
    present = ~null
    findings: list[Finding] = []
    if not cs.nullable and null.any():
        findings.append((np.flatnonzero(null), "null", "is empty but the column is not nullable"))
    findings += _VALUE_CHECKS[KINDS[cs.type]](series, cs, present)
    if cs.unique or col == pk:
        dup = series.duplicated(keep="first").to_numpy() | (series.isin(seen).to_numpy() if seen else False)
        if owners is not None and len(owners) and present.any():
            owner = series.where(present, None).map(owners).to_numpy(dtype=float, na_value=np.nan)
            dup = dup | (~np.isnan(owner) & (owner != entities.astype(float)))
        findings.append((np.flatnonzero(present & dup), "unique", "is already used (the column is unique)"))
    if cs.references is not None:
        target_table, _, target_col = cs.references.partition(".")
        orphan = present & ~series.isin(frames[target_table][target_col]).to_numpy()
        findings.append((np.flatnonzero(orphan), "foreign_key", f"references no row of {cs.references}"))
    return [
        TableViolation(
            kind=kind,
            table=table,
            row=_py(keys[i]),
            entity=int(entities[i]),
            column=col,
            rule=None,
            value=_short(raw[i]),
            message=f"{table} row {pk}={_py(keys[i])}: {col}={_short(raw[i])!r} {why}",
            fix=fix,
            targets=targets,
        )  # fmt: skip
        for rows, kind, why in findings
        for i in rows
    ]


def _number_checks(series: pd.Series, cs: ColumnSpec, present: NDArray[np.bool_]) -> list[Finding]:
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = present & (np.isnan(numbers) | ((numbers != np.round(numbers)) if cs.type == "int" else False))
    out: list[Finding] = [(np.flatnonzero(bad), "type", f"is not a{'n' if cs.type == 'int' else ''} {cs.type}")]
    ok = present & ~bad
    if cs.min is not None:
        out.append((np.flatnonzero(ok & (numbers < convert_value(cs.type, cs.min))), "range",
                    f"is below the minimum {cs.min}"))  # fmt: skip
    if cs.max is not None:
        out.append((np.flatnonzero(ok & (numbers > convert_value(cs.type, cs.max))), "range",
                    f"is above the maximum {cs.max}"))  # fmt: skip
    return out


def _date_checks(series: pd.Series, cs: ColumnSpec, present: NDArray[np.bool_]) -> list[Finding]:
    pattern = r"^\d{4}-\d{2}-\d{2}$" if cs.type == "date" else r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
    text = series.astype(str)
    stamps = pd.to_datetime(series.where(text.str.match(pattern), None), errors="coerce", format="ISO8601")
    bad = present & stamps.isna().to_numpy()
    out: list[Finding] = [(np.flatnonzero(bad), "type", f"is not an ISO {cs.type}")]
    ok = present & ~bad
    for bound, op, word in (("min", np.less, "before"), ("max", np.greater, "after")):
        value = getattr(cs, bound)
        if value is not None:
            limit = np.datetime64(convert_value(cs.type, value), "s")
            out.append((np.flatnonzero(ok & op(stamps.to_numpy(dtype="datetime64[s]"), limit)), "range",
                        f"is {word} {value}"))  # fmt: skip
    return out


def _bool_checks(series: pd.Series, cs: ColumnSpec, present: NDArray[np.bool_]) -> list[Finding]:
    bad = present & ~series.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    return [(np.flatnonzero(bad), "type", "is not true or false")]


def _text_checks(series: pd.Series, cs: ColumnSpec, present: NDArray[np.bool_]) -> list[Finding]:
    text = series.astype(str)
    out: list[Finding] = []
    if cs.type == "category":
        allowed = list(cs.values or [])  # noqa: PD011 - a spec field, not a DataFrame
        out.append((np.flatnonzero(present & ~series.isin(allowed).to_numpy()), "category",
                    f"is not one of {', '.join(allowed)}"))  # fmt: skip
    if cs.type == "email":
        out.append((np.flatnonzero(present & ~text.str.match(EMAIL.pattern).to_numpy(dtype=bool)), "type",
                    "is not an e-mail address"))  # fmt: skip
    if cs.max_length is not None:
        out.append((np.flatnonzero(present & (text.str.len().to_numpy() > cs.max_length)), "length",
                    f"is longer than {cs.max_length} characters"))  # fmt: skip
    if cs.pattern is not None:
        rx = re.compile(cs.pattern)
        matched = np.fromiter((bool(rx.search(s)) for s in text), dtype=bool, count=len(text))
        out.append((np.flatnonzero(present & ~matched), "pattern", f"does not match {cs.pattern}"))
    return out


#: The value checks of each kind of column (``KINDS`` maps a column type to its kind).
_VALUE_CHECKS: dict[str, Callable[[pd.Series, ColumnSpec, NDArray[np.bool_]], list[Finding]]] = {
    "num": _number_checks,
    "date": _date_checks,
    "datetime": _date_checks,
    "bool": _bool_checks,
    "str": _text_checks,
}


def check_texts(schema: TableSchema, lexicon: Lexicon, frames: Mapping[str, pd.DataFrame]) -> list[TableViolation]:
    """The realised texts against their rows' variable states: contradictions, omissions, latent facts stated."""
    realised = schema.realised()
    if realised is None:
        return []
    table, column = realised
    frame = frames[table]
    pk = schema.pk(table)
    variables = [(v, var_column(v)) for v in schema.visible(table)]
    out: list[TableViolation] = []
    states = {v: frame[c].to_numpy(dtype=object) for v, c in variables}
    keys, entities = frame[pk].to_numpy(dtype=object), frame[ENTITY].to_numpy()
    for i, text in enumerate(frame[column].tolist()):
        if not text:
            continue  # an empty text is a null violation already
        skeleton = {v: a[i] for v, a in states.items()}
        for v in check_facts(lexicon, skeleton, extract(lexicon, str(text))):
            out.append(
                TableViolation(
                    kind=v["kind"], table=table, row=_py(keys[i]), entity=int(entities[i]),
                    column=column, rule=None, value=v["found"],
                    message=f"{table} row {pk}={_py(keys[i])}: {v['message']}", fix="generate", targets=[],
                )
            )  # fmt: skip
    return out


def redraw_plan(violations: Sequence[TableViolation], attempt: int) -> dict[tuple[str, str], set[Any]]:
    """Rows to draw again per ``(table, column)``; a rule's columns take turns with the attempt."""
    out: dict[tuple[str, str], set[Any]] = {}
    for v in violations:
        column = v["targets"][(attempt - 1) % len(v["targets"])]
        out.setdefault((v["table"], column), set()).add(v["row"])
    return out
