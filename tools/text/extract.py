"""Deterministic extraction: read the facts a text states back out of it, with the domain's lexicon. No LLM.

The text is tokenised (lower case, hyphens split words, "n't" reads "not"), then scanned left to right for the
longest known word sequence: a state pattern, a generic mention of a variable ("cough"), a measured quantity's
name (followed within three words by a number) or its trailing words ("72-year-old"), or a cue. Cues then
qualify the mentions around them, in the spirit of NegEx/ConText:

- a negation cue before a mention ("no", "denies", "negative for") negates the mentions after it in its clause,
  each within five words of the previous one. The first mention after the cue is negated whatever its state
  ("not a non-smoker"); later ones only if their state is not already a negative one ("no dyspnea, breathing
  comfortably" stays dysp=no). Across a comma the negation goes on only in a visible list (an "or"/"nor" ahead,
  or three or more items: "denies fever, chills, dyspnea"); otherwise ("no dyspnea, smoker") the mention after
  the comma is ambiguous and counts as not stated, so neither reading can be accepted by mistake;
- a state pattern that starts with a negation ("no recent travel") negates an or-list after it ("no recent
  travel or smoking");
- a cue after a mention ("ruled out", "negative"; "suspected", "likely"; "confirmed", "present") negates, makes
  uncertain, or affirms the mention just before it (and those joined to it by "and"/"or"/"nor" for the first
  two); "no"/"none"/"nil" at the end of a clause deny the mention before them ("Dyspnea: no.");
- uncertainty cues before a mention ("possible", "rule out") make it a non-statement;
- other-subject cues ("family history of", "mother") make the rest of the sentence about someone else, until a
  contrast word or "patient";
- contrast words ("but", "however") end every scope; clause words ("reports", "has", "with", "positive for")
  end negation and uncertainty scopes.

Numbers: the first number within three words after a quantity's name (filler such as "of", "was", "on room air"
skipped; a number in litres gives way to a later one: "SpO2 on 4 L O2 was 92%"), or a number right before its
trailing words ("72-year-old"). "2,500" is one number, "-5" is negative, "Temp." and "approx." do not end a
sentence. "<14" / "below 14" name the bottom state when 14 is within it, "above" / ">" the top state; a bound
that spans states says nothing definite (uncertain).

A negated state asserts the state its variable's ``negation`` map names (two-state variables: the other
state); otherwise it only excludes the negated state. A generic mention excludes the variable's ``absent``
state; a negated one asserts it.

Limits (documented, tested where they bite): no syntax parsing, so a negation reaches at most five words past
the previous mention; a post-position cue joined by "and" to an unrelated fact qualifies it too ("smoker and
tuberculosis ruled out"); pronouns and temporal qualifiers ("last year", "resolved", "increased from 80 to
120" reads 80) are not understood; a value outside every range is reported as such, not clipped.

No cue reaches across a sentence end, so a text is read sentence by sentence and each distinct sentence is read
once per lexicon (cached): template texts and LLM texts reuse many sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from causalsynth.tools.text.lexicon import BREAK, Entry, Lexicon, tokenize
from causalsynth.tools.text.sentences import sentences

_PRE_WINDOW = 5
_POST_WINDOW = 3
_NUMBER_WINDOW = 3
_FILLER = frozenset(
    {"of", "is", "was", "at", "around", "approximately", "approx", "about", "to", "now", "measured", "reads", "on",
     "room", "air", "o2", "oxygen", "l", "lpm", "litres", "liters", "litre", "liter", "min"}
)  # fmt: skip
_JOINERS = frozenset({"and", "or", "nor"})
_LIST_ENDS = frozenset({"or", "nor"})
#: After a mention at the end of a clause ("Dyspnea: no.", "Cough - none,"), these deny it.
_TAIL_NEGATIONS = frozenset({"no", "none", "nil"})
_LOWER = frozenset({"<", "≤", "below", "under", "less"})
_UPPER = frozenset({">", "≥", "above", "over", "greater", "more", "exceeding"})
_VOLUME_UNITS = frozenset({"l", "lpm", "litres", "liters", "litre", "liter"})  # "SpO2 on 4 L O2 was 92%"
_FORWARD = frozenset(
    {"neg_before", "neg_both", "unc_before", "unc_both", "other", "term", "term_soft", "affirm", "self"}
)
_BACKWARD = frozenset({"neg_after", "neg_both", "unc_after", "unc_both"})
_BACK_STOP = frozenset({"term", "term_soft", "affirm", "neg_after", "neg_before", "neg_both", "unc_after", "unc_both"})
CACHE_LIMIT = 200_000


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
            found = read_sentence(lexicon, sentence)
            if len(cache) < CACHE_LIMIT:
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


def _add(into: dict[str, list[str]], var: str, state: str) -> None:
    got = into.get(var)
    if got is None:
        into[var] = [state]
    elif state not in got:
        got.append(state)


def read_sentence(lexicon: Lexicon, sentence: str) -> tuple[Mention, ...]:
    """The mentions of one sentence (no sentence end inside), with their qualifiers."""
    tokens = [t for t in tokenize(sentence) if t != BREAK]
    table = lexicon.table
    # Longest-match scan into items: (token, entry or None); an entry covers all of its tokens.
    items: list[tuple[str, Entry | None]] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        for k, patterns in table.get(tok, ()):
            meaning = patterns.get(tuple(tokens[i : i + k])) if i + k <= n else None
            if meaning is not None:
                items.append((tok, meaning))
                i += k
                break
        else:
            items.append((tok, None))
            i += 1

    # spots: item index -> [variable, state, kind, value, negated, uncertain, other, opens_negation, affirmed]
    spots: dict[int, list[Any]] = {}
    cue_kinds: set[str] = set()
    for idx, (_, entry) in enumerate(items):
        if entry is None:
            continue
        kind = entry.kind
        if kind == "state":
            spots[idx] = [entry.variable, entry.state, "state", None, False, False, False, entry.opens_negation, False]
        elif kind == "generic":
            spots[idx] = [entry.variable, None, "generic", None, False, False, False, False, False]
        elif kind == "numeric":
            found = _number_after(items, idx)
            if found is not None:
                value, direction = found
                state, vague = _value_state(lexicon, entry.variable, value, direction)
                spots[idx] = [entry.variable, state, "numeric", value, False, vague, False, False, False]
        elif kind == "numeric_after":
            if idx > 0 and items[idx - 1][1] is None and _is_number(items[idx - 1][0]) and idx - 1 not in spots:
                value = float(items[idx - 1][0])
                direction = items[idx - 2][0] if idx > 1 else ""
                direction = "lt" if direction in _LOWER else "gt" if direction in _UPPER else ""
                state, vague = _value_state(lexicon, entry.variable, value, direction)
                spots[idx - 1] = [entry.variable, state, "numeric", value, False, vague, False, False, False]
        else:
            cue_kinds.add(kind)
    if not spots:
        return ()

    backward: set[int] = set()  # post-position cues that found their mention
    last = len(items) - 1
    for idx, (tok, entry) in enumerate(items):
        if entry is None:
            continue
        kind = entry.kind
        if kind in _BACKWARD:
            flag = 4 if kind in ("neg_after", "neg_both") else 5  # negated or uncertain
        elif (
            tok in _TAIL_NEGATIONS and kind in ("neg_before", "neg_both") and (idx == last or items[idx + 1][0] == ",")
        ):
            flag = 4  # "Dyspnea: no." / "TB - none, ..."
        elif kind == "affirm":
            flag = 8  # "tuberculosis confirmed": affirmed, out of reach of an earlier negation list
        else:
            continue
        gap, j = 0, idx - 1
        while j >= 0 and gap <= _POST_WINDOW:
            tok_j, e = items[j]
            if tok_j == "," or (e is not None and e.kind in _BACK_STOP):
                break
            if j in spots:
                backward.add(idx)
                if flag != 4 or spots[j][2] != "numeric":
                    spots[j][flag] = True
                if flag != 8 and j >= 2 and items[j - 1][0] in _JOINERS and (j - 2) in spots:
                    j -= 2
                    continue
                break
            gap += 1
            j -= 1

    if cue_kinds & _FORWARD or any(spot[7] for spot in spots.values()):
        _forward_scopes(lexicon, items, spots, backward)

    return tuple(
        Mention(str(v), s, str(k), val, bool(neg), bool(unc), bool(oth))
        for v, s, k, val, neg, unc, oth, *_ in (spots[i] for i in sorted(spots))
    )


def _forward_scopes(
    lexicon: Lexicon, items: list[tuple[str, Entry | None]], spots: dict[int, list[Any]], backward: set[int]
) -> None:
    """Apply cues to the mentions after them in the sentence (NegEx-style windows; see the module docstring)."""
    negative = lexicon.negative_states
    # Is there an "or"/"nor" later in the clause? Then commas before it separate items of one negated list.
    list_ahead = [False] * len(items)
    ahead = False
    for idx in range(len(items) - 1, -1, -1):
        tok, entry = items[idx]
        list_ahead[idx] = ahead
        if tok in _LIST_ENDS:
            ahead = True
        elif entry is not None and entry.kind in ("term", "term_soft", "affirm"):
            ahead = False
    scope: dict[str, int] = {}  # "neg" / "unc": words left; "other": open to the sentence end
    first = False  # the next mention is the first after a negation cue
    implicit = False  # the negation came from a pattern ("no recent travel"): it only continues over or-lists
    after_comma = 0  # mentions reached over a comma since the cue (a list of three or more is clearly a list)
    pending_comma = False
    for idx, (tok, entry) in enumerate(items):
        kind = entry.kind if entry is not None else None
        if kind == "term":
            scope.clear()
        elif kind in ("term_soft", "affirm") or ((kind == "neg_both" or kind == "unc_both") and idx in backward):
            scope.pop("neg", None)  # "dyspnea denied, smoker": the cue looked back, not forward
            scope.pop("unc", None)
        elif kind == "self":
            scope.pop("other", None)
        elif kind in ("neg_before", "neg_both") and not (tok in _TAIL_NEGATIONS and idx in backward):
            scope["neg"] = _PRE_WINDOW
            first, implicit, after_comma, pending_comma = True, False, 0, False
        elif kind in ("unc_before", "unc_both"):
            scope["unc"] = _PRE_WINDOW
        elif kind == "other":
            scope["other"] = 1
        elif idx in spots:
            spot = spots[idx]
            if "neg" in scope and spot[2] != "numeric" and not spot[8]:
                continues = not pending_comma or list_ahead[idx] or after_comma > 0 or _list_goes_on(items, idx)
                if pending_comma and not continues:
                    # "No dyspnea, smoker.": a list or a new clause? Neither reading is safe, so neither is taken.
                    if not implicit:
                        spot[5] = True
                    scope.pop("neg", None)
                elif (first and not implicit) or spot[1] not in negative[spot[0]]:
                    # The first mention after a cue is negated whatever its state ("not a non-smoker"); later ones
                    # only if not already a negative state ("no dyspnea, breathing comfortably").
                    spot[4] = True
                if pending_comma and continues:
                    after_comma += 1
            first = False
            pending_comma = False
            spot[5] = spot[5] or "unc" in scope
            spot[6] = "other" in scope
            for key in ("neg", "unc"):
                if key in scope:
                    scope[key] = _PRE_WINDOW
            if spot[7] and "neg" not in scope:
                scope["neg"] = _PRE_WINDOW  # "no recent travel or smoking": the pattern's own "no"
                first, implicit, after_comma = False, True, 0
        elif tok == ",":
            if "neg" in scope and implicit and not list_ahead[idx]:
                scope.pop("neg", None)  # "never smoked, dyspnea on exertion"
            pending_comma = True
        elif tok in _JOINERS:
            pending_comma = False  # ", or dyspnea": the list form itself says the list goes on
        else:
            for key in ("neg", "unc"):
                if key in scope:
                    scope[key] -= 1
                    if scope[key] <= 0:
                        del scope[key]


def _list_goes_on(items: list[tuple[str, Entry | None]], idx: int) -> bool:
    """True when the mention at ``idx`` is followed by a comma or a joiner (it sits inside a list)."""
    nxt = idx + 1
    return nxt < len(items) and (items[nxt][0] == "," or items[nxt][0] in _JOINERS)


def _is_number(tok: str) -> bool:
    return tok[0].isdigit() or (tok[0] == "-" and len(tok) > 1)


def _number_after(items: list[tuple[str, Entry | None]], at: int) -> tuple[float, str] | None:
    """The first number within a few words after a quantity's name, and a comparison before it ("<", "above")."""
    seen = 0
    direction = ""
    flow: tuple[float, str] | None = None  # "SpO2 on 4 L O2 was 92%": a number in litres may be an oxygen flow
    for k in range(at + 1, len(items)):
        tok, entry = items[k]
        if entry is not None or tok == ",":
            return flow
        if _is_number(tok):
            if flow is None and k + 1 < len(items) and items[k + 1][0] in _VOLUME_UNITS:
                flow = (float(tok), direction)  # unless another number follows, it is the reading (CO 4.0 L/min)
                direction = ""
                continue
            return float(tok), direction
        if tok in _LOWER:
            direction = "lt"
        elif tok in _UPPER:
            direction = "gt"
        elif tok not in _FILLER and tok != "than":
            seen += 1
        if seen >= _NUMBER_WINDOW:
            return flow
    return flow


def _value_state(lexicon: Lexicon, var: str, value: float, direction: str) -> tuple[str | None, bool]:
    """The state a reading names, and whether it is vague ("<14" spans several states, so it states nothing)."""
    rule = lexicon.numeric[var]
    if not direction:
        return rule.state_of(value), False
    bottom, top = rule.ranges[0], rule.ranges[-1]
    if direction == "lt" and value <= bottom[1]:
        return bottom[2], False
    if direction == "gt" and value >= top[0]:
        return top[2], False
    return rule.state_of(value), True
