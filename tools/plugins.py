"""Plugins: extensions found through ``importlib.metadata`` entry points, and named by specs by name only.

An installed distribution registers objects under these entry-point groups::

    causalsynth.tools            LangChain tools: validator tools and Generator tools
    causalsynth.realisers        factories ``(lexicon, seed) -> Realiser`` (``--llm plugin:NAME``)
    causalsynth.value_providers  value providers for table columns (``provider: NAME``)
    causalsynth.metrics          ``(accepted records DataFrame) -> number | {name: number}``, shown in the report
    causalsynth.noise_models     :class:`~causalsynth.tools.causal.noise.NoiseModel` subclasses (``--noise-model``)
    causalsynth.nodes            graph nodes ``(state, runtime) -> update``, or :class:`GraphNode`

A spec names plugins by their registered name (``formulary_check``), never by an import path: a name is checked
against :data:`NAME` before anything is looked up, so a spec from elsewhere cannot make us import a module of its
choosing; only a name some installed distribution registered can be loaded, and only when a run uses it.
A plugin that fails to load (its import raises, or it is not the kind of object its group holds) is reported by
name and skipped with a :class:`PluginWarning`; it is never half-registered. Loaded plugins are cached, so a run
looks each up once, not per record.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from causalsynth.tools.errors import CausalSynthError

#: Short group name -> entry-point group.
GROUPS: dict[str, str] = {
    "tools": "causalsynth.tools",
    "realisers": "causalsynth.realisers",
    "value_providers": "causalsynth.value_providers",
    "metrics": "causalsynth.metrics",
    "noise_models": "causalsynth.noise_models",
    "nodes": "causalsynth.nodes",
}
#: What a registered name looks like: no dots, colons or slashes, so it can never be read as a module path.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Where a custom node can go in a run graph: after the Generator, or before the writer.
POINTS = ("after_generation", "before_writing")
Point = Literal["after_generation", "before_writing"]
#: Tools that ship with causalsynth (built per run; see ``causalsynth.tools.retrieval.lookup``).
BUILTIN_TOOLS = ("corpus_lookup",)

#: A group's type check: the problem with a loaded object, or None when it is usable.
Check = Callable[[Any], str | None]


class PluginError(CausalSynthError):
    """A plugin is unknown, failed to load, or is not what its group holds."""


class PluginWarning(UserWarning):
    """An installed plugin failed to load and was skipped."""


@dataclass(frozen=True)
class PluginInfo:
    """One registered entry point: where it points and which distribution registered it."""

    group: str  # short group name
    name: str
    value: str  # module:attribute
    distribution: str
    version: str


@dataclass(frozen=True)
class GraphNode:
    """A node to add to a run graph at a named point, with optional routing.

    ``node(state, runtime) -> update`` is an ordinary LangGraph node of the topology it is added to. Without a
    ``router`` the node continues to where the point led (``generate -> NODE -> validate_schema``); with one,
    ``router(state)`` returns a label of ``targets``, which maps labels to node names (``"next"``: where the point
    led).
    """

    name: str
    node: Callable[..., dict[str, Any]]
    at: Point = "after_generation"
    router: Callable[[Any], str] | None = None
    targets: Mapping[str, str] = field(default_factory=dict)


def check_name(name: str) -> str:
    """Return ``name`` if it can be a registered plugin name.

    Raises:
        ValueError: it looks like a module path or is otherwise not a name (the message says what to write).
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(
            f"{name!r} is not a plugin name: a spec names plugins by their registered name (lower-case letters, "
            "digits, '_'), never by a module path; see 'causalsynth plugins'"
        )
    return name


PluginName = Annotated[str, AfterValidator(check_name)]


# -- discovery ---------------------------------------------------------------------------------------------------
@cache
def installed(group: str) -> dict[str, PluginInfo]:
    """The entry points registered under a group, by name, without importing anything (cached; see :func:`refresh`)."""
    out: dict[str, PluginInfo] = {}
    for ep in metadata.entry_points(group=GROUPS[group]):
        dist = ep.dist
        info = PluginInfo(
            group, ep.name, ep.value, dist.metadata["Name"] if dist else "?", dist.version if dist else "?"
        )
        if ep.name in out:
            warnings.warn(
                f"plugin {group}/{ep.name} is registered twice ({out[ep.name].distribution} and {info.distribution}); "
                f"using {out[ep.name].distribution}'s",
                PluginWarning,
                stacklevel=2,
            )
            continue
        out[ep.name] = info
    return out


_loaded: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def refresh() -> None:
    """Forget what was discovered and loaded (after installing a plugin in a running process; tests)."""
    installed.cache_clear()
    with _lock:
        _loaded.clear()


def load(group: str, name: str, check: Check | None = None) -> Any:
    """The object registered as ``name`` in ``group``, imported on first use and cached.

    Raises:
        PluginError: ``name`` is not a name, nothing is registered under it, its import raised, or ``check``
            refused the object.
    """
    try:
        check_name(name)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    key = (group, name)
    with _lock:
        if key in _loaded:
            return _loaded[key]
    found = installed(group)
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"no {group} plugin named {name!r} (installed: {known}; see 'causalsynth plugins')")
    info = found[name]
    eps = [ep for ep in metadata.entry_points(group=GROUPS[group]) if ep.name == name and ep.value == info.value]
    try:
        obj = eps[0].load()
    except Exception as exc:  # any import failure: the plugin is skipped, the run is not
        raise PluginError(
            f"{group} plugin {name!r} ({info.distribution}) failed to load: {type(exc).__name__}: {exc}"
        ) from None
    problem = check(obj) if check is not None else None
    if problem is not None:
        raise PluginError(f"{group} plugin {name!r} ({info.distribution}) is not usable: {problem}")
    with _lock:
        _loaded[key] = obj
    return obj


def load_group(group: str, check: Check | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every plugin of a group: the usable ones by name, and why each other one was skipped (with a warning)."""
    ok: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in installed(group):
        try:
            ok[name] = load(group, name, check)
        except PluginError as exc:
            failed[name] = str(exc)
            warnings.warn(f"skipped: {exc}", PluginWarning, stacklevel=2)
    return ok, failed


# -- the checks of the groups this layer knows ---------------------------------------------------------------------
def check_tool(obj: Any) -> str | None:
    """A LangChain tool (``@tool`` or a ``BaseTool`` instance), with an argument schema."""
    from langchain_core.tools import BaseTool

    if not isinstance(obj, BaseTool):
        return f"expected a LangChain tool (@tool or a BaseTool instance), got {type(obj).__name__}"
    return None


def check_callable(obj: Any) -> str | None:
    """Anything callable (metrics, realiser factories)."""
    return None if callable(obj) else f"expected a function, got {type(obj).__name__}"


def check_node(obj: Any) -> str | None:
    """A node function, or a :class:`GraphNode`."""
    if isinstance(obj, GraphNode):
        return None
    return None if callable(obj) else f"expected a node function or a GraphNode, got {type(obj).__name__}"


# -- bounded calls -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What a bounded call gave: its value, or why there is none; and how long it took."""

    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    timed_out: bool = False


def bounded_call(fn: Callable[[], Any], seconds: float) -> Outcome:
    """Call ``fn`` on a daemon thread and wait at most ``seconds``; an exception or a timeout is an error string.

    A thread cannot be killed: a call that hangs keeps its thread until it returns, but nobody waits for it, and
    the thread does not keep the process alive.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # a plugin's failure is data here
            box["error"] = f"{type(exc).__name__}: {exc}"

    start = time.perf_counter()
    thread = threading.Thread(target=target, name="causalsynth-plugin-call", daemon=True)
    thread.start()
    thread.join(max(0.0, seconds))
    took = time.perf_counter() - start
    if thread.is_alive():
        return Outcome(error=f"no answer within {seconds:g} s", seconds=took, timed_out=True)
    if "error" in box:
        return Outcome(error=str(box["error"]), seconds=took)
    return Outcome(value=box.get("value"), seconds=took)


def bounded_calls(fns: Sequence[Callable[[], Any]], seconds: float, give_up_after: int = 0) -> list[Outcome]:
    """:func:`bounded_call` for many calls, each within ``seconds``, run one after another on one daemon thread.

    Starting a thread per call costs more than a cheap check (milliseconds on a loaded machine), so the calls share
    a lane; when one overruns, the lane is abandoned to it and the calls after it continue on a new lane. After
    ``give_up_after`` timeouts in a row (0: never) the remaining calls are not made: each gets an error saying so.
    """
    out: list[Outcome] = []
    while len(out) < len(fns):
        if give_up_after and len(out) >= give_up_after and all(o.timed_out for o in out[-give_up_after:]):
            skipped = f"not called: the {give_up_after} calls before it gave no answer within {seconds:g} s"
            out += [Outcome(error=skipped, timed_out=True)] * (len(fns) - len(out))
            break
        first = len(out)
        done = [threading.Event() for _ in range(first, len(fns))]
        box: list[Outcome | None] = [None] * (len(fns) - first)
        abandoned = threading.Event()

        def lane(first: int = first, done: list[threading.Event] = done, box: list[Outcome | None] = box,
                 abandoned: threading.Event = abandoned) -> None:  # fmt: skip
            for k, fn in enumerate(fns[first:]):
                if abandoned.is_set():
                    return
                start = time.perf_counter()
                try:
                    box[k] = Outcome(value=fn(), seconds=time.perf_counter() - start)
                except BaseException as exc:  # a plugin's failure is data here
                    box[k] = Outcome(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
                done[k].set()

        threading.Thread(target=lane, name="causalsynth-plugin-lane", daemon=True).start()
        for k, event in enumerate(done):
            if not event.wait(max(0.0, seconds)):
                abandoned.set()
                out.append(Outcome(error=f"no answer within {seconds:g} s", seconds=seconds, timed_out=True))
                break
            result = box[k]
            assert result is not None
            out.append(result)
    return out


# -- the spec's plugins block --------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolLimits(_Strict):
    """Per record and attempt: how many Generator tool calls, and how many seconds for all of them."""

    calls: int = Field(default=2, ge=1, le=20)
    seconds: float = Field(default=30.0, gt=0, le=600)
    require: bool = False  # the model must make the first call (it may stop after it)


class NodeRef(_Strict):
    """A node plugin and where it goes (default: the node's own ``at``, else after generation)."""

    name: PluginName
    at: Point | None = None


class PluginsSpec(_Strict):
    """A spec's ``plugins:`` block: which installed plugins a run uses, by registered name."""

    validators: list[PluginName] = Field(default_factory=list)
    generator_tools: list[PluginName] = Field(default_factory=list)
    tool_calls: ToolLimits = Field(default_factory=ToolLimits)
    validator_seconds: float = Field(default=10.0, gt=0, le=600)
    nodes: list[PluginName | NodeRef] = Field(default_factory=list)
    metrics: list[PluginName] = Field(default_factory=list)

    def node_refs(self) -> list[NodeRef]:
        """The nodes as references with their points."""
        return [n if isinstance(n, NodeRef) else NodeRef(name=n) for n in self.nodes]


#: The argument names a validator tool may take: the record's text, its facts (skeleton) and its id.
VALIDATOR_ARGS = ("text", "facts", "record_id")


def unknown_names(spec: PluginsSpec, where: Callable[[tuple[str | int, ...]], str]) -> list[tuple[str, str]]:
    """``(where, message)`` for each name in the block that no installed distribution registered (nothing imported)."""
    out = []
    tools = set(installed("tools"))
    for key, names, known in (
        ("validators", spec.validators, tools),
        ("generator_tools", spec.generator_tools, tools | set(BUILTIN_TOOLS)),
        ("metrics", spec.metrics, set(installed("metrics"))),
    ):
        for i, name in enumerate(names):
            if name not in known:
                out.append((where(("plugins", key, i)), _unknown("tools" if key != "metrics" else "metrics", name)))
    nodes = set(installed("nodes"))
    for i, ref in enumerate(spec.node_refs()):
        if ref.name not in nodes:
            out.append((where(("plugins", "nodes", i)), _unknown("nodes", ref.name)))
    return out


def _unknown(group: str, name: str) -> str:
    known = ", ".join(sorted(installed(group))) or "none installed"
    return f"no {group} plugin named {name!r} (installed: {known}; see 'causalsynth plugins')"


@dataclass(frozen=True)
class ResolvedPlugins:
    """A spec's plugins, loaded: validator tools, Generator tool names, nodes with their points, metrics."""

    validators: list[Any]  # BaseTool
    generator_tools: list[str]  # names; built-ins are made per run
    limits: ToolLimits
    validator_seconds: float
    nodes: list[GraphNode]
    metrics: dict[str, Callable[[Any], Any]]


def resolve(spec: PluginsSpec) -> ResolvedPlugins:
    """Load every plugin the block names.

    Raises:
        PluginError: one of them failed to load or is of the wrong kind, or a validator tool takes arguments a
            validator is not given.
    """
    validators = []
    for name in spec.validators:
        tool = load("tools", name, check_tool)
        extra = sorted(set(_required_args(tool)) - set(VALIDATOR_ARGS))
        if extra:
            raise PluginError(
                f"validator tool {name!r} requires {', '.join(extra)}; a validator tool is given only "
                f"{', '.join(VALIDATOR_ARGS)}"
            )
        validators.append(tool)
    for name in spec.generator_tools:
        if name not in BUILTIN_TOOLS:
            load("tools", name, check_tool)
    nodes = []
    for ref in spec.node_refs():
        obj = load("nodes", ref.name, check_node)
        node = obj if isinstance(obj, GraphNode) else GraphNode(name=ref.name, node=obj)
        nodes.append(GraphNode(name=ref.name, node=_guarded(ref.name, node.node), at=ref.at or node.at,
                               router=node.router, targets=node.targets))  # fmt: skip
    metrics = {name: load("metrics", name, check_callable) for name in spec.metrics}
    return ResolvedPlugins(validators, list(spec.generator_tools), spec.tool_calls, spec.validator_seconds, nodes,
                           metrics)  # fmt: skip


def _guarded(name: str, node: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A plugin node whose failure stops the run as a :class:`PluginError` naming it (one error line, no traceback).

    A failed node is not skipped: passing a batch on without, say, its redaction would be worse than stopping.
    """
    from langgraph.errors import GraphBubbleUp

    def run(state: Any, runtime: Any) -> dict[str, Any]:
        try:
            return node(state, runtime)
        except (CausalSynthError, GraphBubbleUp):  # already a user-facing error, or LangGraph's own control flow
            raise
        except Exception as exc:
            raise PluginError(f"plugin node {name!r} failed: {type(exc).__name__}: {exc}") from exc

    run.__doc__ = node.__doc__
    return run


def _required_args(tool: Any) -> list[str]:
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return list(schema.get("required", []))
    return [n for n, f in schema.model_fields.items() if f.is_required()]
