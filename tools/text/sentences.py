"""Sentence splitting as the extractor reads text: at . ; ! ? and line breaks, not at decimals or abbreviations.

Apart from ``extract`` so that the lexicon's compiler can split default phrases the same way without importing the
extractor (which depends on the lexicon's types).
"""

from __future__ import annotations

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
