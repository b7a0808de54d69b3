"""Sentence splitting as the extractor reads text: at . ; ! ? and line breaks, not at decimals or abbreviations.

Apart from ``extract`` so that the lexicon's compiler can split default phrases the same way without importing the
extractor (which depends on the lexicon's types).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: A period after these does not end a sentence ("Temp. 38.5", "approx. 110", "45 y.o. man").
_ABBREVIATIONS = frozenset({"approx", "temp", "resp", "vs", "dr", "mr", "mrs", "ms", "e", "i", "y", "o", "eg", "ie"})
_DOTTED = ("approx.", "temp.", "resp.", "vs.", "dr.", "mr.", "mrs.", "ms.", "e.g.", "i.e.", "y.o.", "eg.", "ie.")
_OTHER_ENDS = str.maketrans(";!?\n", "\x01\x01\x01\x01")


def sentences(text: str) -> list[str]:
    """Split at . ; ! ? and line breaks, but not at the point of a decimal number (37.5).

    Plain string operations: a regex with look-arounds costs more here than reading the cached sentences.
    """
    marked = text.translate(_OTHER_ENDS)
    lowered = marked.lower()
    abbreviated = any(a in lowered for a in _DOTTED)  # rare: look at last words only when needed
    out: list[str] = []
    for piece in marked.split("."):
        if (
            out
            and (
                (piece[:1].isdigit() and out[-1][-1:].isdigit())  # a decimal point, not a sentence end
                or (abbreviated and out[-1][-1:].isalpha() and out[-1].rsplit(None, 1)[-1].lower() in _ABBREVIATIONS)
            )
        ):
            out[-1] += "." + piece
        else:
            out.append(piece)
    if "\x01" in marked:
        out = [part for piece in out for part in piece.split("\x01")]
    return out


#: A period that ends a sentence: any but a decimal point between two digits.
_END_DOT = re.compile(r"\.(?!(?<=\d\.)\d)")


def sentences_of(texts: Sequence[str]) -> list[list[str]]:
    """``[sentences(t) for t in texts]``, with the splitting done over the whole batch in C.

    Texts with an abbreviation, a non-ASCII character (``isdigit`` knows more digits than the regex) or a NUL take
    the per-text path.
    """
    if not texts:
        return []
    joined = "\x00".join(texts)
    if not joined.isascii() or joined.count("\x00") != len(texts) - 1 or _has_abbreviation(joined):
        return [sentences(t) if _needs_slow(t) else _split_fast(t) for t in texts]
    return [piece.split("\x01") for piece in _END_DOT.sub("\x01", joined).translate(_OTHER_ENDS).split("\x00")]


def _has_abbreviation(text: str) -> bool:
    lowered = text.lower()
    return any(a in lowered for a in _DOTTED)


def _needs_slow(text: str) -> bool:
    return not text.isascii() or "\x00" in text or _has_abbreviation(text)


def _split_fast(text: str) -> list[str]:
    return _END_DOT.sub("\x01", text).translate(_OTHER_ENDS).split("\x01")
