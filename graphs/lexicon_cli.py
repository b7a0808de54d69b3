"""``causalsynth lexicon draft|expand|import``: a model or a person proposes words; what reads back is kept."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from causalsynth.tools.errors import SpecError, UsageError
from causalsynth.tools.llm.factory import LLMOptions, make_chat_model
from causalsynth.tools.llm.lexicon_screen import Screen
from causalsynth.tools.llm.lexicon_writer import DraftResult, ExpandResult, LexiconWriter
from causalsynth.tools.retrieval.embedding import shared_embedder
from causalsynth.tools.spec import Domain, load_domain, resolve_spec
from causalsynth.tools.tabular import write_text
from causalsynth.tools.text.lexicon_check import Dropped
from causalsynth.tools.text.phrasebook import (
    REGISTERS,
    Phrasebook,
    check_phrasebook,
    merge_books,
    phrasebook_path,
    read_phrasebook,
    screen_book,
    with_phrasebook,
    write_phrasebook,
)

lexicon_app = typer.Typer(
    help="Draft or expand a spec's lexicon with an LLM; only what reads back as its own fact is kept.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)

SpecArg = Annotated[str, typer.Argument(help="Spec YAML file (or an example's short name).")]
LlmOpt = Annotated[str, typer.Option("--llm", help="local (embedded GGUF via llama.cpp) or PROVIDER:MODEL.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of the proposals (same model and seed, same file).")]
ModelPathOpt = Annotated[Path | None, typer.Option("--model-path", help="A GGUF for --llm local.")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="Server of an OpenAI-compatible provider.")]
TempOpt = Annotated[float, typer.Option("--temperature", min=0.0, max=2.0, help="Sampling temperature.")]
ScreenOpt = Annotated[
    bool,
    typer.Option("--screen/--no-screen", help="Screen proposals for unknown words, stray numbers and meaning first."),
]


def _model(llm: str, model_path: Path | None, base_url: str | None, temperature: float) -> Any:
    if llm == "template":
        raise UsageError("--llm template has no model to propose words; use local or PROVIDER:MODEL")
    if llm == "local":
        # One call at a time, on one thread: llama.cpp's threads spin-wait on each other, and on a busy machine a
        # second thread made calls 50x slower here (measured: 41 s against 0.8 s for 32 tokens).
        from causalsynth.tools.llm.local_chat import LocalChatModel
        from causalsynth.tools.llm.local_model import default_model

        if base_url is not None:
            raise UsageError("--base-url applies to PROVIDER:MODEL, not to --llm local")
        path = model_path or default_model()
        return LocalChatModel(model_path=str(path), contexts=1, threads=1, temperature=temperature)
    return make_chat_model(llm, LLMOptions(model_path=model_path, base_url=base_url, concurrency=1,
                                           temperature=temperature))  # fmt: skip


def _book_path(spec: str, out: Path | None) -> Path:
    """The phrasebook to write: ``--out``, or the one beside SPEC's file."""
    if out is None:
        where = resolve_spec(spec)
        if isinstance(where, str):
            raise UsageError(f"{spec} is a bnlearn name, not a file: give --out for the phrasebook")
        out = phrasebook_path(where)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name")
    return out


def _existing_book(domain: Domain, out: Path) -> Phrasebook:
    """The phrasebook already at ``out`` (empty if none), checked against the spec's own lexicon.

    Raises:
        SpecError: it is malformed or a phrasing does not read back (nothing is written then).
    """
    if not out.is_file():
        return Phrasebook()
    book, problems = read_phrasebook(out)
    problems += check_phrasebook(domain.lexicon, book, str(out))
    if problems:
        raise SpecError(str(out), problems)
    return book


def _reasons(dropped: list[Dropped], top: int = 6) -> str:
    counts = Counter(d.reason.split(" (")[0].split(":")[0] for d in dropped)
    return "; ".join(f"{n} {why}" for why, n in counts.most_common(top))


@lexicon_app.command("draft")
def draft_cmd(
    spec: SpecArg,
    out: Annotated[Path, typer.Option("--out", help="Where to write the drafted spec (YAML) to review.")],
    llm: LlmOpt = "local",
    variables: Annotated[
        str | None,
        typer.Option("--variables", help="Only these variables, e.g. smoker,scan (default: those without words)."),
    ] = None,
    phrases_per_state: Annotated[
        int, typer.Option("--phrases-per-state", min=1, max=50, help="Phrases kept per state at most.")
    ] = 4,
    seed: SeedOpt = 0,
    model_path: ModelPathOpt = None,
    base_url: BaseUrlOpt = None,
    temperature: TempOpt = 0.8,
    screen: ScreenOpt = True,
) -> None:
    """Draft phrases, patterns, negations and numeric names for SPEC's variables; write the spec with them to OUT.

    OUT is the spec with the drafted ``variables`` entries and, under ``x-lexicon-draft``, everything proposed
    and dropped with its reason. It loads as it is; review it before use.
    """
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name")
    names = [v.strip() for v in variables.split(",") if v.strip()] if variables else None
    domain = load_domain(spec, phrasebook=False)
    unknown = [v for v in names or () if v not in domain.network]
    if unknown:
        raise UsageError(f"--variables: unknown {', '.join(unknown)} (the model has {', '.join(domain.network.names)})")
    model = _model(llm, model_path, base_url, temperature)
    started = time.perf_counter()
    writer = LexiconWriter(model, seed=seed, screen=Screen(domain) if screen else None)
    result = writer.draft(domain, names, phrases_per_state)
    write_text(draft_document(domain, result, llm, out), out)
    load_domain(out)  # the draft loads and round-trips (it was built to; this is the check)
    seconds = time.perf_counter() - started
    kept = result.assembled.variables
    n_phrases = sum(len(w.phrases) for m in kept.values() for w in m.states.values())
    n_patterns = sum(len(w.patterns) for m in kept.values() for w in m.states.values())
    console.print(
        f"drafted {len(result.drafted)} variable(s) with {llm} in {seconds:.0f} s ({result.calls} calls): kept "
        f"{n_phrases} phrases and {n_patterns} patterns; dropped {len(result.assembled.dropped)} proposals"
        + (f" ({_reasons(result.assembled.dropped)})" if result.assembled.dropped else ""),
        markup=False, highlight=False,
    )  # fmt: skip
    if result.assembled.fallbacks:
        plain = ", ".join(f"{v}={s}" for v, s in result.assembled.fallbacks)
        console.print(f"no proposed phrase read back for {plain}: written as 'name: state.'", markup=False)
    console.print(f"wrote {out}; review it (x-lexicon-draft lists what was dropped and why)", markup=False)


def draft_document(domain: Domain, result: DraftResult, llm: str, out: Path) -> str:
    """The drafted spec as YAML: the spec, its drafted variables, and the review notes under ``x-lexicon-draft``."""
    data: dict[str, Any] = {"spec_version": 1}
    data.update(domain.spec.model_dump(mode="json", exclude_defaults=True, exclude_none=True))
    model = data.get("model", {})
    if "file" in model and not Path(model["file"]).is_absolute():
        source = Path(domain.source)
        model["file"] = str((source.parent / model["file"]).resolve())
    if domain.spec.name is None:
        data["name"] = domain.network.name
    variables: dict[str, Any] = dict(data.get("variables", {}))
    for var, meta in result.assembled.variables.items():
        variables[var] = meta.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    data["variables"] = variables
    data["x-lexicon-draft"] = {
        "model": llm,
        "drafted": result.drafted,
        "fallbacks": [f"{v}={s}" for v, s in result.assembled.fallbacks],
        "dropped": [d.as_dict() for d in result.assembled.dropped],
    }
    header = (
        f"# Drafted by `causalsynth lexicon draft` ({llm}) from {domain.source}. Every phrase below reads back\n"
        "# through the extractor as exactly its own fact; whether it is what a clinician would write, and whether\n"
        "# a negation map or numeric name means what it says, is for you to review. x-lexicon-draft lists every\n"
        "# proposal that was dropped, with the reason (the loader ignores x-* keys).\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


@lexicon_app.command("expand")
def expand_cmd(
    spec: SpecArg,
    per_state: Annotated[int, typer.Option("--per-state", min=1, max=500, help="Phrasings per state to reach.")],
    llm: LlmOpt = "local",
    out: Annotated[
        Path | None, typer.Option("--out", help="Phrasebook file (default: SPEC's NAME.phrases.yaml beside it).")
    ] = None,
    registers: Annotated[
        str, typer.Option("--registers", help=f"Registers to cycle through ({', '.join(REGISTERS)}).")
    ] = ",".join(REGISTERS),
    seed: SeedOpt = 0,
    model_path: ModelPathOpt = None,
    base_url: BaseUrlOpt = None,
    temperature: TempOpt = 0.8,
    calls_per_phrase: Annotated[
        int, typer.Option("--calls-per-phrase", min=1, max=20, help="Model calls allowed per phrasing wanted.")
    ] = 3,
    variables: Annotated[
        str | None, typer.Option("--variables", help="Only these observed variables (default: all).")
    ] = None,
    screen: ScreenOpt = True,
) -> None:
    """Add verified phrasings to SPEC's phrasebook until every observed state has PER_STATE of them.

    Existing phrasings are kept (a second run only tops up); the phrasebook is loaded with the spec from then
    on, so runs draw from it without any LLM.
    """
    regs = [r.strip() for r in registers.split(",") if r.strip()]
    bad = [r for r in regs if r not in REGISTERS]
    if bad or not regs:
        raise UsageError(f"--registers {registers!r}: expected some of {', '.join(REGISTERS)}")
    out = _book_path(spec, out)
    domain = load_domain(spec, phrasebook=False)
    names = [v.strip() for v in variables.split(",") if v.strip()] if variables else None
    unknown = [v for v in names or () if v not in domain.lexicon.observed]
    if unknown:
        raise UsageError(f"--variables: {', '.join(unknown)} not observed variables of {spec} "
                         f"({', '.join(domain.lexicon.observed)})")  # fmt: skip
    # Screened against the spec's own words only: the book's phrasings must not vouch for their own words.
    checks = Screen(domain, embedder=shared_embedder()) if screen else None
    book = _existing_book(domain, out)
    domain.lexicon = with_phrasebook(domain.lexicon, book)
    model = _model(llm, model_path, base_url, temperature)
    started = time.perf_counter()
    book.model = "; ".join(dict.fromkeys(m for m in (*book.model.split("; "), llm) if m))
    target = out

    def save(var: str, state: str) -> None:
        write_phrasebook(target, book)
        console.print(f"{var}={state}: {len(book.of(var, state))} phrasing(s)", markup=False, highlight=False)

    writer = LexiconWriter(model, seed=seed, screen=checks)
    result = writer.expand(domain, book, per_state, regs, calls_per_phrase, save, names)
    write_phrasebook(out, book)
    _print_expand(result, book, llm, out, time.perf_counter() - started)


def _print_expand(result: ExpandResult, book: Phrasebook, llm: str, out: Path, seconds: float) -> None:
    tried = result.added + len(result.dropped)
    console.print(
        f"{llm}: {result.calls} calls in {seconds:.0f} s; kept {result.added} new phrasings of {tried} proposed "
        f"(duplicates not counted); the phrasebook holds {book.count()}",
        markup=False, highlight=False,
    )  # fmt: skip
    if result.dropped:
        console.print(f"dropped: {_reasons(result.dropped)}", markup=False, highlight=False)
        for d in result.dropped[:5]:
            console.print(f"  {d.variable}={d.state}: {d.text!r} {d.reason}", markup=False, highlight=False)
    if result.short:
        short = ", ".join(f"{v}={s} ({k} short)" for v, s, k in result.short[:10])
        console.print(f"still short of --per-state: {short}", markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False)


@lexicon_app.command("import")
def import_cmd(
    spec: SpecArg,
    candidates: Annotated[
        Path, typer.Argument(help="Candidate phrasings: phrasebook-shaped YAML written elsewhere.", show_default=False)
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Phrasebook file (default: SPEC's NAME.phrases.yaml beside it).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Who wrote the candidates (default: the file's `model:`).")
    ] = None,
) -> None:
    """Keep the candidate phrasings (and openings) of CANDIDATES that read back as exactly their own fact.

    For phrasings written outside causalsynth: by a person, or by a model you may only use through its own
    interface (paste its answer into a file). CANDIDATES has the phrasebook's shape (``phrases: VAR: STATE:
    [sentences]`` or one list per register; optional ``openings:``). Each candidate goes through the same round
    trip as ``expand``'s proposals; what is kept is added to the phrasebook (existing phrasings are kept), and
    every dropped candidate is listed with its reason.
    """
    out = _book_path(spec, out)
    if not candidates.is_file():
        raise UsageError(f"{candidates}: no such file")
    if candidates.resolve() == out.resolve():
        raise UsageError(f"{candidates} is the phrasebook itself; give the candidates in another file")
    domain = load_domain(spec, phrasebook=False)
    offered, problems = read_phrasebook(candidates)
    if problems:
        raise SpecError(str(candidates), problems)
    book = _existing_book(domain, out)
    kept, dropped = screen_book(domain.lexicon, offered)
    added = merge_books(book, kept)
    who = source or offered.model or f"imported from {candidates.name}"
    book.model = "; ".join(dict.fromkeys(m for m in (*book.model.split("; "), who) if m))
    write_phrasebook(out, book)
    offered_n = offered.count() + len(offered.openings)
    console.print(
        f"kept {kept.count() + len(kept.openings)} of {offered_n} candidates ({added} new); dropped {len(dropped)}"
        + (f" ({_reasons(dropped)})" if dropped else "") + f"; the phrasebook holds {book.count()} phrasings and "
        f"{len(book.openings)} openings",
        markup=False, highlight=False,
    )  # fmt: skip
    for d in dropped:
        what = f"{d.variable}={d.state}" if d.variable else "opening"
        console.print(f"  dropped {what}: {d.text!r} {d.reason}", markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False)
