"""``causalsynth trace show DIR [--record ID]``: a run's spans (``traces.jsonl``) as a tree in the terminal.

``causalsynth trace serve``: a self-hosted Arize Phoenix on 127.0.0.1 for ``run --trace phoenix`` (``graphs.phoenix``).

Without ``--record``: the run, batch by batch, each node execution with its summary. With ``--record ID``: that
record's whole journey: each attempt's prompt and text, the violations found, the correction asked for, the outcome.
Texts of attempts that made no LLM call (the template realiser) come from the run's ``records.parquet`` and
``rejects.parquet`` (each record's history).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from causalsynth.graphs.tracing import TRACES
from causalsynth.tools.errors import DataError, UsageError

trace_app = typer.Typer(
    help="Read a run's traces (written with run --trace jsonl), or serve Phoenix for --trace phoenix.",
    no_args_is_help=True,
)
PROMPT_CHARS = 600
ROUTES = {
    "correct": "sent back for correction",
    "accepted": "accepted",
    "rejected": "rejected (budget spent)",
    "failed": "failed (the model call failed for infrastructure reasons)",
}
OUTCOME_FILES = (("records.parquet", "accepted"), ("rejects.parquet", "rejected"), ("failed.parquet", "failed"))


def read_spans(folder: Path) -> list[dict[str, Any]]:
    """The spans of a run folder, in start order.

    Raises:
        UsageError: the folder has no ``traces.jsonl``.
        DataError: a line of it is not a span (named by its line number).
    """
    path = folder / TRACES
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such run folder")
    if not path.is_file():
        raise UsageError(f"{folder}: no {TRACES} (run with --trace jsonl to write one)")
    spans = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                span = json.loads(line)
                if not isinstance(span, dict) or not {"id", "name", "type", "start"} <= span.keys():
                    raise ValueError("not a span")
            except ValueError as exc:
                raise DataError(f"{path}:{number}: not a trace span ({exc})") from None
            spans.append(span)
    return sorted(spans, key=lambda s: s["start"])


def parse_ranges(ranges: str) -> Iterator[int]:
    """The ids of ``0-3,7`` (see ``graphs.tracing.id_ranges``)."""
    for part in filter(None, (ranges or "").split(",")):
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)


def _has(summary: Any, record: int) -> bool:
    return isinstance(summary, Mapping) and record in set(parse_ranges(str(summary.get("ids", ""))))


def _violations(summary: Any, record: int) -> list[str]:
    if not isinstance(summary, Mapping):
        return []
    return list((summary.get("violations") or {}).get(str(record), []))


@dataclass
class Attempt:
    """One generator call of a record, as the trace and the run folder tell it."""

    number: int
    calls: list[dict[str, Any]] = field(default_factory=list)  # LLM spans (retries included)
    text: str | None = None
    found: list[str] = field(default_factory=list)
    route: str | None = None  # accepted | correct | rejected


def journey(spans: Sequence[dict[str, Any]], record: int) -> tuple[int | None, list[Attempt]]:
    """The batch of ``record`` and its attempts, from the node and LLM spans."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        children.setdefault(s.get("parent_id"), []).append(s)
    batch = None
    attempts: list[Attempt] = []
    for s in spans:
        outputs = s.get("outputs") or {}
        if s["name"] == "sample" and _has(outputs.get("records"), record):
            batch = outputs.get("batch")
        elif s["name"] == "generate" and _has(outputs.get("records"), record):
            attempt = Attempt(number=len(attempts))
            attempt.calls = [
                c for c in children.get(s["id"], []) if (c.get("metadata") or {}).get("record_id") == record
            ]
            attempts.append(attempt)
        elif s["name"] == "verify_causal" and attempts and attempts[-1].route is None:
            routes = (("correct", "records"), ("rejected", "rejected"), ("accepted", "accepted"), ("failed", "failed"))
            for route, key in routes:
                if _has(outputs.get(key), record):
                    attempts[-1].route = route
                    attempts[-1].found = _violations(outputs.get(key), record)
    return batch, attempts


def _folder_rows(folder: Path, record: int) -> tuple[str | None, dict[str, Any] | None]:
    """The record's row in the published (or partial) outputs: ``(outcome, row)``."""
    import pandas as pd

    for name, outcome in OUTCOME_FILES:
        path = folder / name
        if not path.is_file():
            continue
        table = pd.read_parquet(path)
        rows = table[table["record_id"] == record] if "record_id" in table else table.iloc[0:0]
        if len(rows):
            return outcome, {str(k): v for k, v in rows.iloc[0].to_dict().items()}
    return None, None


def _prompt(call: Mapping[str, Any]) -> str:
    inputs = call.get("inputs") or {}
    if inputs.get("messages"):
        return str(inputs["messages"][-1].get("content", ""))
    prompts = inputs.get("prompts") or [""]
    return str(prompts[0]).rsplit("\nHuman: ", 1)[-1]


def _clip(text: str, n: int = PROMPT_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def record_tree(folder: Path, record: int) -> Tree:
    """The journey of one record as a rich ``Tree``.

    Raises:
        UsageError: the record is not in the trace.
    """
    spans = read_spans(folder)
    batch, attempts = journey(spans, record)
    if batch is None and not attempts:
        raise UsageError(f"{folder}: record {record} is not in {TRACES}")
    outcome, row = _folder_rows(folder, record)
    history = {h["attempt"]: h for h in json.loads(row["history"])} if row and row.get("history") else {}
    last = attempts[-1].route if attempts else None
    outcome = outcome or (last if last in ("accepted", "rejected", "failed") else "unfinished")
    tree = Tree(Text(f"record {record}  (batch {batch}, {len(attempts)} attempt(s)) -> {outcome}", style="bold"))
    for a in attempts:
        node = tree.add(Text(f"attempt {a.number}", style="cyan"))
        for call in a.calls:
            meta = call.get("metadata") or {}
            usage = (call.get("outputs") or {}).get("usage") or {}
            tokens = f", {usage.get('input_tokens', '?')}+{usage.get('output_tokens', '?')} tokens" if usage else ""
            label = f"LLM call {call['name']} (retry {meta.get('retry', 0)}, {call.get('seconds') or 0:.2f} s{tokens})"
            c = node.add(Text(label))
            if meta.get("violations"):
                ask = c.add(Text("correction asked for:", style="yellow"))
                for v in meta["violations"]:
                    ask.add(Text(v))
            c.add(Text("prompt: ", style="dim") + Text(_clip(_prompt(call))))
            if call.get("error"):
                c.add(Text("error: ", style="red") + Text(_clip(str(call["error"]).strip().splitlines()[-1])))
            else:
                c.add(Text("reply: ", style="dim") + Text(_clip(str((call.get("outputs") or {}).get("text", "")))))
        text = history.get(a.number, {}).get("text")
        if text is None and a is attempts[-1] and row is not None:
            text = row.get("text")
        if text is not None and not a.calls:
            node.add(Text("text: ", style="dim") + Text(_clip(str(text))))
        if a.found:
            found = node.add(Text(f"violations found ({len(a.found)}):", style="red"))
            for v in a.found:
                found.add(Text(v))
        route = ROUTES
        if a.route is not None:
            node.add(Text(route.get(a.route, a.route), style="green" if a.route == "accepted" else "yellow"))
    return tree


def _node_line(span: Mapping[str, Any]) -> str:
    out = span.get("outputs") or {}
    info = out.get("info") or {}
    keep = {k: v for k, v in info.items() if k != "batch" and not isinstance(v, dict | list)}
    return f"{span['name']}  {span.get('seconds') or 0:.3f} s  " + ", ".join(f"{k}={v}" for k, v in keep.items())


def run_tree(folder: Path) -> Tree:
    """The run as a tree: root, then per batch the node executions with their summaries and LLM call counts."""
    spans = read_spans(folder)
    roots = [s for s in spans if not s.get("parent_id")]
    if not roots:
        raise DataError(f"{folder / TRACES}: no root span (the run did not finish its first step)")
    tree = Tree(Text("traces", style="bold"))
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        children.setdefault(s.get("parent_id"), []).append(s)
    for root in roots:
        meta = root.get("metadata") or {}
        seconds = root.get("seconds") or 0
        label = f"{root['name']}  ({meta.get('n', '?')} records, {meta.get('llm', '?')}, {seconds:.2f} s)"
        r = tree.add(Text(label, style="bold"))
        batches: dict[Any, Tree] = {}
        for s in children.get(root["id"], []):
            batch = (s.get("outputs") or {}).get("info", {}).get("batch", (s.get("inputs") or {}).get("batch"))
            if batch not in batches:
                batches[batch] = r.add(Text(f"batch {batch}", style="cyan"))
            calls = [c for c in children.get(s["id"], []) if c["type"] in ("llm", "chat_model")]
            suffix = f"  [{len(calls)} LLM call(s)]" if calls else ""
            batches[batch].add(Text(_node_line(s) + suffix, style="red" if s.get("error") else ""))
    return tree


@trace_app.command("show")
def show_cmd(
    folder: Annotated[Path, typer.Argument(help="A run folder written with --trace jsonl.")],
    record: Annotated[int | None, typer.Option("--record", help="Show this record's whole journey.")] = None,
) -> None:
    """Print a run's trace as a tree, or one record's journey (attempts, violations, corrections, outcome)."""
    console = Console()
    console.print(record_tree(folder, record) if record is not None else run_tree(folder))


@trace_app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option("--port", help="HTTP port: the UI, the REST API and OTLP/HTTP.")] = 6006,
    grpc_port: Annotated[
        int | None, typer.Option("--grpc-port", help="Phoenix's OTLP/gRPC port (default: --port + 1).")
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Where Phoenix keeps its database (default: $XDG_DATA_HOME/causalsynth/phoenix)."),
    ] = None,
) -> None:
    """Start a self-hosted Arize Phoenix on 127.0.0.1 (no telemetry, no external resources) for --trace phoenix."""
    from causalsynth.graphs.phoenix import default_dir, serve

    serve(port, grpc_port, folder if folder is not None else default_dir(), say=lambda line: typer.echo(line, err=True))


def use_trace_endpoint(mode: str, url: str | None) -> None:
    """``run --trace-endpoint URL``: this process's Phoenix collector (``PHOENIX_COLLECTOR_ENDPOINT``).

    Raises:
        UsageError: a URL without ``--trace phoenix``, or a malformed one.
    """
    if url is None:
        return
    if mode != "phoenix":
        raise UsageError(f"--trace-endpoint applies to --trace phoenix, not --trace {mode}")
    from causalsynth.graphs.phoenix import check_endpoint

    os.environ["PHOENIX_COLLECTOR_ENDPOINT"] = check_endpoint(url)


def interrupted_message(folder: Path) -> str:
    """What a user who pressed Ctrl-C is told: what was kept, and the command that continues the run."""
    import shlex
    import sys

    argv = [a for a in sys.argv[1:] if a]
    command = "causalsynth " + shlex.join(argv) if argv and "run" in argv else "causalsynth run SPEC -n N ..."
    if "--resume" not in argv:
        command += f" --resume {shlex.quote(str(folder))}"
    return (
        f"interrupted: the batches written so far are kept in {folder} (checkpointed).\n"
        f"Continue the run with the same settings:\n  {command}"
    )
