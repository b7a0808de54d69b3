"""Prompts, grammars and answer parsing for drafting and expanding a lexicon with a chat model.

A model only proposes text; ``tools.text.lexicon_check`` decides what is kept. Models that take a GBNF grammar
(our llama.cpp model) write one sentence per call under a grammar that may start it with a register's opening
words ("On review, ", "History: "): a tiny model mostly copies its example, so the openings, drawn per call, are
what varies its register. Other models are asked for several lines at once and their answer is split into lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from causalsynth.tools.text.lexicon import Lexicon

#: Characters of a proposed sentence after its first letter (what a phrase of a note needs, nothing more).
_SENTENCE_CHARS = "A-Za-z0-9 ,'/%()-"
#: Around an anchored term: words only (a number there could be read as another measurement), a few of them: the
#: longer a tiny model writes, the less sense it makes.
_WORD_CHARS = "a-zA-Z ,'-"
AROUND_CHARS = 32
#: How each register is asked for, and the opening words a grammar forces (one drawn per call): a tiny model
#: otherwise copies its example word for word, which adds nothing.
REGISTER_ASK = {
    "terse": "short, terse sentence of a few words, in clinical shorthand",
    "narrative": "full narrative sentence, as a clinician writes in a letter",
    "bulleted": "chart line of the form 'Label: finding'",
}
REGISTER_OPENINGS = {
    "terse": ("Known ", "Noted: ", "Now ", "Currently ", "Patient ", "Status: "),
    "narrative": (
        "The patient ", "He ", "She ", "On review, the patient ", "On questioning, he ", "On questioning, she ",
        "At this visit the patient ", "Today he ", "Today she ", "History taking confirms the patient ",
        "In clinic today, the patient ", "On assessment, ",
    ),
    "bulleted": ("History: ", "Findings: ", "Assessment: ", "Notes: ", "Review: ", "Today: "),
}  # fmt: skip
_LINE_START = re.compile(r"^\s*(?:[-*\u2022]+|\d{1,3}[.)])\s*")


def system_prompt(lexicon: Lexicon) -> str:
    """The standing instruction: short answers for this kind of text, nothing else."""
    return (
        f"You write short sentences and terms for a {lexicon.text.kind}. Answer with exactly what is asked, "
        "one item per line, with no introduction and no comment."
    )


def fact_text(lexicon: Lexicon, var: str, state: str) -> str:
    """The fact in words: ``smoker: yes``, ``heart rate: HIGH (100 to 180 bpm)``."""
    return f"{lexicon.label(var)}: {lexicon.describe(var, state)}"


def phrase_prompt(lexicon: Lexicon, var: str, state: str, register: str, example: str | None, n: int) -> str:
    """Ask for ``n`` sentences that state one fact, in one register, with an example to vary."""
    what = REGISTER_ASK.get(register, "sentence")
    lines = [f"Fact: {fact_text(lexicon, var, state)}."]
    if example:
        lines.append(f"Example: {example}")
    if n == 1:
        lines.append(f"Write one {what} of a {lexicon.text.kind} that states this fact and no other fact.")
    else:
        lines.append(
            f"Write {n} different sentences of a {lexicon.text.kind}, each a {what}, each stating this fact and "
            "no other fact. One per line."
        )
    return "\n".join(lines)


def pattern_prompt(lexicon: Lexicon, var: str, state: str, n: int = 5) -> str:
    """Ask for the short terms that say one fact."""
    return (
        f"Fact: {fact_text(lexicon, var, state)}.\n"
        f"List {n} short terms (one to four words each) that a {lexicon.text.kind} uses to say exactly this fact. "
        "One per line."
    )


def numeric_name_prompt(lexicon: Lexicon, var: str, n: int = 4) -> str:
    """Ask for other names of a measured quantity."""
    rule = lexicon.numeric[var]
    unit = f" (in {rule.unit})" if rule.unit else ""
    return (
        f"A {lexicon.text.kind} records {lexicon.label(var)}{unit} as a number.\n"
        f"List {n} other names or abbreviations written before that number. One per line."
    )


def negation_prompt(lexicon: Lexicon, var: str, state: str) -> str:
    """Ask which state a denied mention of ``state`` means."""
    states = lexicon.states[var]
    return (
        f"{lexicon.label(var)} is one of: {', '.join(states)}.\n"
        f"A {lexicon.text.kind} says there is no {lexicon.label(var)} of the kind '{state}'. Which one of "
        f"{', '.join(states)} is it then? Answer with the state, or 'unclear'."
    )


def sentence_gbnf(opening: str = "", terms: Sequence[str] = (), numbered: Sequence[str] = ()) -> str:
    """One sentence: the opening words (if any), then the model's own, a full stop at the end.

    With ``terms`` (a state's patterns) or ``numbered`` (a measured quantity's names, each then followed by a
    number), the sentence must contain one of them, with up to about eight words before and after: the model
    chooses the words around a term it would otherwise rarely use (the round trip still reads the result).
    """
    head = f'"{_escape(opening)}" ' if opening else ""
    first = "[A-Za-z0-9]" if opening else "[A-Z]"
    if not terms and not numbered:
        return f'root ::= {head}{first} rest "."\nrest ::= ([{_SENTENCE_CHARS}] | [0-9] "." [0-9])+\n'
    options = [f'"{_escape(t)}"' for t in terms] + [f'"{_escape(n)} " [0-9]{{1,3}}' for n in numbered]
    lead = f'{head}(pre " ")?' if opening else '[A-Z] pre " "'
    return (
        f'root ::= {lead} term post? "."\n'
        f"pre ::= [{_WORD_CHARS}]{{1,{AROUND_CHARS}}}\n"
        f"term ::= {' | '.join(options)}\n"
        f"post ::= [ ,] [{_WORD_CHARS}]{{0,{AROUND_CHARS}}}\n"
    )


def terms_gbnf(n: int) -> str:
    """Up to ``n`` lines of lower-case terms."""
    items = " ".join(["item"] + ["item?"] * (n - 1))
    return f'root ::= {items}\nitem ::= [a-z] [a-z0-9 -]+ "\\n"\n'


def choice_gbnf(options: list[str]) -> str:
    """Exactly one of ``options``."""
    return "root ::= " + " | ".join(f'"{_escape(o)}"' for o in options) + "\n"


def answer_lines(content: str, limit: int = 20) -> list[str]:
    """The items of a model's answer: one per line, list markers removed, blank and heading lines skipped."""
    out: list[str] = []
    for line in content.strip().splitlines():
        item = _LINE_START.sub("", line).strip()
        if not item or item.endswith(":") or len(item) > 400:
            continue
        out.append(item)
        if len(out) >= limit:
            break
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
