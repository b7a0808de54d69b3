"""The lexicon: how each variable's states are written (realisation phrases) and read back (extraction patterns).

A spec's ``variables:`` entries may carry, per state, ``phrases`` (whole sentences the template realiser picks
from) and ``patterns`` (the words that assert the state in any text), plus a ``negation`` map (a negated mention
of one state asserts another: "denies dyspnea" -> dysp=no) and, for measured quantities, a ``numeric`` block
(names, unit and one value range per state: "heart rate 128 bpm" -> HR=HIGH).

Compiling checks the lexicon as a whole and reports every problem with its spec location: states that do not
exist, observed variables a realiser could not state, a pattern that asserts two different facts, and phrases
that the extractor would not read back as exactly the fact they were written for (the round trip that makes
template realisation 100% realisable by construction). A variable without a lexicon gets ``"<name>: <state>."``,
read back by exactly those words, whatever the state's name: symbols are spelled out ("CO2Report: below 7.5.",
"at least 7.5"), and states that would still read alike are told apart by position ("(state 2 of 3)").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from causalsynth.tools.causal.network import Network
from causalsynth.tools.errors import Problem
from causalsynth.tools.text.sentences import sentences
from causalsynth.tools.yamlio import scalar_text

Name = Annotated[str, BeforeValidator(scalar_text)]
Where = Callable[[tuple[str | int, ...]], str]

#: Placeholder a numeric variable's phrases use for the value the realiser draws.
VALUE_SLOT = "{value}"
_VALUE_MARGIN = 16  # characters a drawn value may add to a phrase, when fitting the default text length

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
    #: Few-shot examples of the style, in every LLM generator's system prompt (retrieved references come on top).
    examples: list[str] = Field(default_factory=list)
    #: Anchored realisation: how many sentences of its own the model may write between and after the fact phrases
    #: (connective text; each is kept only when it states nothing about any variable). None: the default (2).
    free_sentences: int | None = Field(default=None, ge=0, le=20)


# -- compiled lexicon -------------------------------------------------------------------------------------------
class VariableMeta(_Strict):
    """Per-variable metadata: what it means, whether a text must state it, and its lexicon (see above)."""

    description: str | None = None
    role: Literal["observed", "latent"] = "observed"
    states: dict[Name, StateWords] = Field(default_factory=dict)
    negation: dict[Name, Name] = Field(default_factory=dict)
    numeric: NumericSpec | None = None
    generic: GenericSpec | None = None


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
    #: Patterns by first word, then by length (longest first): ``{word: ((length, {words: meaning}), ...)}``.
    table: Mapping[str, tuple[tuple[int, Mapping[tuple[str, ...], Entry]], ...]] = field(repr=False)
    #: Sentences already read, with their mentions (filled by ``tools.text.extract``).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Per-lexicon state of the batch fact check (``tools.text.batch_check``).
    index: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def patterns(self) -> Iterator[tuple[tuple[str, ...], Entry]]:
        """Every pattern (its words) with what it means, cue words included."""
        for by_length in self.table.values():
            for _, by_words in by_length:
                yield from by_words.items()

    def meaning(self, tokens: tuple[str, ...]) -> Entry | None:
        """What exactly these words mean as one pattern, if anything."""
        for length, by_words in self.table.get(tokens[0], ()) if tokens else ():
            if length == len(tokens):
                return by_words.get(tokens)
        return None

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


#: Symbols the tokenizer drops, spelled out so that a default phrase keeps them ("<7.5" -> "below 7.5"); the
#: longer spellings come first.
_SPELLED = (
    (re.compile(r"<=|=<|≤"), " at most "),
    (re.compile(r">=|=>|≥"), " at least "),
    (re.compile(r"<"), " below "),
    (re.compile(r">"), " above "),
    (re.compile(r"\+"), " plus "),
    (re.compile(r"%"), " percent "),
    (re.compile(r"(?<![^\W_])-(?![^\W_])"), " minus "),  # a dash between letters or digits stays a separator
)
#: Characters that would end a sentence or make a comma token inside a phrase ("Transp." -> "Transp"); control
#: characters too (the extractor marks sentence ends with one).
_PHRASE_BREAKS = re.compile(r"(?<!\d)\.|\.(?!\d)|[;!?,\x00-\x1f\x7f]")


def _spoken(name: str) -> str:
    """``name`` as a default phrase writes it: comparison and sign symbols spelled out, sentence ends removed."""
    for pattern, spelled in _SPELLED:
        name = pattern.sub(spelled, name)
    return " ".join(_PHRASE_BREAKS.sub(" ", name).split())


def _default_phrase(var: str, state: str, qualifier: str = "") -> str:
    """``"VAR: STATE."``, symbols spelled out; ``qualifier`` tells apart states that would read the same."""
    return f"{_spoken(var)}: {_spoken(state)}{qualifier}."


def _phrase_tokens(phrase: str) -> tuple[str, ...] | None:
    """The words the extractor reads in ``phrase``; None unless it is one sentence of words and numbers only."""
    read = [tokens for part in sentences(phrase) if (tokens := tuple(t for t in tokenize(part) if t != BREAK))]
    if len(read) != 1 or any(t in (",", "<", ">", "≤", "≥") for t in read[0]):
        return None
    return read[0]


def compile_lexicon(
    network: Network,
    variables: Mapping[str, VariableMeta],
    text: TextSpec,
    where: Where,
) -> Lexicon | list[Problem]:
    """Build and check the lexicon of a domain; return every problem found instead when there are any."""
    compiler = _Compiler(network, variables, text, where)
    for var in compiler.order:
        compiler.variable(var)
    compiler.defaults()  # after every authored pattern, so that a default phrase can avoid them all
    compiler.cues()
    lexicon = compiler.lexicon()
    return compiler.problems or lexicon


class _Compiler:
    """Collects a lexicon's parts and every problem with them, one variable at a time."""

    def __init__(self, network: Network, variables: Mapping[str, VariableMeta], text: TextSpec, where: Where):
        self.network = network
        self.variables = variables
        self.text = text
        self.where = where
        self.problems: list[Problem] = []
        self.order = tuple(v for v in variables if v in network) + tuple(v for v in network.names if v not in variables)
        self.roles = {v: (variables[v].role if v in variables else "observed") for v in self.order}
        self.phrases: dict[str, dict[str, tuple[str, ...]]] = {}
        self.negation: dict[str, dict[str, str]] = {}
        self.negative_states: dict[str, frozenset[str]] = {}
        self.generic_absent: dict[str, str] = {}
        self.numeric: dict[str, NumericRule] = {}
        self.table: dict[tuple[str, ...], tuple[Entry, str]] = {}
        self.cue_kinds: dict[tuple[str, ...], str] = {}
        self.pending: list[str] = []  # observed variables without a lexicon: they get "VAR: STATE." phrases

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.where(path), message))

    def add(self, tokens: tuple[str, ...], entry: Entry, path: tuple[str | int, ...]) -> None:
        """Register a word sequence; the same words meaning two things is a problem."""
        at = self.where(path)
        if not tokens:
            self.problems.append(Problem(at, "a pattern needs at least one word"))
            return
        known = self.table.get(tokens)
        if known is None:
            self.table[tokens] = (entry, at)
        elif known[0] != entry:
            meaning = f"{_means(known[0])} ({known[1]}) and {_means(entry)}"
            self.problems.append(Problem(at, f"pattern {' '.join(tokens)!r} would mean both {meaning}"))

    def variable(self, var: str) -> None:
        meta = self.variables.get(var)
        states = self.network.states(var)
        base: tuple[str | int, ...] = ("variables", var)
        for state in meta.states if meta is not None else {}:
            if state not in states:
                self.problem((*base, "states", state), f"{var} has no state {state!r} (valid: {', '.join(states)})")
        self._negation(var, meta, states, base)
        if meta is not None and meta.generic is not None:
            if meta.generic.absent not in states:
                valid = ", ".join(states)
                self.problem(
                    (*base, "generic", "absent"), f"{var} has no state {meta.generic.absent!r} (valid: {valid})"
                )
            self.generic_absent[var] = meta.generic.absent
            for i, pattern in enumerate(meta.generic.patterns):
                self.add(words(pattern), Entry("generic", var), (*base, "generic", "patterns", i))
        if meta is not None and meta.numeric is not None:
            self._numeric(var, meta.numeric, states, base)
        self._state_words(var, meta, states, base)

    def _negation(
        self, var: str, meta: VariableMeta | None, states: tuple[str, ...], base: tuple[str | int, ...]
    ) -> None:
        neg = dict(meta.negation) if meta is not None else {}
        for src, dst in neg.items():
            if src not in states or dst not in states:
                self.problem(
                    (*base, "negation", src),
                    f"negation map {src!r} -> {dst!r} must name states of {var} ({', '.join(states)})",
                )
        explicit = bool(neg)
        if len(states) == 2 and not neg:
            neg = {states[0]: states[1], states[1]: states[0]}  # "not A" is B when there are only two states
        self.negation[var] = {s: d for s, d in neg.items() if s in states and d in states}
        self.negative_states[var] = frozenset(
            self.negation[var].values() if explicit else (s for s in states if s.lower() in NEGATIVE_NAMES)
        )

    def _numeric(self, var: str, spec: NumericSpec, states: tuple[str, ...], base: tuple[str | int, ...]) -> None:
        bad = [s for s in spec.ranges if s not in states]
        if bad:
            self.problem((*base, "numeric", "ranges"), f"{var} has no state(s) {', '.join(map(repr, bad))}")
        ranges = tuple(sorted((lo, hi, s) for s, (lo, hi) in spec.ranges.items()))
        self.numeric[var] = NumericRule(ranges, spec.decimals, spec.unit)
        for i, name in enumerate(spec.names):
            self.add(words(name), Entry("numeric", var), (*base, "numeric", "names", i))
        for i, name in enumerate(spec.after):
            self.add(words(name), Entry("numeric_after", var), (*base, "numeric", "after", i))

    def _state_words(
        self, var: str, meta: VariableMeta | None, states: tuple[str, ...], base: tuple[str | int, ...]
    ) -> None:
        given = dict(meta.states) if meta is not None else {}
        observed = self.roles[var] == "observed"
        rule = self.numeric.get(var)
        ranged = {s for *_, s in rule.ranges} if rule is not None else set()
        out: dict[str, tuple[str, ...]] = {}
        for state in states:
            words_of = given.get(state)
            here = (*base, "states", state)
            if words_of is None or not words_of.phrases:
                if observed and given:
                    self.problem(here, f"observed variable {var} needs phrases for state {state!r}")
                    continue
                if observed and not given and var not in self.pending:  # no lexicon at all: see defaults()
                    self.pending.append(var)
            else:
                out[state] = tuple(words_of.phrases)
                for i, phrase in enumerate(words_of.phrases):
                    if VALUE_SLOT in phrase and rule is None:
                        self.problem((*here, "phrases", i), f"{VALUE_SLOT} needs a 'numeric' block on {var}")
                    elif VALUE_SLOT in phrase and state not in ranged:
                        self.problem((*here, "phrases", i), f"{state!r} has no numeric range")
            for i, pattern in enumerate(words_of.patterns if words_of is not None else []):
                self.add(words(pattern), Entry("state", var, state), (*here, "patterns", i))
        self.phrases[var] = out

    def defaults(self) -> None:
        """``"VAR: STATE."`` phrases, each read back by exactly its own words, for variables without a lexicon.

        Any state name works: symbols are spelled out ("<7.5" -> "below 7.5"); states whose phrases would read
        the same (they differ only in case or punctuation, or have no words at all), or would read as a pattern
        already taken, are told apart by their position: "VAR: a-b (state 2 of 3)."
        """
        for var in self.pending:
            states = self.network.states(var)
            plain = {state: _phrase_tokens(_default_phrase(var, state)) for state in states}
            readings = [tokens for tokens in plain.values() if tokens is not None]
            for i, state in enumerate(states):
                phrase, tokens = _default_phrase(var, state), plain[state]
                name_only = tokens is not None and tokens == _phrase_tokens(f"{_spoken(var)}.")
                if tokens is None or name_only or readings.count(tokens) > 1 or tokens in self.table:
                    phrase = _default_phrase(var, state, f" (state {i + 1} of {len(states)})")
                    tokens = _phrase_tokens(phrase)
                if tokens is None or tokens in self.table:
                    self.problem(("variables", var), f"no default phrase of {var}={state} reads back unambiguously")
                    continue
                self.phrases[var][state] = (phrase,)
                self.add(tokens, Entry("state", var, state), ("variables", var))

    def cues(self) -> None:
        """The built-in cue lists plus the spec's; a domain pattern spelled like a cue wins over the cue."""
        extra = self.text.cues
        both = {frozenset({"neg_before", "neg_after"}): "neg_both", frozenset({"unc_before", "unc_after"}): "unc_both"}
        for kind, builtin, added, key in (
            ("neg_before", NEGATION_BEFORE, extra.negation_before, "negation_before"),
            ("neg_after", NEGATION_AFTER, extra.negation_after, "negation_after"),
            ("unc_before", UNCERTAINTY, extra.uncertainty, "uncertainty"),
            ("unc_after", UNCERTAINTY_AFTER, extra.uncertainty_after, "uncertainty_after"),
            ("other", OTHER_SUBJECT, extra.other_subject, "other_subject"),
            ("self", SELF_SUBJECT, (), ""),
            ("term", TERMINATORS, extra.terminators, "terminators"),
            ("term_soft", CLAUSE_TERMINATORS, (), ""),
            ("affirm", AFFIRM_AFTER, (), ""),
            ("pseudo", PSEUDO, (), ""),
        ):
            for i, cue in enumerate((*builtin, *added)):
                tokens = words(cue)
                if not tokens:
                    self.problem(("text", "cues", key, i - len(builtin)), "a cue needs a word")
                    continue
                known = self.cue_kinds.get(tokens)
                if known is not None and frozenset({known, kind}) in both:
                    self.cue_kinds[tokens] = both[frozenset({known, kind})]  # "denied dyspnea", "dyspnea denied"
                elif known is None:
                    self.cue_kinds[tokens] = kind  # otherwise the first list to claim a cue keeps it
        for tokens, kind in self.cue_kinds.items():
            self.table.setdefault(tokens, (Entry(kind), "built-in cue list"))
        negators = {t for t, k in self.cue_kinds.items() if k in ("neg_before", "neg_both")}
        for tokens, (meaning, at) in list(self.table.items()):
            if meaning.kind == "state" and any(tokens[:k] in negators for k in range(1, len(tokens))):
                self.table[tokens] = (Entry("state", meaning.variable, meaning.state, opens_negation=True), at)

    def fitted_text(self) -> TextSpec:
        """The text spec, its default ``max_chars`` raised to fit the longest text the phrases make.

        A network of hundreds of variables stated one sentence each ("VAR: STATE.") needs more than the default
        8,000 characters; a limit the spec sets stays as written.
        """
        if "max_chars" in self.text.model_fields_set:
            return self.text
        observed = [v for v in self.order if self.roles[v] == "observed" and self.phrases.get(v)]
        longest = sum(max(len(p) for ps in self.phrases[v].values() for p in ps) + 1 for v in observed)
        longest += max((len(o) + 1 for o in self.text.openings), default=0)
        longest += sum(_VALUE_MARGIN for v in observed if v in self.numeric)  # a drawn value may outgrow "{value}"
        return self.text if longest <= self.text.max_chars else self.text.model_copy(update={"max_chars": longest})

    def lexicon(self) -> Lexicon:
        by_first: dict[str, dict[int, dict[tuple[str, ...], Entry]]] = {}
        for tokens, (meaning, _) in self.table.items():
            by_first.setdefault(tokens[0], {}).setdefault(len(tokens), {})[tokens] = meaning
        return Lexicon(
            order=self.order,
            roles=self.roles,
            descriptions={v: self.variables[v].description or "" for v in self.order if v in self.variables},
            states={v: self.network.states(v) for v in self.order},
            phrases=self.phrases,
            negation=self.negation,
            negative_states=self.negative_states,
            generic_absent=self.generic_absent,
            numeric=self.numeric,
            text=self.fitted_text(),
            table={word: tuple(sorted(lengths.items(), key=lambda kv: -kv[0])) for word, lengths in by_first.items()},
        )


def fill_value(phrase: str, value: float, decimals: int) -> str:
    """Put a drawn value into a phrase's ``{value}`` slot."""
    return phrase.replace(VALUE_SLOT, f"{value:.{decimals}f}")
