"""The rule lock file: natural-language rules and the expressions an LLM compiled them to, beside the spec.

``hospital.yaml`` keeps its compiled rules in ``hospital.rules.lock.yaml``, one entry per (table, sentence) with
the sentence's hash, the expression, and which model proposed it. Runs read the lock and never call an LLM; an
entry is reviewed like code (it is shown to the user when compiled) but it is only ever parsed, never executed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from causalsynth.tools.errors import Problem, SpecError
from causalsynth.tools.tabular import write_text
from causalsynth.tools.yamlio import load_yaml

SUFFIX = ".rules.lock.yaml"
HEADER = (
    "# Natural-language rules compiled into the rule language (causalsynth compile-rules).\n"
    "# Review each 'rule' before use: runs parse it against the schema; nothing here is executed.\n"
)


def lock_path(spec_path: Path) -> Path:
    """Where the lock file of ``spec_path`` lives."""
    return spec_path.with_name(spec_path.stem + SUFFIX)


def nl_key(table: str, sentence: str) -> str:
    """The hash that keys a sentence in the lock (table and text)."""
    return hashlib.sha256(f"{table}\x00{sentence.strip()}".encode()).hexdigest()[:16]


def read_lock(path: Path | None) -> dict[tuple[str, str], str]:
    """``(table, sentence) -> rule`` from the lock file; empty when there is none.

    Raises:
        SpecError: as :func:`read_entries`.
    """
    return {key: entry["rule"] for key, entry in read_entries(path).items()}


def read_entries(path: Path | None) -> dict[tuple[str, str], dict[str, str]]:
    """``(table, sentence) -> {rule, model}`` from the lock file; empty when there is none.

    Raises:
        SpecError: the lock file is malformed, or an entry's hash does not match its sentence (edited by hand).
    """
    if path is None or not path.is_file():
        return {}
    data, _ = load_yaml(path.read_text(encoding="utf-8"), str(path))
    entries = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SpecError(str(path), [Problem(str(path), "a rule lock file is a mapping with a 'rules' list")])
    out: dict[tuple[str, str], dict[str, str]] = {}
    problems = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("table", "nl", "rule")):
            problems.append(Problem(f"{path} rules[{i}]", "each entry needs 'table', 'nl' and 'rule' strings"))
            continue
        if entry.get("key") != nl_key(entry["table"], entry["nl"]):
            problems.append(Problem(f"{path} rules[{i}]", "its key does not match its sentence; recompile the rule"))
            continue
        out[(entry["table"], entry["nl"].strip())] = {"rule": entry["rule"], "model": str(entry.get("model", ""))}
    if problems:
        raise SpecError(str(path), problems)
    return out


def write_lock(path: Path, entries: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """Write the lock: ``(table, sentence) -> {rule, model}``, sorted, atomically."""
    rules = [
        {"table": table, "nl": sentence, "key": nl_key(table, sentence), **dict(value)}
        for (table, sentence), value in sorted(entries.items())
    ]
    write_text(HEADER + yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True, width=120), path)
