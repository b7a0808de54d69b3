"""The run graph for LangGraph Studio and ``langgraph dev``: ``graph``, named in the repository's ``langgraph.json``.

A LangGraph server builds a graph's context from the JSON a run is started with, so that context must be plain
settings. :class:`StudioSettings` is that context (spec, n, seed, llm, out, ...; Studio shows it as a form). The
run graphs' nodes need live objects instead (the realiser, the skeleton source, the ledger): the settings build
a :class:`RunContext` (or, for a spec with tables, a :class:`TableRunContext`) once per run, on first use, and
hand the nodes its attributes.

::

    START -> start_run -> run -> END            run: the records graph of ``build_graph()`` (a subgraph)
                       -> run_tables -> END     run_tables: the relational graph, for specs with tables

``start_run`` checks the settings, loads the spec, builds the run's context, sets the run's input from ``n``
(the graph takes no input of its own) and picks the topology. ``run`` and ``run_tables`` are the graphs every
``causalsynth run`` uses, so Studio shows and steps through their real nodes (sample, retrieve, generate,
validate_schema, verify_causal, assess, write; sample_tables, generate_text, validate_tables, repair,
write_tables). The output is the run's report and counters.

With ``out`` (a folder), the run writes the run folder ``causalsynth run --out`` writes (records or tables, the
database, rejects, report.json, report.html, run.jsonl), checkpointed after every batch like any run with a
folder (``causalsynth run SPEC ... --resume OUT`` continues it if it stops). That run is the runner's own
(``graphs.runner.run``): Studio traces it through the callbacks, but it does not stream its inner steps.

Specs whose plugins add graph nodes or metrics have another topology: they are refused with a message naming
the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from causalsynth.agents.context import RunContext, RunSettings, SkeletonSource
from causalsynth.agents.state import RunOutput
from causalsynth.agents.table_context import TableRunContext
from causalsynth.graphs.assess_api import write_run_report
from causalsynth.graphs.builder import _table_graph, build_graph, compile_graph, recursion_limit
from causalsynth.graphs.retrieval import RetrievalOptions, open_retriever
from causalsynth.graphs.runner import check_settings
from causalsynth.graphs.runner import run as run_to_folder
from causalsynth.tools.errors import CausalSynthError, UsageError
from causalsynth.tools.llm.factory import LLMOptions, make_realiser
from causalsynth.tools.spec import load_domain

#: The name the Studio graph carries (and its id in ``langgraph.json``).
STUDIO_GRAPH = "causalsynth"


@dataclass(kw_only=True)
class StudioSettings:
    """A run's settings, as plain values a server can take from JSON (the defaults are ``causalsynth run``'s).

    ``spec``: a spec path or a short name (``asia``, ``clinic``, a bnlearn network). ``llm``: ``template``,
    ``local`` (the embedded model) or ``PROVIDER:MODEL``. ``batch_size``: None means 1000 for the template
    realiser, else 32. ``retrieval``: use the spec's reference passages (runs with a model only). ``out``: a
    folder to write the run folder into (none: the report only).
    """

    spec: str = "asia"
    n: int = 20
    seed: int = 0
    llm: str = "template"
    realize: Literal["anchored", "free"] = "anchored"
    mode: Literal["iterative", "rejection"] = "iterative"
    max_rounds: int = 3
    batch_size: int | None = None
    retrieval: bool = True
    out: str | None = None

    def live(self) -> RunContext | TableRunContext:
        """The run's context (built on the first call: spec loaded, settings checked, realiser made).

        Raises:
            UsageError: a bad setting, or a spec this graph cannot run.
            SpecError: a bad spec.
        """
        context = self.__dict__.get("_live")
        if context is None:
            context = self.__dict__["_live"] = _run_context(self)
        assert isinstance(context, RunContext | TableRunContext)
        return context

    def __getattr__(self, name: str) -> Any:
        """The nodes' view: any attribute the settings lack is the run context's (``realiser``, ``ledger``...)."""
        if name.startswith("__") or name == "_live":
            raise AttributeError(name)
        return getattr(self.live(), name)


def _run_context(s: StudioSettings) -> RunContext | TableRunContext:
    """What ``causalsynth.generate`` builds for a run without an output folder (records, or tables)."""
    domain = load_domain(s.spec)
    if s.out is not None and (not s.out.strip() or Path(s.out).is_file()):
        raise UsageError(f"out: {s.out!r} is not a folder name")
    plugins = domain.plugins
    if plugins is not None and (plugins.nodes or plugins.metrics):
        raise UsageError(f"spec {s.spec!r}: its plugins add graph nodes or metrics, which the Studio graph does not "
                         "have (run it with 'causalsynth run')")  # fmt: skip
    template = s.llm == "template"
    batch = s.batch_size if s.batch_size is not None else (1000 if template else 32)
    settings = RunSettings(n=s.n, mode=s.mode, max_rounds=s.max_rounds, batch_size=batch, seed=s.seed, llm=s.llm,
                           realize="template" if template else s.realize)  # fmt: skip
    check_settings(settings)
    realiser = make_realiser(s.llm, domain.lexicon, seed=s.seed, options=LLMOptions(realize=s.realize))
    retriever = open_retriever(domain, RetrievalOptions(enabled=s.retrieval), uses_model=not template, seed=s.seed)
    if retriever is not None:
        retriever.start_run()
    if domain.schema is not None:
        return TableRunContext(domain=domain, realiser=realiser, settings=settings, retriever=retriever)
    return RunContext(domain=domain, realiser=realiser, settings=settings, retriever=retriever,
                      skeletons=SkeletonSource(domain, settings.n, settings.seed))  # fmt: skip


class SettingsError(UsageError, ValueError):
    """A run's settings or spec are bad.

    A ``ValueError`` too: a LangGraph server shows such errors' messages, and hides others' behind "An internal
    error occurred".
    """


class StudioInput(TypedDict, total=False):
    """The Studio graph takes no input: a run is described by its settings (the context)."""


class StudioState(TypedDict, total=False):
    """The outer graph's state: the run graph's input, then its output; whether the spec has tables."""

    relational: bool
    n_requested: int
    next_id: int
    totals: dict[str, float]
    report: dict[str, Any] | None


def start_run(state: StudioState, runtime: Runtime[StudioSettings]) -> dict[str, Any]:
    """Check the settings and build the run's context; the records graph's input: all ``n`` records, from id 0.

    Raises:
        SettingsError: a bad setting, a bad spec, or a spec this graph cannot run.
    """
    try:
        context = runtime.context.live()
    except CausalSynthError as exc:
        raise SettingsError(str(exc)) from exc
    return {"relational": isinstance(context, TableRunContext), "n_requested": context.settings.n, "next_id": 0,
            "totals": {}, "report": None}  # fmt: skip


def topology(state: StudioState) -> Literal["run", "run_tables"]:
    """The relational graph for a spec with tables, else the records graph."""
    return "run_tables" if state.get("relational") else "run"


#: The graphs every ``causalsynth run`` uses: records, and (for specs with tables) relational records.
RECORDS = compile_graph(build_graph(None))
TABLES = compile_graph(_table_graph(), relational=True)


def _invoke(graph: Any, state: StudioState, settings: StudioSettings) -> dict[str, Any]:
    """Run ``graph`` in memory (a subgraph: its nodes are drawn and streamed), or into ``out`` as the CLI does."""
    context = settings.live()
    s = context.settings
    if settings.out is not None:
        try:
            folder = Path(settings.out)
            report = run_to_folder(context.domain, context.realiser, s, folder, retriever=context.retriever,
                                   durable=True)  # fmt: skip
            if "tables" not in report:
                write_run_report(folder)
        except CausalSynthError as exc:
            raise SettingsError(str(exc)) from exc
        return {"report": report}
    limit = recursion_limit(s.n, s.batch_size, s.max_rounds)
    start = {k: v for k, v in state.items() if k != "relational"}
    return dict(graph.invoke(start, context=settings, config={"recursion_limit": limit}))


def run(state: StudioState, runtime: Runtime[StudioSettings]) -> dict[str, Any]:
    """Run the records graph with the steps this run needs."""
    return _invoke(RECORDS, state, runtime.context)


def run_tables(state: StudioState, runtime: Runtime[StudioSettings]) -> dict[str, Any]:
    """Run the relational graph (a spec with tables) with the steps this run needs."""
    return _invoke(TABLES, state, runtime.context)


def studio_graph() -> Any:
    """The compiled Studio graph: ``start_run``, then ``run`` or ``run_tables`` (their nodes visible)."""
    builder = StateGraph(StudioState, context_schema=StudioSettings, input_schema=StudioInput,
                         output_schema=RunOutput)  # fmt: skip
    builder.add_node("start_run", start_run)
    builder.add_node("run", run)
    builder.add_node("run_tables", run_tables)
    builder.add_edge(START, "start_run")
    builder.add_conditional_edges("start_run", topology)
    builder.add_edge("run", END)
    builder.add_edge("run_tables", END)
    return builder.compile(name=STUDIO_GRAPH)


#: What ``langgraph.json`` names: ``langgraph dev`` serves it, and Studio draws it.
graph = studio_graph()
