"""A run's plugins, made once per run from the spec's ``plugins:`` block: validator tools, Generator tools, metrics.

The nodes ask :func:`run_plugins` for them once per batch; a run whose spec names no plugin gets ``None`` and
pays nothing per record. A plugin's failure is the record's, never the run's: a validator tool that raises or
hangs gives the record a ``tool_error`` violation (it goes back for another attempt, like any violation), and a
metric that raises is reported as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from causalsynth.agents.context import FrameContext
from causalsynth.agents.state import Record
from causalsynth.tools.errors import UsageError
from causalsynth.tools.llm.tool_calls import ToolCaller, ToolRound, trace_event
from causalsynth.tools.plugins import BUILTIN_TOOLS, Outcome, bounded_calls, check_tool, load
from causalsynth.tools.relational.checks import TableViolation
from causalsynth.tools.relational.sampling import ENTITY, var_column
from causalsynth.tools.relational.tables import TableSchema
from causalsynth.tools.retrieval.lookup import corpus_lookup_tool
from causalsynth.tools.text.realisation import RealisationRequest, Violation

_KEY = "_causalsynth_run_plugins"
#: The violation kind of a plugin tool that raised or hung.
TOOL_ERROR = "tool_error"
#: Timeouts in a row after which a validator tool is not called again in the run.
GIVE_UP_AFTER = 3
#: The node the builder adds before the writer when the spec names metrics.
METRICS_NODE = "plugin_metrics"


@dataclass
class RunPlugins:
    """The loaded plugins of one run, and the state they keep across batches (the metrics' rows)."""

    validators: list[BaseTool] = field(default_factory=list)
    validator_seconds: float = 10.0
    caller: ToolCaller | None = None
    concurrency: int = 1  # records whose tool loops run at once (the realiser's own concurrency)
    metrics: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    down: dict[str, str] = field(default_factory=dict)  # validator tools given up on in this run, and why

    # -- Generator tools ------------------------------------------------------------------------------------------
    def call_tools(
        self, requests: Sequence[RealisationRequest], emit: Callable[[Mapping[str, Any]], None],
        config: RunnableConfig | None = None,
    ) -> list[ToolRound]:  # fmt: skip
        """Each request's tool round; every call is traced to ``run.jsonl``.

        ``config`` (default: the calling node's) makes the model's tool turns child spans of the node.
        """
        caller = self.caller
        assert caller is not None
        parent = config if config is not None else ensure_config()
        if self.concurrency > 1 and len(requests) > 1:  # records' loops side by side, as the realiser's calls are
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="causalsynth-tools") as pool:
                done_all = list(pool.map(lambda q: caller.run(q, parent), requests))
        else:
            done_all = [caller.run(q, parent) for q in requests]
        rounds = []
        for request, done in zip(requests, done_all, strict=True):  # traced in record order
            for call in done.calls:
                emit(trace_event(request.record_id, request.attempt, call))
            if done.stopped is not None:
                emit({"event": "tool_loop_stopped", "record_id": request.record_id, "attempt": request.attempt,
                      "reason": done.stopped})  # fmt: skip
            rounds.append(done)
        return rounds

    # -- validator tools ------------------------------------------------------------------------------------------
    def validate(self, records: Sequence[Record]) -> list[list[Violation]]:
        """Every validator tool's violations for each record (a tool that raises or hangs gives a ``tool_error``).

        A tool's calls for a batch run one after another on one thread, each within ``validator_seconds``. A tool
        that gives no answer :data:`GIVE_UP_AFTER` times in a row is not called again in this run: its records get
        the ``tool_error`` at once, so a dead service costs seconds, not a timeout per record.
        """
        config = ensure_config()  # the node's: each tool run is a child span of it
        out: list[list[Violation]] = [[] for _ in records]
        for tool in self.validators:
            fns = []
            for r in records:
                given = {"text": r["text"], "facts": dict(r["skeleton"]), "record_id": r["id"]}
                args = {k: v for k, v in given.items() if k in tool.args}
                fns.append(lambda t=tool, a=args: t.invoke(a, config))
            if tool.name in self.down:
                outcomes = [Outcome(error=self.down[tool.name], timed_out=True)] * len(fns)
            else:
                outcomes = bounded_calls(fns, self.validator_seconds, give_up_after=GIVE_UP_AFTER)
                if len(outcomes) >= GIVE_UP_AFTER and all(o.timed_out for o in outcomes[-GIVE_UP_AFTER:]):
                    self.down[tool.name] = (f"not called: it gave no answer within {self.validator_seconds:g} s "
                                            f"{GIVE_UP_AFTER} times in a row earlier in this run")  # fmt: skip
            for found, got in zip(out, outcomes, strict=True):
                if got.error is not None:
                    found.append(Violation(kind=TOOL_ERROR, variable=tool.name, expected=None, found=None,
                                           message=f"validator tool {tool.name} failed: {got.error}"))  # fmt: skip
                else:
                    found += as_violations(tool.name, got.value)
        return out

    def validate_tables(self, schema: TableSchema, frames: Mapping[str, pd.DataFrame]) -> list[TableViolation]:
        """The validator tools over a relational batch's realised texts (each row: its text, facts and key)."""
        realised = schema.realised()
        if realised is None or not self.validators:
            return []
        table, column = realised
        frame = frames[table]
        pk = schema.pk(table)
        variables = schema.visible(table)
        out: list[TableViolation] = []
        rows = [row for row in frame.to_dict("records") if row[column]]  # an empty text is a null violation already
        records = [Record(id=_plain(row[pk]), skeleton={v: str(row[var_column(v)]) for v in variables},
                          text=str(row[column]), attempts=0, llm_calls=0, tokens=0, tokens_estimated=False,
                          violations=[], history=[]) for row in rows]  # fmt: skip
        for row, found in zip(rows, self.validate(records), strict=True):
            for v in found:
                out.append(TableViolation(
                    kind=v["kind"], table=table, row=_plain(row[pk]), entity=int(row[ENTITY]), column=column,
                    rule=None, value=v["found"], message=f"{table} row {pk}={_plain(row[pk])}: {v['message']}",
                    fix="generate", targets=[],
                ))  # fmt: skip
        return out

    # -- metrics ----------------------------------------------------------------------------------------------
    def collect(self, accepted: Sequence[Record]) -> None:
        """Keep the accepted records' ids, texts and facts for the metrics."""
        self.rows += [{"record_id": r["id"], "text": r["text"], **r["skeleton"]} for r in accepted]

    def collect_tables(self, schema: TableSchema, accepted: Sequence[Mapping[str, Mapping[str, list[Any]]]]) -> None:
        """Keep the accepted rows of the realised table (its columns, ``text`` as the text) for the metrics."""
        realised = schema.realised()
        if realised is None:
            return
        table, column = realised
        for tables in accepted:
            cols = {c: v for c, v in tables.get(table, {}).items() if not c.startswith("_")}
            keys = list(cols)
            for values in zip(*(cols[k] for k in keys), strict=True):
                row = dict(zip(keys, values, strict=True))
                self.rows.append({**row, "text": row[column]})

    def metric_values(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """Each metric over the run's accepted records (``name`` or ``name.key``), and the metrics that failed."""
        frame = pd.DataFrame(self.rows, columns=None if self.rows else ["record_id", "text"])
        values: dict[str, float | None] = {}
        failed: dict[str, str] = {}
        for name, metric in self.metrics.items():
            try:
                got = metric(frame)
                items = got.items() if isinstance(got, Mapping) else [(None, got)]
                for key, value in items:
                    values[name if key is None else f"{name}.{key}"] = None if value is None else float(value)
            except Exception as exc:  # a broken metric is reported, the run still ends with its report
                failed[name] = f"{type(exc).__name__}: {exc}"
                values[name] = None
        return values, failed


def as_violations(tool: str, output: Any) -> list[Violation]:
    """A validator tool's answer as violations: nothing, a message, a dict, or a list of messages or dicts."""
    if output is None or output == "" or output == []:
        return []
    items = output if isinstance(output, list | tuple) else [output]
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(Violation(
                kind=str(item.get("kind") or "tool"), variable=str(item.get("variable") or tool),
                expected=None if item.get("expected") is None else str(item["expected"]),
                found=None if item.get("found") is None else str(item["found"]),
                message=str(item.get("message") or f"{tool} found a problem"),
            ))  # fmt: skip
        else:
            out.append(Violation(kind="tool", variable=tool, expected=None, found=None, message=str(item)))
    return out


def run_plugins(ctx: FrameContext) -> RunPlugins | None:
    """The run's plugins, made on first use and kept on the run's context; None when the spec names none.

    Raises:
        SpecError: a named plugin failed to load.
        UsageError: Generator tools with a realiser that has no chat model, or ``corpus_lookup`` without retrieval.
    """
    cache = vars(ctx)
    if _KEY not in cache:
        cache[_KEY] = _make(ctx)
    found: RunPlugins | None = cache[_KEY]
    return found


def _make(ctx: FrameContext) -> RunPlugins | None:
    resolved = ctx.domain.plugins
    if resolved is None:
        return None
    caller = None
    if resolved.generator_tools:
        model = getattr(ctx.realiser, "model", None)
        if not isinstance(model, BaseChatModel):
            raise UsageError(
                f"plugins.generator_tools needs a chat model (--llm local or PROVIDER:MODEL); the realiser "
                f"{ctx.realiser.name} calls no tools"
            )
        tools: list[BaseTool] = []
        for name in resolved.generator_tools:
            if name in BUILTIN_TOOLS:
                if ctx.retriever is None:
                    raise UsageError(
                        f"generator tool {name} looks up the spec's retrieval corpus: give the spec a retrieval "
                        "block and do not run with --no-retrieval"
                    )
                tools.append(corpus_lookup_tool(ctx.retriever))
            else:
                tools.append(load("tools", name, check_tool))
        caller = ToolCaller(model, tools, ctx.domain.lexicon, resolved.limits, seed=ctx.settings.seed)
    concurrency = max(1, int(getattr(ctx.realiser, "concurrency", 1)))
    return RunPlugins(validators=list(resolved.validators), validator_seconds=resolved.validator_seconds,
                      caller=caller, concurrency=concurrency, metrics=dict(resolved.metrics))  # fmt: skip


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (keys go into JSON-like state)."""
    return value.item() if hasattr(value, "item") else value


def plugin_metrics(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
    """Node: keep the batch's accepted records; when the report is made, add the metrics to it.

    In a relational run the report is made by the writer, after this node: the writer adds the metrics then.
    """
    plugins = run_plugins(runtime.context)
    assert plugins is not None
    if "tables" in state or "violations" in state:  # the relational topology
        plugins.collect_tables(runtime.context.schema, state.get("accepted", []))
        return {"info": {"batch": state.get("batch", 0), "kept": len(plugins.rows)}}
    plugins.collect(state.get("accepted", []))
    report = state.get("report")
    info: dict[str, Any] = {"batch": state.get("batch", 0), "kept": len(plugins.rows)}
    if report is None:
        return {"info": info}
    values, failed = plugins.metric_values()
    report = {**report, "metrics": values, "metrics_records": len(plugins.rows)}
    report |= {"metrics_failed": failed} if failed else {}
    return {"report": report, "info": info | {"metrics": values}}
