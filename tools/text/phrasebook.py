"""The phrasebook: more verified phrasings per state, in a file beside the spec, so runs need no LLM.

``asia.yaml`` keeps the phrasings ``causalsynth lexicon expand`` found in ``asia.phrases.yaml``::

    model: local:SmolLM2-135M-Instruct.Q4_0.gguf     # who proposed them (for the reader)
    openings: ["Chest clinic follow-up."]              # optional: more first sentences (each states no fact)
    phrases:
      smoke:
        "yes":
          terse: ["Smokes daily."]
          narrative: ["On questioning, the patient admits to smoking."]
          bulleted: ["Smoking: current smoker."]

Loading the spec loads its phrasebook: every phrasing must read back as exactly its own fact with the spec's
lexicon (the same round trip as the spec's own phrases; a problem names the phrasebook's file and line), every
opening must read as no fact at all, and the template planner, hence anchored realisation, then draws from the
spec's phrases and openings and these alike. Nothing in the file is executed or trusted: it is read as text and
checked. :func:`screen_book` is the same check as a filter: it keeps what reads back and says why the rest went
(``causalsynth lexicon import``, for phrasings written outside causalsynth).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from causalsynth.tools.errors import Problem, SpecError
from causalsynth.tools.tabular import write_text
from causalsynth.tools.text.extract import extract
from causalsynth.tools.text.lexicon import Lexicon
from causalsynth.tools.text.lexicon_check import Dropped, form_reason, phrase_reason
from causalsynth.tools.yamlio import format_path, line_of, load_yaml, scalar_text

SUFFIX = ".phrases.yaml"
REGISTERS = ("terse", "narrative", "bulleted")
HEADER = (
    "# More ways to state each fact, proposed by an LLM (causalsynth lexicon expand) and kept only when the\n"
    "# extractor reads each back as exactly its own fact. Loaded with the spec beside it; delete a line to drop it.\n"
)


def phrasebook_path(spec_path: Path) -> Path:
    """Where the phrasebook of ``spec_path`` lives."""
    return spec_path.with_name(spec_path.stem + SUFFIX)


@dataclass
class Phrasebook:
    """Phrasings by variable, state and register, and the model that proposed them."""

    model: str = ""
    phrases: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    #: More first sentences for the texts (each states no fact).
    openings: list[str] = field(default_factory=list)
    #: Where each phrasing was read: ``(var, state, register, index) -> "file:line"`` (empty for a new book);
    #: openings under ``("", "", "openings", index)``.
    origin: dict[tuple[str, str, str, int], str] = field(default_factory=dict, compare=False)

    def of(self, var: str, state: str) -> list[str]:
        """Every phrasing of ``var=state``, register by register."""
        return [p for ps in self.phrases.get(var, {}).get(state, {}).values() for p in ps]

    def add(self, var: str, state: str, register: str, phrase: str) -> None:
        """Add one phrasing (kept once)."""
        bucket = self.phrases.setdefault(var, {}).setdefault(state, {}).setdefault(register, [])
        if phrase not in bucket:
            bucket.append(phrase)

    def add_opening(self, opening: str) -> None:
        """Add one opening (kept once)."""
        if opening not in self.openings:
            self.openings.append(opening)

    def count(self) -> int:
        """How many phrasings in all (openings not counted)."""
        return sum(len(ps) for by_state in self.phrases.values() for regs in by_state.values() for ps in regs.values())


def read_phrasebook(path: Path) -> tuple[Phrasebook, list[Problem]]:
    """The phrasebook at ``path`` and the problems of its form (each with file and line).

    Raises:
        SpecError: the file cannot be read or is not YAML.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, [Problem(source, f"cannot read: {exc}")]) from None
    data, lines = load_yaml(text, source)
    book = Phrasebook()
    problems: list[Problem] = []

    def where(key: tuple[str | int, ...]) -> str:
        line = line_of(lines, key)
        return f"{source}:{line} {format_path(key)}" if line else source

    if not isinstance(data, dict) or not isinstance(data.get("phrases", {}), dict):
        return book, [Problem(where(()), "a phrasebook is a mapping with a 'phrases' mapping")]
    unknown = sorted(str(k) for k in data if k not in ("model", "openings", "phrases"))
    if unknown:
        problems.append(
            Problem(where((unknown[0],)), f"unknown key(s): {', '.join(unknown)} (valid: model, openings, phrases)")
        )
    book.model = str(data.get("model") or "")
    openings = data.get("openings") or []
    if not isinstance(openings, list) or not all(isinstance(o, str) for o in openings):
        problems.append(Problem(where(("openings",)), "expected a list of strings"))
    else:
        for i, opening in enumerate(openings):
            book.add_opening(opening)
            book.origin[("", "", "openings", i)] = where(("openings", i))
    for var, by_state in (data.get("phrases") or {}).items():
        if not isinstance(by_state, dict):
            problems.append(Problem(where(("phrases", var)), "expected a mapping of states"))
            continue
        for state, regs in by_state.items():
            state_name = str(scalar_text(state))
            key: tuple[str | int, ...] = ("phrases", var, state)
            if isinstance(regs, list):
                regs = {"any": regs}
            if not isinstance(regs, dict):
                problems.append(Problem(where(key), "expected a list of phrasings, or one list per register"))
                continue
            for register, items in regs.items():
                if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                    problems.append(Problem(where((*key, register)), "expected a list of strings"))
                    continue
                for i, phrase in enumerate(items):
                    book.add(str(var), state_name, str(register), phrase)
                    book.origin[(str(var), state_name, str(register), i)] = where((*key, register, i))
    return book, problems


def opening_reason(lexicon: Lexicon, opening: str) -> str | None:
    """Why ``opening`` cannot open a text, or None when it is one sentence that says nothing about any variable."""
    form = form_reason(lexicon, opening)
    if form is not None:
        return form
    got = extract(lexicon, opening)
    touched = sorted(v for v in lexicon.order if v in got.stated() or got.mentioned(v))
    if touched:
        return f"mentions {', '.join(touched)}: an opening must state no fact"
    return None


def check_phrasebook(lexicon: Lexicon, book: Phrasebook, source: str = "") -> list[Problem]:
    """Every phrasing must read back as exactly its observed variable's state; every opening as no fact at all."""
    problems: list[Problem] = []
    for i, opening in enumerate(book.openings):
        reason = opening_reason(lexicon, opening)
        if reason is not None:
            here = book.origin.get(("", "", "openings", i), f"{source} openings[{i}]".strip())
            problems.append(Problem(here, f"opening {opening!r} {reason}; fix it or delete it"))
    for var, by_state in book.phrases.items():
        at = f"{source} phrases.{var}" if source else f"phrases.{var}"
        if var not in lexicon.roles:
            problems.append(Problem(at, f"unknown variable {var!r}"))
            continue
        if lexicon.roles[var] != "observed":
            problems.append(Problem(at, f"{var} is latent: a text must never state it"))
            continue
        for state, regs in by_state.items():
            if state not in lexicon.states[var]:
                valid = ", ".join(lexicon.states[var])
                problems.append(Problem(f"{at}.{state}", f"{var} has no state {state!r} (valid: {valid})"))
                continue
            for register, phrases in regs.items():
                for i, phrase in enumerate(phrases):
                    reason = phrase_reason(lexicon, var, state, phrase)
                    if reason is not None:
                        here = book.origin.get((var, state, register, i), f"{at}.{state}.{register}[{i}]")
                        problems.append(Problem(here, f"phrasing {phrase!r} {reason}; fix it or delete it"))
    return problems


def screen_book(lexicon: Lexicon, candidates: Phrasebook) -> tuple[Phrasebook, list[Dropped]]:
    """The candidates that read back as exactly their own fact (openings: as no fact), and the others with why.

    Unknown variables, latent variables and unknown states are dropped with their reason too, so a candidate file
    written elsewhere (by a person, or by a model outside causalsynth) is screened whole, never refused whole.
    """
    kept = Phrasebook(model=candidates.model)
    dropped: list[Dropped] = []
    for opening in candidates.openings:
        reason = opening_reason(lexicon, opening)
        if reason is None:
            kept.add_opening(opening)
        else:
            dropped.append(Dropped("", "", "opening", opening, reason))
    for var, by_state in candidates.phrases.items():
        for state, regs in by_state.items():
            for register, phrases in regs.items():
                for phrase in phrases:
                    why: str | None
                    if var not in lexicon.roles:
                        why = f"unknown variable {var!r}"
                    elif lexicon.roles[var] != "observed":
                        why = f"{var} is latent: a text must never state it"
                    elif state not in lexicon.states[var]:
                        why = f"{var} has no state {state!r} (valid: {', '.join(lexicon.states[var])})"
                    else:
                        why = phrase_reason(lexicon, var, state, phrase)
                    if why is None:
                        kept.add(var, state, register, phrase)
                    else:
                        dropped.append(Dropped(var, state, "phrase", phrase, why))
    return kept, dropped


def merge_books(book: Phrasebook, more: Phrasebook) -> int:
    """Add ``more``'s phrasings and openings to ``book``; return how many were new."""
    before = book.count() + len(book.openings)
    for opening in more.openings:
        book.add_opening(opening)
    for var, by_state in more.phrases.items():
        for state, regs in by_state.items():
            for register, phrases in regs.items():
                for phrase in phrases:
                    book.add(var, state, register, phrase)
    return book.count() + len(book.openings) - before


def with_phrasebook(lexicon: Lexicon, book: Phrasebook) -> Lexicon:
    """The lexicon whose phrases and openings also hold the phrasebook's (after the spec's own; each once)."""
    merged: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for var, by_state in lexicon.phrases.items():
        merged[var] = {state: tuple(dict.fromkeys([*own, *book.of(var, state)])) for state, own in by_state.items()}
    text = lexicon.text
    if book.openings:
        text = text.model_copy(update={"openings": list(dict.fromkeys([*text.openings, *book.openings]))})
    return dataclasses.replace(lexicon, phrases=merged, text=text, cache={}, index={})


def load_phrasebook(path: Path, lexicon: Lexicon) -> Lexicon:
    """The lexicon with the phrasebook at ``path`` merged in (unchanged when there is no file).

    Raises:
        SpecError: the phrasebook is malformed or a phrasing does not read back as its own fact (every problem).
    """
    if not path.is_file():
        return lexicon
    book, problems = read_phrasebook(path)
    problems += check_phrasebook(lexicon, book, str(path))
    if problems:
        raise SpecError(str(path), problems)
    return with_phrasebook(lexicon, book)


def write_phrasebook(path: Path, book: Phrasebook) -> None:
    """Write the phrasebook atomically: variables and states in the order given, registers in a fixed order."""
    body: dict[str, object] = {"model": book.model}
    if book.openings:
        body["openings"] = list(book.openings)
    phrases: dict[str, dict[str, dict[str, list[str]]]] = {}
    for var, by_state in book.phrases.items():
        for state, regs in by_state.items():
            ordered = {r: regs[r] for r in (*REGISTERS, *sorted(set(regs) - set(REGISTERS))) if regs.get(r)}
            if ordered:
                phrases.setdefault(var, {})[state] = ordered
    body["phrases"] = phrases
    write_text(HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120), path)
