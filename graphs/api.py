"""The public API (``import causalsynth``): generate, sample, counterfactual, verify, load a spec, build the graph.

Every function takes a spec as a path, a short name (a packaged example such as ``clinic``, or a bnlearn network
such as ``asia``) or a loaded spec, validates its parameters up front (naming the offending one), and returns plain
data: DataFrames and dicts. The command line is a thin layer over these functions, with the same defaults.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.builder import build_graph as _build_graph
from causalsynth.graphs.dask_engine import EngineOptions, check_engine
from causalsynth.graphs.retrieval import RetrievalOptions, open_retriever, retrieval_settings
from causalsynth.graphs.runner import check_settings
from causalsynth.graphs.runner import run as _run
from causalsynth.graphs.tracing import TRACES, check_trace
from causalsynth.tools.causal.conformance import verify as _verify
from causalsynth.tools.causal.noise import noise_model, noise_model_names
from causalsynth.tools.causal.sampler import CF_SUFFIX, DEFAULT_MAX_DRAWS, Sampler, noise_from_frame, noise_to_frame
from causalsynth.tools.errors import UsageError
from causalsynth.tools.llm.factory import LLMOptions, make_realiser
from causalsynth.tools.plugins import GraphNode, PluginError
from causalsynth.tools.privacy.columns import decode_frame, states_frame
from causalsynth.tools.quality.guard import PrivacyGuard, check_dp
from causalsynth.tools.sinks.folder import REJECTS
from causalsynth.tools.sinks.run_folder import FAILED
from causalsynth.tools.sinks.table_folder import DATABASE
from causalsynth.tools.spec import Domain, load_domain
from causalsynth.tools.tabular import read_table
from causalsynth.tools.text.realisation import Realiser

SpecRef = str | Path | Domain
LLM = str | BaseChatModel | Realiser


@dataclass
class GenerationResult:
    """What :func:`generate` made: accepted records, rejects with their reasons, the report, and written files.

    ``records`` holds the accepted records (for a spec that declares tables: its root table); ``tables`` every
    table by name (``{"records": records}`` for a spec without tables).
    """

    records: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    report: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    #: Records whose model calls failed for infrastructure reasons (connection, timeout, 5xx): neither accepted
    #: nor rejected (empty when none failed).
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)


def load_spec(spec: SpecRef) -> Domain:
    """A loaded, checked spec (a :class:`Domain`) from a path, a short name or an already loaded spec.

    Raises:
        SpecError: every problem of the spec, each with file, line and key.
    """
    return spec if isinstance(spec, Domain) else load_domain(spec)


def build_graph(spec: SpecRef | None = None, nodes: Sequence[GraphNode] = ()) -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled LangGraph ``StateGraph`` a run of ``spec`` uses (the records graph when ``spec`` is None).

    ``nodes`` adds :class:`GraphNode` s at named points (``after_generation``, ``before_writing``), with their
    routing. Add or replace nodes, compile it, and pass it to :func:`generate` as ``graph=``.
    """
    return _build_graph(load_spec(spec) if spec is not None else None, nodes)


def generate(
    spec: SpecRef,
    n: int,
    *,
    seed: int = 0,
    llm: LLM = "local",
    realize: Literal["anchored", "free"] = "anchored",
    mode: Literal["iterative", "rejection"] = "iterative",
    max_rounds: int = 3,
    retrieval: bool = True,
    out: str | Path | None = None,
    config: RunnableConfig | None = None,
    batch_size: int | None = None,
    llm_options: LLMOptions | None = None,
    retrieval_options: RetrievalOptions | None = None,
    graph: Any = None,
    progress: Callable[[int], None] | None = None,
    say: Callable[[str], None] | None = None,
    trace: Literal["off", "jsonl", "phoenix"] = "off",
    resume: str | Path | None = None,
    engine: Literal["local", "dask"] = "local",
    scheduler: str | None = None,
    shards: int | None = None,
    workers: int = 2,
    privacy_reference: str | Path | None = None,
    privacy_holdout: str | Path | None = None,
    privacy_filter_breaks_dp: bool = False,
) -> GenerationResult:
    """Generate ``n`` records of ``spec`` through the agent graph; the defaults are the CLI's ``run``.

    ``llm`` is ``"local"`` (the embedded model), ``"template"``, ``"PROVIDER:MODEL"``, any LangChain chat model
    object, or a realiser object. ``config`` is a LangChain ``RunnableConfig`` passed to the graph unchanged
    (callbacks, tags, metadata, run_name), so a tracer sees the run. ``out`` also writes the run folder.
    ``trace="jsonl"`` writes the run's spans to ``traces.jsonl`` there; ``LANGSMITH_TRACING=true`` (with
    ``LANGSMITH_ENDPOINT``, ``LANGSMITH_API_KEY``) sends them to LangSmith. A run with ``out`` checkpoints there
    after every batch; ``resume=DIR`` continues an interrupted run in ``DIR`` (same spec and settings) and returns
    what the uninterrupted run would have, and retries the records that failed for infrastructure reasons (also
    in a finished run). ``graph`` replaces the run's graph; with ``out`` it must keep the batch frame
    (``causalsynth.graphs.durable.durable_builder`` says what that takes).

    ``engine="dask"`` cuts the record ids into ``shards`` and runs them on a Dask cluster: the scheduler at
    ``scheduler`` (``tcp://HOST:PORT``), else a LocalCluster of ``workers`` processes on 127.0.0.1. The records are
    those of the single-process run with the same seed; ``records.parquet`` and the others are then Parquet
    datasets, one file per shard (see ``causalsynth.graphs.dask_engine``).

    ``privacy_reference`` (a CSV or Parquet of the real training rows) turns on the privacy guard: accepted records
    closer to a training row than the holdout rows (``privacy_holdout``, else a held-out fifth of the reference)
    are resampled, with counts in the report (``tools.quality.guard``). A DP-fitted spec refuses it unless
    ``privacy_filter_breaks_dp``, and the report then says the DP guarantee no longer holds.

    Raises:
        UsageError: a bad parameter, named.
        SpecError: a bad spec.
        DataError: the output folder cannot be written.
    """
    if resume is not None:
        if out is not None and Path(out) != Path(resume):
            raise UsageError(f"resume={resume} continues the run in that folder; out={out} names another")
        out = resume
    domain = load_spec(spec)
    where_run = EngineOptions(engine=engine, scheduler=scheduler, workers=workers, shards=shards)
    check_engine(where_run)
    llm_name, realiser_of = _llm(llm, domain, seed, realize, llm_options)
    batch = batch_size if batch_size is not None else (1000 if llm_name == "template" else 32)
    settings = RunSettings(
        n=n, mode=mode, max_rounds=max_rounds, batch_size=batch, seed=seed, llm=llm_name,
        realize="template" if llm_name == "template" else realize,
    )  # fmt: skip
    check_settings(settings)  # before a model is loaded
    check_trace(trace, Path(out) if out is not None else None)
    options = retrieval_options or RetrievalOptions()
    options = RetrievalOptions(**{**options.__dict__, "enabled": retrieval and options.enabled})
    retrieves = retrieval_settings(domain, options) is not None  # values checked before anything is loaded
    guard, dp_void = _privacy_guard(domain, privacy_reference, privacy_holdout, privacy_filter_breaks_dp, seed)
    if engine == "dask":
        return _generate_sharded(domain, llm, settings, out, where_run, llm_options, progress,
                                 retrieves=retrieves and llm_name != "template", graph=graph, trace=trace,
                                 resume=resume is not None, config=config, guard=guard, dp_void=dp_void,
                                 retrieval_options=options, say=say)  # fmt: skip
    realiser = realiser_of()
    retriever = open_retriever(domain, options, uses_model=llm_name != "template", seed=seed, say=say)
    written = out is not None  # else a temporary folder, read back into memory
    with nullcontext(str(out)) if written else tempfile.TemporaryDirectory(prefix="causalsynth-") as where:
        folder = Path(where)
        report = _run(domain, realiser, settings, folder, progress=progress, retriever=retriever, config=config,
                      graph=graph, trace=trace, durable=written, resume=resume is not None, guard=guard,
                      dp_void=dp_void)  # fmt: skip
        return _result(domain, folder, report, written=written)


def _privacy_guard(
    domain: Domain, reference: str | Path | None, holdout: str | Path | None, breaks_dp: bool, seed: int
) -> tuple[PrivacyGuard | None, bool]:
    """The run's privacy guard (None without a reference), and whether it voids the spec's DP guarantee."""
    if reference is None:
        if holdout is not None:
            raise UsageError("--privacy-holdout needs --privacy-reference")
        return None, False
    dp_void = check_dp(domain, breaks_dp)  # before the real rows are read
    guard = PrivacyGuard.from_files(domain, Path(reference), Path(holdout) if holdout is not None else None, seed=seed)
    return guard, dp_void


def _generate_sharded(
    domain: Domain,
    llm: LLM,
    settings: RunSettings,
    out: str | Path | None,
    where_run: EngineOptions,
    llm_options: LLMOptions | None,
    progress: Callable[[int], None] | None,
    **unsupported: Any,
) -> GenerationResult:
    """:func:`generate` with ``engine="dask"``: shards on a cluster, read back like a local run."""
    from causalsynth.graphs.dask_engine import check_shardable, run_sharded
    from causalsynth.graphs.dask_tables import run_tables_sharded

    check_shardable(domain, llm, retrieval=unsupported["retrieves"], graph=unsupported["graph"],
                    trace=unsupported["trace"], resume=unsupported["resume"], config=unsupported["config"])  # fmt: skip
    assert isinstance(llm, str)
    opts = llm_options or LLMOptions()
    if settings.realize != "template" and settings.realize != opts.realize:
        opts = LLMOptions(**{**opts.__dict__, "realize": settings.realize})
    retriever = None  # the corpus is synced here, once; the workers only read the store
    if unsupported["retrieves"]:
        retriever = open_retriever(domain, unsupported["retrieval_options"], uses_model=True, seed=settings.seed,
                                   say=unsupported["say"])  # fmt: skip
    written = out is not None
    with nullcontext(str(out)) if written else tempfile.TemporaryDirectory(prefix="causalsynth-") as where:
        folder = Path(where)
        run = run_tables_sharded if domain.schema is not None else run_sharded  # relational: whole records
        report = run(domain, llm, opts, settings, folder, where_run, progress=progress, guard=unsupported["guard"],
                     dp_void=unsupported["dp_void"], resume=unsupported["resume"], trace=unsupported["trace"],
                     retriever=retriever).report  # fmt: skip
        return _result(domain, folder, report, written=written)


def _llm(
    llm: LLM, domain: Domain, seed: int, realize: str, options: LLMOptions | None
) -> tuple[str, Callable[[], Realiser]]:
    """The report's name for ``llm`` and a factory for its realiser (called once settings are checked)."""
    opts = options or LLMOptions()
    if realize != opts.realize:
        opts = LLMOptions(**{**opts.__dict__, "realize": realize})
    if isinstance(llm, str):
        return llm, lambda: make_realiser(llm, domain.lexicon, seed=seed, options=opts)
    if isinstance(llm, BaseChatModel):
        from causalsynth.tools.llm.chat_realiser import ChatRealiser
        from causalsynth.tools.llm.local_chat import LocalChatModel

        name = f"{type(llm).__name__}"
        if isinstance(llm, LocalChatModel):  # our llama.cpp model takes a grammar per request
            local = llm
            return name, lambda: ChatRealiser(
                local, domain.lexicon, realize=opts.realize, anchoring="grammar", seed=seed, seeded_calls=True,
                concurrency=local.contexts, timeout=None, retries=opts.retries, name=name,
            )  # fmt: skip
        chat = llm
        return name, lambda: ChatRealiser(
            chat, domain.lexicon, realize=opts.realize, anchoring="prompt", seed=seed,
            concurrency=opts.concurrency, timeout=opts.timeout, retries=opts.retries, name=name,
        )  # fmt: skip
    if callable(getattr(llm, "realise", None)):
        return type(llm).__name__, lambda: llm
    raise UsageError(
        f"llm must be 'local', 'template', 'PROVIDER:MODEL', a LangChain chat model or a realiser, got {llm!r}"
    )


def _result(domain: Domain, folder: Path, report: dict[str, Any], written: bool) -> GenerationResult:
    """Read a finished run folder back into DataFrames (the folder may be a temporary one)."""
    paths: dict[str, Path] = {}
    if domain.schema is not None:
        tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in domain.schema.tables}
        records = tables[domain.schema.root]
        if written:
            paths = {t: folder / f"{t}.parquet" for t in domain.schema.tables} | {"database": folder / DATABASE}
    else:
        records = pd.read_parquet(folder / "records.parquet")
        tables = {"records": records}
        if written:
            paths = {"records": folder / "records.parquet"}
    rejects = pd.read_parquet(folder / REJECTS)  # both topologies: one row per rejected record (or violation)
    failed_path = folder / FAILED
    failed = pd.read_parquet(failed_path) if failed_path.exists() else pd.DataFrame()  # a dataset with --engine dask
    if written:
        paths |= {"rejects": folder / REJECTS, "report": folder / "report.json", "events": folder / "run.jsonl"}
        paths |= {"failed": failed_path} if failed_path.exists() else {}
        paths |= {"traces": folder / TRACES} if (folder / TRACES).is_file() else {}
    return GenerationResult(records=records, tables=tables, rejects=rejects, report=report, paths=paths, failed=failed)


def sample(
    spec: SpecRef,
    n: int,
    *,
    seed: int = 0,
    do: Mapping[str, str] | None = None,
    evidence: Mapping[str, str] | None = None,
    with_noise: bool = False,
    noise_model: str = "inverse_cdf",
    max_draws: int = DEFAULT_MAX_DRAWS,
    progress: Callable[[int], None] | None = None,
    decode: bool = True,
    engine: Literal["local", "dask"] = "local",
    scheduler: str | None = None,
    shards: int | None = None,
    workers: int = 2,
) -> pd.DataFrame:
    """``n`` records sampled from the causal model, under ``do`` and given ``evidence`` if set.

    ``with_noise`` adds each record's exogenous noise as ``VAR__u`` columns (for counterfactuals later).
    For a fitted spec (one with ``columns:``), ``decode`` turns states into typed values drawn inside their bins.
    ``engine="dask"`` samples in ``shards`` on a Dask cluster (``scheduler``, else a LocalCluster of ``workers``
    processes on 127.0.0.1); the table equals the single-process one with the same seed.

    Raises:
        UsageError: a bad ``n``, state, variable or noise model; evidence or another noise model with dask.
    """
    domain = load_spec(spec)
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    where_run = EngineOptions(engine=engine, scheduler=scheduler, workers=workers, shards=shards)
    check_engine(where_run)
    if engine == "dask":
        from causalsynth.graphs.dask_engine import sample_sharded

        if evidence:
            raise UsageError("--engine dask: --evidence is sampled by rejection (sequential); use --engine local")
        if noise_model != "inverse_cdf":
            raise UsageError(f"--engine dask: needs --noise-model inverse_cdf (got {noise_model!r})")
        domain.network.resolve_assignment(dict(do or {}), "do")  # a bad --do fails here, not on a worker
        return sample_sharded(domain, n, seed=seed, do=dict(do or {}), with_noise=with_noise, decode=decode,
                              engine=where_run, progress=progress)  # fmt: skip
    result = Sampler(domain.network, _noise_model(noise_model)).sample(
        n, seed=seed, do=dict(do or {}), evidence=dict(evidence or {}), with_noise=with_noise, max_draws=max_draws,
        progress=progress,
    )  # fmt: skip
    data = result.data
    if decode and domain.spec.columns:  # a fitted spec: states back to typed values
        data = decode_frame(data, domain.spec.columns, seed)
    if result.noise is not None:
        return pd.concat([data, noise_to_frame(result.noise, result.data.index)], axis=1)
    return data


def as_states(data: pd.DataFrame, domain: Domain) -> pd.DataFrame:
    """A decoded table of a fitted spec back to states (other tables unchanged), so it can be verified."""
    return states_frame(data, domain.spec.columns) if domain.spec.columns else data


def counterfactual(
    spec: SpecRef,
    do: Mapping[str, str],
    n: int = 1000,
    *,
    seed: int = 0,
    evidence: Mapping[str, str] | None = None,
    factual: pd.DataFrame | None = None,
    factual_source: str = "factual",
    noise_model: str = "inverse_cdf",
    max_draws: int = DEFAULT_MAX_DRAWS,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Factual records and their twins under ``do`` with the same noise: ``VAR`` and ``VAR__cf`` columns.

    ``factual`` uses your records instead of sampling: their ``VAR__u`` columns if present, else noise drawn from
    its posterior given each record (abduction, seeded).

    Raises:
        UsageError: no intervention, evidence with ``factual``, or a bad state or variable.
        DataError: a factual record that is not a state of the model.
    """
    if not do:
        raise UsageError("counterfactual needs at least one intervention: do={VAR: STATE}")
    domain = load_spec(spec)
    model = _noise_model(noise_model)
    sampler = Sampler(domain.network, model)
    if factual is None:
        result = sampler.sample(
            n, seed=seed, evidence=dict(evidence or {}), with_noise=True, max_draws=max_draws, progress=progress
        )
        data, noise = result.data, result.noise
        assert noise is not None
    else:
        if evidence:
            raise UsageError("evidence applies to sampled factuals; filter the factual records instead")
        data = factual
        noise = noise_from_frame(data, domain.network, model, factual_source) or sampler.abduct(data, seed=seed)
    twins = sampler.counterfactual(data, noise, dict(do))
    names = list(domain.network.names)
    return pd.concat([data[names].reset_index(drop=True), twins.reset_index(drop=True).add_suffix(CF_SUFFIX)], axis=1)


def verify(
    data: pd.DataFrame | str | Path,
    spec: SpecRef,
    *,
    alpha: float = 0.05,
    do: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Test a table against the spec's DAG: implied CIs (FPR), adjacencies (power), marginals; a JSON-ready dict.

    Raises:
        UsageError: ``alpha`` outside (0, 1) or a bad ``do``.
        DataError: a missing column or a value that is not a state.
    """
    domain = load_spec(spec)
    source = str(data) if isinstance(data, str | Path) else "data"
    table = as_states(read_table(Path(data)) if isinstance(data, str | Path) else data, domain)
    return _verify(domain.network, table, alpha=alpha, do=dict(do or {}), source=source).to_dict()


def _noise_model(name: str) -> Any:
    """A built-in noise model, or one a plugin registered (by name only)."""
    try:
        return noise_model(name)
    except PluginError as exc:
        raise UsageError(f"noise model {name!r}: choose one of {', '.join(noise_model_names())} ({exc})") from None
