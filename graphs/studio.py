"""The run graph for LangGraph Studio and ``langgraph dev``: ``graph``, named in the repository's ``langgraph.json``.

A LangGraph server builds a graph's context from the JSON a run is started with, so that context must be plain
settings. :class:`StudioSettings` is that context (spec, n, seed, llm, ...; Studio shows it as a form). The
records graph's nodes need live objects instead (the realiser, the skeleton source, the ledger): the settings build
a :class:`RunContext` once per run, on first use, and hand the nodes its attributes.

::

    START -> start_run -> run -> END        run: the records graph of ``build_graph()``, unchanged (a subgraph)

``start_run`` checks the settings, loads the spec, builds the run's context and sets the run's input from ``n``
(the graph takes no input of its own). ``run`` is the graph every ``causalsynth run`` of single records uses,
so Studio shows and steps through its real nodes: sample, retrieve, generate, validate_schema, verify_causal,
assess, write. The output is the run's report and counters; nothing is written to disk (``causalsynth run`` or
``causalsynth.generate(out=...)`` write run folders).

Specs with tables, and specs whose plugins add graph nodes or metrics, have other topologies: they are refused
with a message naming the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from causalsynth.agents.context import RunContext, RunSettings, SkeletonSource
from causalsynth.agents.state import RunOutput
from causalsynth.graphs.builder import build_graph, compile_graph, recursion_limit
from causalsynth.graphs.retrieval import RetrievalOptions, open_retriever
from causalsynth.graphs.runner import check_settings
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
    realiser, else 32. ``retrieval``: use the spec's reference passages (runs with a model only).
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

    def live(self) -> RunContext:
        """The run's context (built on the first call: spec loaded, settings checked, realiser made).

        Raises:
            UsageError: a bad setting, or a spec this graph cannot run.
            SpecError: a bad spec.
        """
        context = self.__dict__.get("_live")
        if context is None:
            context = self.__dict__["_live"] = _run_context(self)
        assert isinstance(context, RunContext)
        return context

    def __getattr__(self, name: str) -> Any:
        """The nodes' view: any attribute the settings lack is the run context's (``realiser``, ``ledger``...)."""
        if name.startswith("__") or name == "_live":
            raise AttributeError(name)
        return getattr(self.live(), name)


def _run_context(s: StudioSettings) -> RunContext:
    """What ``causalsynth.generate`` builds for a run of single records without an output folder."""
    domain = load_domain(s.spec)
    if domain.schema is not None:
        raise UsageError(f"spec {s.spec!r} declares tables; the Studio graph runs specs of single records "
                         "(run it with 'causalsynth run')")  # fmt: skip
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
    """The outer graph's state: the records graph's input, then its output."""

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
        n = runtime.context.live().settings.n
    except CausalSynthError as exc:
        raise SettingsError(str(exc)) from exc
    return {"n_requested": n, "next_id": 0, "totals": {}, "report": None}


#: The records graph every ``causalsynth run`` of single records uses.
RECORDS = compile_graph(build_graph(None))


def run(state: StudioState, runtime: Runtime[StudioSettings]) -> dict[str, Any]:
    """Run the records graph (a subgraph: its nodes are drawn and streamed) with the steps this run needs."""
    s = runtime.context.live().settings
    limit = recursion_limit(s.n, s.batch_size, s.max_rounds)
    return dict(RECORDS.invoke(dict(state), context=runtime.context, config={"recursion_limit": limit}))


def studio_graph() -> Any:
    """The compiled Studio graph: ``start_run``, then ``run`` (the records graph, its nodes visible)."""
    builder = StateGraph(StudioState, context_schema=StudioSettings, input_schema=StudioInput,
                         output_schema=RunOutput)  # fmt: skip
    builder.add_node("start_run", start_run)
    builder.add_node("run", run)
    builder.add_edge(START, "start_run")
    builder.add_edge("start_run", "run")
    builder.add_edge("run", END)
    return builder.compile(name=STUDIO_GRAPH)


#: What ``langgraph.json`` names: ``langgraph dev`` serves it, and Studio draws it.
graph = studio_graph()
