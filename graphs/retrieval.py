"""Choose and open a run's retriever from the spec's ``retrieval:`` block and the CLI flags.

Retrieval is on when the spec has a ``retrieval:`` block or ``--collection`` names one, and the realiser uses a
model (the template realiser has no use for references, and loading the embedding model costs seconds). When the
block names a ``corpus`` folder, the spec's collection is synced with it first: a no-op when nothing changed. A
collection named by ``--collection`` is used as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from causalsynth.tools.errors import UsageError
from causalsynth.tools.retrieval.retriever import RetrievalSettings, Retriever
from causalsynth.tools.retrieval.store import CorpusStore
from causalsynth.tools.spec import Domain, RetrievalSpec


@dataclass(frozen=True)
class RetrievalOptions:
    """The CLI's retrieval flags (None: the spec's value, else the default)."""

    enabled: bool = True
    collection: str | None = None
    chroma_path: Path | None = None
    corpus: Path | None = None
    top_k: int | None = None
    kinds: tuple[str, ...] | None = None
    leak_ngram: int | None = None


def retrieval_settings(domain: Domain, options: RetrievalOptions) -> RetrievalSettings | None:
    """The run's retrieval settings, or None when the run has no retrieval.

    Raises:
        UsageError: a bad flag value.
    """
    spec = domain.spec.retrieval
    if not options.enabled or (spec is None and options.collection is None):
        return None
    base = spec or RetrievalSpec(domain=None)  # a bare --collection: no domain filter unless the spec gives one
    # The spec's corpus folder is synced only into the spec's own collection: --collection names a collection
    # the user manages (with 'corpus ingest'), which a run must not overwrite.
    own = options.collection is None or options.collection == (base.collection or domain.name)
    corpus = options.corpus or (Path(base.corpus) if base.corpus and own else None)
    return RetrievalSettings(
        collection=options.collection or base.collection or domain.name,
        chroma_path=options.chroma_path,
        corpus=corpus,
        domain=base.domain if spec is None else (base.domain or domain.name),
        kinds=options.kinds or tuple(base.kinds),
        k=options.top_k if options.top_k is not None else base.k,
        pool=base.pool,
        max_chars=base.max_chars,
        leak_ngram=options.leak_ngram if options.leak_ngram is not None else base.leak_ngram,
    ).check()


def open_retriever(
    domain: Domain,
    options: RetrievalOptions,
    *,
    uses_model: bool,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> Retriever | None:
    """The run's retriever (corpus synced, filter checked), or None.

    Raises:
        UsageError: a bad flag, a missing collection, or a filter no chunk passes.
        CorpusError: the corpus folder has a malformed document.
    """
    settings = retrieval_settings(domain, options)
    if settings is None:
        return None
    if not uses_model:
        if say is not None:
            say("retrieval: off (the template realiser uses no references)")
        return None
    if settings.corpus is not None and not settings.corpus.is_dir():
        raise UsageError(
            f"{domain.source}: retrieval.corpus {str(settings.corpus)!r} is not a folder; fix the spec, or run with "
            "--no-retrieval"
        )
    store = CorpusStore(settings.chroma_path)
    if settings.corpus is not None:
        report = store.sync(settings.corpus, settings.collection)
        if say is not None:
            say(f"corpus {report.summary()}")
    retriever = Retriever(settings, domain.lexicon, store, seed=seed)
    n = retriever.check_available()
    start = time.perf_counter()
    store.embedder.encode(["warm-up"])  # the model loads here, not inside the first record's retrieval time
    if say is not None:
        say(f"retrieval: {settings.k} per record from the {settings.pool} nearest of each register, of {n} chunks "
            f"in {settings.collection!r} (kinds {', '.join(settings.kinds)}); embedding model ready in "
            f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return retriever


def parse_kinds(value: str | None) -> tuple[str, ...] | None:
    """``--retrieval-kinds note,terminology`` as a tuple (checked later against the known kinds)."""
    if value is None:
        return None
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    if not kinds:
        raise UsageError("--retrieval-kinds needs at least one kind, e.g. note or note,terminology")
    return kinds


def retrieval_rows(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Report table rows for a run's retrieval summary (``Retriever.summary``)."""
    if not summary:
        return [("retrieval", "off")]
    ms = summary.get("ms_per_record")
    return [
        ("retrieval", f"top {summary['k']} from {summary['collection']!r}"
                      + (f", {ms:.1f} ms/record" if ms is not None else "")),
        (f"corpus_copies (>= {summary['leak_ngram']} tokens)",
         f"{summary['copying_texts']} of {summary['texts_checked']} texts (longest {summary['longest_copy']})"),
    ]  # fmt: skip
