"""Checking proposed lexicon entries (an LLM's or a person's) by round trip, one entry at a time, with reasons.

The extractor decides: a proposed phrase is kept only if it reads back as exactly its own fact and mentions no
other variable (not even as uncertain or denied); a proposed pattern only if its words mean nothing yet (no other
fact, no cue), it names no other variable, and it reads back as its own fact once added. What is dropped keeps its
reason ("reads back as tub=yes, not smoke=yes", "states two facts: smoke=yes, tub=yes"), for the person who
reviews the draft. :func:`assemble` builds a whole lexicon from proposals this way
(``causalsynth lexicon draft``); :func:`phrase_reason` checks one more phrasing of a compiled lexicon
(``causalsynth lexicon expand``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from causalsynth.tools.causal.network import Network
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import (
    NEGATIVE_NAMES,
    VALUE_SLOT,
    Lexicon,
    NumericRule,
    NumericSpec,
    StateWords,
    TextSpec,
    VariableMeta,
    compile_lexicon,
    fill_value,
    words,
)
from causalsynth.tools.text.round_trip import checked_lexicon
from causalsynth.tools.text.sentences import sentences

#: Longest phrase kept: a phrase is one sentence of a note, not a paragraph.
MAX_PHRASE_CHARS = 160
#: Longest pattern kept, in words: patterns are terms ("pack a day"), not sentences.
MAX_PATTERN_WORDS = 6
_MARKUP = re.compile(r"[{}<>\[\]]")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d{1,3}[.)]|[a-z][.)])\s+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
#: One-word patterns that are states of everything ("normal", "yes"): they would assert a fact in any sentence.
_GENERIC_WORDS = NEGATIVE_NAMES | {"yes", "present", "positive", "abnormal", "high", "low", "mild", "severe", "true"}


@dataclass(frozen=True)
class Dropped:
    """A proposal that was not kept, and why (shown to the person who reviews the draft)."""

    variable: str
    state: str
    kind: str  # "phrase" | "pattern" | "negation" | "numeric name"
    text: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """Plain data for the review file."""
        return {"variable": self.variable, "state": self.state, "kind": self.kind, "text": self.text,
                "reason": self.reason}  # fmt: skip


def clean_phrase(raw: str) -> str:
    """A proposed sentence tidied: list markers, wrapping quotes and spaces removed, a full stop at the end."""
    text = _BULLET.sub("", raw.strip()).strip().strip(_QUOTES).strip()
    text = re.sub(r"\s+", " ", text)
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def clean_pattern(raw: str) -> str:
    """A proposed pattern tidied to its words, lower case ("- Pack-a-day." -> "pack a day")."""
    return " ".join(words(_BULLET.sub("", raw.strip()).strip(_QUOTES)))


def probe_values(rule: NumericRule, state: str) -> list[float]:
    """The lowest and highest values a measured state covers (as written with the rule's decimals)."""
    low, high = next((lo, hi) for lo, hi, s in rule.ranges if s == state)
    step = 10.0**-rule.decimals
    top = high if (low, high, state) == rule.ranges[-1] else high - step
    return [low, max(low, top)]


def _facts(stated: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(stated.items())) or "no fact"


def form_reason(lexicon: Lexicon, sentence: str) -> str | None:
    """Why ``sentence`` cannot be one sentence of a text (empty, too long, several, markup, forbidden), or None."""
    if not sentence.strip(" ."):
        return "empty"
    if len(sentence) > MAX_PHRASE_CHARS:
        return f"longer than {MAX_PHRASE_CHARS} characters"
    if "\n" in sentence or len([s for s in sentences(sentence) if s.strip()]) != 1:
        return "not one sentence"
    if _MARKUP.search(sentence.replace(VALUE_SLOT, "")):
        return "contains markup or a placeholder"
    lowered = sentence.lower()
    for bad in lexicon.text.forbidden:
        if bad.lower() in lowered:
            return f"contains the forbidden phrase {bad!r}"
    return None


def phrase_reason(lexicon: Lexicon, var: str, state: str, phrase: str) -> str | None:
    """Why ``phrase`` cannot state ``var=state`` with this lexicon, or None when it reads back as exactly that."""
    form = form_reason(lexicon, phrase)
    if form is not None:
        return form
    texts = [phrase]
    if VALUE_SLOT in phrase:
        rule = lexicon.numeric.get(var)
        if rule is None or state not in {s for *_, s in rule.ranges}:
            return f"has a {VALUE_SLOT} slot but {var}={state} has no value range"
        texts = [fill_value(phrase, v, rule.decimals) for v in probe_values(rule, state)]
    for text in texts:
        reason = _reading_reason(lexicon, var, state, text)
        if reason is not None:
            return reason
    return None


def _reading_reason(lexicon: Lexicon, var: str, state: str, text: str) -> str | None:
    got = extract(lexicon, text)
    stated = got.stated()
    others = {k: v for k, v in stated.items() if k != var}
    if others and var in stated:
        return f"states two facts: {_facts(stated)}"
    if others:
        return f"reads back as {_facts(others)}, not {var}={state}"
    touched = sorted(v for v in lexicon.order if v != var and got.mentioned(v))
    if touched:
        return f"also mentions {', '.join(touched)} (uncertain, denied or out of range)"
    if var in got.uncertain and var not in stated:
        return f"states {var} only as uncertain"
    if len(got.asserted.get(var, ())) > 1:
        return f"states {var} two ways ({', '.join(got.asserted[var])})"
    if var in got.out_of_range:
        return f"its value {got.out_of_range[var]:g} is outside every range of {var}"
    if var not in stated:
        return f"reads back as no fact (no pattern of {var} in it)"
    if stated[var] != state:
        return f"reads back as {var}={stated[var]}, not {var}={state}"
    return None


def pattern_reason(lexicon: Lexicon, var: str, state: str, pattern: str, shared_states: frozenset[str]) -> str | None:
    """Why ``pattern`` cannot be added for ``var=state`` to this lexicon, or None when its words are free.

    ``shared_states`` are state names of several variables: one of them alone would assert a fact anywhere.
    """
    tokens = words(pattern)
    if not tokens:
        return "has no words"
    if len(tokens) > MAX_PATTERN_WORDS:
        return f"longer than {MAX_PATTERN_WORDS} words"
    if len(tokens) == 1 and (tokens[0] in _GENERIC_WORDS or tokens[0] in shared_states or len(tokens[0]) < 3):
        return f"one generic word ({tokens[0]!r}) would assert {var}={state} in any sentence"
    entry = lexicon.meaning(tokens)
    if entry is not None:
        if entry.kind == "state" and (entry.variable, entry.state) == (var, state):
            return "already a pattern of this state"
        if entry.kind in ("state", "generic", "numeric", "numeric_after"):
            return f"already means {entry.variable}" + (f"={entry.state}" if entry.state else "")
        return f"is a cue word of the extractor ({entry.kind})"
    if any(t.replace(".", "").isdigit() for t in tokens):
        return "contains a number"
    got = extract(lexicon, pattern)
    touched = sorted(v for v in lexicon.order if v != var and got.mentioned(v))
    if touched:
        return f"contains a mention of {', '.join(touched)}"
    return None


def related(var: str, description: str, state: str, pattern: str) -> bool:
    """Whether a drafted pattern shares a word (its first five letters) with its variable's name, description or state.

    A tiny model's terms are often unrelated words ("thesaurus" for a scan) that read back all the same.
    """
    vocab = {w for w in re.findall(r"[a-z]+", f"{var} {description} {state}".lower()) if len(w) >= 3}
    vocab -= {"the", "and", "for", "with", "not", "yes", "none"}
    for word in words(pattern):
        for v in vocab:
            k = min(5, len(v), len(word))
            if k >= 3 and word[:k] == v[:k]:
                return True
    return False


@dataclass
class StateProposal:
    """What a model proposed for one state."""

    phrases: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)


@dataclass
class Proposals:
    """Everything proposed for a domain's lexicon: per variable and state, plus negations and numeric names."""

    states: dict[str, dict[str, StateProposal]] = field(default_factory=dict)
    negation: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    numeric_names: dict[str, list[str]] = field(default_factory=dict)

    def state(self, var: str, state: str) -> StateProposal:
        """The proposal of one state (created empty on first use)."""
        return self.states.setdefault(var, {}).setdefault(state, StateProposal())


@dataclass
class Assembled:
    """A drafted lexicon: the ``variables`` entries that load and round-trip, and every dropped proposal."""

    variables: dict[str, VariableMeta]
    dropped: list[Dropped]
    #: ``(variable, state)`` pairs for which no proposed phrase survived: they got the plain ``name: state.`` form.
    fallbacks: list[tuple[str, str]]
    lexicon: Lexicon


def _where(_path: tuple[str | int, ...]) -> str:
    return "draft"


def assemble(
    network: Network,
    variables: Mapping[str, VariableMeta],
    text: TextSpec,
    proposals: Proposals,
    drafted: Sequence[str],
    max_phrases: int = 6,
) -> Assembled:
    """Build the lexicon of the ``drafted`` variables from proposals, keeping only what reads back as intended.

    Variables not in ``drafted`` keep their spec entries. Order: patterns first (their words must mean nothing
    yet and name no other variable; words proposed for two facts are dropped from both), then numeric names and
    negations, then phrases, each read back through the lexicon those make. An observed state left with no phrase
    gets ``"<name>: <state>."`` (and the pattern ``"<name> <state>"``), listed in ``fallbacks``. A last full round
    trip over the result drops anything that a later addition made ambiguous.

    Raises:
        ValueError: a ``drafted`` name is not a variable of the network.
    """
    unknown = [v for v in drafted if v not in network]
    if unknown:
        raise ValueError(f"unknown variable(s): {', '.join(unknown)}")
    dropped: list[Dropped] = []
    roles = {v: (variables[v].role if v in variables else "observed") for v in network.names}
    # The lexicon the proposals are read against: the spec's own entries, drafted variables stripped of theirs.
    # (Read as latent there, so that they get no default "name state" pattern that would shadow a proposal.)
    base_vars = {v: m for v, m in variables.items() if v not in drafted}
    for v in drafted:
        meta = variables.get(v)
        base_vars[v] = VariableMeta(description=meta.description if meta else None, role=roles[v],
                                    numeric=meta.numeric if meta else None)  # fmt: skip
    base = _compile(network, {**base_vars, **{v: base_vars[v].model_copy(update={"role": "latent"}) for v in drafted}},
                    text)  # fmt: skip
    all_states = [s.lower() for v in network.names for s in network.states(v)]
    shared = frozenset(s for s in all_states if all_states.count(s) > 1)

    patterns: dict[tuple[str, str], list[str]] = {}
    claimed: dict[tuple[str, ...], set[tuple[str, str]]] = {}
    for var in drafted:
        for state in network.states(var):
            proposal = proposals.states.get(var, {}).get(state, StateProposal())
            for raw in proposal.patterns:
                pattern = clean_pattern(raw)
                reason = pattern_reason(base, var, state, pattern, shared)
                if reason is None and not related(var, base.descriptions.get(var, ""), state, pattern):
                    reason = (f"shares no word with {var}'s name, description or state (a synonym? add it by "
                              "hand)")  # fmt: skip
                if reason is None and pattern in patterns.get((var, state), []):
                    continue  # the same term twice
                if reason is not None:
                    dropped.append(Dropped(var, state, "pattern", raw, reason))
                    continue
                patterns.setdefault((var, state), []).append(pattern)
                claimed.setdefault(words(pattern), set()).add((var, state))
    for tokens, owners in claimed.items():
        if len(owners) > 1:
            facts = " and ".join(f"{v}={s}" for v, s in sorted(owners))
            for v, s in owners:
                patterns[(v, s)].remove(" ".join(tokens))
                dropped.append(Dropped(v, s, "pattern", " ".join(tokens), f"proposed for two facts: {facts}"))

    names: dict[str, list[str]] = {}
    for var in drafted:
        meta = base_vars[var]
        if meta.numeric is None:
            for raw in proposals.numeric_names.get(var, []):
                dropped.append(Dropped(var, "", "numeric name", raw, f"{var} has no 'numeric' ranges in the spec"))
            continue
        names[var] = list(meta.numeric.names)
        for raw in proposals.numeric_names.get(var, []):
            name = clean_pattern(raw)
            if name in names[var]:
                continue
            reason = pattern_reason(base, var, "", name, shared)
            if reason is None and words(name) in claimed:
                reason = "also proposed as a state pattern"
            if reason is None:
                reason = _numeric_name_reason(network, base_vars, text, var, name)
            if reason is not None:
                dropped.append(Dropped(var, "", "numeric name", raw, reason))
            else:
                names[var].append(name)

    negation: dict[str, dict[str, str]] = {}
    for var in drafted:
        states = network.states(var)
        for src, dst in proposals.negation.get(var, []):
            text_of = f"{src} -> {dst}"
            if len(states) == 2:
                reason = "two-state variables already negate to the other state"
            elif src not in states or dst not in states:
                reason = f"must name states of {var} ({', '.join(states)})"
            elif src == dst:
                reason = "maps a state to itself"
            elif src in negation.get(var, {}):
                reason = f"{src} already negates to {negation[var][src]}"
            else:
                reason = None
            if reason is not None:
                dropped.append(Dropped(var, src, "negation", text_of, reason))
            else:
                negation.setdefault(var, {})[src] = dst

    phrases: dict[tuple[str, str], list[str]] = {}
    for _ in range(3):  # a fallback's pattern can change how earlier phrases read; settle in a few rounds
        draft_vars = _draft_vars(base_vars, drafted, network, roles, patterns, phrases, names, negation)
        lexicon = _compile(network, draft_vars, text)
        changed = False
        for var in drafted:
            if roles[var] != "observed":
                continue
            for state in network.states(var):
                key = (var, state)
                if key not in phrases:  # first round: read every proposal
                    phrases[key] = []
                    seen: set[str] = set()
                    for raw in proposals.states.get(var, {}).get(state, StateProposal()).phrases:
                        phrase = clean_phrase(raw)
                        if phrase.lower() in seen:
                            continue
                        seen.add(phrase.lower())
                        if len(phrases[key]) >= max_phrases:
                            break
                        reason = phrase_reason(lexicon, var, state, phrase)
                        if reason is None:
                            phrases[key].append(phrase)
                        else:
                            dropped.append(Dropped(var, state, "phrase", raw, reason))
                    changed = True
                else:  # later rounds: re-read what was kept
                    for phrase in list(phrases[key]):
                        reason = phrase_reason(lexicon, var, state, phrase)
                        if reason is not None:
                            phrases[key].remove(phrase)
                            dropped.append(Dropped(var, state, "phrase", phrase, reason))
                            changed = True
                if not phrases[key]:
                    fallback = f"{var}: {state}."
                    phrases[key] = [fallback]
                    patterns.setdefault(key, []).append(f"{var} {state}")
                    changed = True
        if not changed:
            break
    draft_vars = _draft_vars(base_vars, drafted, network, roles, patterns, phrases, names, negation)
    checked = checked_lexicon(network, draft_vars, text, _where)
    if not isinstance(checked, Lexicon):  # cannot happen when every step above held; say what broke if it does
        raise ValueError("the drafted lexicon does not round-trip: " + "; ".join(p.message for p in checked))
    fallbacks = [(v, s) for (v, s), ps in phrases.items() if ps == [f"{v}: {s}."]]
    return Assembled({v: draft_vars[v] for v in drafted}, dropped, fallbacks, checked)


def _draft_vars(
    base_vars: Mapping[str, VariableMeta],
    drafted: Sequence[str],
    network: Network,
    roles: Mapping[str, str],
    patterns: Mapping[tuple[str, str], list[str]],
    phrases: Mapping[tuple[str, str], list[str]],
    names: Mapping[str, list[str]],
    negation: Mapping[str, Mapping[str, str]],
) -> dict[str, VariableMeta]:
    """The spec's variables with the drafted ones rebuilt from what has been kept so far."""
    out = dict(base_vars)
    for var in drafted:
        meta = base_vars[var]
        states: dict[str, StateWords] = {}
        for state in network.states(var):
            ps = phrases.get((var, state)) or ([f"{var}: {state}."] if roles[var] == "observed" else [])
            pats = patterns.get((var, state), [])
            if ps or pats:
                states[state] = StateWords(phrases=list(ps), patterns=list(pats))
        numeric = meta.numeric
        if numeric is not None and var in names:
            numeric = NumericSpec.model_validate({**numeric.model_dump(), "names": names[var]})
        out[var] = VariableMeta(description=meta.description, role=meta.role, states=states,
                                negation=dict(negation.get(var, {})), numeric=numeric,
                                generic=meta.generic)  # fmt: skip
    return out


def _compile(network: Network, variables: Mapping[str, VariableMeta], text: TextSpec) -> Lexicon:
    """Compile without the round trip (phrases may still be missing); patterns were checked beforehand."""
    compiled = compile_lexicon(network, variables, text, _where)
    if not isinstance(compiled, Lexicon):
        raise ValueError("the draft does not compile: " + "; ".join(p.message for p in compiled))
    return compiled


def _numeric_name_reason(
    network: Network,
    base_vars: Mapping[str, VariableMeta],
    text: TextSpec,
    var: str,
    name: str,
) -> str | None:
    """A new name of a measured quantity must read each state's bounds as that state ("pulse 101" -> HIGH)."""
    meta = base_vars[var]
    assert meta.numeric is not None
    spec = NumericSpec.model_validate({**meta.numeric.model_dump(), "names": [*meta.numeric.names, name]})
    trial = dict(base_vars)
    trial[var] = meta.model_copy(update={"numeric": spec})
    lexicon = _compile(network, trial, text)
    rule = lexicon.numeric[var]
    for _, _, state in rule.ranges:
        for value in probe_values(rule, state):
            probe = f"{name} {value:.{rule.decimals}f}."
            stated = extract(lexicon, probe).stated()
            if stated != {var: state}:
                return f"{probe!r} reads back as {_facts(stated)}, not {var}={state}"
    return None
