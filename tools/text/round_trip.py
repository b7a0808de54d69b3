"""The lexicon round trip: every phrase must read back, through the extractor, as exactly its own fact.

Apart from ``lexicon`` because it needs the extractor, which needs the lexicon's types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from causalsynth.tools.causal.network import Network
from causalsynth.tools.errors import Problem
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import (
    VALUE_SLOT,
    Lexicon,
    NumericRule,
    TextSpec,
    VariableMeta,
    Where,
    compile_lexicon,
    fill_value,
)


def checked_lexicon(
    network: Network, variables: Mapping[str, VariableMeta], text: TextSpec, where: Where
) -> Lexicon | list[Problem]:
    """Compile a domain's lexicon and check its round trip; return every problem found instead when there are any."""
    lexicon = compile_lexicon(network, variables, text, where)
    if not isinstance(lexicon, Lexicon):
        return lexicon
    return _round_trip_problems(lexicon, variables, where) or lexicon


def _probe_values(rule: NumericRule, state: str) -> list[float]:
    low, high = next((lo, hi) for lo, hi, s in rule.ranges if s == state)
    step = 10.0**-rule.decimals
    top = high if (low, high, state) == rule.ranges[-1] else high - step
    return [low, max(low, top)]


def _round_trip_problems(lexicon: Lexicon, variables: Mapping[str, Any], where: Where) -> list[Problem]:
    """Every phrase must read back as exactly its own fact; every opening as no fact at all."""
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
