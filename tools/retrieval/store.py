"""The retrieval corpus in Chroma: a ``PersistentClient`` folder whose collections mirror corpus folders.

``sync(folder, collection)`` makes a collection hold exactly the folder's chunks: documents whose content hash
is unchanged are left alone (nothing is embedded again), changed ones are re-chunked and re-embedded, and chunks
of documents no longer in the folder are removed. A malformed folder is refused before anything is written.

Embeddings are computed by ``embedding`` and handed to Chroma, and queries pass vectors too: the collection
has no embedding function of its own, so Chroma never tries to fetch its default model. The collection's metadata
names the embedding model, and a collection made with another model is refused.

Where the store lives: ``--chroma-path``, else ``$CAUSALSYNTH_CHROMA_PATH``, else ``~/.cache/causalsynth/chroma``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.errors import UsageError
from causalsynth.tools.retrieval.corpus import DEFAULT_CHUNK_CHARS, Chunk, chunk_document, load_corpus
from causalsynth.tools.retrieval.embedding import Embedder

_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")


class Passage(TypedDict):
    """A retrieved chunk: its id, where it comes from, its text and its cosine distance to the query."""

    id: str
    source: str
    kind: str
    register: str
    text: str
    distance: float


@dataclass(frozen=True)
class SyncReport:
    """What ``sync`` did."""

    collection: str
    documents: int
    chunks: int
    added: int  # documents new to the collection
    updated: int  # documents whose content changed
    removed: int  # documents no longer in the folder
    unchanged: int
    embedded: int  # chunks embedded by this sync
    seconds: float

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"{self.collection}: {self.documents} documents, {self.chunks} chunks; added {self.added}, updated "
            f"{self.updated}, removed {self.removed}, unchanged {self.unchanged}; embedded {self.embedded} chunks "
            f"in {self.seconds:.1f} s"
        )


def chroma_path(explicit: str | Path | None = None) -> Path:
    """Where the store lives (see the module docstring)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("CAUSALSYNTH_CHROMA_PATH")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "causalsynth" / "chroma"


def check_collection_name(name: str) -> str:
    """Return ``name`` if Chroma accepts it.

    Raises:
        UsageError: naming the rule.
    """
    if not _COLLECTION.match(name) or ".." in name:
        raise UsageError(
            f"--collection {name!r}: a collection name has 3-63 characters from letters, digits, '.', '_' and '-', "
            "starts and ends with a letter or digit, and has no '..'"
        )
    return name


class CorpusStore:
    """A Chroma ``PersistentClient`` with causalsynth's corpus conventions."""

    def __init__(self, path: str | Path | None = None, embedder: Embedder | None = None) -> None:
        self.path = chroma_path(path)
        self._embedder = embedder
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--chroma-path {self.path}: cannot create the folder ({exc.strerror or exc})") from None
        import chromadb
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(path=str(self.path), settings=Settings(anonymized_telemetry=False))

    @property
    def embedder(self) -> Embedder:
        """The embedder (the process's shared one unless another was given)."""
        if self._embedder is None:
            from causalsynth.tools.retrieval.embedding import shared_embedder

            self._embedder = shared_embedder()
        return self._embedder

    # -- collections -----------------------------------------------------------------------------------------------
    def collection(self, name: str, *, create: bool = False) -> Any:
        """The named collection.

        Raises:
            UsageError: a bad name, a missing collection (with the command that makes it), or one embedded with
                another model.
        """
        check_collection_name(name)
        from chromadb.errors import NotFoundError

        if create:
            col = self.client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedding_model": self.embedder.name, "dimensions": self.embedder.dimensions},
            )  # fmt: skip
        else:
            try:
                col = self.client.get_collection(name, embedding_function=None)
            except NotFoundError:
                raise UsageError(
                    f"no collection {name!r} in {self.path}; make it with "
                    f"'causalsynth corpus ingest DIR --collection {name}'"
                ) from None
        model = (col.metadata or {}).get("embedding_model")
        if model != self.embedder.name:
            raise UsageError(
                f"collection {name!r} in {self.path} was embedded with {model!r}, not {self.embedder.name}; "
                "ingest into a new collection"
            )
        return col

    def sync(self, folder: str | Path, name: str, *, max_chars: int = DEFAULT_CHUNK_CHARS) -> SyncReport:
        """Make collection ``name`` hold exactly the chunks of ``folder`` (see the module docstring).

        Raises:
            CorpusError: a malformed document (nothing is written).
            UsageError: see ``collection``.
        """
        start = time.perf_counter()
        docs = load_corpus(folder)  # all checks before any write
        col = self.collection(name, create=True)
        stored = col.get(include=["metadatas"])
        have: dict[str, tuple[str, list[str]]] = {}
        for cid, meta in zip(stored["ids"], stored["metadatas"] or [], strict=True):
            source = str((meta or {}).get("source", cid.rsplit("#", 1)[0]))
            digest, ids = have.get(source, (str((meta or {}).get("digest", "")), []))
            ids.append(cid)
            have[source] = (digest, ids)
        fresh: list[Chunk] = []
        stale: list[str] = []
        added = updated = unchanged = 0
        n_chunks = 0
        for doc in docs:
            old = have.pop(doc.source, None)
            if old is not None and old[0] == doc.digest:
                unchanged += 1
                n_chunks += len(old[1])
                continue
            chunks = chunk_document(doc, max_chars)
            n_chunks += len(chunks)
            fresh += chunks
            if old is None:
                added += 1
            else:
                updated += 1
                new_ids = {c.id for c in chunks}
                stale += [i for i in old[1] if i not in new_ids]
        removed = len(have)
        for _, ids in have.values():
            stale += ids
        if fresh:
            vectors = self.embedder.encode([c.text for c in fresh])
            step = max(1, int(self.client.get_max_batch_size()))
            for i in range(0, len(fresh), step):
                part = fresh[i : i + step]
                col.upsert(ids=[c.id for c in part], embeddings=vectors[i : i + step], documents=[c.text for c in part],
                           metadatas=[dict(c.metadata) for c in part])  # fmt: skip
        if stale:
            col.delete(ids=stale)
        return SyncReport(name, len(docs), n_chunks, added, updated, removed, unchanged, len(fresh),
                          time.perf_counter() - start)  # fmt: skip

    # -- reading ---------------------------------------------------------------------------------------------------
    def query(
        self, name: str, vectors: NDArray[np.float32], k: int, where: Mapping[str, Any] | None = None
    ) -> list[list[Passage]]:
        """The ``k`` nearest chunks (passing ``where``) to each query vector, nearest first."""
        if len(vectors) == 0:
            return []
        col = self.collection(name)
        result = col.query(query_embeddings=vectors, n_results=k, where=dict(where) if where else None,
                           include=["documents", "metadatas", "distances"])  # fmt: skip
        out: list[list[Passage]] = []
        for ids, docs, metas, dists in zip(
            result["ids"], result["documents"] or [], result["metadatas"] or [], result["distances"] or [], strict=True
        ):
            out.append([
                Passage(id=i, source=str((m or {}).get("source", "")), kind=str((m or {}).get("kind", "")),
                        register=str((m or {}).get("register", "")), text=str(d or ""), distance=float(dist))
                for i, d, m, dist in zip(ids, docs, metas, dists, strict=True)
            ])  # fmt: skip
        return out

    def count(self, name: str, where: Mapping[str, Any] | None = None) -> int:
        """Chunks in the collection (passing ``where``)."""
        col = self.collection(name)
        if not where:
            return int(col.count())
        return len(col.get(where=dict(where), include=[])["ids"])

    def values(self, name: str, key: str, where: Mapping[str, Any] | None = None) -> list[str]:
        """The distinct values of a metadata field among the chunks passing ``where``, sorted."""
        got = self.collection(name).get(where=dict(where) if where else None, include=["metadatas"])
        return sorted({str((m or {}).get(key, "")) for m in got["metadatas"] or []})

    def documents(self, name: str) -> list[tuple[str, str]]:
        """Every chunk's (id, text), for the leakage check."""
        got = self.collection(name).get(include=["documents"])
        return [(i, str(d or "")) for i, d in zip(got["ids"], got["documents"] or [], strict=True)]


def metadata_filter(domain: str | None, kinds: Sequence[str], register: str | None = None) -> dict[str, Any] | None:
    """Chroma ``where`` for a domain, document kinds and a register (None when none is set)."""
    terms: list[dict[str, Any]] = []
    if register is not None:
        terms.append({"register": register})
    if domain:
        terms.append({"domain": domain})
    if kinds:
        terms.append({"kind": {"$in": list(kinds)}} if len(kinds) > 1 else {"kind": kinds[0]})
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"$and": terms}
