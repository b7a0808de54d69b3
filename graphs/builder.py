"""Build the run graph: sample -> retrieve -> generate -> validate -> verify -> (generate | assess) -> write.

::

    START -> sample -> retrieve -> generate -> validate_schema -> verify_causal
    verify_causal -> generate      (records to correct or retry remain in the batch)
    verify_causal -> assess        (every record of the batch is accepted or rejected)
    assess -> write -> sample      (more records requested)
    write -> END                   (the run is complete)

Every node works on a whole batch and keeps a status per record: LangGraph's per-item ``Send`` fan-out costs
more than the work itself at thousands of records per second, while a node over a batch costs one step. LLM
concurrency lives inside the realiser the Generator calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.assessor import assess
from agents.causal_verifier import verify_causal
from agents.generator import generate
from agents.retriever import retrieve
from agents.schema_validator import validate_schema
from agents.skeletons import sample
from agents.writer import write
from graphs.context import RunContext
from graphs.routing import after_verify, after_write
from graphs.state import RunState

Node = Callable[[Any, Runtime[Any]], dict[str, Any]]


class _Traced(Protocol):
    def __call__(self, state: Any, *, runtime: Runtime[Any]) -> dict[str, Any]: ...


def traced(name: str, node: Node) -> _Traced:
    """Wrap a node so that each execution appends one event (node, seconds, its summary) to ``run.jsonl``.

    Works for any graph whose context has ``emit(event)`` (the run graph and the relational graph).
    """

    def run(state: Any, *, runtime: Runtime[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        update = node(state, runtime)
        event = {"node": name, "seconds": round(time.perf_counter() - start, 6)} | dict(update.get("info", {}))
        runtime.context.emit(event)
        return update

    run.__name__ = name
    run.__doc__ = node.__doc__
    return run


def build_graph() -> CompiledStateGraph[RunState, RunContext, RunState, RunState]:
    """The compiled run graph; dependencies come in through ``context=RunContext(...)`` at invoke time."""
    builder = StateGraph(RunState, context_schema=RunContext)
    for name, node in (
        ("sample", sample),
        ("retrieve", retrieve),
        ("generate", generate),
        ("validate_schema", validate_schema),
        ("verify_causal", verify_causal),
        ("assess", assess),
        ("write", write),
    ):
        builder.add_node(name, traced(name, node))
    builder.add_edge(START, "sample")
    builder.add_edge("sample", "retrieve")
    builder.add_edge("retrieve", "generate")
    builder.add_edge("generate", "validate_schema")
    builder.add_edge("validate_schema", "verify_causal")
    builder.add_conditional_edges("verify_causal", after_verify)
    builder.add_edge("assess", "write")
    builder.add_conditional_edges("write", after_write, {"sample": "sample", "__end__": END})
    return builder.compile()


def recursion_limit(n: int, batch_size: int, max_rounds: int) -> int:
    """Super-steps a run needs: per batch, sample, retrieve, (generate, validate, verify) per round, assess, write."""
    batches = max(1, -(-n // batch_size))
    return batches * (4 + 3 * (max_rounds + 1)) + 10
