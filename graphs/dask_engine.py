"""Runs sharded over a Dask cluster (``--engine dask``): the same records as the single-process run, for any split.

The requested record ids ``0 .. n`` are cut into contiguous shards. Each shard runs the ordinary run graph on a
Dask worker, with a skeleton source that starts at the shard's first id (the sampler's streams skip ahead exactly,
``Sampler.sample(start=)``) and a realiser whose every choice depends on ``(seed, record id, attempt)`` only, so a
record comes out the same whichever shard, worker or host makes it, and however many there are.

- **Cluster**: ``scheduler=None`` starts a ``LocalCluster`` of worker processes bound to 127.0.0.1 (no dashboard);
  an address (``tcp://HOST:PORT``) joins an existing ``dask scheduler`` with its ``dask worker`` processes.
- **Models per worker**: a worker process builds the realiser (for ``--llm local``: loads the GGUF) at its first
  shard and keeps it for the next shards of the same run settings (:data:`_CACHE`). API models share one
  concurrency limit across the cluster: every call holds a lease of one ``distributed.Semaphore``.
- **Output**: a shard writes its batches in a private folder under ``DIR/.shards`` (a ``RunSink``), then moves its
  files to fixed names under ``DIR/.shards/published`` and writes its completion marker (``done-00003``). When
  every shard is done, the datasets move into the run folder, one file per shard:
  ``records.parquet/shard-00003.parquet``, likewise ``rejects.parquet`` and ``failed.parquet``. The report is
  computed once over every shard's ledger of codes (CI tests and selection bias over the whole output), and
  ``run.jsonl`` holds every shard's events. Relational specs: ``graphs.dask_tables``.
- **Faults**: a worker that dies mid-shard is replaced (the nanny restarts it) and the scheduler runs the shard
  again; the dead attempt's private folder is discarded and a shard's files have fixed names, so nothing is lost
  and nothing is written twice. A client that dies loses only the unfinished shards: ``resume=True`` reads the
  run's plan and markers and runs the others.
- **Privacy guard**: built once on the client (its threshold from the holdout) and shipped to every shard.

- **Plugin metrics**: each shard hands back the accepted rows it kept for them; the client computes every metric
  once over all of them.

- **Traces**: ``--trace jsonl`` writes each shard's spans; ``traces.jsonl`` holds them all, shard by shard.

- **Retrieval**: the client syncs the corpus into the local Chroma store once; each worker opens the store only
  to read (once per process, with the embedding model) and passages are chosen per record id, so the records are
  the single-process run's; the retrieval summary sums every shard's counters and leakage findings.

Not sharded yet (refused with a message): a custom graph, ``--trace phoenix``, ``config=``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
import shutil
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from causalsynth.agents.assessor import FAILED_IDS, run_report
from causalsynth.agents.context import RunContext, RunSettings, SkeletonSource
from causalsynth.agents.run_plugins import RunPlugins, run_plugins
from causalsynth.graphs.builder import build_graph, compile_graph, extra_nodes, recursion_limit
from causalsynth.graphs.runner import run_metadata
from causalsynth.graphs.tracing import TRACES, RunTracing
from causalsynth.tools.errors import CausalSynthError, DataError, UsageError
from causalsynth.tools.llm.factory import LLMOptions, make_realiser
from causalsynth.tools.quality.guard import MAX_RESAMPLES, PrivacyGuard
from causalsynth.tools.retrieval.retriever import RetrievalSettings, Retriever
from causalsynth.tools.retrieval.store import CorpusStore
from causalsynth.tools.sinks.folder import EVENTS, REJECTS, REPORT
from causalsynth.tools.sinks.run_folder import FAILED, PARTS, RECORDS, RunSink
from causalsynth.tools.spec import Domain
from causalsynth.tools.tabular import write_text
from causalsynth.tools.text.realisation import Realisation, RealisationRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from distributed import Client, LocalCluster
    from langchain_core.language_models import BaseChatModel

ENGINES = ("local", "dask")
#: Where shards write while they run (one private folder per attempt); removed when the run ends. It also holds
#: the run's plan, a completion marker per finished shard (``done-00003``) and the finished shards' files
#: (``published/``) until the run ends, so that ``--resume`` re-runs only the shards that did not finish.
SHARDS = ".shards"
PLAN = "plan.json"
STAGE = "published"
#: The ledger kinds a shard hands back for the run's report.
LEDGER_KINDS = ("skeleton", "accepted", "extracted", FAILED_IDS)
DATASETS = (RECORDS, REJECTS, FAILED)
MAX_SHARDS = 100_000


@dataclass(frozen=True)
class EngineOptions:
    """Where a run executes: ``local`` (this process) or ``dask`` (shards on a cluster).

    ``scheduler``: address of a running Dask scheduler; None starts a LocalCluster of ``workers`` processes on
    127.0.0.1. ``shards``: how many pieces the record ids are cut into (default: about four per worker, more for
    large runs). A worker's llama.cpp threads are ``LLMOptions.threads`` (``--threads``), as in a local run.
    """

    engine: str = "local"
    scheduler: str | None = None
    workers: int = 2
    shards: int | None = None


def check_engine(options: EngineOptions) -> None:
    """Reject engine options no run can honour, naming the flag.

    Raises:
        UsageError: an unknown engine, a bad worker or shard count, or dask options given to the local engine.
    """
    if options.engine not in ENGINES:
        raise UsageError(f"--engine must be 'local' or 'dask', got {options.engine!r}")
    if options.engine == "local" and (options.scheduler is not None or options.shards is not None):
        raise UsageError("--scheduler and --shards apply to --engine dask")
    if not 1 <= options.workers <= 256:
        raise UsageError(f"--workers must be between 1 and 256, got {options.workers}")
    if options.shards is not None and not 1 <= options.shards <= MAX_SHARDS:
        raise UsageError(f"--shards must be between 1 and {MAX_SHARDS:,}, got {options.shards}")
    if options.scheduler is not None and not _address_ok(options.scheduler):
        raise UsageError(f"--scheduler {options.scheduler!r}: expected an address such as tcp://127.0.0.1:8786")


def _address_ok(address: str) -> bool:
    scheme, sep, rest = address.partition("://")
    if not sep:
        rest, scheme = address, "tcp"
    host, _, port = rest.rpartition(":")
    return scheme in ("tcp", "tls", "inproc", "ucx") and bool(host) and port.isdigit()


def plan_shards(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous ``[first, stop)`` ranges covering ``0 .. n``, as equal as possible, none empty."""
    k = max(1, min(shards, n))
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_batch_shards(n: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous ``[first, stop)`` ranges of whole batches covering ``0 .. n`` (never more shards than batches).

    A shard's batches are then the single-process run's batches. Relational runs need this (a repair redraws a
    batch's rows together); model runs gain by it: a batch's records are decoded together (batched decoding
    shares the prompt prefix), and measured here a local-model record cost 0.72 CPU s in batches of 3 against
    0.50 in batches of 8 (one llama.cpp thread), so a shard smaller than a batch costs CPU time.
    """
    batches = -(-n // batch_size)
    return [(a * batch_size, min(b * batch_size, n)) for a, b in plan_shards(batches, shards)]


def default_shards(n: int, workers: int) -> int:
    """About four shards per worker (balance, and a lost shard costs little), and no shard over 250k records."""
    return max(1, min(n, max(4 * workers, math.ceil(n / 250_000))))


#: Dask's own sampling in every process, which nothing here reads (no dashboard): the workers' statistical profiler
#: (a stack sample every 10 ms), event-loop ticks (20 ms) and the system monitor (500 ms). Measured on an idle
#: 2-worker LocalCluster: 2.35 CPU s per 20 s with Dask's defaults (12% of a core), 0.64 with these. For ``dask
#: worker`` processes started by hand: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` and the like.
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


def local_cluster(workers: int) -> LocalCluster:
    """A LocalCluster of ``workers`` single-threaded worker processes, every socket on 127.0.0.1.

    No dashboard; the scheduler's own HTTP endpoints (health, metrics) take a free loopback port rather than 8787.
    Dask's profiling and monitoring intervals are relaxed (:data:`QUIET`): its workers inherit the setting.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(QUIET):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=logging.ERROR,
        )  # fmt: skip


@contextmanager
def open_client(options: EngineOptions) -> Iterator[Client]:
    """A Dask client: to ``options.scheduler``, or to a LocalCluster started (and always stopped) here.

    Raises:
        UsageError: the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of the package
        raise UsageError("--engine dask needs the 'distributed' package: pip install 'dask[distributed]'") from None
    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout=20)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler {options.scheduler}: cannot connect: {exc}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise UsageError(f"--scheduler {options.scheduler}: no worker joined within 60 s") from None
            yield client
        finally:
            client.close()
        return
    cluster = local_cluster(options.workers)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


# -- on the workers ----------------------------------------------------------------------------------------------

#: Per worker process: realisers (and the models inside them) and compiled graphs, kept across shards; only the
#: most recent few, so that a long-lived worker serving runs with other settings does not hold every model.
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
#: How many realisers this worker process has built, by ``LLM:KEY`` (the model is loaded once per worker).
BUILT: Counter[str] = Counter()


@dataclass(frozen=True)
class ShardJob:
    """What one shard needs; pickled to the worker."""

    index: int
    first: int
    stop: int
    domain: Domain
    settings: RunSettings
    llm: str
    options: LLMOptions
    out_dir: str
    model_key: str
    gate: tuple[str, int] | None = None  # (semaphore name, leases) for an API model
    #: ``--privacy-reference``: the guard, its threshold computed once on the client (every shard uses the same).
    guard: PrivacyGuard | None = None
    dp_void: bool = False
    trace: str = "off"  # "jsonl": the shard writes its spans (``traces-00003.jsonl``, merged at the end)
    #: Reference passages: the store's settings (the corpus already synced by the client: workers only read).
    retrieval: RetrievalSettings | None = None


@dataclass
class ShardResult:
    """What a shard hands back: its counters, its ledger of codes, and where it ran."""

    index: int
    first: int
    stop: int
    totals: dict[str, float]
    ledger: dict[str, dict[str, np.ndarray]]
    realiser: str
    pid: int
    built: bool  # this shard built the worker's realiser (False: reused one)
    seconds: float
    metric_rows: list[dict[str, Any]] = field(default_factory=list)  # accepted rows for the spec's plugin metrics
    retrieval: dict[str, Any] | None = None  # the shard's retrieval counters and leakage findings


def _cached(key: str, make: Callable[[], Any]) -> tuple[Any, bool]:
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key], False
        value = _CACHE[key] = make()
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return value, True


_MALLOC_TUNED = False


def _tune_malloc() -> None:
    """Undo, in this worker process, what Dask's nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` costs llama.cpp.

    The variable (set for every worker a nanny spawns) also turns off glibc's dynamic mmap threshold, so every
    allocation over 128 KiB becomes an mmap/munmap pair: measured here, a local-model run of 12 ASIA records took
    4 s of system time and 1.5x the wall time. Raising the mmap and trim thresholds again (``mallopt``) restores
    the speed of a process without the variable. Only on glibc, and only when the variable is set.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: 32 MiB
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: 64 MiB
    except (OSError, AttributeError):  # not glibc: nothing to undo
        pass


def _build_realiser(job: ShardJob) -> Any:
    realiser = make_realiser(job.llm, job.domain.lexicon, seed=job.settings.seed, options=job.options)
    BUILT[f"{job.llm}:{job.model_key}"] += 1
    if job.gate is not None and hasattr(realiser, "model"):
        gate_model(realiser.model, *job.gate)
    return realiser


def run_shard(job: ShardJob) -> ShardResult:
    """Run records ``job.first .. job.stop`` through the run graph on this worker; publish the shard's files."""
    started = time.perf_counter()
    _tune_malloc()
    realiser, built = _cached(job.model_key, lambda: _build_realiser(job))
    graph, _ = _cached(f"graph:{job.model_key}", lambda: compile_graph(build_graph(job.domain)))
    out = Path(job.out_dir)
    folder = out / SHARDS / f"{job.index:05d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    s = job.settings
    sink = RunSink(folder, job.domain.network.names)
    retriever = shard_retriever(job)
    ctx = RunContext(
        domain=job.domain, realiser=realiser, settings=s, sink=sink, shard=job.index, retriever=retriever,
        skeletons=SkeletonSource(job.domain, job.stop - job.first, s.seed, first=job.first), guard=job.guard,
        dp_void=job.dp_void,
    )  # fmt: skip
    limit = recursion_limit(job.stop - job.first, s.batch_size, s.max_rounds,
                            MAX_RESAMPLES if job.guard is not None else 0, extra_nodes(graph))  # fmt: skip
    start = {"n_requested": job.stop, "next_id": job.first, "totals": {}, "report": None}
    try:
        final = invoke_traced(graph, start, ctx, limit, job.trace, folder, job.index)
    except BaseException as exc:
        sink.abort(f"{type(exc).__name__}: {exc}")
        raise
    sink.close()
    _publish_shard(folder, out, job.index)
    result = ShardResult(
        index=job.index, first=job.first, stop=job.stop, totals=dict(final.get("totals") or {}),
        ledger={kind: ctx.ledger.codes(kind) for kind in LEDGER_KINDS}, realiser=realiser.name, pid=os.getpid(),
        built=built, seconds=time.perf_counter() - started, metric_rows=metric_rows(ctx),
        retrieval=retrieval_counts(retriever),
    )  # fmt: skip
    mark_done(out, result)
    return result


def shard_retriever(job: Any) -> Retriever | None:
    """This shard's retriever over the store the client synced, with the shard's own counters.

    Opened once per worker process (the embedding model and the Chroma client are kept, as the local model is).
    """
    if job.retrieval is None:
        return None
    settings = job.retrieval

    def make() -> Retriever:
        return Retriever(settings, job.domain.lexicon, CorpusStore(settings.chroma_path), seed=job.settings.seed)

    base, _ = _cached(f"retriever:{job.model_key}:{settings!r}", make)
    retriever = copy.copy(base)  # caches shared (embeddings, registers, the copy index), counters this shard's
    retriever.start_run()
    return retriever


def retrieval_counts(retriever: Retriever | None) -> dict[str, Any] | None:
    """What a shard's retriever counted (for the run's retrieval summary)."""
    if retriever is None:
        return None
    return {"seconds": retriever.seconds, "queries": retriever.queries, "checked": retriever.checked,
            "copies": list(retriever.copies)}  # fmt: skip


def merged_retriever(retriever: Retriever | None, results: Sequence[Any]) -> Retriever | None:
    """The client's retriever with every shard's counters summed: its ``summary()`` covers the whole run."""
    if retriever is None:
        return None
    retriever.start_run()
    for r in sorted(results, key=lambda r: r.index):
        counts = r.retrieval or {}
        retriever.seconds += float(counts.get("seconds", 0.0))
        retriever.queries += int(counts.get("queries", 0))
        retriever.checked += int(counts.get("checked", 0))
        retriever.copies += list(counts.get("copies", []))
    return retriever


def invoke_traced(graph: Any, start: dict[str, Any], ctx: Any, limit: int, trace: str, folder: Path, shard: int) -> Any:
    """Invoke a shard's graph; with ``trace="jsonl"`` its spans go to ``folder/traces.jsonl`` (root span per shard)."""
    tracing = RunTracing("jsonl" if trace == "jsonl" else None, folder)
    config = dict(tracing.config(None, ctx.domain.name, run_metadata(ctx) | {"shard": shard}))
    config["recursion_limit"] = limit
    try:
        return graph.invoke(start, context=ctx, config=config)
    finally:
        tracing.close()


def publish_traces(folder: Path, out: Path, index: int) -> None:
    """Move a finished shard's spans next to its events (``.shards/traces-00003.jsonl``)."""
    spans = folder / TRACES
    if spans.is_file():
        os.replace(spans, out / SHARDS / f"traces-{index:05d}.jsonl")


def merge_traces(out: Path, shards: int) -> None:
    """``traces.jsonl`` of the run: every shard's spans, shard by shard (each shard's root span is a root)."""
    parts = [out / SHARDS / f"traces-{i:05d}.jsonl" for i in range(shards)]
    if not any(p.is_file() for p in parts):
        return
    with (out / TRACES).open("w", encoding="utf-8") as merged:
        for part in parts:
            if part.is_file():
                with part.open(encoding="utf-8") as f:
                    shutil.copyfileobj(f, merged)


def worker_retrieval(retriever: Retriever | None) -> RetrievalSettings | None:
    """The retrieval settings shipped to workers: the client has synced the corpus, so workers only read."""
    return None if retriever is None else dataclasses.replace(retriever.settings, corpus=None)


def metric_rows(ctx: Any) -> list[dict[str, Any]]:
    """The accepted rows a shard kept for the spec's plugin metrics (none if it names no metric)."""
    plugins = run_plugins(ctx)
    return list(plugins.rows) if plugins is not None and plugins.metrics else []


def merged_metrics(domain: Domain, results: Sequence[Any], order: str | None = None) -> dict[str, Any]:
    """The spec's plugin metrics over every shard's accepted rows at once (not averaged per shard).

    ``order``: sort the rows by this column first (record runs: shards cut batches elsewhere than the local run,
    so rows are put in record id order; relational shards are whole batches and keep the local order).
    """
    plugins = domain.plugins
    if plugins is None or not plugins.metrics:
        return {}
    rows = [row for r in sorted(results, key=lambda r: r.index) for row in r.metric_rows]
    if order is not None:
        rows.sort(key=lambda row: row[order])
    values, failed = RunPlugins(metrics=dict(plugins.metrics), rows=rows).metric_values()
    return {"metrics": values, "metrics_records": len(rows)} | ({"metrics_failed": failed} if failed else {})


def shard_file(out: Path, dataset: str, index: int) -> Path:
    """Where shard ``index`` publishes its file of a dataset, until the run ends and moves the datasets into place.

    ``.shards/published/records.parquet/shard-00003.parquet``, then ``records.parquet/shard-00003.parquet``.
    """
    return out / SHARDS / STAGE / dataset / f"shard-{index:05d}.parquet"


def _publish_shard(folder: Path, out: Path, index: int) -> None:
    """Move a finished shard's files to their fixed names (a re-run replaces, never adds)."""
    for dataset in DATASETS:
        src = folder / dataset
        if src.is_file():
            dest = shard_file(out, dataset, index)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
    events = folder / EVENTS
    if events.is_file():
        os.replace(events, out / SHARDS / f"events-{index:05d}.jsonl")
    publish_traces(folder, out, index)
    shutil.rmtree(folder, ignore_errors=True)


# -- finished shards on disk: --resume re-runs only the others ----------------------------------------------------


def _done_path(out: Path, index: int) -> Path:
    return out / SHARDS / f"done-{index:05d}"


def mark_done(out: Path, result: Any) -> None:
    """Record that shard ``result.index`` finished (its files are published): a folder that appears whole.

    ``result.json`` holds the counters, ``ledger.npz`` the ledger of codes (no pickle: a run folder is data),
    ``lookup-TABLE.parquet`` a relational run's lookup tables. Written aside, then renamed into place.
    """
    fields = dict(vars(result))
    ledger: dict[str, dict[str, np.ndarray]] = fields.pop("ledger", None) or {}
    lookups: dict[str, pd.DataFrame] = fields.pop("lookups", None) or {}
    final = _done_path(out, result.index)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    (tmp / "result.json").write_text(json.dumps(fields, default=_plain), encoding="utf-8")
    arrays = {f"{kind}::{var}": codes for kind, cols in ledger.items() for var, codes in cols.items()}
    np.savez(tmp / "ledger.npz", **arrays)  # type: ignore[arg-type]  # the stubs read a key as allow_pickle
    for table, frame in lookups.items():
        frame.to_parquet(tmp / f"lookup-{table}.parquet", index=False)
    try:
        os.replace(tmp, final)
    except OSError:  # another attempt of the same shard got there first (its files are the same)
        shutil.rmtree(tmp, ignore_errors=True)


def load_done(out: Path, index: int, cls: type[Any]) -> Any | None:
    """Shard ``index``'s result from its completion marker, or None if the shard did not finish."""
    folder = _done_path(out, index)
    try:
        fields = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        with np.load(folder / "ledger.npz", allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except (OSError, ValueError):
        return None
    if "ledger" in cls.__dataclass_fields__:
        ledger: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in LEDGER_KINDS}
        for key, codes in arrays.items():
            kind, _, var = key.partition("::")
            ledger.setdefault(kind, {})[var] = codes
        fields["ledger"] = ledger
    if "lookups" in cls.__dataclass_fields__:
        fields["lookups"] = {p.name[len("lookup-") : -len(".parquet")]: pd.read_parquet(p)
                             for p in folder.glob("lookup-*.parquet")}  # fmt: skip
    return cls(**fields)


def plan_record(domain: Domain, llm: str, options: LLMOptions, settings: RunSettings, **extra: Any) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one (the spec, the model and its options, settings)."""
    return {"spec": domain.source, "domain": domain.name, "llm": llm, "options": repr(options),
            "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__}} | extra  # fmt: skip


def write_plan(out: Path, record: Mapping[str, Any], ranges: Sequence[tuple[int, int]]) -> None:
    """Write the run's plan (what it is, and its shards) before any shard runs."""
    write_text(json.dumps({"run": record, "shards": [list(r) for r in ranges]}, default=_plain) + "\n",
               out / SHARDS / PLAN)  # fmt: skip


def resume_plan(
    out: Path, record: Mapping[str, Any], shards: int | None, cls: type[Any]
) -> tuple[list[tuple[int, int]], dict[int, Any]]:
    """The interrupted run's shards and the results of those that finished.

    Raises:
        UsageError: ``out`` holds no interrupted sharded run, or one with other settings or another shard count.
    """
    try:
        plan = json.loads((out / SHARDS / PLAN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"--resume {out}: no interrupted --engine dask run there ({SHARDS}/{PLAN} is missing; "
                         "a run that finished has nothing to resume)") from None  # fmt: skip
    old = plan["run"]
    new = json.loads(json.dumps(dict(record), default=_plain))
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise UsageError(f"--resume {out}: the interrupted run had {key}={old.get(key)!r}, this one "
                             f"{new.get(key)!r}; resume with the same spec and settings")  # fmt: skip
    ranges = [(int(a), int(b)) for a, b in plan["shards"]]
    if shards is not None and shards != len(ranges):
        raise UsageError(f"--resume {out}: the interrupted run has {len(ranges)} shards, not --shards {shards}")
    done = {}
    for i, (a, b) in enumerate(ranges):
        result = load_done(out, i, cls)
        if result is not None and (result.first, result.stop) == (a, b):
            done[i] = result
    return ranges, done


def move_datasets(out: Path, names: Sequence[str], required: Sequence[str] = ()) -> None:
    """Move the finished shards' datasets into the run folder; a ``required`` one no shard wrote: an empty folder."""
    for name in names:
        src = out / SHARDS / STAGE / name
        if src.is_dir():
            os.replace(src, out / name)
        elif name in required:
            (out / name).mkdir(exist_ok=True)


# -- API models: one concurrency limit across the cluster ------------------------------------------------------


def gate_model(model: BaseChatModel, name: str, leases: int) -> None:
    """Make every call of ``model`` hold a lease of the cluster-wide semaphore ``name`` (``leases`` at once).

    The chat model's own ``_generate``/``_agenerate`` are wrapped on the instance, so every way the realiser calls
    it (plain, bound, structured output) passes through the gate.
    """
    from distributed import Semaphore

    semaphore = Semaphore(max_leases=leases, name=name)
    plain, agen = model._generate, model._agenerate

    def gated(*args: Any, **kwargs: Any) -> Any:
        semaphore.acquire()
        try:
            return plain(*args, **kwargs)
        finally:
            semaphore.release()

    async def agated(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        await asyncio.to_thread(semaphore.acquire)  # its sync form runs on the worker's own loop
        try:
            return await agen(*args, **kwargs)
        finally:
            await asyncio.to_thread(semaphore.release)

    object.__setattr__(model, "_generate", gated)
    object.__setattr__(model, "_agenerate", agated)


# -- on the client ---------------------------------------------------------------------------------------------


@dataclass
class _Named:
    """The report's view of the realiser the workers used (its name)."""

    name: str

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:  # pragma: no cover
        """Not called: the driver realises nothing."""
        raise NotImplementedError


@dataclass
class ShardedRun:
    """A finished sharded run: the report and where each shard ran."""

    report: dict[str, Any]
    shards: list[Any] = field(default_factory=list)  # ShardResult, or TableShardResult for a relational run


def check_shardable(
    domain: Domain, llm: object, *, graph: Any, trace: str, resume: bool = False, config: Any = None, **_: Any
) -> None:
    """Refuse what the dask engine does not run yet, naming it.

    Raises:
        UsageError: a chat model or realiser object, a custom graph, ``--trace phoenix`` or config.
    """
    if not isinstance(llm, str):
        raise UsageError("--engine dask: llm must be named by a string ('local', 'template', 'PROVIDER:MODEL') so "
                         "that every worker can build it")  # fmt: skip
    if graph is not None:
        raise UsageError("--engine dask: a custom graph= is not sharded yet")
    if trace not in ("off", "jsonl"):
        raise UsageError(f"--engine dask: --trace {trace} applies to --engine local (--trace jsonl shards)")
    if config:
        raise UsageError("--engine dask: config= (callbacks, tags, metadata) applies to --engine local")


def _model_key(domain: Domain, llm: str, options: LLMOptions, seed: int) -> str:
    """Names a worker's cached realiser: same model, options, seed and lexicon, same realiser."""
    digest = hashlib.sha256(repr((llm, options, seed, domain.source, domain.name)).encode())
    try:
        digest.update(pickle.dumps(domain.lexicon))
    except Exception:  # noqa: BLE001 - an unpicklable lexicon: cache for this run only
        digest.update(uuid.uuid4().bytes)
    return digest.hexdigest()[:24]


def _prepare_folder(out: Path) -> None:
    """Remove a previous run's outputs (files or datasets) and shard folders; create the folder."""
    try:
        if out.exists() and not out.is_dir():
            raise DataError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        for name in (*DATASETS, REPORT, SHARDS, EVENTS, PARTS, "report.html", ".checkpoints.sqlite", "traces.jsonl"):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        (out / SHARDS).mkdir()
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror or exc}") from None


def run_sharded(
    domain: Domain,
    llm: str,
    options: LLMOptions,
    settings: RunSettings,
    out: Path,
    engine: EngineOptions,
    *,
    progress: Callable[[int], None] | None = None,
    guard: PrivacyGuard | None = None,
    dp_void: bool = False,
    resume: bool = False,
    trace: str = "off",
    retriever: Retriever | None = None,
) -> ShardedRun:
    """Run ``settings.n`` records as shards on a Dask cluster; write the run folder ``out``; return the report.

    ``guard`` (``--privacy-reference``) is built once here, its threshold from the holdout rows, and shipped to
    every shard: the guard judges each record alone and redraws it from a stream of its own id, so the records
    are those of the single-process guarded run.

    ``trace="jsonl"``: each shard writes its spans (its own root span, with its ``shard`` in the metadata); the
    run's ``traces.jsonl`` is every shard's spans, so ``causalsynth trace show DIR --record ID`` finds a record's
    journey in its shard's spans.

    Every finished shard leaves a completion marker in ``out``; ``resume`` continues an interrupted run there
    (same spec, settings and shards), running only the shards without one.

    Raises:
        UsageError: bad engine options, or the scheduler cannot be reached.
        DataError: the folder cannot be written.
        CausalSynthError: a shard failed (its error, as the single-process run would raise it).
    """
    check_engine(engine)
    if domain.schema is not None:
        raise UsageError(f"{domain.source} declares tables: run it with graphs.dask_tables.run_tables_sharded")
    started = time.perf_counter()
    record = plan_record(domain, llm, options, settings, guard=guard.describe() if guard is not None else None,
                         retrieval=repr(worker_retrieval(retriever)))  # fmt: skip
    ranges, done = resume_plan(out, record, engine.shards, ShardResult) if resume else ([], {})
    if not resume:
        _prepare_folder(out)
    events = (out / EVENTS).open("a" if resume else "w", encoding="utf-8")
    results: list[ShardResult] = []
    try:
        with open_client(engine) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            if not resume:
                wanted = engine.shards or default_shards(settings.n, workers)
                # A model decodes a batch's records together: shards of whole batches (template: any split)
                aligned = llm != "template"
                ranges = (
                    plan_batch_shards(settings.n, settings.batch_size, wanted)
                    if aligned
                    else plan_shards(settings.n, wanted)
                )
                write_plan(out, record, ranges)
            key = _model_key(domain, llm, options, settings.seed)
            gate = _gate(client, llm, options, key)
            jobs = [
                ShardJob(index=i, first=a, stop=b, domain=domain, settings=settings, llm=llm, options=options,
                         out_dir=str(out), model_key=key, gate=gate, guard=guard, dp_void=dp_void, trace=trace,
                         retrieval=worker_retrieval(retriever))
                for i, (a, b) in enumerate(ranges) if i not in done
            ]  # fmt: skip
            _event(events, {"event": "engine", "engine": "dask", "scheduler": engine.scheduler or "LocalCluster",
                            "workers": workers, "shards": len(ranges)}
                           | ({"resumed": True, "shards_kept": sorted(done)} if resume else {}))  # fmt: skip
            if progress is not None and done:
                progress(sum(r.stop - r.first for r in done.values()))
            results = sorted([*done.values(), *_gather(client, jobs, events, progress)], key=lambda r: r.index)
    except BaseException as exc:
        _abort(out, events, exc)
        raise
    report = merge_report(
        domain, settings, results, started, guard=guard, dp_void=dp_void, retriever=merged_retriever(retriever, results)
    )
    report |= merged_metrics(domain, results, order="record_id")
    report["engine"] = {"name": "dask", "shards": len(results), "workers": len({r.pid for r in results}),
                        "rerun": _abandoned(out)} | ({"resumed_shards": len(done)} if resume else {})  # fmt: skip
    _collect_events(out, events, len(results))
    _event(events, {"event": "finished", "n_accepted": report["n_accepted"], "n_rejected": report["n_rejected"]})
    events.close()
    merge_traces(out, len(results))
    move_datasets(out, DATASETS, required=DATASETS[:2])  # every run has records and rejects, even if empty
    shutil.rmtree(out / SHARDS, ignore_errors=True)
    write_text(json.dumps(report, indent=2, sort_keys=True, default=_plain) + "\n", out / REPORT)
    return ShardedRun(report=report, shards=results)


def _gate(client: Client, llm: str, options: LLMOptions, key: str) -> tuple[str, int] | None:
    """For an API model, create the cluster-wide semaphore its calls share; None for local models."""
    if llm in ("local", "template"):
        return None
    from distributed import Semaphore

    name = f"causalsynth-llm-{key}"
    Semaphore(max_leases=options.concurrency, name=name)  # registered on the scheduler before any worker asks
    return name, options.concurrency


def _gather(
    client: Client,
    jobs: Sequence[Any],
    events: Any,
    progress: Callable[[int], None] | None,
    work: Callable[[Any], Any] = run_shard,
) -> list[Any]:
    """Run ``work(job)`` for every shard job on the cluster; the results in shard order (events as they finish)."""
    from distributed import as_completed

    futures = [client.submit(work, job, key=f"causalsynth-shard-{job.model_key}-{uuid.uuid4().hex[:6]}-"
                             f"{job.index}", pure=False) for job in jobs]  # fmt: skip
    done: dict[int, Any] = {}
    try:
        for _, result in as_completed(futures, with_results=True):
            done[result.index] = result
            _event(events, {"event": "shard", "shard": result.index, "first_id": result.first,
                            "stop_id": result.stop, "pid": result.pid, "seconds": round(result.seconds, 3),
                            "model_built": result.built})  # fmt: skip
            if progress is not None:
                progress(result.stop - result.first)
    except BaseException:
        client.cancel(futures)
        raise
    return [done[job.index] for job in jobs]


def merge_report(
    domain: Domain,
    settings: RunSettings,
    results: list[ShardResult],
    started: float,
    *,
    guard: PrivacyGuard | None = None,
    dp_void: bool = False,
    retriever: Retriever | None = None,
) -> dict[str, Any]:
    """The run's report over every shard: counters added, measures computed on the concatenated ledger."""
    results = sorted(results, key=lambda r: r.first)
    name = results[0].realiser if results else settings.llm
    ctx = RunContext(domain=domain, realiser=_Named(name), settings=settings,
                     skeletons=SkeletonSource(domain, settings.n, settings.seed), guard=guard,
                     dp_void=dp_void, retriever=retriever)  # fmt: skip
    ctx.started = started
    totals: Counter[str] = Counter()
    for r in results:
        totals.update(r.totals)
        for kind in LEDGER_KINDS:
            codes = r.ledger.get(kind) or {}
            if codes:
                ctx.ledger.add_codes(kind, codes, len(next(iter(codes.values()))))
    totals.setdefault("n_failed", 0)
    return run_report(ctx, settings.n, totals)


def _abandoned(out: Path) -> int:
    """Attempts whose worker died before publishing (their private folders, ``00003-PID-ID``, remain)."""
    shards = out / SHARDS
    return sum(1 for p in shards.iterdir() if p.is_dir() and p.name[:1].isdigit()) if shards.is_dir() else 0


def _collect_events(out: Path, events: Any, shards: int) -> None:
    """Append each shard's node events to the run's log (also those of shards that finished before a resume)."""
    for i in range(shards):
        path = out / SHARDS / f"events-{i:05d}.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    _event(events, {"shard": i} | json.loads(line))


def _event(events: Any, event: Mapping[str, Any]) -> None:
    events.write(json.dumps(event, default=str) + "\n")
    events.flush()


def _abort(out: Path, events: Any, exc: BaseException) -> None:
    """No output looks complete after a failed run; ``run.jsonl`` says why.

    Finished shards stay under ``.shards`` (with their markers) for ``--resume``.
    """
    for name in DATASETS:
        shutil.rmtree(out / name, ignore_errors=True)
    if not events.closed:
        _event(events, {"event": "aborted", "reason": f"{type(exc).__name__}: {exc}"})
        events.close()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# -- sample ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleJob:
    """One shard of ``causalsynth sample``."""

    domain: Domain
    first: int
    stop: int
    total: int
    seed: int
    do: dict[str, str]
    with_noise: bool
    decode: bool


def sample_shard(job: SampleJob) -> pd.DataFrame:
    """Records ``first .. stop`` of the seed's sample (decoded and with noise as asked), indexed by record id."""
    from causalsynth.tools.causal.sampler import Sampler, noise_to_frame
    from causalsynth.tools.privacy.columns import decode_frame

    result = Sampler(job.domain.network).sample(
        job.stop - job.first, seed=job.seed, do=job.do, with_noise=job.with_noise, start=job.first
    )
    data = result.data
    if job.decode and job.domain.spec.columns:  # before re-indexing: decoded columns come with a 0-based index
        data = decode_frame(data, job.domain.spec.columns, job.seed, first=job.first, total=job.total)
    index = pd.RangeIndex(job.first, job.stop)
    data = data.set_axis(index)
    if result.noise is not None:
        return pd.concat([data, noise_to_frame(result.noise, index)], axis=1)
    return data


def sample_sharded(
    domain: Domain,
    n: int,
    *,
    seed: int,
    do: Mapping[str, str],
    with_noise: bool,
    decode: bool,
    engine: EngineOptions,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """``n`` records sampled in shards on a Dask cluster: equal to the single-process sample with the seed.

    Raises:
        UsageError: bad engine options, or the scheduler cannot be reached.
    """
    check_engine(engine)
    from distributed import as_completed

    with open_client(engine) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        ranges = plan_shards(n, engine.shards or default_shards(n, workers))
        jobs = [SampleJob(domain, a, b, n, seed, dict(do), with_noise, decode) for a, b in ranges]
        futures = [client.submit(sample_shard, job, pure=False) for job in jobs]
        index = {future.key: i for i, future in enumerate(futures)}
        parts: dict[int, pd.DataFrame] = {}
        try:
            for future, frame in as_completed(futures, with_results=True):
                parts[index[future.key]] = frame
                if progress is not None:
                    progress(len(frame))
        except BaseException:
            client.cancel(futures)
            raise
    return pd.concat([parts[i] for i in range(len(jobs))]).reset_index(drop=True)


__all__ = [
    "ENGINES",
    "CausalSynthError",
    "EngineOptions",
    "ShardResult",
    "check_engine",
    "check_shardable",
    "plan_shards",
    "run_sharded",
    "sample_sharded",
]
