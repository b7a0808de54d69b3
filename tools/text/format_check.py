"""Schema checks of a realised record: skeleton values are states, and the text keeps the spec's format rules."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from causalsynth.tools.causal.network import Network
from causalsynth.tools.tabular import columns_of
from causalsynth.tools.text.lexicon import TextSpec
from causalsynth.tools.text.realisation import Violation

#: Template slots or markup a finished text must not contain ("{value}", "<VAR>", "[STATE]").
_PLACEHOLDER = re.compile(r"\{[^{}\s]{0,40}\}|<[A-Za-z_][A-Za-z0-9_ ]{0,40}>|\[[A-Z_]{2,40}\]")


def check_skeleton(network: Network, skeleton: Mapping[str, str]) -> list[Violation]:
    """Each variable is present and holds one of its states."""
    out: list[Violation] = []
    for var in network.names:
        value = skeleton.get(var)
        states = network.states(var)
        if value not in states:
            out.append(
                Violation(
                    kind="invalid_state",
                    variable=var,
                    expected=None,
                    found=value,
                    message=f"{var}={value!r} is not a state of {var} (valid: {', '.join(states)})",
                )
            )
    return out


def skeletons_to_check(network: Network, skeletons: Sequence[Mapping[str, str]]) -> list[int]:
    """Indices of the skeletons ``check_skeleton`` may fault (a variable missing or not one of its states).

    One set per variable instead of a lookup per value; the others need no per-record check.
    """
    if not skeletons:
        return []
    names = network.names
    try:
        columns = columns_of(skeletons, names)
    except KeyError:  # a variable is missing somewhere: check every record
        return list(range(len(skeletons)))
    suspects: set[int] = set()
    for var, column in zip(names, columns, strict=True):
        states = set(network.states(var))
        if not states.issuperset(column):
            suspects.update(i for i, value in enumerate(column) if value not in states)
    return sorted(suspects)


def texts_to_check(texts: Sequence[str], rules: TextSpec) -> list[int]:
    """Indices of the texts ``check_text`` may fault; the checks run over the joined batch first, in C.

    A length outside the limits, a forbidden phrase or a placeholder character anywhere in the batch makes the texts
    that hold it suspects; the others pass ``check_text`` unchanged.
    """
    if not texts:
        return []
    lengths = np.fromiter(map(len, map(str.strip, texts)), np.int64, len(texts))
    suspects = set(np.flatnonzero((lengths < rules.min_chars) | (lengths > rules.max_chars)).tolist())
    joined = "\x00".join(texts)
    lowered = joined.lower() if rules.forbidden else joined
    markers = [p.lower() for p in rules.forbidden if p.lower() in lowered] + [c for c in "{<[" if c in joined]
    if markers:
        suspects.update(i for i, t in enumerate(texts) if any(m in t or m in t.lower() for m in markers))
    return sorted(suspects)


def check_text(text: str, rules: TextSpec) -> list[Violation]:
    """Length limits, forbidden phrases (case-insensitive) and leftover placeholders."""

    def bad(found: str, message: str) -> Violation:
        return Violation(kind="format", variable="text", expected=None, found=found, message=message)

    out: list[Violation] = []
    n = len(text.strip())
    if n < rules.min_chars:
        out.append(bad(str(n), f"the text has {n} characters; at least {rules.min_chars} are required"))
    if n > rules.max_chars:
        out.append(bad(str(n), f"the text has {n} characters; at most {rules.max_chars} are allowed"))
    lowered = text.lower()
    for phrase in rules.forbidden:
        if phrase.lower() in lowered:
            out.append(bad(phrase, f"the text contains the forbidden phrase {phrase!r}"))
    slot = _PLACEHOLDER.search(text) if ("{" in text or "<" in text or "[" in text) else None
    if slot:
        out.append(bad(slot.group(0), f"the text contains an unfilled placeholder {slot.group(0)!r}"))
    return out
