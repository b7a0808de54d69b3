"""Traces of a run that read well: a root span per run, a child per node execution, a grandchild per LLM call.

A node's input and output are the run's state (a whole batch, with every record's history); a trace shows a
*summary* of them instead (ids as ranges, counts, the violations per record). Two tracers apply it:

- LangSmith (``LANGSMITH_TRACING=true`` with ``LANGSMITH_ENDPOINT`` / ``LANGSMITH_API_KEY``, the standard
  variables): :class:`SummaryLangSmithTracer`, LangChain's own tracer with the summaries, sent by the langsmith
  client.
- ``--trace jsonl``: :class:`JsonlTracer` writes the same spans, one JSON object per line, to ``traces.jsonl`` in
  the run folder (no server). ``causalsynth trace show`` reads it back (``graphs.trace_cli``).
- ``--trace phoenix``: OpenInference spans to a self-hosted Arize Phoenix (``graphs.phoenix``; ``causalsynth trace
  serve`` starts one), at ``PHOENIX_COLLECTOR_ENDPOINT`` (default ``http://127.0.0.1:6006``).

LLM calls carry ``record_id``, ``attempt``, ``batch`` and the violations they were asked to fix as metadata (set
by ``tools.llm.chat_realiser``); tags and metadata of the caller's ``RunnableConfig`` are kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.tracers.schemas import Run

from causalsynth.tools.errors import DataError, UsageError

if TYPE_CHECKING:
    from causalsynth.graphs.phoenix import PhoenixExport

TRACES = "traces.jsonl"
TRACE_MODES = ("off", "jsonl", "phoenix")
#: Tag LangGraph puts on its internal runnables (channel writes); viewers hide them, and so does the JSONL file.
HIDDEN = "langsmith:hidden"


def id_ranges(ids: Iterable[int]) -> str:
    """Record ids as compact ranges: ``0-31,40,42-44``."""
    out: list[str] = []
    ordered = sorted(set(int(i) for i in ids))
    start = prev = None
    for i in ordered:
        if start is None:
            start = prev = i
        elif i == prev + 1:  # type: ignore[operator]
            prev = i
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _violation(v: Mapping[str, Any]) -> str:
    return str(v.get("message") or f"{v.get('kind')}: {v.get('variable') or v.get('column')}")


def _records(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A batch of single records: their ids, and each record's current violations (the only per-record detail)."""
    out: dict[str, Any] = {"n": len(rows), "ids": id_ranges(r["id"] for r in rows if "id" in r)}
    wrong = {str(r["id"]): [_violation(v) for v in r.get("violations", [])] for r in rows if r.get("violations")}
    if wrong:
        out["violations"] = wrong
    return out


def _tables(batches: Any) -> dict[str, Any]:
    """Relational rows (one ``{table: {column: [...]}}`` or a list of them): rows per table."""
    items = batches if isinstance(batches, list) else [batches]
    rows: dict[str, int] = {}
    for tables in items:
        if isinstance(tables, Mapping):
            for table, cols in tables.items():
                first: Any = next(iter(cols.values()), []) if isinstance(cols, Mapping) else []
                if isinstance(first, Sequence):  # not a batch summarised already (an input seen again at its end)
                    rows[table] = rows.get(table, 0) + len(first)
    return {"batches": len(items), "rows": rows}


def _table_violations(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_entity: dict[str, list[str]] = {}
    for v in found:
        by_entity.setdefault(str(v.get("entity")), []).append(_violation(v))
    return {"n": len(found), "by_record": by_entity}


def summarise(payload: Any) -> Any:
    """A node's input or output with batches replaced by summaries; other values (counters, report) as they are."""
    if not isinstance(payload, Mapping):
        return payload
    out: dict[str, Any] = {}
    for key, value in payload.items():
        value = getattr(value, "value", value) if type(value).__name__ == "Overwrite" else value
        if key in ("records", "accepted", "rejected", "failed") and isinstance(value, list):
            if value and isinstance(value[0], Mapping) and "skeleton" in value[0]:
                out[key] = _records(value)
            elif key == "rejected" and value and isinstance(value[0], Mapping) and "entity" in value[0]:
                out[key] = _table_violations(value)
            elif key == "accepted" and value:
                out[key] = _tables(value)
            else:
                out[key] = {"n": len(value)}
        elif key == "tables" and isinstance(value, Mapping):
            out[key] = _tables(value)
        elif key == "violations" and isinstance(value, list):
            out[key] = _table_violations(value)
        elif key == "feedback" and isinstance(value, Mapping):
            out[key] = {str(k): [_violation(v) for v in vs] for k, vs in value.items()}
        else:
            out[key] = value
    return out


class SummaryLangSmithTracer(LangChainTracer):
    """LangChain's LangSmith tracer, with node and graph inputs and outputs summarised (see :func:`summarise`)."""

    def _on_chain_start(self, run: Run) -> None:
        run.inputs = summarise(run.inputs)
        super()._on_chain_start(run)

    def _on_chain_end(self, run: Run) -> None:
        run.outputs = summarise(run.outputs)
        super()._on_chain_end(run)

    def _on_chain_error(self, run: Run) -> None:
        run.outputs = summarise(run.outputs)
        super()._on_chain_error(run)


def _message(m: Any) -> dict[str, Any]:
    if isinstance(m, Mapping):  # a serialised message: {"lc": 1, "kwargs": {"content": ..., "type": ...}}
        fields = m.get("kwargs", m)
        return {"role": fields.get("type"), "content": fields.get("content")}
    return {"role": getattr(m, "type", None), "content": getattr(m, "content", m)}


def _field(obj: Any, name: str) -> Any:
    """A field of a message, whether an object or its serialised form (``{"kwargs": {...}}``)."""
    if isinstance(obj, Mapping):
        return obj.get("kwargs", obj).get(name)
    return getattr(obj, name, None)


def _llm_io(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """An LLM span's prompt (messages) and reply (text, token usage)."""
    inputs: dict[str, Any] = {}
    messages = run.inputs.get("messages")
    if messages:
        inputs["messages"] = [_message(m) for m in messages[0]]
    elif run.inputs.get("prompts"):
        inputs["prompts"] = run.inputs["prompts"]
    outputs: dict[str, Any] = {}
    generations = (run.outputs or {}).get("generations") or []
    if generations and generations[0]:
        first = generations[0][0]
        message = first.get("message") if isinstance(first, Mapping) else getattr(first, "message", None)
        text = first.get("text") if isinstance(first, Mapping) else getattr(first, "text", None)
        if message is not None:
            content, usage = _field(message, "content"), _field(message, "usage_metadata")
            outputs["text"] = content if content is not None else text
            if usage:
                outputs["usage"] = dict(usage)
        else:
            outputs["text"] = text
    return inputs, outputs


class JsonlTracer(BaseTracer):
    """Writes every finished span (graph, node, router, LLM call) as one JSON line to ``traces.jsonl``.

    Each line: ``id``, ``trace_id``, ``parent_id``, ``name``, ``type`` (chain, llm, ...), ``start``, ``end``,
    ``seconds``, ``inputs``, ``outputs`` (summaries for chains; messages, text and token usage for LLM calls),
    ``metadata``, ``tags`` and ``error``. LangGraph's hidden internal steps are left out.
    """

    run_inline: bool = True  # write from the calling thread, in order (no executor hop for async calls)

    def __init__(self, path: Path, *, append: bool = False) -> None:
        super().__init__(_schema_format="original+chat")  # chat calls keep their messages (not one prompt string)
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._file = self.path.open("a" if append else "w", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """Start an LLM span that keeps the chat messages."""
        run = self._create_chat_model_run(
            serialized, messages, run_id, tags=tags, parent_run_id=parent_run_id, metadata=metadata, name=name,
            **kwargs,
        )  # fmt: skip
        self._start_trace(run)
        self._on_chat_model_start(run)
        return run

    def _persist_run(self, run: Run) -> None:
        """Spans are written as they end (see :meth:`_write`), not when the root ends."""

    def _on_chain_start(self, run: Run) -> None:
        run.inputs = summarise(run.inputs)  # drop the reference to the whole batch now

    def _write(self, run: Run) -> None:
        if HIDDEN in (run.tags or []):
            return
        if run.run_type in ("llm", "chat_model"):
            inputs, outputs = _llm_io(run)
        else:
            inputs, outputs = summarise(run.inputs), summarise(run.outputs or {})
        end = run.end_time
        span = {
            "id": str(run.id),
            "trace_id": str(run.trace_id),
            "parent_id": str(run.parent_run_id) if run.parent_run_id else None,
            "name": run.name,
            "type": "llm" if run.run_type == "chat_model" else run.run_type,  # LangSmith's name for both
            "start": run.start_time.isoformat(),
            "end": end.isoformat() if end else None,
            "seconds": round((end - run.start_time).total_seconds(), 6) if end else None,
            "inputs": inputs,
            "outputs": outputs,
            "metadata": {k: v for k, v in (run.extra or {}).get("metadata", {}).items() if not k.startswith("__")},
            "tags": list(run.tags or []),
            "error": run.error,
        }
        line = json.dumps(span, default=str) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    # Spans are written as each run ends, whether it ended well or not.
    _on_chain_end = _on_chain_error = _on_llm_end = _on_llm_error = _on_tool_end = _on_tool_error = _write

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def langsmith_enabled() -> bool:
    """Whether the standard environment variables turn LangSmith tracing on (``LANGSMITH_TRACING=true``)."""
    from langsmith.utils import tracing_is_enabled

    return bool(tracing_is_enabled())


def check_trace(mode: str | None, out_dir: Path | None) -> None:
    """Reject a trace mode no run can honour, naming it.

    Raises:
        UsageError: an unknown mode, ``jsonl`` without an output folder, or ``phoenix`` with a malformed endpoint
            or no server there.
    """
    if (mode or "off") not in TRACE_MODES:
        raise UsageError(f"--trace must be one of {', '.join(TRACE_MODES)}, got {mode!r}")
    if mode == "jsonl" and out_dir is None:
        raise UsageError("--trace jsonl writes traces.jsonl into the run folder: give an output folder (--out)")
    if mode == "phoenix":
        from causalsynth.graphs.phoenix import check_server

        check_server()  # a malformed endpoint, or no server there, is named before a model loads


class RunTracing:
    """The tracers of one run: added to its config, flushed when it ends (so a CLI run's spans are all sent)."""

    def __init__(self, mode: str | None, out_dir: Path | None, *, append: bool = False) -> None:
        """``append``: a resumed run adds its spans to the interrupted run's file."""
        check_trace(mode, out_dir)
        self.handlers: list[BaseCallbackHandler] = []
        self.jsonl: JsonlTracer | None = None
        self.langsmith: SummaryLangSmithTracer | None = None
        self.phoenix: PhoenixExport | None = None
        if mode == "jsonl" and out_dir is not None:
            self.jsonl = JsonlTracer(out_dir / TRACES, append=append)
            self.handlers.append(self.jsonl)
        if mode == "phoenix":
            from causalsynth.graphs.phoenix import PhoenixExport

            self.phoenix = PhoenixExport(summarise, HIDDEN)  # raises UsageError when no server listens
            self.handlers.append(self.phoenix.handler)
        if langsmith_enabled():
            from langsmith import Client

            self.langsmith = SummaryLangSmithTracer(client=Client())  # reads LANGSMITH_ENDPOINT / _API_KEY now
            self.handlers.append(self.langsmith)

    def config(self, config: RunnableConfig | None, run_name: str, metadata: Mapping[str, Any]) -> RunnableConfig:
        """``config`` with this run's tracers added; the caller's callbacks, tags and metadata kept (theirs win)."""
        merged: dict[str, Any] = dict(config or {})
        merged.setdefault("run_name", run_name)
        merged["metadata"] = {**metadata, **dict(merged.get("metadata") or {})}
        tags = list(merged.get("tags") or [])
        merged["tags"] = tags if "causalsynth" in tags else [*tags, "causalsynth"]
        if self.handlers:
            callbacks = merged.get("callbacks")
            if callbacks is None:
                merged["callbacks"] = list(self.handlers)
            elif isinstance(callbacks, BaseCallbackManager):
                manager = callbacks.copy()
                for handler in self.handlers:
                    if not (isinstance(handler, LangChainTracer) and _has_langsmith(manager.handlers)):
                        manager.add_handler(handler, inherit=True)
                merged["callbacks"] = manager
            else:
                own = [h for h in self.handlers if not (isinstance(h, LangChainTracer) and _has_langsmith(callbacks))]
                merged["callbacks"] = [*callbacks, *own]
        return merged  # type: ignore[return-value]

    def close(self) -> None:
        """Send what LangSmith and Phoenix still hold and close the JSONL file."""
        if self.langsmith is not None:
            self.langsmith.wait_for_futures()
            self.langsmith.client.flush()
        if self.jsonl is not None:
            self.jsonl.close()
        if self.phoenix is not None:
            self.phoenix.close()


def _has_langsmith(handlers: Sequence[Any]) -> bool:
    return any(isinstance(h, LangChainTracer) for h in handlers)
