"""Draft a lexicon, or expand one with more phrasings, with any chat model; the extractor decides what is kept.

``LexiconWriter.draft`` asks, for each variable without a lexicon, the terms that say each state (patterns), other
names of a measured quantity, which state a denied mention of a multi-state variable means (negation), and
sentences that state each state (phrases); ``tools.text.lexicon_check.assemble`` keeps what reads back as
exactly its own fact. ``LexiconWriter.expand`` asks for more sentences per observed state, register by register,
and keeps those that read back as exactly their fact with the spec's lexicon, into a phrasebook
(``tools.text.phrasebook``). The model is injected; nothing it writes is executed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from causalsynth.tools.errors import CausalSynthError, UsageError
from causalsynth.tools.llm.chat_realiser import join_content
from causalsynth.tools.llm.lexicon_prompts import (
    REGISTER_OPENINGS,
    answer_lines,
    choice_gbnf,
    negation_prompt,
    numeric_name_prompt,
    pattern_prompt,
    phrase_prompt,
    sentence_gbnf,
    system_prompt,
    terms_gbnf,
)
from causalsynth.tools.llm.lexicon_screen import Screen
from causalsynth.tools.spec import Domain
from causalsynth.tools.text.lexicon import NEGATIVE_NAMES, VALUE_SLOT, Lexicon, fill_value
from causalsynth.tools.text.lexicon_check import Assembled, Dropped, Proposals, assemble, clean_phrase, phrase_reason
from causalsynth.tools.text.phrasebook import REGISTERS, Phrasebook

#: Tokens a grammar-held model may spend on one proposed sentence (a phrase is short; rambling is not kept anyway).
SENTENCE_TOKENS = 32


class LexiconModelError(CausalSynthError):
    """The chat model failed while proposing lexicon entries."""


@dataclass
class DraftResult:
    """A drafted lexicon (``assembled``), the variables drafted, and how many model calls it took."""

    assembled: Assembled
    drafted: list[str]
    calls: int
    proposals: Proposals


@dataclass
class ExpandResult:
    """What an expansion added to the phrasebook, what it dropped and why, and the model calls it took."""

    added: int = 0
    dropped: list[Dropped] = field(default_factory=list)
    calls: int = 0
    #: ``(variable, state)`` pairs still short of the target after the allowed calls.
    short: list[tuple[str, str, int]] = field(default_factory=list)


def has_lexicon(domain: Domain, var: str) -> bool:
    """Whether the spec writes ``var`` with its own words (states' phrases or patterns, or generic mentions)."""
    meta = domain.spec.variables.get(var)
    return meta is not None and (bool(meta.states) or meta.generic is not None)


class LexiconWriter:
    """Asks one chat model for lexicon proposals; seeded, so the same model and seed propose the same things."""

    def __init__(self, model: BaseChatModel, seed: int = 0, max_tokens: int = 48, screen: Screen | None = None) -> None:
        self.model = model
        #: Plausibility screens run before the round trip (``tools.llm.lexicon_screen``); None: round trip only.
        self.screen = screen
        self.seed = seed
        self.max_tokens = max_tokens
        #: Our llama.cpp model takes a GBNF grammar and a seed per call: one sentence per call, held to its form.
        self.grammar = bool(getattr(model, "accepts_grammar", False))
        self.calls = 0
        self._rng = random.Random(seed)

    def _ask(self, lexicon: Lexicon, prompt: str, grammar: str, max_tokens: int | None = None) -> str:
        messages = [SystemMessage(system_prompt(lexicon)), HumanMessage(prompt)]
        try:
            if self.grammar:
                reply = self.model.invoke(messages, grammar=grammar, max_tokens=max_tokens or self.max_tokens,
                                          seed=self.seed * 100_003 + self.calls)  # fmt: skip
            else:
                reply = self.model.invoke(messages)
        except Exception as exc:  # any provider failure: one clear error
            raise LexiconModelError(f"the chat model failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.calls += 1
        return join_content(reply.content)

    # -- draft ------------------------------------------------------------------------------------------------
    def draft(self, domain: Domain, variables: Sequence[str] | None = None, phrases_per_state: int = 4) -> DraftResult:
        """Draft the lexicon of ``variables`` (default: every variable the spec gives no words for).

        Raises:
            UsageError: an unknown variable, or nothing to draft.
            LexiconModelError: the model failed.
        """
        network = domain.network
        if variables:
            unknown = [v for v in variables if v not in network]
            if unknown:
                raise UsageError(
                    f"--variables: unknown {', '.join(unknown)} (the model has {', '.join(network.names)})"
                )
            drafted = list(dict.fromkeys(variables))
        else:
            drafted = [v for v in network.names if not has_lexicon(domain, v)]
            if not drafted:
                raise UsageError("every variable already has a lexicon; name some with --variables to redraft them")
        lexicon = domain.lexicon
        proposals = Proposals()
        for var in drafted:
            observed = lexicon.roles[var] == "observed"
            for state in lexicon.states[var]:
                terms = answer_lines(self._ask(lexicon, pattern_prompt(lexicon, var, state), terms_gbnf(5)), 8)
                proposals.state(var, state).patterns += terms
                if observed:
                    example = f"{terms[0][:1].upper()}{terms[0][1:]}." if terms else None
                    proposals.state(var, state).phrases += self._sentences(
                        lexicon, var, state, REGISTERS, [example] if example else [], 2 * phrases_per_state
                    )
            if var in lexicon.numeric:
                proposals.numeric_names[var] = answer_lines(
                    self._ask(lexicon, numeric_name_prompt(lexicon, var), terms_gbnf(4)), 6
                )
            states = lexicon.states[var]
            if len(states) > 2:
                for state in states:
                    if state.lower() in NEGATIVE_NAMES:
                        continue  # "no none" means nothing
                    answer = self._ask(lexicon, negation_prompt(lexicon, var, state), choice_gbnf([*states, "unclear"]))
                    picked = _first_state(answer, states)
                    if picked is not None and picked != state:
                        proposals.negation.setdefault(var, []).append((state, picked))
        screened: list[Dropped] = []
        if self.screen is not None:  # the words screen only: a drafted state has no phrasings to compare with
            for var, by_state in proposals.states.items():
                for state, proposal in by_state.items():
                    kept = []
                    for raw in proposal.phrases:
                        reason = self.screen.words_reason(var, clean_phrase(raw))
                        if reason is None:
                            kept.append(raw)
                        else:
                            screened.append(Dropped(var, state, "phrase", raw, reason))
                    proposal.phrases = kept
        assembled = assemble(network, domain.spec.variables, domain.spec.text, proposals, drafted,
                             max_phrases=phrases_per_state)  # fmt: skip
        assembled.dropped[:0] = screened
        return DraftResult(assembled, drafted, self.calls, proposals)

    # -- expand -----------------------------------------------------------------------------------------------
    def expand(
        self,
        domain: Domain,
        book: Phrasebook,
        per_state: int,
        registers: Sequence[str] = REGISTERS,
        calls_per_phrase: int = 3,
        after_state: Callable[[str, str], None] | None = None,
        variables: Sequence[str] | None = None,
    ) -> ExpandResult:
        """Add phrasings to ``book`` until each observed state has ``per_state`` of them (or the calls run out).

        ``domain.lexicon`` should already hold the book's phrasings (it does when the spec was loaded with its
        phrasebook): they are examples for the model and are never added twice. ``after_state(var, state)`` is
        called after each state that was worked on (the CLI saves the book there, so a long run can be stopped).
        ``variables`` limits the work to those observed variables.

        Raises:
            LexiconModelError: the model failed.
        """
        lexicon = domain.lexicon
        result = ExpandResult()
        start = self.calls
        if self.screen is not None:  # the book's phrasings pass today's screens too (they may be stricter now)
            for var, by_state in book.phrases.items():
                for state, regs in by_state.items():
                    for register, phrases in regs.items():
                        for phrase in list(phrases):
                            reason = self.screen.words_reason(var, phrase)
                            if reason is not None:
                                phrases.remove(phrase)
                                result.dropped.append(Dropped(var, state, "phrase", phrase, f"(in the book) {reason}"))
        for var in lexicon.observed:
            if variables is not None and var not in variables:
                continue
            for state in lexicon.states[var]:
                need = per_state - len(book.of(var, state))
                if need <= 0:
                    continue
                known = {p.lower() for p in lexicon.phrases[var][state]} | {p.lower() for p in book.of(var, state)}
                pool = list(lexicon.phrases[var][state])
                budget = calls_per_phrase * need if self.grammar else max(2, -(-need // 8) * 2)
                added = 0
                for i in range(budget):
                    if added >= need:
                        break
                    register = registers[(len(book.of(var, state)) + i) % len(registers)]
                    n = 1 if self.grammar else min(8, need - added)
                    for raw in self._sentences(lexicon, var, state, [register], pool, n, anchored=True):
                        phrase = clean_phrase(raw)
                        if phrase.lower() in known:
                            continue
                        known.add(phrase.lower())
                        reason = self._screen_words(var, phrase) or phrase_reason(lexicon, var, state, phrase)
                        if reason is None and self.screen is not None:
                            reason = self.screen.meaning_reason(var, state, phrase)
                        if reason is not None:
                            result.dropped.append(Dropped(var, state, "phrase", raw, reason))
                            continue
                        if self.screen is not None:
                            self.screen.add(var, state, phrase)
                        book.add(var, state, register, phrase)
                        pool.append(phrase)
                        added += 1
                        if added >= need:
                            break
                result.added += added
                if added < need:
                    result.short.append((var, state, need - added))
                if after_state is not None:
                    after_state(var, state)
        result.calls = self.calls - start
        return result

    # -- shared -----------------------------------------------------------------------------------------------
    def _screen_words(self, var: str, phrase: str) -> str | None:
        return self.screen.words_reason(var, phrase) if self.screen is not None else None

    def _sentences(
        self,
        lexicon: Lexicon,
        var: str,
        state: str,
        registers: Sequence[str],
        examples: Sequence[str],
        n: int,
        anchored: bool = False,
    ) -> list[str]:
        """``n`` proposed sentences for ``var=state`` (one call each with a grammar, else one call for all).

        A measured state's example is shown with a value drawn in its range; that number in an answer becomes
        the ``{value}`` slot again. ``anchored``: a grammar-held model must use one of the state's patterns.
        """
        out: list[str] = []
        calls = n if self.grammar else 1
        for i in range(calls):
            register = registers[i % len(registers)]
            example = self._rng.choice(list(examples)) if examples else None
            value = None
            if example is not None and VALUE_SLOT in example:
                value = self._value(lexicon, var, state)
                example = fill_value(example, float(value), lexicon.numeric[var].decimals)
            prompt = phrase_prompt(lexicon, var, state, register, example, 1 if self.grammar else n)
            opening = self._rng.choice(REGISTER_OPENINGS.get(register, ("",))) if self.grammar else ""
            terms, numbered = self._terms(lexicon, var, state) if anchored else ([], [])
            answer = self._ask(lexicon, prompt, sentence_gbnf(opening, terms, numbered), SENTENCE_TOKENS)
            for line in answer_lines(answer, n):
                if value is not None:
                    line = _with_slot(line, value)
                elif numbered:
                    line = _number_slot(line)
                out.append(line)
        return out

    def _terms(self, lexicon: Lexicon, var: str, state: str) -> tuple[list[str], list[str]]:
        """Up to eight of the state's patterns, and a measured variable's names (drawn per call)."""
        patterns = [
            " ".join(tokens)
            for tokens, entry in lexicon.patterns()
            if entry.kind == "state" and entry.variable == var and entry.state == state
        ]
        patterns = self._rng.sample(patterns, min(8, len(patterns)))
        names: list[str] = []
        if var in lexicon.numeric:
            names = [
                " ".join(tokens)
                for tokens, entry in lexicon.patterns()
                if entry.kind == "numeric" and entry.variable == var
            ]
            names = self._rng.sample(names, min(4, len(names)))
        return patterns, names

    def _value(self, lexicon: Lexicon, var: str, state: str) -> str:
        rule = lexicon.numeric[var]
        low, high = next((lo, hi) for lo, hi, s in rule.ranges if s == state)
        step = 10.0**-rule.decimals
        value = low + self._rng.random() * max(0.0, high - step - low)
        return f"{value:.{rule.decimals}f}"


def _with_slot(line: str, value: str) -> str:
    """The answer with the example's number back in its ``{value}`` slot (when it appears exactly once)."""
    found = list(re.finditer(rf"(?<![\d.]){re.escape(value)}(?![\d]|\.\d)", line))
    if len(found) != 1:
        return line
    m = found[0]
    return line[: m.start()] + VALUE_SLOT + line[m.end() :]


def _number_slot(line: str) -> str:
    """A measured phrasing's one number as the ``{value}`` slot (so each record draws its own value)."""
    found = list(re.finditer(r"(?<![\d.])\d+(?:\.\d+)?(?![\d])", line))
    if len(found) != 1:
        return line
    m = found[0]
    return line[: m.start()] + VALUE_SLOT + line[m.end() :]


def _first_state(answer: str, states: Sequence[str]) -> str | None:
    """The state an answer names first (a whole word, any case), else None."""
    text = answer.strip().lower()
    hits = [(m.start(), s) for s in states for m in [re.search(rf"\b{re.escape(s.lower())}\b", text)] if m]
    return min(hits)[1] if hits else None
