"""Screens a model's proposed phrasings before the round trip: known words, no stray numbers, the fact's meaning.

The round trip proves a phrasing reads back as its fact; it cannot tell "He smokes daily." from "Now i sowbwoo
15 000 smoking no." (both read back; a 135M model writes the second often). So proposals are screened first:

- words: every word must be known: an English word of the embedding model's vocabulary, or a word of the domain
  (the spec's lexicon, text settings and the retrieval corpus notes); none may be a word of the request itself
  ("fact", "sentence", "example"); no word pair may repeat ("no, no, no");
- numbers: only a measured variable's phrasing may hold a number (tiny models write dates and counts);
- meaning (expand only, where each state has phrasings already): the phrasing's embedding must be at least
  ``min_similarity`` (cosine) from one of its own state's phrasings, and nearer to its own state's than to any
  other state's of the same variable.

A screened-out proposal is dropped with its reason, like a round-trip failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from causalsynth.tools.spec import Domain
from causalsynth.tools.text.lexicon import Lexicon

_WORD = re.compile(r"[a-z]+")
_DIGIT = re.compile(r"\d")
_CLITIC = re.compile(r"n['’]t\b|['’](?:s|re|ve|ll|d|m)\b")
#: Short words a sentence may use (the vocabulary's other one- and two-letter entries are mostly fragments).
_SHORT = frozenset(
    {"a", "i", "am", "an", "as", "at", "be", "by", "do", "go", "he", "if", "in", "is", "it", "me", "my", "no", "of",
     "on", "or", "so", "to", "up", "us", "we"}
)  # fmt: skip
_SUFFIXES = ("s", "es", "ed", "d", "ing", "ly", "er", "ers", "ness")
#: A sentence that ends on one of these was cut off by the length limit.
_DANGLING = frozenset(
    {"a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "was", "is", "are", "he",
     "she", "they", "his", "her", "their", "that", "which", "who", "by", "from", "as", "be", "been", "had", "has",
     "have", "there", "this", "not", "no", "so", "if", "it", "its"}
)  # fmt: skip
#: Words of the request itself: a small model that uses them is writing about the task, not the patient.
_META = frozenset(
    {"fact", "facts", "sentence", "sentences", "example", "write", "written", "box", "description", "information",
     "provided", "answer", "question", "prompt", "label", "terse", "narrative", "shorthand", "clinician", "letter",
     "above", "below", "list", "item", "chart", "text"}
)  # fmt: skip


def domain_words(domain: Domain) -> set[str]:
    """The words a text of this domain may use: its lexicon, text settings and corpus notes."""
    lex = domain.lexicon
    texts: list[str] = [lex.text.kind, *lex.text.openings, *lex.text.examples]
    texts += [p for by_state in lex.phrases.values() for ps in by_state.values() for p in ps]
    terms = {w for tokens in _table_keys(lex) for w in tokens}  # every word of a pattern, "x" of "x ray" too
    texts += [d for d in lex.descriptions.values() if d] + list(lex.order)
    texts += [s for states in lex.states.values() for s in states]
    retrieval = domain.spec.retrieval
    if retrieval is not None and retrieval.corpus is not None and Path(retrieval.corpus).is_dir():
        from causalsynth.tools.retrieval.corpus import load_corpus

        texts += [d.body for d in load_corpus(retrieval.corpus)]
    return terms | {w for t in texts for w in _WORD.findall(t.lower()) if len(w) > 1}  # not "s" of "patient's"


def _table_keys(lex: Lexicon) -> Iterable[tuple[str, ...]]:
    for tokens, _ in lex.patterns():
        yield tokens


def english_words() -> set[str]:
    """Whole words of the packaged embedding model's vocabulary (about 20,000 English words); empty if absent."""
    try:
        from causalsynth.tools.retrieval.embedding import model_path

        vocab = model_path() / "vocab.txt"
        return {w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and w.islower()}
    except Exception:  # the package is optional here: without it only the domain's own words are known
        return set()


class Screen:
    """Plausibility checks of proposed phrasings (see the module docstring)."""

    def __init__(self, domain: Domain, embedder: Any = None, min_similarity: float = 0.5) -> None:
        self.lexicon = domain.lexicon
        self.domain = domain_words(domain)
        self.english = english_words()
        self.embedder = embedder
        self.min_similarity = min_similarity
        self._refs: dict[tuple[str, str], np.ndarray] = {}

    def words_reason(self, var: str, phrase: str) -> str | None:
        """Why ``phrase`` does not look like a sentence of this domain, or None."""
        if _DIGIT.search(phrase.replace("{value}", "")) and var not in self.lexicon.numeric:
            return "has a number, and the fact is not a measurement"
        lowered = phrase.lower().replace("can't", "cannot").replace("won't", "will not")
        words = _WORD.findall(_CLITIC.sub(lambda m: " not" if m.group(0).startswith("n") else "", lowered))
        unknown = sorted({w for w in words if w not in self.domain and w not in _SHORT and not self._english(w)})
        if unknown:
            return f"uses words outside the domain's and the English vocabulary: {', '.join(unknown[:5])}"
        meta = sorted(set(words) & _META)
        if meta:
            return f"talks about the task ({', '.join(meta)})"
        pairs = list(zip(words, words[1:], strict=False))
        if len(set(pairs)) < len(pairs) or any(a == b for a, b in pairs):
            return "repeats itself"
        tail = phrase.rstrip(" .").rsplit(None, 1)[-1].lower() if phrase.strip(" .") else ""
        if phrase.rstrip(" .").endswith((",", "-", "'")) or tail in _DANGLING:
            return "is cut off"
        return None

    def _english(self, word: str) -> bool:
        """A vocabulary word of three letters or more, or one with an inflection ("smokes", "coughing")."""
        if len(word) < 3:
            return False
        if word in self.english:
            return True
        for suffix in _SUFFIXES:
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= 3 and (stem in self.english or stem + "e" in self.english):
                return True
        return False

    def meaning_reason(self, var: str, state: str, phrase: str) -> str | None:
        """Why ``phrase`` does not mean its state (by embedding), or None; always None without an embedder."""
        if self.embedder is None:
            return None
        vec = self.embedder.encode([phrase.replace("{value}", "")])[0]
        best: dict[str, float] = {}
        for other in self.lexicon.states[var]:
            refs = self._reference(var, other)
            if refs is not None:
                best[other] = float(np.max(refs @ vec))
        own = best.get(state)
        if own is None:
            return None
        if own < self.min_similarity:
            return f"means little like the state's phrasings (cosine {own:.2f} < {self.min_similarity:.2f})"
        rival = max(((s, v) for s, v in best.items() if s != state), key=lambda sv: sv[1], default=None)
        if rival is not None and rival[1] > own:
            return f"is nearer in meaning to {var}={rival[0]} ({rival[1]:.2f}) than to {var}={state} ({own:.2f})"
        return None

    def add(self, var: str, state: str, phrase: str) -> None:
        """A kept phrasing becomes a reference of its state."""
        if self.embedder is None:
            return
        vec = self.embedder.encode([phrase.replace("{value}", "")])
        refs = self._reference(var, state)
        self._refs[(var, state)] = vec if refs is None else np.vstack([refs, vec])

    def _reference(self, var: str, state: str) -> np.ndarray | None:
        key = (var, state)
        if key not in self._refs:
            phrases = [p.replace("{value}", "") for p in self.lexicon.phrases.get(var, {}).get(state, ())]
            if not phrases:
                return None
            self._refs[key] = np.asarray(self.embedder.encode(phrases))
        return self._refs[key]
