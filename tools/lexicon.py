"""The lexicon: how each variable's states are written (realisation phrases) and read back (extraction patterns).

A spec's ``variables:`` entries may carry, per state, ``phrases`` (whole sentences the template realiser picks
from) and ``patterns`` (the words that assert the state in any text), plus a ``negation`` map (a negated mention
of one state asserts another: "denies dyspnea" -> dysp=no) and, for measured quantities, a ``numeric`` block
(names, unit and one value range per state: "heart rate 128 bpm" -> HR=HIGH).

Compiling checks the lexicon as a whole and reports every problem with its spec location: states that do not
exist, observed variables a realiser could not state, a pattern that asserts two different facts, and phrases
that the extractor would not read back as exactly the fact they were written for (the round trip that makes
template realisation 100% realisable by construction). A variable without a lexicon gets ``"<name>: <state>."``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tools.errors import Problem
from tools.network import Network
from tools.yamlio import scalar_text

if TYPE_CHECKING:
    from tools.spec import VariableMeta

Name = Annotated[str, BeforeValidator(scalar_text)]
Where = Callable[[tuple[str | int, ...]], str]

#: Placeholder a numeric variable's phrases use for the value the realiser draws.
VALUE_SLOT = "{value}"

# -- built-in cue lists (a spec's ``text.cues`` adds to them) ---------------------------------------------------
NEGATION_BEFORE = (
    "no", "not", "denies", "denied", "deny", "without", "negative for", "free of", "absence of",
    "no evidence of", "no sign of", "no signs of", "never", "none", "neither", "nor", "rules out", "ruled out",
    "excluded", "no history of", "no longer",
)  # fmt: skip
NEGATION_AFTER = (
    "ruled out", "was ruled out", "were ruled out", "is ruled out", "excluded", "was excluded", "negative",
    "is negative", "was negative", "absent", "is absent", "was absent", "not present", "not seen", "denied",
    "was denied", "not found", "unremarkable",
)  # fmt: skip
UNCERTAINTY = (
    "possible", "possibly", "probable", "probably", "suspected", "suspect", "suspicion of", "rule out", "query",
    "questionable", "cannot exclude", "cannot be excluded", "may have", "might have", "likely", "unlikely",
    "concern for", "to be ruled out",
)  # fmt: skip
UNCERTAINTY_AFTER = (
    "suspected", "is suspected", "was suspected", "likely", "is likely", "unlikely", "is unlikely", "possible",
    "is possible", "probable", "is probable", "not excluded", "not ruled out", "cannot be excluded",
    "to be ruled out", "questionable", "query",
)  # fmt: skip
OTHER_SUBJECT = (
    "family history of", "family history", "father", "mother", "brother", "sister", "sibling", "husband", "wife",
    "son", "daughter", "partner", "roommate", "relative", "relatives", "parents",
)  # fmt: skip
#: Words that bring the sentence back to the patient, ending an other-subject scope.
SELF_SUBJECT = ("patient", "the patient", "pt", "the pt")
#: Contrast words end every scope: negation, uncertainty and other subject.
TERMINATORS = (
    "but", "however", "although", "though", "yet", "except", "whereas", "while", "apart from", "aside from",
)  # fmt: skip
#: Clause words end negation and uncertainty scopes, not an other-subject one ("mother has tuberculosis").
CLAUSE_TERMINATORS = (
    "reports", "reported", "complains", "complained", "presents", "presented", "has", "had", "with", "shows",
    "showed", "which", "who", "positive for", "diagnosed with",
)  # fmt: skip
#: After a mention, these affirm it, so a negation list before it does not reach it ("no bronchitis, tuberculosis
#: confirmed"); they also end negation scopes, like clause words.
AFFIRM_AFTER = (
    "confirmed",
    "is confirmed",
    "was confirmed",
    "present",
    "is present",
    "noted",
    "positive",
    "is positive",
)
#: State names that read as "absent/normal": a list continuing a negation does not flip them
#: ("no dyspnea, breathing comfortably"), unless the variable's ``negation`` map says otherwise.
NEGATIVE_NAMES = frozenset(
    {"no", "false", "absent", "none", "normal", "negative", "never", "nil", "n", "0", "off", "clear", "unremarkable"}
)
PSEUDO = (
    "no change", "no increase", "no decrease", "not only", "no further", "not necessarily", "without difficulty",
    "gram negative", "no longer than",
)  # fmt: skip

_TOKEN = re.compile(r"(?<![\w.])-\d+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_][^\W_]*|[.;!?\n]|,|[<>≤≥]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CONTRACTION = re.compile(r"n['’]t\b")
BREAK = "."  # every sentence-ending token is normalised to this


def tokenize(text: str) -> list[str]:
    """Lower-case word and number tokens, ``.`` for sentence/clause ends, ``,`` for commas, ``<``/``>`` kept.

    A word starts with a letter and may go on with digits ("SpO2", "CO2", "cmH2O"); a number is digits (with a
    decimal point). Hyphens and other punctuation separate words ("non-smoker" -> non smoker), except a minus
    sign before a number that does not follow a word ("-5", but "2-3" is 2 and 3); "n't" reads as "not";
    "2,500" is one number; a colon is a plain separator ("Dyspnea: absent").
    """
    text = _CONTRACTION.sub(" not", text.lower())
    if "," in text:
        text = _THOUSANDS.sub("", text)  # 2,500 is one number
    toks = _TOKEN.findall(text)
    return [BREAK if t in ".;!?\n" else t for t in toks]


def words(phrase: str) -> tuple[str, ...]:
    """A pattern's tokens: the words and numbers of ``phrase``, punctuation dropped."""
    return tuple(t for t in tokenize(phrase) if t not in (BREAK, ",", "<", ">", "≤", "≥"))


# -- spec models ------------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateWords(_Strict):
    """How one state is written (``phrases``, whole sentences) and recognised (``patterns``, a few words each)."""

    phrases: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)


class NumericSpec(_Strict):
    """A measured variable: its names, unit, and the value range ``[low, high)`` that each state covers.

    ``names`` come before the number ("heart rate 120"); ``after`` are words that follow it ("72-year-old").
    """

    names: list[str]
    after: list[str] = Field(default_factory=list)
    unit: str | None = None
    ranges: dict[Name, tuple[float, float]]
    decimals: int = Field(default=0, ge=0, le=4)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> NumericSpec:
        for state, (low, high) in self.ranges.items():
            if not low < high:
                raise ValueError(f"range of {state!r} must have low < high (got [{low}, {high}])")
        spans = sorted(self.ranges.values())
        for (_, h1), (l2, _) in zip(spans, spans[1:], strict=False):
            if l2 < h1:
                raise ValueError("value ranges overlap; each value must belong to one state")
        if not self.names:
            raise ValueError("give at least one name for the measured quantity")
        for state, bounds in self.ranges.items():
            if any(abs(round(b, self.decimals) - b) > 1e-9 for b in bounds):
                raise ValueError(
                    f"range of {state!r} has a bound with more than {self.decimals} decimals; values written with "
                    f"{self.decimals} decimals could fall outside it (raise 'decimals' or round the bound)"
                )
        return self


class GenericSpec(_Strict):
    """Words that mention a variable without naming its state ("cough" when the states are none/dry/productive).

    A plain generic mention only says the state is not ``absent``; a negated one ("denies cough") asserts it.
    """

    patterns: list[str]
    absent: Name


class CueSpec(_Strict):
    """Extra cue words for this domain, added to the built-in lists."""

    negation_before: list[str] = Field(default_factory=list)
    negation_after: list[str] = Field(default_factory=list)
    uncertainty: list[str] = Field(default_factory=list)
    uncertainty_after: list[str] = Field(default_factory=list)
    other_subject: list[str] = Field(default_factory=list)
    terminators: list[str] = Field(default_factory=list)


class TextSpec(_Strict):
    """What a realisation is and the format it must respect (checked by the Schema Validator)."""

    kind: str = "record"
    openings: list[str] = Field(default_factory=list)
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=8000, ge=1)
    forbidden: list[str] = Field(default_factory=list)
    cues: CueSpec = Field(default_factory=CueSpec)


# -- compiled lexicon -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """What a matched token sequence means: a state of a variable, a numeric name, or a cue of some kind."""

    kind: str  # "state" | "numeric" | "numeric_after" | "generic" | a cue kind (see compile_lexicon)
    variable: str = ""
    state: str = ""
    opens_negation: bool = False  # a state pattern that starts with a negation cue ("no recent travel")


@dataclass(frozen=True)
class NumericRule:
    """Value ranges of a measured variable, sorted by lower bound."""

    ranges: tuple[tuple[float, float, str], ...]
    decimals: int
    unit: str | None

    def state_of(self, value: float) -> str | None:
        """The state whose range holds ``value`` (the top range includes its upper bound), else None."""
        for i, (low, high, state) in enumerate(self.ranges):
            if low <= value < high or (i == len(self.ranges) - 1 and value == high):
                return state
        return None


@dataclass(frozen=True)
class Lexicon:
    """A domain's compiled lexicon; built by :func:`compile_lexicon`."""

    order: tuple[str, ...]
    roles: Mapping[str, str]
    descriptions: Mapping[str, str]
    states: Mapping[str, tuple[str, ...]]
    phrases: Mapping[str, Mapping[str, tuple[str, ...]]]
    negation: Mapping[str, Mapping[str, str]]
    negative_states: Mapping[str, frozenset[str]]
    generic_absent: Mapping[str, str]
    numeric: Mapping[str, NumericRule]
    text: TextSpec
    table: Mapping[str, tuple[tuple[tuple[str, ...], Entry], ...]] = field(repr=False)
    #: Sentences already read, with their mentions (filled by ``tools.extract``).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def observed(self) -> tuple[str, ...]:
        """Variables a realisation must state, in realisation order."""
        return tuple(v for v in self.order if self.roles[v] == "observed")

    @property
    def latent(self) -> tuple[str, ...]:
        """Variables a realisation must not assert."""
        return tuple(v for v in self.order if self.roles[v] == "latent")

    def label(self, var: str) -> str:
        """A human name for ``var``: its description, else its name."""
        return self.descriptions.get(var) or var

    def describe(self, var: str, state: str) -> str:
        """``state``, with its value range for a measured variable: ``HIGH (100 to 180 bpm)``."""
        rule = self.numeric.get(var)
        span = next(((lo, hi) for lo, hi, s in rule.ranges if s == state), None) if rule else None
        if rule is None or span is None:
            return state
        unit = f" {rule.unit}" if rule.unit else ""
        return f"{state} ({span[0]:g} to {span[1]:g}{unit})"


def _means(entry: Entry) -> str:
    return f"{entry.variable}={entry.state}" if entry.kind == "state" else f"a value of {entry.variable}"


def _default_phrase(var: str, state: str) -> str:
    return f"{var}: {state}."


def compile_lexicon(
    network: Network,
    variables: Mapping[str, VariableMeta],
    text: TextSpec,
    where: Where,
) -> Lexicon | list[Problem]:
    """Build and check the lexicon of a domain; return every problem found instead when there are any."""
    problems: list[Problem] = []
    order = tuple(v for v in variables if v in network) + tuple(v for v in network.names if v not in variables)
    roles = {v: (variables[v].role if v in variables else "observed") for v in order}
    descriptions = {v: variables[v].description or "" for v in order if v in variables}
    phrases: dict[str, dict[str, tuple[str, ...]]] = {}
    negation: dict[str, dict[str, str]] = {}
    negative_states: dict[str, frozenset[str]] = {}
    generic_absent: dict[str, str] = {}
    numeric: dict[str, NumericRule] = {}
    table: dict[tuple[str, ...], tuple[Entry, str]] = {}

    def add(tokens: tuple[str, ...], entry: Entry, at: str) -> None:
        if not tokens:
            problems.append(Problem(at, "a pattern needs at least one word"))
            return
        known = table.get(tokens)
        if known is None:
            table[tokens] = (entry, at)
        elif known[0] != entry:
            problems.append(
                Problem(
                    at,
                    f"pattern {' '.join(tokens)!r} would mean both {_means(known[0])} ({known[1]}) and {_means(entry)}",
                )
            )

    for var in order:
        meta = variables.get(var)
        states = network.states(var)
        base: tuple[str | int, ...] = ("variables", var)
        given = dict(meta.states) if meta is not None else {}
        for state in given:
            if state not in states:
                problems.append(
                    Problem(
                        where((*base, "states", state)), f"{var} has no state {state!r} (valid: {', '.join(states)})"
                    )
                )
        neg = dict(meta.negation) if meta is not None else {}
        for src, dst in neg.items():
            if src not in states or dst not in states:
                problems.append(
                    Problem(
                        where((*base, "negation", src)),
                        f"negation map {src!r} -> {dst!r} must name states of {var} ({', '.join(states)})",
                    )
                )
        explicit = bool(neg)
        if len(states) == 2 and not neg:
            neg = {states[0]: states[1], states[1]: states[0]}  # "not A" is B when there are only two states
        negation[var] = {s: d for s, d in neg.items() if s in states and d in states}
        negative_states[var] = frozenset(
            negation[var].values() if explicit else (s for s in states if s.lower() in NEGATIVE_NAMES)
        )
        if meta is not None and meta.generic is not None:
            if meta.generic.absent not in states:
                problems.append(
                    Problem(
                        where((*base, "generic", "absent")),
                        f"{var} has no state {meta.generic.absent!r} (valid: {', '.join(states)})",
                    )
                )
            generic_absent[var] = meta.generic.absent
            for i, pattern in enumerate(meta.generic.patterns):
                add(words(pattern), Entry("generic", var), where((*base, "generic", "patterns", i)))
        if meta is not None and meta.numeric is not None:
            spec_n = meta.numeric
            bad = [s for s in spec_n.ranges if s not in states]
            if bad:
                problems.append(
                    Problem(where((*base, "numeric", "ranges")), f"{var} has no state(s) {', '.join(map(repr, bad))}")
                )
            numeric[var] = NumericRule(
                tuple(sorted((lo, hi, s) for s, (lo, hi) in spec_n.ranges.items())), spec_n.decimals, spec_n.unit
            )
            for i, name in enumerate(spec_n.names):
                add(words(name), Entry("numeric", var), where((*base, "numeric", "names", i)))
            for i, name in enumerate(spec_n.after):
                add(words(name), Entry("numeric_after", var), where((*base, "numeric", "after", i)))
        var_phrases: dict[str, tuple[str, ...]] = {}
        for state in states:
            entry = given.get(state)
            here = (*base, "states", state)
            if entry is None or not entry.phrases:
                if roles[var] == "observed" and given:
                    problems.append(Problem(where(here), f"observed variable {var} needs phrases for state {state!r}"))
                    continue
                if roles[var] == "observed" and not given:
                    var_phrases[state] = (_default_phrase(var, state),)
                    add(words(f"{var} {state}"), Entry("state", var, state), where(base))
            else:
                var_phrases[state] = tuple(entry.phrases)
                for i, phrase in enumerate(entry.phrases):
                    if VALUE_SLOT in phrase and var not in numeric:
                        problems.append(
                            Problem(where((*here, "phrases", i)), f"{VALUE_SLOT} needs a 'numeric' block on {var}")
                        )
                    if var in numeric and state not in {s for *_, s in numeric[var].ranges} and VALUE_SLOT in phrase:
                        problems.append(Problem(where((*here, "phrases", i)), f"{state!r} has no numeric range"))
            for i, pattern in enumerate(entry.patterns if entry is not None else []):
                add(words(pattern), Entry("state", var, state), where((*here, "patterns", i)))
        phrases[var] = var_phrases

    cues = text.cues
    cue_kinds: dict[tuple[str, ...], str] = {}
    both = {frozenset({"neg_before", "neg_after"}): "neg_both", frozenset({"unc_before", "unc_after"}): "unc_both"}
    for kind, builtin, extra, key in (
        ("neg_before", NEGATION_BEFORE, cues.negation_before, "negation_before"),
        ("neg_after", NEGATION_AFTER, cues.negation_after, "negation_after"),
        ("unc_before", UNCERTAINTY, cues.uncertainty, "uncertainty"),
        ("unc_after", UNCERTAINTY_AFTER, cues.uncertainty_after, "uncertainty_after"),
        ("other", OTHER_SUBJECT, cues.other_subject, "other_subject"),
        ("self", SELF_SUBJECT, (), ""),
        ("term", TERMINATORS, cues.terminators, "terminators"),
        ("term_soft", CLAUSE_TERMINATORS, (), ""),
        ("affirm", AFFIRM_AFTER, (), ""),
        ("pseudo", PSEUDO, (), ""),
    ):
        for i, cue in enumerate((*builtin, *extra)):
            tokens = words(cue)
            if not tokens:
                problems.append(Problem(where(("text", "cues", key, i - len(builtin))), "a cue needs a word"))
                continue
            known = cue_kinds.get(tokens)
            if known is not None and frozenset({known, kind}) in both:
                cue_kinds[tokens] = both[frozenset({known, kind})]  # "denied dyspnea" and "dyspnea denied"
            elif known is None:
                cue_kinds[tokens] = kind  # otherwise the first list to claim a cue keeps it
    for tokens, kind in cue_kinds.items():
        if tokens not in table:  # a domain pattern spelled like a cue wins
            table[tokens] = (Entry(kind), "built-in cue list")
    negators = {t for t, k in cue_kinds.items() if k in ("neg_before", "neg_both")}
    for tokens, (meaning, at) in list(table.items()):
        if meaning.kind == "state" and any(tokens[:k] in negators for k in range(1, len(tokens))):
            table[tokens] = (Entry("state", meaning.variable, meaning.state, opens_negation=True), at)

    by_first: dict[str, list[tuple[tuple[str, ...], Entry]]] = {}
    for tokens, (meaning, _) in table.items():
        by_first.setdefault(tokens[0], []).append((tokens, meaning))
    lexicon = Lexicon(
        order=order,
        roles=roles,
        descriptions=descriptions,
        states={v: network.states(v) for v in order},
        phrases=phrases,
        negation=negation,
        negative_states=negative_states,
        generic_absent=generic_absent,
        numeric=numeric,
        text=text,
        table={k: tuple(sorted(v, key=lambda te: -len(te[0]))) for k, v in by_first.items()},
    )
    if problems:
        return problems
    return _round_trip_problems(lexicon, variables, where) or lexicon


def fill_value(phrase: str, value: float, decimals: int) -> str:
    """Put a drawn value into a phrase's ``{value}`` slot."""
    return phrase.replace(VALUE_SLOT, f"{value:.{decimals}f}")


def _probe_values(rule: NumericRule, state: str) -> list[float]:
    low, high = next((lo, hi) for lo, hi, s in rule.ranges if s == state)
    step = 10.0**-rule.decimals
    top = high if (low, high, state) == rule.ranges[-1] else high - step
    return [low, max(low, top)]


def _round_trip_problems(lexicon: Lexicon, variables: Mapping[str, Any], where: Where) -> list[Problem]:
    """Every phrase must read back as exactly its own fact; every opening as no fact at all."""
    from tools.extract import extract  # the extractor depends on this module's types

    problems: list[Problem] = []
    for var, by_state in lexicon.phrases.items():
        for state, phrase_list in by_state.items():
            for i, phrase in enumerate(phrase_list):
                texts = [phrase]
                if var in lexicon.numeric and VALUE_SLOT in phrase:
                    rule = lexicon.numeric[var]
                    texts = [fill_value(phrase, v, rule.decimals) for v in _probe_values(rule, state)]
                for text in texts:
                    got = extract(lexicon, text)
                    stated = got.stated()
                    if stated != {var: state}:
                        found = ", ".join(f"{k}={v}" for k, v in sorted(stated.items())) or "no fact"
                        at = where(("variables", var, "states", state, "phrases", i)) if var in variables else where(())
                        problems.append(
                            Problem(
                                at, f"phrase {text!r} reads back as {found}, not {var}={state}; add or fix patterns"
                            )
                        )
                        break
    for i, opening in enumerate(lexicon.text.openings):
        stated = extract(lexicon, opening).stated()
        if stated:
            found = ", ".join(f"{k}={v}" for k, v in sorted(stated.items()))
            problems.append(Problem(where(("text", "openings", i)), f"an opening must state no fact; reads as {found}"))
    return problems
