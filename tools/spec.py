"""Domain spec: YAML validated by pydantic v2, then checked as a causal network, every problem at once.

A spec names its causal model in exactly one way::

    model: {bnlearn: asia}            # a network bundled with pgmpy
    model: {file: nets/asia.bif}      # BIF / XMLBIF, relative to the spec file
    model:                            # inline DAG with states and CPTs
      nodes:
        smoke: {states: [yes, no], probs: [0.5, 0.5]}
        lung:
          states: [yes, no]
          parents: [smoke]
          cpt:
            - {when: {smoke: yes}, probs: [0.1, 0.9]}
            - {when: {smoke: no}, probs: {yes: 0.01, no: 0.99}}

and may describe variables under ``variables:`` (description, role, and the lexicon a realisation is written and
read with: per-state ``phrases`` and ``patterns``, ``negation``, ``numeric``), and the text under ``text:`` (its
kind, openings, length limits, forbidden phrases, extra cue words). Every field has a default, so specs written
for an earlier version stay valid.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from causalsynth.tools.causal.network import Network, Node, cpt_sum_problem
from causalsynth.tools.causal.sources import bnlearn_names, load_bnlearn, load_network_file
from causalsynth.tools.errors import Problem, SpecError
from causalsynth.tools.plugins import PluginError, PluginsSpec, ResolvedPlugins, resolve, unknown_names
from causalsynth.tools.privacy.schema import ColumnSpec, FitSpec
from causalsynth.tools.relational.rule_lock import lock_path, read_lock
from causalsynth.tools.relational.spec_check import build_schema
from causalsynth.tools.relational.tables import TableSchema, TableSpec
from causalsynth.tools.text.lexicon import CueSpec, Lexicon, TextSpec, VariableMeta
from causalsynth.tools.text.phrasebook import SUFFIX as PHRASEBOOK_SUFFIX
from causalsynth.tools.text.phrasebook import load_phrasebook, phrasebook_path
from causalsynth.tools.text.round_trip import checked_lexicon
from causalsynth.tools.yamlio import Path as KeyPath
from causalsynth.tools.yamlio import format_path, line_of, load_yaml, scalar_text

Name = Annotated[str, BeforeValidator(scalar_text)]  # states written as numbers or booleans are names
Probs = list[float] | dict[Name, float]


#: Names ending like the columns the tools add (noise ``__u``/``__u0``, twins ``__cf``) would collide with them.
RESERVED_SUFFIXES = re.compile(r"__(u\d*|cf)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CptRow(_Strict):
    """One parent configuration of a CPT and the distribution of the child given it."""

    when: dict[Name, Name]
    probs: Probs


class NodeSpec(_Strict):
    """An inline variable: its states, parents and probabilities."""

    states: list[Name]
    parents: list[Name] = Field(default_factory=list)
    probs: Probs | None = None
    cpt: list[CptRow] | None = None


class ModelSpec(_Strict):
    """The causal model, given in exactly one way."""

    bnlearn: str | None = None
    file: str | None = None
    nodes: dict[Name, NodeSpec] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSpec:
        given = [k for k in ("bnlearn", "file", "nodes") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give the model in exactly one way: 'bnlearn: NAME', 'file: PATH' or 'nodes: {...}'"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self


class RetrievalSpec(_Strict):
    """Where the Generator's reference passages come from (``tools.retrieval``); CLI flags override each field."""

    collection: str | None = None  # Chroma collection; default: the spec's name
    corpus: str | None = None  # a corpus folder (relative to the spec) synced into the collection before a run
    domain: str | None = None  # metadata filter on the documents' domain; default: the spec's name
    kinds: list[Literal["note", "style", "terminology"]] = Field(default=["note"], min_length=1)
    k: int = Field(default=2, ge=1, le=20)  # passages per record
    pool: int = Field(default=3, ge=1, le=10)  # the k are drawn from the pool nearest of each register
    max_chars: int = Field(default=320, ge=50, le=4000)  # per passage in the prompt
    leak_ngram: int = Field(default=12, ge=2, le=1000)  # the leakage check's run length, in tokens


class Spec(_Strict):
    """A domain spec as written in YAML."""

    spec_version: Literal[1] = 1
    name: str | None = None
    description: str | None = None
    model: ModelSpec
    variables: dict[Name, VariableMeta] = Field(default_factory=dict)
    text: TextSpec = Field(default_factory=TextSpec)
    tables: dict[Name, TableSpec] | None = None
    retrieval: RetrievalSpec | None = None
    columns: dict[Name, ColumnSpec] | None = None  # how states decode to typed values (written by ``fit``)
    fit: FitSpec | None = None  # provenance of a fitted spec (written by ``fit``)
    plugins: PluginsSpec | None = None  # installed plugins the run uses, by registered name (``tools.plugins``)


class Domain:
    """A loaded, checked spec: the spec as written, its causal network and its lexicon.

    Without a ``lexicon``, the lexicon is compiled on first use (``where`` locates its problems), so commands
    that write no text (sample, verify, counterfactual) never build one.
    """

    def __init__(
        self,
        spec: Spec,
        network: Network,
        source: str,
        lexicon: Lexicon | None = None,
        schema: TableSchema | None = None,
        where: Callable[[KeyPath], str] | None = None,
        phrasebook: Path | None = None,
    ) -> None:
        self.spec = spec
        self.network = network
        self.source = source
        self.schema = schema  # the relational schema, when the spec declares tables
        self._lexicon = lexicon
        self._where = where or (lambda _path: source)
        self.phrasebook = phrasebook  # phrasings merged into the lexicon when it is compiled
        self._plugins: ResolvedPlugins | None = None

    @property
    def plugins(self) -> ResolvedPlugins | None:
        """The plugins the spec names, loaded on first use (None when it names none).

        Raises:
            SpecError: a named plugin failed to load or is not what its group holds.
        """
        if self.spec.plugins is None:
            return None
        if self._plugins is None:
            try:
                self._plugins = resolve(self.spec.plugins)
            except PluginError as exc:
                raise SpecError(self.source, [Problem(self._where(("plugins",)), str(exc))]) from None
        return self._plugins

    @property
    def lexicon(self) -> Lexicon:
        """The compiled lexicon (``tools.text.lexicon``), with the phrasebook's phrasings if the spec has one.

        Raises:
            SpecError: listing the lexicon's problems, when it is compiled here and has any.
        """
        if self._lexicon is None:
            compiled = checked_lexicon(self.network, self.spec.variables, self.spec.text, self._where)
            if not isinstance(compiled, Lexicon):
                raise SpecError(self.source, compiled)
            self._lexicon = compiled if self.phrasebook is None else load_phrasebook(self.phrasebook, compiled)
        return self._lexicon

    @lexicon.setter
    def lexicon(self, value: Lexicon) -> None:
        self._lexicon = value

    @property
    def name(self) -> str:
        """The spec's name, else the network's."""
        return self.spec.name or self.network.name


# -- loading ------------------------------------------------------------------------------------------
def examples_dir() -> Path:
    """The example specs shipped with the package (``causalsynth.examples``)."""
    return Path(str(resources.files("causalsynth.examples")))


def example_names() -> list[str]:
    """Short names of the packaged example specs (``clinic``, ``hospital``, ...)."""
    return sorted(
        p.stem for p in examples_dir().glob("*.yaml") if not p.name.endswith((".lock.yaml", PHRASEBOOK_SUFFIX))
    )


def resolve_spec(ref: str | Path) -> Path | str:
    """Where a spec reference points: a file, or a bnlearn name (returned as the name).

    In order: an existing file; ``examples/NAME.yaml`` not found here (a repo path used from another folder) is
    the packaged example of that file name; a bnlearn network name (``asia``, ``alarm``, ...); a packaged
    example's short name (``clinic``, ``hospital``, ``smoking``).

    Raises:
        SpecError: nothing matches, with the valid short names.
    """
    path = Path(ref)
    if path.is_file():
        return path
    ref_text = str(ref)
    packaged = examples_dir()
    if path.parent.name == "examples" and (packaged / path.name).is_file():
        return packaged / path.name
    looks_like_file = path.suffix in {".yaml", ".yml", ".json"} or "/" in ref_text or "\\" in ref_text
    if not looks_like_file and ref_text in bnlearn_names():
        return ref_text
    if not looks_like_file and (packaged / f"{ref_text}.yaml").is_file():
        return packaged / f"{ref_text}.yaml"
    hint = ""
    if not looks_like_file:
        hint = (
            f"; nor an example spec ({', '.join(example_names())}) nor a bnlearn network name "
            f"(valid: {', '.join(bnlearn_names())})"
        )
    raise SpecError(ref_text, [Problem(ref_text, f"spec file not found{hint}")])


def load_domain(ref: str | Path, *, allow_uncompiled: bool = False, phrasebook: bool = True) -> Domain:
    """Load a spec: a YAML file, a packaged example's short name, or a bnlearn network name (see :func:`resolve_spec`).

    ``allow_uncompiled`` lists natural-language rules missing from the lock file in ``schema.uncompiled``
    instead of failing (for ``compile-rules``). ``phrasebook`` merges the spec's phrasebook
    (``NAME.phrases.yaml`` beside it, ``tools.text.phrasebook``) into its lexicon when there is one.

    Raises:
        SpecError: listing every problem with its location.
    """
    where = resolve_spec(ref)
    if isinstance(where, str):
        network = load_bnlearn(where, where)
        assert isinstance(network, Network)  # a bundled name always loads
        return Domain(Spec(model=ModelSpec(bnlearn=where)), network, where)
    try:
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(where), [Problem(str(where), f"cannot read: {exc}")]) from None
    return load_domain_text(
        text,
        source=str(where),
        base_dir=where.parent,
        lock=lock_path(where),
        allow_uncompiled=allow_uncompiled,
        phrases=phrasebook_path(where) if phrasebook else None,
    )


def load_domain_text(
    text: str,
    source: str = "<spec>",
    base_dir: Path | None = None,
    lock: Path | None = None,
    allow_uncompiled: bool = False,
    phrases: Path | None = None,
) -> Domain:
    """Load a spec from YAML text; ``base_dir`` resolves relative ``model.file`` paths.

    ``lock`` is the rule lock file holding the compiled natural-language rules (``relational.rule_lock``);
    ``phrases`` the phrasebook whose phrasings are added to the lexicon, if that file exists.
    """
    data, lines = load_yaml(text, source)
    return load_domain_data(data, source, lines, base_dir, lock, allow_uncompiled, phrases)


def load_domain_data(
    data: Any,
    source: str = "<spec>",
    lines: dict[KeyPath, int] | None = None,
    base_dir: Path | None = None,
    lock: Path | None = None,
    allow_uncompiled: bool = False,
    phrases: Path | None = None,
) -> Domain:
    """Load a spec already parsed into plain data (what :func:`load_domain_text` does after the YAML).

    ``lines`` maps key paths to the lines problems are reported at (none: problems name the key path only). A spec
    made in memory (``causalsynth.fit``'s) skips a YAML dump and parse this way; what it loads is what that YAML
    would load, since the YAML only holds plain values.
    """
    lines = lines or {}
    if not isinstance(data, dict):
        raise SpecError(source, [Problem(f"{source}:1", "a spec must be a YAML mapping with a 'model' key")])

    def where(path: KeyPath) -> str:
        line = line_of(lines, path)
        loc = f"{source}:{line}" if line else source
        return f"{loc} {format_path(path)}" if path else loc

    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}  # x-* keys hold YAML anchors
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems: list[Problem] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _is_union_tag(p)))
            problems.append(Problem(where(loc), _pydantic_message(err)))
        problems += _check_valid_nodes(data, where)
        raise SpecError(source, _dedupe(problems)) from None

    problems = []
    network: Network | None = None
    model = spec.model
    if model.bnlearn is not None:
        loaded = load_bnlearn(model.bnlearn, where(("model", "bnlearn")))
    elif model.file is not None:
        file_path = Path(model.file)
        if not file_path.is_absolute():
            file_path = (base_dir or Path.cwd()) / file_path
        loaded = load_network_file(file_path, where(("model", "file")))
    else:
        assert model.nodes is not None
        loaded = _inline_network(model.nodes, spec.name or "inline", where)
    if isinstance(loaded, Network):
        network = loaded
    else:
        problems += loaded
    if network is not None:
        for var in spec.variables:
            if var not in network:
                problems.append(
                    Problem(
                        where(("variables", var)),
                        f"unknown variable {var!r}; the model has: {', '.join(network.names)}",
                    )
                )
        problems += [
            Problem(
                where(("model", "nodes", var)), f"variable name {var!r} ends like a generated column (__u, __uN, __cf)"
            )
            for var in network.names
            if RESERVED_SUFFIXES.search(var)
        ]
    if network is not None and spec.columns is not None:
        problems += _check_columns(spec.columns, network, where)
    if spec.plugins is not None:  # names only: nothing is imported until a run uses them
        problems += [Problem(here, message) for here, message in unknown_names(spec.plugins, where)]
    schema: TableSchema | None = None
    if network is not None and spec.tables is not None:
        built = build_schema(spec.tables, network, where, read_lock(lock), allow_uncompiled)
        if isinstance(built, TableSchema):
            schema = built
        else:
            problems += built
    retrieval = spec.retrieval
    if retrieval is not None and retrieval.corpus is not None:
        corpus = Path(retrieval.corpus)
        if not corpus.is_absolute():
            corpus = (base_dir or Path.cwd()) / corpus
        spec = spec.model_copy(update={"retrieval": retrieval.model_copy(update={"corpus": str(corpus.resolve())})})
    if problems or network is None:
        raise SpecError(source, problems)
    if spec.name:
        network.name = spec.name
    domain = Domain(spec, network, source, schema=schema, where=where, phrasebook=phrases)
    if _writes_lexicon(spec) or (phrases is not None and phrases.is_file()):
        _ = domain.lexicon  # an authored lexicon is checked now, its problems with file and line
    return domain


def _writes_lexicon(spec: Spec) -> bool:
    """True when the spec authors lexicon entries, whose mistakes loading reports.

    Authored entries are per-variable words, negation maps, numeric or generic blocks, text openings and cues.
    """
    authored = any(m.states or m.negation or m.numeric or m.generic for m in spec.variables.values())
    return authored or bool(spec.text.openings) or spec.text.cues != CueSpec()


def _check_columns(columns: Mapping[str, ColumnSpec], network: Network, where: Any) -> list[Problem]:
    """A ``columns:`` entry names a variable and decodes exactly its states."""
    problems = []
    for var, column in columns.items():
        here = where(("columns", var))
        if var not in network:
            problems.append(Problem(here, f"unknown variable {var!r}; the model has: {', '.join(network.names)}"))
            continue
        if column.states() != set(network.states(var)):
            problems.append(Problem(here, f"the decoded states of {var} differ from its states in the model"))
    return problems


def _check_valid_nodes(data: Mapping[str, Any], where: Any) -> list[Problem]:
    """When some inline nodes are malformed, still check the well-formed ones, so every problem shows at once."""
    model = data.get("model")
    raw = model.get("nodes") if isinstance(model, dict) else None
    if not isinstance(raw, dict):
        return []
    valid: dict[str, NodeSpec] = {}
    for var, node in raw.items():
        try:
            valid[str(var)] = NodeSpec.model_validate(node)
        except ValidationError:
            continue  # already reported by the spec-level validation
    result = _inline_network(valid, "inline", where, declared={str(v) for v in raw})
    return [] if isinstance(result, Network) else result


def _is_union_tag(part: str) -> bool:
    return part.startswith(("list[", "dict[")) or part in {"float", "str"}


def _pydantic_message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check its spelling)"
    if err["type"] == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.where, p.message) not in seen:
            seen.add((p.where, p.message))
            out.append(p)
    return out


# -- inline networks ----------------------------------------------------------------------------------
def _inline_network(
    nodes: Mapping[str, NodeSpec], name: str, where: Any, declared: set[str] | None = None
) -> Network | list[Problem]:
    """Check inline nodes and build the network; ``declared`` also counts nodes that failed validation."""
    declared = set(nodes) if declared is None else declared
    problems: list[Problem] = []
    base: KeyPath = ("model", "nodes")

    usable_states: dict[str, list[str]] = {}
    for var, node in nodes.items():
        here = (*base, var, "states")
        if not node.states:
            problems.append(Problem(where(here), f"{var} has no states"))
            continue
        dupes = sorted({s for s in node.states if node.states.count(s) > 1})
        if dupes:
            problems.append(Problem(where(here), f"{var} has duplicate states: {', '.join(dupes)}"))
            continue
        empty = [i for i, s in enumerate(node.states) if not s.strip()]
        if empty:
            problems.append(Problem(where(here), f"{var} has an empty state name at position {empty[0]}"))
            continue
        usable_states[var] = node.states

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for var, node in nodes.items():
        for i, parent in enumerate(node.parents):
            here = (*base, var, "parents", i)
            if parent not in declared:
                problems.append(Problem(where(here), f"{var} has unknown parent {parent!r}"))
            elif parent == var:
                problems.append(Problem(where(here), f"{var} lists itself as a parent"))
            elif node.parents.count(parent) > 1 and node.parents.index(parent) != i:
                problems.append(Problem(where(here), f"{var} lists parent {parent!r} twice"))
            elif parent in nodes:
                graph.add_edge(parent, var)
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            cycle = [edge[0] for edge in nx.find_cycle(graph.subgraph(component))]
            problems.append(
                Problem(
                    where((*base, cycle[0], "parents")),
                    "cycle: " + " -> ".join([*cycle, cycle[0]]) + " (a causal DAG has no cycles)",
                )
            )

    built: list[Node] = []
    for var, node in nodes.items():
        if var not in usable_states or any(p not in usable_states for p in node.parents if p != var):
            continue
        parents = list(dict.fromkeys(p for p in node.parents if p != var))
        cpt, cpt_problems = _inline_cpt(var, node, parents, usable_states, (*base, var), where)
        problems += cpt_problems
        if cpt is not None:
            built.append(Node(var, tuple(node.states), tuple(parents), cpt))
    if problems:
        return problems
    return Network(built, name=name)


def _inline_cpt(
    var: str,
    node: NodeSpec,
    parents: list[str],
    states: Mapping[str, list[str]],
    path: KeyPath,
    where: Any,
) -> tuple[np.ndarray | None, list[Problem]]:
    problems: list[Problem] = []
    own = states[var]
    if not parents:
        if node.cpt is not None:
            problems.append(Problem(where((*path, "cpt")), f"{var} has no parents: give 'probs', not 'cpt'"))
        if node.probs is None:
            problems.append(Problem(where(path), f"{var} has no parents and needs 'probs' (one per state)"))
            return None, problems
        row, reason = _prob_row(var, own, node.probs)
        if reason:
            problems.append(Problem(where((*path, "probs")), reason))
            return None, problems
        return np.array([row]), problems

    if node.probs is not None:
        problems.append(Problem(where((*path, "probs")), f"{var} has parents: give 'cpt' rows, not 'probs'"))
    configs = list(itertools.product(*(states[p] for p in parents)))
    shape = " x ".join(f"{p}: {len(states[p])} states" for p in parents)
    if node.cpt is None:
        problems.append(
            Problem(
                where(path),
                f"{var} needs 'cpt' with one row per parent configuration ({len(configs)}: {shape})",
            )
        )
        return None, problems
    if len(node.cpt) != len(configs):
        problems.append(
            Problem(
                where((*path, "cpt")),
                f"CPT shape mismatch: {var} has {len(configs)} parent configurations ({shape}) "
                f"but {len(node.cpt)} rows",
            )
        )
    table = np.full((len(configs), len(own)), np.nan)
    index = {cfg: i for i, cfg in enumerate(configs)}
    for r, cpt_row in enumerate(node.cpt):
        here = (*path, "cpt", r)
        bad_keys = sorted(set(cpt_row.when) ^ set(parents))
        if bad_keys:
            problems.append(
                Problem(
                    where((*here, "when")),
                    f"'when' must name exactly the parents of {var} ({', '.join(parents)}); "
                    f"check {', '.join(bad_keys)}",
                )
            )
            continue
        bad_states = [
            f"{p}={s!r} (valid: {', '.join(states[p])})" for p, s in cpt_row.when.items() if s not in states[p]
        ]
        if bad_states:
            problems.append(Problem(where((*here, "when")), "unknown parent state " + "; ".join(bad_states)))
            continue
        cfg = tuple(cpt_row.when[p] for p in parents)
        given = ", ".join(f"{p}={s}" for p, s in zip(parents, cfg, strict=True))
        if not np.isnan(table[index[cfg], 0]):
            problems.append(Problem(where(here), f"duplicate CPT row for {var} given {given}"))
            continue
        values, reason = _prob_row(var, own, cpt_row.probs)
        if reason:
            problems.append(Problem(where((*here, "probs")), f"{reason} (row for {var} given {given})"))
            continue
        table[index[cfg]] = values
    missing = [cfg for cfg in configs if np.isnan(table[index[cfg], 0])]
    if missing and len(node.cpt) == len(configs) and not problems:
        listed = "; ".join(", ".join(f"{p}={s}" for p, s in zip(parents, cfg, strict=True)) for cfg in missing[:5])
        problems.append(Problem(where((*path, "cpt")), f"CPT of {var} has no row for: {listed}"))
    return (None if problems else table), problems


def _prob_row(var: str, states: list[str], probs: list[float] | dict[str, float]) -> tuple[list[float], str | None]:
    if isinstance(probs, dict):
        unknown = [s for s in probs if s not in states]
        missing = [s for s in states if s not in probs]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown state(s) {', '.join(unknown)}")
            if missing:
                parts.append(f"missing state(s) {', '.join(missing)}")
            return [], f"CPT shape mismatch for {var}: {'; '.join(parts)} (states: {', '.join(states)})"
        row = [float(probs[s]) for s in states]
    else:
        if len(probs) != len(states):
            return [], (
                f"CPT shape mismatch for {var}: expected {len(states)} probabilities "
                f"(states {', '.join(states)}), got {len(probs)}"
            )
        row = [float(p) for p in probs]
    reason = cpt_sum_problem(row)
    return row, (f"{var}: {reason}" if reason else None)
