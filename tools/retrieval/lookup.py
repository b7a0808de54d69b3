"""The built-in Generator tool ``corpus_lookup``: look a term up in the spec's retrieval corpus.

A LangChain tool over the run's retriever: the query is embedded with the corpus's own model and the nearest
chunks of the spec's collection (any kind: notes, style guides, terminology; the spec's domain filter) are
returned, quoted and cut, as one string. The Generator puts what a tool returns into the record's reference
material, so a looked-up definition reaches the prompt as quoted data, never as instructions.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from causalsynth.tools.retrieval.corpus import KINDS
from causalsynth.tools.retrieval.retriever import Retriever, quote_passage
from causalsynth.tools.retrieval.store import metadata_filter

NAME = "corpus_lookup"
MAX_QUERY_CHARS = 200


class LookupArgs(BaseModel):
    """The lookup's one argument."""

    query: str = Field(description="the term or short phrase to look up", min_length=1, max_length=MAX_QUERY_CHARS)


def corpus_lookup_tool(retriever: Retriever, k: int = 2, max_chars: int = 300) -> BaseTool:
    """The ``corpus_lookup`` tool over ``retriever``'s collection: ``k`` passages of at most ``max_chars`` each."""
    settings = retriever.settings
    where = metadata_filter(settings.domain, KINDS)

    def lookup(query: str) -> str:
        vector = retriever.store.embedder.encode([query.strip()])
        hits = retriever.store.query(settings.collection, vector, k, where)[0]
        if not hits:
            return "nothing found"
        return "\n".join(f"[{p['source']}] {quote_passage(p['text'], max_chars)}" for p in hits)

    return StructuredTool.from_function(
        lookup,
        name=NAME,
        description=f"Look up a term in the {settings.collection} reference corpus (terminology, style, notes).",
        args_schema=LookupArgs,
    )
