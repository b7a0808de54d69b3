"""Command-line pieces for relational specs: the run summary and ``compile-rules``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from rich.console import Console
from rich.table import Table

from causalsynth.graphs.retrieval import retrieval_rows
from causalsynth.tools.errors import UsageError
from causalsynth.tools.llm.rule_compiler import NlRuleCompiler
from causalsynth.tools.relational.rule_lock import lock_path, read_entries, write_lock
from causalsynth.tools.sinks.folder import REJECTS
from causalsynth.tools.sinks.table_folder import DATABASE
from causalsynth.tools.spec import load_domain


def print_table_report(report: dict[str, Any], out: Path, console: Console) -> None:
    """The summary of a relational run."""
    summary = Table(title=f"{report['domain']}: relational run with {report['llm']}")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for key in ("n_requested", "n_accepted", "n_rejected", "realizability", "values_redrawn", "texts_realised",
                "llm_calls", "selection_drift_max", "records_per_second"):  # fmt: skip
        value = report.get(key)
        summary.add_row(key, f"{value:.4f}" if isinstance(value, float) and key != "records_per_second" else str(value))
    before = report["compliance_before"]
    summary.add_row("compliance_before.records", f"{before['records']:.4f}" if before["records"] is not None else "n/a")
    for table, share in before["rows"].items():
        summary.add_row(f"compliance_before.{table}", f"{share:.4f}")
    for key, value in retrieval_rows(report.get("retrieval")):
        summary.add_row(key, value)
    console.print(summary)
    if report["violations_before"]:
        console.print("violations found before repair: " + json.dumps(report["violations_before"]), markup=False)
    files = ", ".join(f"{t}.parquet/.csv" for t in report["tables"])
    console.print(f"wrote {out}/{files}, {DATABASE}, {REJECTS}, report.json, run.jsonl", markup=False)


def compile_rules(spec: str, model: BaseChatModel, model_name: str, force: bool, console: Console) -> int:
    """Compile the spec's natural-language rules missing from its lock file (all of them with ``force``).

    Each compiled rule is shown; the lock file is written once all have compiled, then the spec is loaded again
    to check it. Returns the number of rules compiled.

    Raises:
        RuleCompileError: a sentence did not compile (the lock file is left as it was).
        SpecError: the spec is invalid for another reason.
    """
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"{spec}: compile-rules needs a spec file")
    domain = load_domain(path, allow_uncompiled=True)
    if domain.schema is None:
        raise UsageError(f"{spec}: the spec declares no tables, so it has no rules to compile")
    lock = lock_path(path)
    existing = read_entries(lock)
    todo = list(domain.schema.uncompiled)
    if force:
        todo += [(t, s, "") for (t, s) in existing if any(t == table for table in domain.schema.tables)]
    compiler = NlRuleCompiler(model)
    entries: dict[tuple[str, str], dict[str, Any]] = dict(existing)
    for table, sentence, name in todo:
        compiled = compiler.compile(sentence, domain.schema.scope(table), name=name)
        console.print(f"{table}: {sentence!r}\n  -> {compiled.rule.text}", markup=False, highlight=False)
        entries[(table, sentence)] = {"rule": compiled.rule.text, "model": model_name}
    if todo:
        write_lock(lock, entries)
        load_domain(path)  # the lock and the spec agree
    console.print(f"{len(todo)} rule(s) compiled; lock file {lock}", markup=False, highlight=False)
    return len(todo)
