"""Build the run graphs. Records: sample -> retrieve -> generate -> validate -> verify -> (generate | assess) -> write.

::

    START -> sample -> retrieve -> generate -> validate_schema -> verify_causal
    verify_causal -> generate      (records to correct or retry remain in the batch)
    verify_causal -> assess        (every record of the batch is accepted or rejected)
    assess -> write -> sample      (more records requested)
    write -> END                   (the run is complete)

Relational specs (with tables) get the same frame with the work that differs::

    START -> sample_tables -> generate_text -> validate_tables
    validate_tables -> repair | write_tables;  repair -> generate_text | validate_tables
    write_tables -> sample_tables | END

Every node works on a whole batch and keeps a status per record: LangGraph's per-item ``Send`` fan-out costs
more than the work itself at thousands of records per second, while a node over a batch costs one step. LLM
concurrency lives inside the realiser the Generator calls.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from langchain_core.runnables.config import ensure_config, var_child_runnable_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from causalsynth.agents.assessor import assess
from causalsynth.agents.causal_verifier import verify_causal
from causalsynth.agents.context import RunContext
from causalsynth.agents.generator import generate
from causalsynth.agents.repairer import repair
from causalsynth.agents.retriever import retrieve
from causalsynth.agents.run_plugins import METRICS_NODE, plugin_metrics
from causalsynth.agents.schema_validator import validate_schema
from causalsynth.agents.skeletons import sample
from causalsynth.agents.state import RunInput, RunOutput, RunState
from causalsynth.agents.table_context import TableRunContext
from causalsynth.agents.table_generator import generate_text
from causalsynth.agents.table_sampler import sample_tables
from causalsynth.agents.table_state import TableRunState
from causalsynth.agents.table_validator import validate_tables
from causalsynth.agents.table_writer import write_tables
from causalsynth.agents.writer import write
from causalsynth.graphs.routing import after_assess, after_repair, after_validate_tables, after_verify, after_write
from causalsynth.tools.errors import UsageError
from causalsynth.tools.plugins import POINTS, GraphNode
from causalsynth.tools.spec import Domain

Node = Callable[[Any, Runtime[Any]], dict[str, Any]]


class _Traced(Protocol):
    def __call__(self, state: Any, *, runtime: Runtime[Any]) -> dict[str, Any]: ...


def traced(name: str, node: Node) -> _Traced:
    """Wrap a node so that each execution appends one event (node, seconds, its summary) to ``run.jsonl``.

    Works for any graph whose context has ``emit(event)`` (the run graph and the relational graph). Spans the node
    starts (LLM calls) carry the batch index as metadata.
    """

    def run(state: Any, *, runtime: Runtime[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        config = ensure_config()
        metadata = {**(config.get("metadata") or {}), "batch": state.get("batch", 0)}
        token = var_child_runnable_config.set({**config, "metadata": metadata})
        try:
            update = node(state, runtime)
        finally:
            var_child_runnable_config.reset(token)
        event = {"node": name, "seconds": round(time.perf_counter() - start, 6)} | dict(update.get("info", {}))
        runtime.context.emit(event)
        return update

    run.__name__ = name
    run.__doc__ = node.__doc__
    return run


#: The names the compiled graphs carry (trace viewers show them).
RUN_GRAPH = "causalsynth-run"
TABLE_GRAPH = "causalsynth-tables"


def build_graph(domain: Domain | None = None, nodes: Sequence[GraphNode] = ()) -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled run graph for ``domain``: whole relational records if its spec declares tables, else records.

    ``nodes`` are extra nodes placed at named points (``after_generation``: between the Generator and the
    validation; ``before_writing``: just before the writer), after those the spec's ``plugins.nodes`` name; each
    continues to where its point led unless it has its own router. Add or replace nodes, then
    ``compile(name=...)`` it, or hand it to ``causalsynth.generate(graph=...)``. Dependencies come in through
    ``context=`` at invoke time (``RunContext`` or ``TableRunContext``).

    Raises:
        UsageError: an extra node's name is taken, its point is unknown, or its router names an unknown node.
        SpecError: a plugin the spec names failed to load.
    """
    relational = domain is not None and domain.schema is not None
    plugins = domain.plugins if domain is not None else None
    extra = [*(plugins.nodes if plugins is not None else ()), *nodes]
    if plugins is not None and plugins.metrics:  # keeps the accepted records the metrics are computed over
        extra.append(GraphNode(name=METRICS_NODE, node=plugin_metrics, at="before_writing"))
    return _table_graph(extra) if relational else _record_graph(extra)


def compile_graph(
    builder: StateGraph[Any, Any, Any, Any], relational: bool = False, checkpointer: Any = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile a run graph under its name (with ``checkpointer`` for a durable run)."""
    return builder.compile(name=TABLE_GRAPH if relational else RUN_GRAPH, checkpointer=checkpointer)


#: Per topology, the edge each named point sits on.
_POINTS = {
    "records": {"after_generation": ("generate", "validate_schema"), "before_writing": ("assess", "write")},
    "tables": {"after_generation": ("generate_text", "validate_tables"),
               "before_writing": ("validate_tables", "write_tables")},
}  # fmt: skip


def _record_graph(extra: Sequence[GraphNode] = ()) -> StateGraph[RunState, RunContext, RunInput, RunOutput]:
    return _assemble(
        StateGraph(RunState, context_schema=RunContext, input_schema=RunInput, output_schema=RunOutput),
        nodes=[("sample", sample), ("retrieve", retrieve), ("generate", generate), ("validate_schema", validate_schema),
               ("verify_causal", verify_causal), ("assess", assess), ("write", write)],
        edges=[(START, "sample"), ("sample", "retrieve"), ("retrieve", "generate"), ("generate", "validate_schema"),
               ("validate_schema", "verify_causal")],
        routes=[("verify_causal", after_verify, None), ("assess", after_assess, None),
                ("write", after_write, {"sample": "sample", "__end__": END})],
        extra=extra, points=_POINTS["records"],
    )  # fmt: skip


def _table_graph(extra: Sequence[GraphNode] = ()) -> StateGraph[TableRunState, TableRunContext, RunInput, RunOutput]:
    return _assemble(
        StateGraph(TableRunState, context_schema=TableRunContext, input_schema=RunInput, output_schema=RunOutput),
        nodes=[("sample_tables", sample_tables), ("generate_text", generate_text),
               ("validate_tables", validate_tables), ("repair", repair), ("write_tables", write_tables)],
        edges=[(START, "sample_tables"), ("sample_tables", "generate_text"), ("generate_text", "validate_tables")],
        routes=[("validate_tables", after_validate_tables, None), ("repair", after_repair, None),
                ("write_tables", after_write, {"sample": "sample_tables", "__end__": END})],
        extra=extra, points=_POINTS["tables"],
    )  # fmt: skip


Route = tuple[str, Callable[[Any], str], dict[Hashable, str] | None]


def _assemble(
    builder: StateGraph[Any, Any, Any, Any],
    nodes: list[tuple[str, Node]],
    edges: list[tuple[str, str]],
    routes: list[Route],
    extra: Sequence[GraphNode] = (),
    points: dict[str, tuple[str, str]] | None = None,
) -> StateGraph[Any, Any, Any, Any]:
    """Add traced nodes, plain edges and routed edges to a graph of either topology, with ``extra`` at their points."""
    if extra:
        assert points is not None
        nodes, edges, routes = _insert(nodes, edges, routes, extra, points)
    for name, node in nodes:
        builder.add_node(name, traced(name, node))
    for source, target in edges:
        builder.add_edge(source, target)
    for source, router, targets in routes:
        builder.add_conditional_edges(source, router, targets)
    return builder


def _insert(
    nodes: list[tuple[str, Node]],
    edges: list[tuple[str, str]],
    routes: list[Route],
    extra: Sequence[GraphNode],
    points: dict[str, tuple[str, str]],
) -> tuple[list[tuple[str, Node]], list[tuple[str, str]], list[Route]]:
    """Splice the extra nodes into the edge (plain or routed) each point sits on, in the order given."""
    taken = {name for name, _ in nodes}
    nodes, edges, routes = list(nodes), list(edges), list(routes)
    for x in extra:
        if x.name in taken or x.name in (START, END):
            raise UsageError(f"graph node {x.name!r}: the graph already has a node of that name")
        if x.at not in points:
            raise UsageError(f"graph node {x.name!r}: unknown point {x.at!r} (points: {', '.join(POINTS)})")
        taken.add(x.name)
    for x in extra:
        source, target = points[x.at]
        nodes.append((x.name, x.node))
        if (source, target) in edges:
            edges[edges.index((source, target))] = (source, x.name)
        else:  # the point is one branch of a router: that branch now leads to the new node
            i = next(i for i, r in enumerate(routes) if r[0] == source)
            src, router, targets = routes[i]
            mapping = dict(targets) if targets is not None else {t: t for t in _labels(router)}
            routes[i] = (src, router, {k: (x.name if v == target else v) for k, v in mapping.items()})
        if x.router is None:
            edges.append((x.name, target))
        else:
            unknown = sorted(v for v in x.targets.values() if v != "next" and v not in taken)
            if unknown or not x.targets:
                raise UsageError(f"graph node {x.name!r}: its router targets unknown nodes: {', '.join(unknown)}"
                                 if unknown else f"graph node {x.name!r}: a router needs its targets")  # fmt: skip
            routes.append((x.name, x.router, {k: (target if v == "next" else v) for k, v in x.targets.items()}))
        points = {p: ((x.name, t) if (s, t) == (source, target) else (s, t)) for p, (s, t) in points.items()}
    return nodes, edges, routes


def _labels(router: Callable[[Any], str]) -> list[str]:
    """The labels a router may return, from its ``Literal`` return annotation."""
    hints = typing.get_type_hints(router)
    return [str(a) for a in typing.get_args(hints["return"])]


def recursion_limit(n: int, batch_size: int, max_rounds: int, resamples: int = 0, extra_nodes: int = 0) -> int:
    """Super-steps a run needs (either topology): per batch, 4 steps plus 3 per round, and a margin.

    ``resamples``: times the privacy guard may send a batch's records back to the Generator (each a new series
    of rounds). ``extra_nodes``: nodes added to the topology's own (:func:`extra_nodes`); each is counted once
    per round and once more per batch, which bounds both points (a node that routes in a loop of its own needs
    ``recursion_limit`` in the run's config).
    """
    batches = max(1, -(-n // batch_size))
    per_batch = 4 + extra_nodes + (3 + extra_nodes) * (max_rounds + 1)
    return batches * per_batch * (1 + resamples) + 10


#: The nodes of each topology as built, before extra ones are added.
_OWN_NODES = frozenset({"sample", "retrieve", "generate", "validate_schema", "verify_causal", "assess", "write",
                        "sample_tables", "generate_text", "validate_tables", "repair", "write_tables"})  # fmt: skip


def extra_nodes(graph: Any) -> int:
    """How many nodes a run graph (a ``StateGraph`` or its compiled form) has beyond its topology's own."""
    builder = getattr(graph, "builder", graph)
    return len(set(getattr(builder, "nodes", {})) - _OWN_NODES)
