"""Retrieval for the Generator: a query from each record's facts, the nearest corpus passages, quoted into the prompt.

The query is the text kind and one sentence per observed fact (the lexicon's first phrase for the state, or the
state's description), never a latent variable, so the passages are notes about similar findings. The ``k``
passages of a record are drawn, seeded by the record id, from the ``pool`` nearest of each register that pass the
metadata filter (domain, document kinds): records with the same facts get different references, which is where
the diversity comes from, and the same seed gives the same references. A query vector is the centroid of its
fact sentences' embeddings, each sentence embedded once per run, so a query costs next to nothing once a run has
seen its facts. A query written as facts lands nearest the terse notes, so the candidates are gathered per
register (terse, narrative, bulleted: one batched query each) and the draw takes one passage per register before
it takes a second of any: the model sees varied styles.

Passages are data, never instructions: the prompt quotes each one between ``<reference>`` tags that a passage
cannot close or open (``tools.llm.prompts.reference_block``), and says so to the model; the verifier still reads every
text, so an instruction hidden in a corpus document cannot make a wrong record pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.errors import UsageError
from causalsynth.tools.retrieval.leakage import CopyIndex
from causalsynth.tools.retrieval.store import CorpusStore, Passage, check_collection_name, metadata_filter
from causalsynth.tools.text.lexicon import Lexicon

MAX_K = 20
MAX_POOL = 10
DEFAULT_LEAK_NGRAM = 12


@dataclass(frozen=True)
class RetrievalSettings:
    """Where to retrieve from and how much (the spec's ``retrieval:`` block, overridden by CLI flags)."""

    collection: str
    chroma_path: Path | None = None
    corpus: Path | None = None  # a folder to sync into the collection before the run
    domain: str | None = None  # metadata filter; None: any domain
    kinds: tuple[str, ...] = ("note",)
    k: int = 2
    pool: int = 3
    max_chars: int = 320  # per passage in the prompt (each reference token costs a CPU model time)
    leak_ngram: int = DEFAULT_LEAK_NGRAM

    def check(self) -> RetrievalSettings:
        """Return self if every value is usable.

        Raises:
            UsageError: naming the value.
        """
        check_collection_name(self.collection)
        if not 1 <= self.k <= MAX_K:
            raise UsageError(f"--top-k must be between 1 and {MAX_K}, got {self.k}")
        if not 1 <= self.pool <= MAX_POOL:
            raise UsageError(f"retrieval pool must be between 1 and {MAX_POOL}, got {self.pool}")
        if not 2 <= self.leak_ngram <= 1000:
            raise UsageError(f"--leak-ngram must be between 2 and 1000, got {self.leak_ngram}")
        if self.max_chars < 50:
            raise UsageError(f"retrieval max_chars must be at least 50, got {self.max_chars}")
        from causalsynth.tools.retrieval.corpus import KINDS

        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise UsageError(f"--retrieval-kinds: unknown kind {bad[0]!r}; kinds: {', '.join(KINDS)}")
        return self


@dataclass
class Retriever:
    """Finds reference passages for records and checks texts for copies of the corpus."""

    settings: RetrievalSettings
    lexicon: Lexicon
    store: CorpusStore
    seed: int = 0
    seconds: float = 0.0  # time spent retrieving
    queries: int = 0
    checked: int = 0  # texts checked for copies of the corpus
    copies: list[dict[str, Any]] = field(default_factory=list)  # the texts that copy, with their longest run
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)  # sentence -> its embedding

    @property
    def where(self) -> dict[str, object] | None:
        """The metadata filter."""
        return metadata_filter(self.settings.domain, self.settings.kinds)

    @cached_property
    def registers(self) -> list[str]:
        """The registers (terse, narrative, ...; "" for documents without one) among the chunks passing the filter."""
        return self.store.values(self.settings.collection, "register", self.where) or [""]

    def check_available(self) -> int:
        """Chunks that pass the filter.

        Raises:
            UsageError: none do (naming the collection and filter).
        """
        n = self.store.count(self.settings.collection, self.where)
        if n == 0:
            raise UsageError(
                f"collection {self.settings.collection!r} has no chunks with domain={self.settings.domain!r} and "
                f"kind in {list(self.settings.kinds)}; check the spec's retrieval block or --retrieval-kinds"
            )
        return n

    def query_sentences(self, skeleton: Mapping[str, str]) -> tuple[str, ...]:
        """The query of one record: the text kind and a sentence per observed fact (never a latent one)."""
        parts = [f"{self.lexicon.text.kind}."]
        for var in self.lexicon.observed:
            state = skeleton.get(var)
            if state is None:
                continue
            phrases = self.lexicon.phrases.get(var, {}).get(state, ())
            if phrases and "{" not in phrases[0]:
                parts.append(phrases[0])
            else:
                parts.append(f"{self.lexicon.label(var)}: {self.lexicon.describe(var, state)}.")
        return tuple(parts)

    def query_text(self, skeleton: Mapping[str, str]) -> str:
        """The query as one text (what ``corpus query`` would be asked to find the same notes)."""
        return " ".join(self.query_sentences(skeleton))

    def _query_vectors(self, queries: Sequence[tuple[str, ...]]) -> NDArray[np.float32]:
        """Each query's vector: the normalised mean of its sentences' embeddings, each sentence embedded once.

        A domain has few distinct fact sentences (tens) but many combinations of them (clinic: hundreds per
        thousand records), and embedding a whole query costs tens of ms on a CPU; so sentences are embedded and
        cached, and a query is their centroid. Its nearest notes overlap about three quarters with those of the
        whole query embedded at once (measured on clinic and asia, top 9).
        """
        missing = sorted({t for q in queries for t in q if t not in self._vectors})
        if missing:
            for text, vec in zip(missing, self.store.embedder.encode(missing), strict=True):
                self._vectors[text] = vec
        means = np.stack([np.mean([self._vectors[t] for t in q], axis=0) for q in queries]).astype(np.float32)
        return means / np.linalg.norm(means, axis=1, keepdims=True)

    def retrieve(self, records: Sequence[tuple[int, Mapping[str, str]]]) -> list[list[Passage]]:
        """``k`` passages per ``(record id, skeleton)``, in the order given."""
        if not records:
            return []
        start = time.perf_counter()
        queries = [self.query_sentences(s) for _, s in records]
        unique = sorted(set(queries))
        s = self.settings
        vectors = self._query_vectors(unique)
        by_query: dict[tuple[str, ...], list[Passage]] = {q: [] for q in unique}
        per_group = max(s.pool, -(-s.k // len(self.registers)))  # enough candidates for k even with one register
        for register in self.registers:  # one batched query per register, so every register has candidates
            where = metadata_filter(s.domain, s.kinds, register)
            for query, hits in zip(unique, self.store.query(s.collection, vectors, per_group, where), strict=True):
                by_query[query] += hits
        for hits in by_query.values():
            hits.sort(key=lambda p: (p["distance"], p["id"]))
        out = [self._choose(rid, by_query[q]) for (rid, _), q in zip(records, queries, strict=True)]
        self.seconds += time.perf_counter() - start
        self.queries += len(records)
        return out

    def _choose(self, record_id: int, candidates: list[Passage]) -> list[Passage]:
        """``k`` of the candidates in a seeded order, a register not yet chosen first; nearest first."""
        k = self.settings.k
        if len(candidates) <= k:
            return candidates
        order = np.random.default_rng([self.seed, record_id, 0x5EED]).permutation(len(candidates)).tolist()
        picked: list[int] = []
        registers: set[str] = set()
        for i in order:  # first pass: one passage per register (terse, narrative, bulleted, ...)
            if len(picked) < k and candidates[i]["register"] not in registers:
                picked.append(i)
                registers.add(candidates[i]["register"])
        picked += [i for i in order if i not in picked][: k - len(picked)]
        return [{**candidates[i], "text": quote_passage(candidates[i]["text"], self.settings.max_chars)}
                for i in sorted(picked)]  # fmt: skip

    @cached_property
    def copy_index(self) -> CopyIndex:
        """The n-grams of every chunk of the collection (any domain or kind: a copy is a copy)."""
        return CopyIndex(self.store.documents(self.settings.collection), self.settings.leak_ngram)

    def start_run(self) -> None:
        """Zero the per-run counters (a retriever may serve several runs; its caches stay)."""
        self.seconds = 0.0
        self.queries = self.checked = 0
        self.copies = []

    def check_copies(self, texts: Sequence[tuple[int, str]]) -> int:
        """The leakage check over ``(record id, text)`` pairs: record the texts that copy; how many did."""
        index = self.copy_index
        found = 0
        for record_id, text in texts:
            copy = index.longest_copy(text)
            if copy is not None:
                found += 1
                self.copies.append({"record_id": record_id, "tokens": copy.length, "source": copy.source,
                                    "excerpt": copy.excerpt})  # fmt: skip
        self.checked += len(texts)
        return found

    def summary(self) -> dict[str, Any]:
        """Settings, cost per record, and the leakage check's findings, for the run report."""
        s = self.settings
        copies = sorted(self.copies, key=lambda c: (-int(c["tokens"]), int(c["record_id"])))
        return {
            "collection": s.collection, "domain": s.domain, "kinds": list(s.kinds), "k": s.k, "pool": s.pool,
            "records": self.queries, "seconds": self.seconds,
            "ms_per_record": 1000 * self.seconds / self.queries if self.queries else None,
            "leak_ngram": s.leak_ngram, "texts_checked": self.checked, "copying_texts": len(copies),
            "copying_rate": len(copies) / self.checked if self.checked else None,
            "longest_copy": int(copies[0]["tokens"]) if copies else 0, "copies": copies[:10],
        }  # fmt: skip


_TAG = re.compile(r"<\s*/?\s*reference\b[^>]*>?", re.IGNORECASE)


def quote_passage(text: str, max_chars: int = 600) -> str:
    """A passage made safe to put between reference tags: tags neutralised, cut at ``max_chars`` on a word."""
    clean = _TAG.sub("[tag removed]", text).strip()
    if len(clean) > max_chars:
        cut = clean[:max_chars]
        clean = (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " ..."
    return clean
