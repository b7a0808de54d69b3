"""Deterministic extraction: read the facts a text states back out of it, with the domain's lexicon. No LLM.

The text is tokenised (lower case, hyphens split words, "n't" reads "not"), then scanned left to right for the
longest known word sequence: a state pattern, a measured quantity's name (followed within three words by a
number), or a cue. Cues then qualify the mentions around them, NegEx-style:

- a negation cue before a mention ("no", "denies", "negative for") negates every mention up to the end of the
  clause, as long as each follows the previous one within five words ("no fever, cough or dyspnea");
- a negation cue after a mention ("ruled out", "negative") negates the mention just before it and any joined to
  it by "and"/"or"/"nor" ("tuberculosis and lung cancer were ruled out");
- uncertainty cues ("possible", "rule out", "suspected") make a mention a non-statement;
- other-subject cues ("family history of", "mother") make it about someone else;
- a clause ends at ``. ; ! ?``, a line break, or a terminator word ("but", "however", "reports", "with", ...).

A negated state asserts the state its variable's ``negation`` map names (two-state variables: the other
state); otherwise it only excludes the negated state.

Limits (documented, tested where they bite): no syntax parsing, so a negation reaches at most five words past
the previous mention; double negations beyond "not <negative pattern>" are not resolved; a post-negation joined
by "and" to an unrelated fact negates it too ("smoker and tuberculosis ruled out"); pronouns and temporal
qualifiers ("last year", "resolved") are not understood; numbers are read only right after a quantity's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tools.lexicon import BREAK, Entry, Lexicon, tokenize

_PRE_WINDOW = 5
_POST_WINDOW = 3
_NUMBER_WINDOW = 3
_FILLER = frozenset({"of", "is", "was", "at", "around", "approximately", "about", "to", "now", "measured", "reads"})
_JOINERS = frozenset({"and", "or", "nor"})


@dataclass
class Mention:
    """One occurrence of a variable in the text and how it is qualified."""

    variable: str
    state: str | None  # None: a number outside every range of a measured variable
    start: int
    kind: str = "state"  # "state" or "numeric"
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


def _scan(lexicon: Lexicon, tokens: list[str]) -> list[tuple[str, Entry | None, int]]:
    """Longest-match scan: ``(token, entry or None, start)`` items; an entry covers all its tokens."""
    items: list[tuple[str, Entry | None, int]] = []
    table = lexicon.table
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        for pattern, entry in table.get(tok, ()):
            k = len(pattern)
            if k == 1 or tuple(tokens[i : i + k]) == pattern:
                items.append((tok, entry, i))
                i += k
                break
        else:
            items.append((tok, None, i))
            i += 1
    return items


def _number_after(items: list[tuple[str, Entry | None, int]], at: int) -> float | None:
    seen = 0
    for tok, entry, _ in items[at + 1 :]:
        if entry is not None or tok in (BREAK, ","):
            return None
        if tok[0].isdigit():
            return float(tok)
        if tok not in _FILLER:
            seen += 1
        if seen >= _NUMBER_WINDOW:
            return None
    return None


def extract(lexicon: Lexicon, text: str) -> Extraction:
    """Read the facts stated in ``text``."""
    items = _scan(lexicon, tokenize(text))
    mentions: list[tuple[int, Mention]] = []  # (item index, mention)
    for idx, (_, entry, start) in enumerate(items):
        if entry is None:
            continue
        if entry.kind == "state":
            mentions.append((idx, Mention(entry.variable, entry.state, start)))
        elif entry.kind == "numeric":
            value = _number_after(items, idx)
            if value is not None:
                rule = lexicon.numeric[entry.variable]
                state = rule.state_of(value)
                mentions.append((idx, Mention(entry.variable, state, start, "numeric", value)))
    if not mentions:
        return Extraction()
    by_item = dict(mentions)

    # Backward scopes: "ruled out" / "negative" after a mention negates it and mentions joined by and/or/nor.
    backward: set[int] = set()  # post-position cues that found their mention
    for idx, (_, entry, _) in enumerate(items):
        if entry is None or entry.kind not in ("neg_after", "neg_both"):
            continue
        gap, j = 0, idx - 1
        while j >= 0 and gap <= _POST_WINDOW:
            tok, e, _ = items[j]
            if tok in (BREAK, ",") or (e is not None and e.kind in ("term", "neg_after", "neg_before", "neg_both")):
                break
            if j in by_item:
                backward.add(idx)
                if by_item[j].kind == "state":
                    by_item[j].negated = True
                if j >= 2 and items[j - 1][0] in _JOINERS and (j - 2) in by_item:
                    j -= 2
                    continue
                break
            gap += 1
            j -= 1

    # Forward scopes: a cue qualifies the mentions after it in its clause, each within a window of the last.
    scope: dict[str, int] = {}  # cue kind -> words left
    for idx, (tok, entry, _) in enumerate(items):
        if tok == BREAK or (entry is not None and entry.kind == "term"):
            scope.clear()
        elif entry is not None and entry.kind == "neg_both" and idx in backward:
            scope.clear()  # "dyspnea denied, smoker": the cue looked back; it does not also reach forward
        elif entry is not None and entry.kind in ("neg_before", "neg_both", "uncertain", "other"):
            scope["neg_before" if entry.kind == "neg_both" else entry.kind] = _PRE_WINDOW
        elif idx in by_item:
            m = by_item[idx]
            if m.kind == "state":
                m.negated = m.negated or "neg_before" in scope
            m.uncertain = "uncertain" in scope
            m.other_subject = "other" in scope
            scope = dict.fromkeys(scope, _PRE_WINDOW)
        elif tok != "," and tok not in _JOINERS:
            scope = {k: left - 1 for k, left in scope.items() if left > 1}

    out = Extraction(mentions=[m for _, m in mentions])
    for m in out.mentions:
        if m.other_subject:
            continue
        if m.uncertain:
            out.uncertain.add(m.variable)
            continue
        if m.state is None:
            assert m.value is not None
            out.out_of_range[m.variable] = m.value
            continue
        if m.negated:
            target = lexicon.negation.get(m.variable, {}).get(m.state)
            if target is None:
                _add(out.excluded, m.variable, m.state)
                continue
            _add(out.asserted, m.variable, target)
        else:
            _add(out.asserted, m.variable, m.state)
    out.uncertain -= set(out.asserted)
    return out


def _add(into: dict[str, list[str]], var: str, state: str) -> None:
    got = into.setdefault(var, [])
    if state not in got:
        got.append(state)


def extract_facts(lexicon: Lexicon, texts: list[str]) -> list[Mapping[str, str]]:
    """Stated facts of many texts (the assessor's view)."""
    return [extract(lexicon, t).stated() for t in texts]
