"""Sentence splitting as the extractor reads text: at . ; ! ? and line breaks, not at decimals or abbreviations.

Apart from ``extract`` so that the lexicon's compiler can split default phrases the same way without importing the
extractor (which depends on the lexicon's types).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

#: A period after these does not end a sentence ("Temp. 38.5", "approx. 110", "45 y.o. man").
_ABBREVIATIONS = frozenset({"approx", "temp", "resp", "vs", "dr", "mr", "mrs", "ms", "e", "i", "y", "o", "eg", "ie"})
_TAIL = 1 + max(map(len, _ABBREVIATIONS))
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

    Every period splits, except a decimal point; then the distinct pieces that end in a word an abbreviation ends
    in ("approx", "e") are looked at, and only the texts holding one are split again the per-text way (which
    joins "approx." to what follows when the text really has the abbreviation). Texts with a non-ASCII character
    (``isdigit`` knows more digits than the regex) or a NUL are split the per-text way.
    """
    if not texts:
        return []
    joined = "\x00".join(texts)
    if not joined.isascii() or joined.count("\x00") != len(texts) - 1:
        return [_split_fast(t) if t.isascii() and "\x00" not in t else sentences(t) for t in texts]
    out = [piece.split("\x01") for piece in _END_DOT.sub("\x01", joined).translate(_OTHER_ENDS).split("\x00")]
    # The last _TAIL characters hold a whole abbreviation with the space before it, or are too long to be one.
    suspects = {
        p
        for p in set(chain.from_iterable(out))
        if p[-1:].isalpha() and p[-_TAIL:].rsplit(None, 1)[-1].lower() in _ABBREVIATIONS
    }
    if suspects:
        out = [
            sentences(t) if not suspects.isdisjoint(pieces) else pieces for t, pieces in zip(texts, out, strict=True)
        ]
    return out


def _ends_like_abbreviation(piece: str) -> bool:
    return piece[-1:].isalpha() and piece.rsplit(None, 1)[-1].lower() in _ABBREVIATIONS


def _split_fast(text: str) -> list[str]:
    """One text split at every period but a decimal point, and at ; ! ? and line breaks (ASCII, no NUL)."""
    pieces = _END_DOT.sub("\x01", text).translate(_OTHER_ENDS).split("\x01")
    return sentences(text) if any(map(_ends_like_abbreviation, pieces)) else pieces
