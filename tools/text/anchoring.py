"""Fact-anchored realisation: a per-record grammar that forces every fact's canonical phrase into the text.

The template planner picks, for one record and attempt, an opening and one lexicon phrase per observed fact
(every phrase reads back as exactly its fact: the lexicon's round-trip check). The anchor is the language of
texts made of those phrases, in that order, with at most one free sentence of the model's own between two of
them and after the last. The model writes the free sentences; it cannot drop, reorder or alter a fact phrase.

Free sentences are whole sentences (capital letter first, a full stop last, no other sentence punctuation), so
no cue inside one can reach into a fact phrase's sentence: negation and uncertainty scopes end at a sentence
boundary in the extractor. A free sentence can still state something false about another variable; the causal
verifier reads the whole text as always and the correction loop handles it.

The same language is given two ways: a GBNF grammar (llama.cpp, locally or through a llama.cpp server) and a
regular expression (JSON-schema ``pattern``, for providers with structured output).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import Lexicon

#: Characters a free sentence may use after its capital letter: no sentence punctuation, no colon (a "Label:
#: value" form would be read as a fact), no quotes or brackets that could confuse a downstream parser.
_FREE_CHARS = "A-Za-z0-9 ,'/%-"
MAX_FREE_CHARS = 80
#: Free sentences per text: each costs a slot's decoding, and most of what a tiny model writes there restates
#: a fact (and is dropped), so a few well-placed slots give the text its voice at a fraction of the time.
MAX_FREE_SENTENCES = 2
_SENTENCE_END = (".", "!", "?")


@dataclass(frozen=True)
class Anchor:
    """The forced phrases of one realisation and where the model may add a free sentence.

    ``slots`` are the indices of the phrases after which one free sentence may follow (the last index is the
    text's end); ``free_chars`` is the longest such sentence.
    """

    phrases: tuple[str, ...]
    free_chars: int
    slots: frozenset[int]

    @property
    def skeleton_text(self) -> str:
        """The text with no free sentences (what the template realiser would write)."""
        return " ".join(self.phrases)

    def _free(self, i: int) -> bool:
        return i in self.slots and self.free_chars >= 2

    def gbnf(self) -> str:
        """The anchor as a llama.cpp GBNF grammar."""
        body = ""
        for i, phrase in enumerate(self.phrases):
            body += ('" " ' if i else "") + _gbnf_literal(phrase) + (" opt " if self._free(i) else " ")
        lines = ["root ::= " + body.strip()]
        if any(self._free(i) for i in range(len(self.phrases))):
            lines += ['opt ::= "" | " " free', f'free ::= [A-Z] [{_FREE_CHARS}]{{1,{self.free_chars - 2}}} "."']
        return "\n".join(lines) + "\n"

    def gap_gbnf(self) -> str:
        """One slot on its own: nothing, or one free sentence after a space (segmented generation)."""
        return f'root ::= "" | " " [A-Z] [{_FREE_CHARS}]{{1,{max(1, self.free_chars - 2)}}} "."\n'

    def _pattern(self, capture: bool) -> str:
        free = f"[A-Z][{_FREE_CHARS}]{{1,{self.free_chars - 2}}}\\."
        group = "(" if capture else "(?:"
        body = ""
        for i, phrase in enumerate(self.phrases):
            body += (" " if i else "") + _regex_literal(phrase)
            if self._free(i):
                body += f"(?: {group}{free}))?"
        return body

    def split(self, text: str) -> list[tuple[str, str]] | None:
        """``text`` as ``(phrase, free)`` pairs, or ``None`` when it is not in the anchor's language.

        ``free`` is the sentence the model wrote after that phrase, or "".
        """
        match = re.fullmatch(self._pattern(capture=True), text)
        if match is None:
            return None
        groups = iter(match.groups())
        return [(p, (next(groups) or "") if self._free(i) else "") for i, p in enumerate(self.phrases)]

    def regex(self) -> str:
        """The anchor as an anchored regular expression (ECMA-262 subset: JSON-schema ``pattern``)."""
        return "^" + self._pattern(capture=False) + "$"

    def json_schema(self) -> dict[str, object]:
        """A JSON schema whose one field, ``text``, must match :meth:`regex`."""
        return {
            "title": "note",
            "description": "The text, containing every given sentence word for word, in order.",
            "type": "object",
            "properties": {"text": {"type": "string", "pattern": self.regex()}},
            "required": ["text"],
            "additionalProperties": False,
        }

    def matches(self, text: str) -> bool:
        """Whether ``text`` is in the anchor's language."""
        return self.split(text) is not None


def make_anchor(parts: Sequence[str], max_chars: int, free_sentences: int | None = None) -> Anchor:
    """The anchor for the template's chosen parts, with room for ``free_sentences`` sentences of the model's own.

    The slots are spread evenly back from the end of the text (which always has one); each free sentence is sized
    so that the longest possible text fits ``max_chars``. Each part is closed with a full stop if it does not end
    a sentence already, so that a free sentence after it cannot join its sentence.
    """
    phrases = tuple(p if p.rstrip().endswith(_SENTENCE_END) else p.rstrip() + "." for p in parts)
    k = min(max(0, MAX_FREE_SENTENCES if free_sentences is None else free_sentences), len(phrases))
    last = len(phrases) - 1
    slots = frozenset(last - round(j * last / k) for j in range(k))
    fixed = sum(len(p) for p in phrases) + len(phrases)
    room = (max_chars - fixed) // max(1, len(slots)) - 1
    return Anchor(phrases=phrases, free_chars=max(0, min(MAX_FREE_CHARS, room)), slots=slots)


def drop_fact_sentences(anchor: Anchor, text: str, lexicon: Lexicon) -> tuple[str, int]:
    """Remove the model's free sentences that say anything about a variable; return the text and how many went.

    The fact phrases already state every observed fact; a free sentence that mentions a variable can only repeat
    one or contradict one (tiny models do both often: "Non-smoker. The patient smokes."). Sentences that mention
    no variable stay: they are the model's own writing. A text outside the anchor's language is returned as it
    is (verification judges it).
    """
    pieces = anchor.split(text)
    if pieces is None:
        return text, 0
    kept: list[str] = []
    dropped = 0
    for phrase, free in pieces:
        kept.append(phrase)
        if free:
            found = extract(lexicon, free)
            if found.mentions or any(found.mentioned(v) for v in lexicon.order):
                dropped += 1
            else:
                kept.append(free)
    return " ".join(kept), dropped


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _regex_literal(text: str) -> str:
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", text)
