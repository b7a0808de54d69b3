"""Deterministic extraction: read the facts a text states back out of it, with the domain's lexicon. No LLM.

The text is tokenised (lower case, hyphens split words, "n't" reads "not"), then scanned left to right for the
longest known word sequence: a state pattern, a generic mention of a variable ("cough"), a measured quantity's
name (followed within three words by a number) or its trailing words ("72-year-old"), or a cue. Cues then
qualify the mentions around them, in the spirit of NegEx/ConText:

- a negation cue before a mention ("no", "denies", "negative for") negates the mentions after it in its clause,
  each within five words of the previous one ("no fever, cough or dyspnea"). The first mention after the cue is
  negated whatever its state ("not a non-smoker"); later ones only if their state is not already a negative one
  ("no dyspnea, breathing comfortably" stays dysp=no);
- a state pattern that starts with a negation ("no recent travel") also negates mentions joined to it by "or"
  ("no recent travel or smoking");
- a cue after a mention ("ruled out", "negative"; "suspected", "likely") negates, or makes uncertain, the mention
  just before it and any joined to it by "and"/"or"/"nor" ("tuberculosis and lung cancer were ruled out");
- uncertainty cues before a mention ("possible", "rule out") make it a non-statement;
- other-subject cues ("family history of", "mother") make the rest of the sentence about someone else, until a
  contrast word or "patient";
- contrast words ("but", "however") end every scope; clause words ("reports", "has", "with", "which") end
  negation and uncertainty scopes.

A negated state asserts the state its variable's ``negation`` map names (two-state variables: the other
state); otherwise it only excludes the negated state. A generic mention excludes the variable's ``absent``
state; a negated one asserts it.

Limits (documented, tested where they bite): no syntax parsing, so a negation reaches at most five words past
the previous mention; a post-position cue joined by "and" to an unrelated fact qualifies it too ("smoker and
tuberculosis ruled out"); a negative pattern's list continues only over "or"/"nor"; pronouns and temporal
qualifiers ("last year", "resolved") are not understood; a number is read only right after a quantity's name or
right before its trailing words.

No cue reaches across a sentence end, so a text is read sentence by sentence and each distinct sentence is read
once per lexicon (cached): template texts and LLM texts reuse many sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.lexicon import BREAK, Entry, Lexicon, tokenize

_PRE_WINDOW = 5
_POST_WINDOW = 3
_NUMBER_WINDOW = 3
_FILLER = frozenset({"of", "is", "was", "at", "around", "approximately", "about", "to", "now", "measured", "reads"})
_JOINERS = frozenset({"and", "or", "nor"})
_FORWARD = frozenset({"neg_before", "neg_both", "unc_before", "unc_both", "other", "term", "term_soft", "self"})
_BACKWARD = frozenset({"neg_after", "neg_both", "unc_after", "unc_both"})
_BACK_STOP = frozenset({"term", "term_soft", "neg_after", "neg_before", "neg_both", "unc_after", "unc_both"})
_OTHER_ENDS = str.maketrans(";!?\n", "\x01\x01\x01\x01")
_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class Mention:
    """One occurrence of a variable in a sentence, and how it is qualified."""

    variable: str
    state: str | None  # None: a number outside every range of a measured variable
    kind: str = "state"  # "state", "numeric" or "generic" (a mention without a state)
    value: float | None = None
    negated: bool = False
    uncertain: bool = False
    other_subject: bool = False


@dataclass
class Extraction:
    """The facts read from one text.

    Attributes:
        asserted: states each variable is stated to have (more than one: a contradiction).
        excluded: states a variable is stated not to have, when negation names no other state.
        uncertain: variables mentioned only with an uncertainty cue.
        out_of_range: measured variables given a value outside every state's range.
        mentions: every mention, in text order, for diagnostics.
    """

    asserted: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    out_of_range: dict[str, float] = field(default_factory=dict)
    mentions: list[Mention] = field(default_factory=list)

    def stated(self) -> dict[str, str]:
        """Variables stated exactly one way, and their state (the extractor's ``{variable: state}`` view)."""
        return {v: s[0] for v, s in self.asserted.items() if len(s) == 1 and s[0] not in self.excluded.get(v, ())}

    def facts(self, variables: tuple[str, ...]) -> dict[str, str | None]:
        """``{variable: state or None}`` over ``variables``; None when not stated, or stated two ways."""
        stated = self.stated()
        return {v: stated.get(v) for v in variables}

    def mentioned(self, var: str) -> bool:
        """True when the text says anything about ``var`` (asserted, denied, uncertain or out of range)."""
        return var in self.asserted or var in self.excluded or var in self.uncertain or var in self.out_of_range


def extract(lexicon: Lexicon, text: str) -> Extraction:
    """Read the facts stated in ``text``."""
    cache = lexicon.cache
    out = Extraction()
    mentions = out.mentions
    for sentence in sentences(text):
        found = cache.get(sentence)
        if found is None:
            found = _read_sentence(lexicon, sentence)
            if len(cache) < _CACHE_LIMIT:
                cache[sentence] = found
        mentions.extend(found)
    if not mentions:
        return out
    negation = lexicon.negation
    asserted, excluded = out.asserted, out.excluded
    for m in mentions:
        if m.other_subject:
            continue
        if m.uncertain:
            out.uncertain.add(m.variable)
            continue
        state = m.state
        if m.kind == "generic":
            absent = lexicon.generic_absent[m.variable]
            _add(asserted if m.negated else excluded, m.variable, absent)  # "denies cough" / "cough"
            continue
        if state is None:
            out.out_of_range[m.variable] = m.value  # type: ignore[assignment]
            continue
        if m.negated:
            target = negation[m.variable].get(state)
            if target is None:
                _add(excluded, m.variable, state)
                continue
            state = target
        _add(asserted, m.variable, state)
    if out.uncertain:
        out.uncertain -= set(asserted)
    return out


def sentences(text: str) -> list[str]:
    """Split at . ; ! ? and line breaks, but not at the point of a decimal number (37.5).

    Plain string operations: a regex with look-arounds costs more here than reading the cached sentences.
    """
    marked = text.translate(_OTHER_ENDS)
    out: list[str] = []
    for piece in marked.split("."):
        if out and piece[:1].isdigit() and out[-1][-1:].isdigit():
            out[-1] += "." + piece  # a decimal point, not a sentence end
        else:
            out.append(piece)
    if "\x01" in marked:
        out = [part for piece in out for part in piece.split("\x01")]
    return out


def _add(into: dict[str, list[str]], var: str, state: str) -> None:
    got = into.get(var)
    if got is None:
        into[var] = [state]
    elif state not in got:
        got.append(state)


def _read_sentence(lexicon: Lexicon, sentence: str) -> tuple[Mention, ...]:
    """The mentions of one sentence (no sentence end inside), with their qualifiers."""
    tokens = [t for t in tokenize(sentence) if t != BREAK]
    table = lexicon.table
    # Longest-match scan into items: (token, entry or None); an entry covers all of its tokens.
    items: list[tuple[str, Entry | None]] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        for pattern, meaning in table.get(tok, ()):
            k = len(pattern)
            if k == 1 or tuple(tokens[i : i + k]) == pattern:
                items.append((tok, meaning))
                i += k
                break
        else:
            items.append((tok, None))
            i += 1

    # spots: item index -> [variable, state, kind, value, negated, uncertain, other, opens_negation]
    spots: dict[int, list[Any]] = {}
    cue_kinds: set[str] = set()
    for idx, (_, entry) in enumerate(items):
        if entry is None:
            continue
        kind = entry.kind
        if kind == "state":
            spots[idx] = [entry.variable, entry.state, "state", None, False, False, False, entry.opens_negation]
        elif kind == "generic":
            spots[idx] = [entry.variable, None, "generic", None, False, False, False, False]
        elif kind == "numeric":
            value = _number_after(items, idx)
            if value is not None:
                state = lexicon.numeric[entry.variable].state_of(value)
                spots[idx] = [entry.variable, state, "numeric", value, False, False, False, False]
        elif kind == "numeric_after":
            if idx > 0 and items[idx - 1][1] is None and items[idx - 1][0][0].isdigit() and idx - 1 not in spots:
                value = float(items[idx - 1][0])
                state = lexicon.numeric[entry.variable].state_of(value)
                spots[idx - 1] = [entry.variable, state, "numeric", value, False, False, False, False]
        else:
            cue_kinds.add(kind)
    if not spots:
        return ()

    backward: set[int] = set()  # post-position cues that found their mention
    if cue_kinds & _BACKWARD:
        for idx, (_, entry) in enumerate(items):
            if entry is None or entry.kind not in _BACKWARD:
                continue
            flag = 4 if entry.kind in ("neg_after", "neg_both") else 5  # negated or uncertain
            gap, j = 0, idx - 1
            while j >= 0 and gap <= _POST_WINDOW:
                tok, e = items[j]
                if tok == "," or (e is not None and e.kind in _BACK_STOP):
                    break
                if j in spots:
                    backward.add(idx)
                    if flag == 5 or spots[j][2] != "numeric":
                        spots[j][flag] = True
                    if j >= 2 and items[j - 1][0] in _JOINERS and (j - 2) in spots:
                        j -= 2
                        continue
                    break
                gap += 1
                j -= 1

    if cue_kinds & _FORWARD or any(spot[7] for spot in spots.values()):
        _forward_scopes(lexicon, items, spots, backward)

    return tuple(
        Mention(str(v), s, str(k), val, bool(neg), bool(unc), bool(oth))
        for v, s, k, val, neg, unc, oth, _ in (spots[i] for i in sorted(spots))
    )


def _forward_scopes(
    lexicon: Lexicon, items: list[tuple[str, Entry | None]], spots: dict[int, list[Any]], backward: set[int]
) -> None:
    """Apply cues to the mentions after them in the sentence (NegEx-style windows; see the module docstring)."""
    negative = lexicon.negative_states
    scope: dict[str, int] = {}  # "neg" / "unc": words left; "other": open; "list": only "or"/"nor" may continue
    first = False  # the next mention is the first after a negation cue
    for idx, (tok, entry) in enumerate(items):
        kind = entry.kind if entry is not None else None
        if kind == "term":
            scope.clear()
        elif kind == "term_soft" or ((kind == "neg_both" or kind == "unc_both") and idx in backward):
            for key in ("neg", "unc", "list"):  # "dyspnea denied, smoker": the cue looked back, not forward
                scope.pop(key, None)
        elif kind == "self":
            scope.pop("other", None)
        elif kind in ("neg_before", "neg_both"):
            scope["neg"] = _PRE_WINDOW
            first = True
        elif kind in ("unc_before", "unc_both"):
            scope["unc"] = _PRE_WINDOW
        elif kind == "other":
            scope["other"] = 1
        elif idx in spots:
            spot = spots[idx]
            if spot[2] != "numeric" and ("neg" in scope or "list" in scope):
                # The first mention after a cue is negated whatever its state ("not a non-smoker"); a list goes
                # on negating only states that are not already the negative ones ("no dyspnea, breathing
                # comfortably" keeps dysp=no).
                if (first and "neg" in scope) or spot[1] not in negative[spot[0]]:
                    spot[4] = True
            first = False
            spot[5] = spot[5] or "unc" in scope
            spot[6] = "other" in scope
            for key in ("neg", "unc"):
                if key in scope:
                    scope[key] = _PRE_WINDOW
            scope.pop("list", None)
            if spot[7]:
                scope["list"] = 1  # "no recent travel or smoking": the pattern's own "no" covers the list
        elif tok == ",":
            scope.pop("list", None)
        elif tok in _JOINERS:
            if tok == "and":
                scope.pop("list", None)
        else:
            scope.pop("list", None)
            for key in ("neg", "unc"):
                if key in scope:
                    scope[key] -= 1
                    if scope[key] <= 0:
                        del scope[key]


def _number_after(items: list[tuple[str, Entry | None]], at: int) -> float | None:
    seen = 0
    for tok, entry in items[at + 1 :]:
        if entry is not None or tok == ",":
            return None
        if tok[0].isdigit():
            return float(tok)
        if tok not in _FILLER:
            seen += 1
        if seen >= _NUMBER_WINDOW:
            return None
    return None
