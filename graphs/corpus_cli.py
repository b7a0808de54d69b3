"""``causalsynth corpus ingest|query``: load a corpus folder into Chroma, and look at what a query retrieves."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from causalsynth.graphs.retrieval import parse_kinds
from causalsynth.tools.errors import UsageError
from causalsynth.tools.retrieval.corpus import DEFAULT_CHUNK_CHARS
from causalsynth.tools.retrieval.store import CorpusStore, check_collection_name, metadata_filter

corpus_app = typer.Typer(help="The retrieval corpus: ingest a folder into Chroma, query it.", no_args_is_help=True)
console = Console(soft_wrap=True)

CollectionOpt = Annotated[str, typer.Option("--collection", help="Chroma collection name (3-63 characters).")]
ChromaOpt = Annotated[
    Path | None,
    typer.Option(
        "--chroma-path", help="Chroma folder (default: $CAUSALSYNTH_CHROMA_PATH, else ~/.cache/causalsynth/chroma)."
    ),
]


@corpus_app.command("ingest")
def ingest(
    folder: Annotated[Path, typer.Argument(help="Corpus folder: .md/.txt documents with front matter.")],
    collection: CollectionOpt,
    chroma_path: ChromaOpt = None,
    chunk_chars: Annotated[
        int, typer.Option("--chunk-chars", min=100, max=8000, help="Largest chunk, in characters.")
    ] = DEFAULT_CHUNK_CHARS,
) -> None:
    """Make COLLECTION hold exactly FOLDER's chunks: new and changed documents embedded, deleted ones removed."""
    check_collection_name(collection)
    report = CorpusStore(chroma_path).sync(folder, collection, max_chars=chunk_chars)
    console.print(report.summary(), markup=False, highlight=False)


@corpus_app.command("query")
def query(
    text: Annotated[str, typer.Argument(help="Query text.")],
    collection: CollectionOpt,
    chroma_path: ChromaOpt = None,
    k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=100, help="Passages to show.")] = 5,
    domain: Annotated[str | None, typer.Option("--domain", help="Only documents of this domain.")] = None,
    kinds: Annotated[str | None, typer.Option("--kinds", help="Only these kinds, e.g. note,terminology.")] = None,
) -> None:
    """Show the passages nearest to TEXT, nearest first, with their cosine distance."""
    if not text.strip():
        raise UsageError("the query text is empty")
    check_collection_name(collection)
    store = CorpusStore(chroma_path)
    where = metadata_filter(domain, parse_kinds(kinds) or ())
    if store.count(collection, where) == 0:
        raise UsageError(f"no chunks in collection {collection!r} pass the filter (domain={domain!r}, kinds={kinds!r})")
    [found] = store.query(collection, store.embedder.encode([text]), k, where)
    console.print(f"{collection}: the {len(found)} chunks nearest to {text!r} (cosine distance)", markup=False)
    for rank, p in enumerate(found, 1):
        console.print(f"\n{rank}. {p['distance']:.3f}  {p['id']}  [{p['kind']}]", markup=False, highlight=False)
        console.print(textwrap.indent(p["text"], "   "), markup=False, highlight=False)
