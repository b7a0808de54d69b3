"""Richness of accepted texts against the domain corpus, before and after the phrasebook; and a drafted lexicon.

Run: ``.venv/bin/python bench/richness.py`` (writes ``bench/results/richness.md``; a few minutes on a quiet
2-core machine, much longer when it is shared). ``--quick`` runs 8 records per arm and skips the draft (a smoke
run; results are not written). ``--no-draft`` skips part (2).

(1) For asia and clinic: the same skeletons (seed 0) realised by the template realiser and by the local model
    (SmolLM2-135M through llama.cpp, anchored, iterative, max_rounds 2, 2 contexts, no retrieval), with four
    lexicons: the spec's own ("before"); the local model's phrasebook (``causalsynth lexicon expand --llm local``,
    reviewed by deleting lines: ``bench/results/phrasebooks/NAME.local.phrases.yaml``) and the same as generated,
    before review (``NAME.raw.phrases.yaml``); and the shipped phrasebook (``examples/NAME.phrases.yaml``: the
    local model's reviewed phrasings plus candidates written offline by a large LLM,
    ``NAME.candidates.yaml``, screened by ``causalsynth lexicon import``). Accepted texts
    are taken in record order up to the token budget of the domain corpus's notes (``retrieval_corpus/NAME/notes``:
    36 notes), the last one cut, and scored like the corpus: distinct-1/2/3 (distinct n-grams / all n-grams, within
    each text, lower-cased letter/digit tokens) and the embedding spread (mean pairwise cosine distance,
    all-MiniLM-L6-v2) of the texts used. Realizability (Wilson 95% interval) and accepted records per second come
    from the run's report.
(2) ``examples/smoking.yaml`` has descriptions and no lexicon. ``causalsynth lexicon draft`` drafts one with the
    local model (2 phrases per state); the drafted spec is loaded (round trip included) and run anchored with the
    local model: realizability and what the draft needed (calls, fallbacks, dropped proposals).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
import pandas as pd
from _common import ROOT, Check, Result, finish, run_main, table

OUT = Path(__file__).resolve().parent / "results" / "richness.md"
QUICK = "--quick" in sys.argv
DRAFT = not QUICK and "--no-draft" not in sys.argv
N = {"asia": 8 if QUICK else 60, "clinic": 8 if QUICK else 40}
N_DRAFTED = 8 if QUICK else 100
MAX_ROUNDS = 2
CONCURRENCY = 2
BATCH = 32
SEED = 0
TARGET_DISTINCT2 = 0.45
BEFORE = "before (spec lexicon)"
LOCAL = "local-model phrasebook (reviewed)"
RAW = "local-model phrasebook as generated (unreviewed)"
SHIPPED = "shipped phrasebook (local reviewed + large-LLM candidates, screened)"
TARGET_REALIZABILITY = 0.99
COMMAND = (
    ".venv/bin/python bench/richness.py"
    + (" --quick" if QUICK else "")
    + (" --no-draft" if "--no-draft" in sys.argv else "")
)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def corpus_notes(name: str) -> list[str]:
    from causalsynth.tools.retrieval.corpus import load_corpus

    return [d.body for d in load_corpus(ROOT / "retrieval_corpus" / name) if d.kind == "note"]


def within_budget(texts: list[str], budget: int) -> tuple[list[list[str]], list[str]]:
    """Token lists of the texts in order until ``budget`` tokens (the last one cut), and the texts used."""
    from causalsynth.tools.retrieval.leakage import tokens

    out: list[list[str]] = []
    used: list[str] = []
    left = budget
    for text in texts:
        if left <= 0:
            break
        toks = tokens(text)[:left]
        out.append(toks)
        used.append(text)
        left -= len(toks)
    return out, used


def scores(token_lists: list[list[str]], texts: list[str]) -> dict[str, Any]:
    from causalsynth.tools.retrieval.embedding import mean_pairwise_distance, shared_embedder

    distinct = []
    for n in (1, 2, 3):
        grams = [tuple(t[i : i + n]) for t in token_lists for i in range(len(t) - n + 1)]
        distinct.append(len(set(grams)) / len(grams) if grams else None)
    spread = mean_pairwise_distance(shared_embedder().encode(texts)) if len(texts) >= 2 else None
    return {"tokens": sum(len(t) for t in token_lists), "texts": len(texts), "distinct": distinct, "spread": spread}


def arms() -> list[dict[str, Any]]:
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run
    from causalsynth.tools.llm.factory import LLMOptions, make_realiser
    from causalsynth.tools.spec import load_domain
    from causalsynth.tools.text.phrasebook import load_phrasebook

    out: list[dict[str, Any]] = []
    model = None
    for name in ("asia", "clinic"):
        budget = scores(*within_budget(corpus_notes(name), 10**9))["tokens"]
        corpus = scores(*within_budget(corpus_notes(name), budget))
        out.append({"domain": name, "arm": "corpus (36 notes)", "budget": budget, "score": corpus, "report": None})
        books = ROOT / "bench" / "results" / "phrasebooks"
        for label, phrasebook in ((BEFORE, None), (LOCAL, books / f"{name}.local.phrases.yaml"),
                                  (RAW, books / f"{name}.raw.phrases.yaml"), (SHIPPED, "shipped")):  # fmt: skip
            domain = load_domain(ROOT / "examples" / f"{name}.yaml", phrasebook=phrasebook == "shipped")
            if isinstance(phrasebook, Path):
                domain.lexicon = load_phrasebook(phrasebook, domain.lexicon)
            per_state = {v: min(len(p) for p in domain.lexicon.phrases[v].values()) for v in domain.lexicon.observed}
            for llm in ("template", "local"):
                if llm == "local" and model is None:
                    from causalsynth.tools.llm.factory import local_model

                    model = local_model(LLMOptions(concurrency=CONCURRENCY), SEED)
                realiser = make_realiser("template", domain.lexicon, seed=SEED)
                if llm == "local":
                    from causalsynth.tools.llm.chat_realiser import ChatRealiser

                    realiser = ChatRealiser(model, domain.lexicon, realize="anchored", anchoring="grammar", seed=SEED,
                                            seeded_calls=True, concurrency=CONCURRENCY,
                                            name=f"local:{Path(model.model_path).name}")  # fmt: skip
                settings = RunSettings(n=N[name], mode="iterative", max_rounds=MAX_ROUNDS, batch_size=BATCH, seed=SEED,
                                       llm=llm, realize="anchored")  # fmt: skip
                _say(f"(1) {name} {label} {llm} n={N[name]} ...")
                with tempfile.TemporaryDirectory() as tmp:
                    report = run(domain, realiser, settings, Path(tmp))
                    records = pd.read_parquet(Path(tmp) / "records.parquet")
                texts = records.sort_values("record_id").text.astype(str).tolist()
                out.append({"domain": name, "arm": f"{label}, {llm}", "budget": budget, "report": report,
                            "score": scores(*within_budget(texts, budget)), "examples": texts[:2],
                            "phrasings": per_state, "llm": llm, "phrasebook": phrasebook})  # fmt: skip
    return out


def drafted() -> dict[str, Any] | None:
    if not DRAFT:
        return None
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.lexicon_cli import draft_document
    from causalsynth.graphs.runner import run
    from causalsynth.tools.llm.factory import LLMOptions, make_realiser
    from causalsynth.tools.llm.lexicon_screen import Screen
    from causalsynth.tools.llm.lexicon_writer import LexiconWriter
    from causalsynth.tools.spec import load_domain
    from causalsynth.tools.tabular import write_text

    spec = ROOT / "examples" / "smoking.yaml"
    _say("(2) drafting a lexicon for examples/smoking.yaml with the local model ...")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "smoking.drafted.yaml"
        from causalsynth.tools.llm.local_chat import LocalChatModel
        from causalsynth.tools.llm.local_model import default_model

        # As `causalsynth lexicon draft` builds it: one context on one thread (see graphs/lexicon_cli.py).
        model = LocalChatModel(model_path=str(default_model()), contexts=1, threads=1, temperature=0.8, seed=SEED)
        t0 = time.perf_counter()
        plain = load_domain(spec, phrasebook=False)
        result = LexiconWriter(model, seed=SEED, screen=Screen(plain)).draft(plain, None, 2)
        draft_s = time.perf_counter() - t0
        write_text(draft_document(load_domain(spec, phrasebook=False), result, "local", out), out)
        domain = load_domain(out)  # loads and round-trips
        drafted_text = out.read_text()
        _say(f"(2) running the drafted spec anchored, n={N_DRAFTED} ...")
        realiser = make_realiser("local", domain.lexicon, seed=SEED,
                                 options=LLMOptions(realize="anchored", concurrency=CONCURRENCY))  # fmt: skip
        settings = RunSettings(n=N_DRAFTED, mode="iterative", max_rounds=MAX_ROUNDS, batch_size=BATCH, seed=SEED,
                               llm="local", realize="anchored")  # fmt: skip
        with tempfile.TemporaryDirectory() as run_dir:
            report = run(domain, realiser, settings, Path(run_dir))
            records = pd.read_parquet(Path(run_dir) / "records.parquet")
    kept = result.assembled.variables
    return {
        "report": report, "calls": result.calls, "seconds": draft_s, "fallbacks": result.assembled.fallbacks,
        "dropped": result.assembled.dropped, "text": drafted_text, "examples": records.text.astype(str).tolist()[:3],
        "phrases": sum(len(w.phrases) for m in kept.values() for w in m.states.values()),
        "patterns": sum(len(w.patterns) for m in kept.values() for w in m.states.values()),
    }  # fmt: skip


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def richness_section(rows: list[dict[str, Any]]) -> tuple[list[str], list[Check]]:
    header = ["domain", "texts", "tokens used (budget)", "distinct-1", "distinct-2", "distinct-3", "embedding spread",
              "phrasings per state (min per variable)", "accepted / requested", "realizability (95% CI)",
              "accepted/s"]  # fmt: skip
    body = []
    checks: list[Check] = []
    for r in rows:
        s = r["score"]
        rep = r["report"]
        if rep is None:
            real, speed, acc, phr = "-", "-", "-", "-"
        else:
            k, n = rep["n_accepted"], rep["n_requested"]
            lo, hi = _wilson(k, n)
            real, acc = f"{k / n:.3f} ({lo:.3f}-{hi:.3f})", f"{k}/{n}"
            speed = f"{rep['records_per_second']:.2f}"
            phr = ", ".join(f"{v} {c}" for v, c in r["phrasings"].items())
        short = " (short of budget)" if s["tokens"] < r["budget"] else ""
        body.append([r["domain"], r["arm"], s["texts"], f"{s['tokens']} ({r['budget']}){short}",
                     *(_f(x) for x in s["distinct"]), _f(s["spread"], 4), phr, acc, real, speed])  # fmt: skip
    for name in ("asia", "clinic"):
        by = {r["arm"]: r for r in rows if r["domain"] == name}
        before = by.get(f"{BEFORE}, local")
        after = by.get(f"{SHIPPED}, local")
        local = by.get(f"{LOCAL}, local")
        if before is None or after is None:
            continue
        d0, d1 = before["score"]["distinct"][1], after["score"]["distinct"][1]
        rep = after["report"]
        real = rep["n_accepted"] / rep["n_requested"]
        if name == "asia":
            checks.append(Check("richness", "asia, local model, anchored: distinct-2 on the corpus's token budget",
                                f">= {TARGET_DISTINCT2}", f"{_f(d0)} -> {_f(d1)}", d1 is not None and
                                d1 >= TARGET_DISTINCT2))  # fmt: skip
        checks.append(Check("richness", f"{name}, local model, anchored, with the phrasebook: realizability",
                            f">= {TARGET_REALIZABILITY}", f"{rep['n_accepted']}/{rep['n_requested']}",
                            real >= TARGET_REALIZABILITY))  # fmt: skip
        checks.append(Check("richness", f"{name}: distinct-2 and spread go up with the phrasebook", "both higher",
                            f"distinct-2 {_f(d0)} -> {_f(d1)}; spread {_f(before['score']['spread'], 4)} -> "
                            f"{_f(after['score']['spread'], 4)}", None))  # fmt: skip
        if local is not None:
            rr = local["report"]
            checks.append(Check("richness", f"{name}: the local model's phrasebook alone: distinct-2, realizability",
                                "info", f"distinct-2 {_f(local['score']['distinct'][1])}; "
                                f"{rr['n_accepted']}/{rr['n_requested']}", None))  # fmt: skip
    md = [
        "## (1) Accepted texts against the corpus, before and after the phrasebook",
        "",
        "Same skeletons per domain (seed 0). distinct-n over the accepted texts taken in record order up to the token "
        "budget of the corpus notes; spread over the texts used. 'phrasings per state' is, per observed variable, the "
        "fewest phrasings any of its states has (spec phrases + phrasebook).",
        "",
        table(header[:1] + ["arm"] + header[1:], body),
        "",
    ]
    for r in rows:
        if r.get("llm") == "local":
            md += [f"Example, {r['domain']} {r['arm']}:", "", *[f"> {t}" for t in r["examples"][:1]], ""]
    return md, checks


def draft_section(d: dict[str, Any] | None) -> tuple[list[str], list[Check]]:
    if d is None:
        return ["## (2) A drafted lexicon", "", "Skipped (`--quick` or `--no-draft`).", ""], []
    rep = d["report"]
    k, n = rep["n_accepted"], rep["n_requested"]
    lo, hi = _wilson(k, n)
    reasons = Counter(x.reason.split(" (")[0].split(":")[0] for x in d["dropped"])
    md = [
        "## (2) A spec with no lexicon: drafted by the local model, then run anchored",
        "",
        f"`examples/smoking.yaml` (5 variables, descriptions only) drafted with `LexiconWriter.draft` (SmolLM2-135M, "
        f"2 phrases per state): {d['calls']} model calls in {d['seconds']:.0f} s; kept {d['phrases']} phrases and "
        f"{d['patterns']} patterns; dropped {len(d['dropped'])} proposals; states with no surviving phrase (written "
        f"'name: state.'): {', '.join(f'{v}={s}' for v, s in d['fallbacks']) or 'none'}.",
        "",
        "Dropped, by reason: " + "; ".join(f"{c} {r}" for r, c in reasons.most_common()),
        "",
        f"The drafted spec loaded (the round trip passed) and ran anchored with the local model: {k}/{n} accepted "
        f"(realizability {k / n:.3f}, Wilson 95% {lo:.3f}-{hi:.3f}), {rep['records_per_second']:.2f} accepted/s.",
        "",
        "Example texts:",
        "",
        *[f"> {t}" for t in d["examples"]],
        "",
        "<details><summary>The drafted variables</summary>",
        "",
        "```yaml",
        d["text"].split("variables:", 1)[-1].split("x-lexicon-draft:", 1)[0].strip("\n"),
        "```",
        "</details>",
        "",
    ]
    checks = [Check("draft", "smoking (no lexicon): drafted, loads, round-trips, anchored realizability",
                    f">= {TARGET_REALIZABILITY}", f"{k}/{n}", k / n >= TARGET_REALIZABILITY)]  # fmt: skip
    return md, checks


def run() -> Result:
    t0 = time.perf_counter()
    rows = arms()
    d = drafted()
    rich_md, rich_checks = richness_section(rows)
    draft_md, draft_checks = draft_section(d)
    md = [
        "# Richness: accepted texts against the domain corpus, before and after expansion (bench/richness.py)",
        "",
        f"Machine: the {os.cpu_count()}-core, no-GPU sandbox, shared with other work (throughput drifts with the "
        f"load). Date: {dt.date.today().isoformat()}. Command: `{COMMAND}`.",
        "",
        "Phrasebooks (`bench/results/phrasebooks/`): `NAME.local.phrases.yaml` is what `causalsynth lexicon expand "
        "--llm local` kept (SmolLM2-135M), reviewed by deleting lines; `NAME.raw.phrases.yaml` the same before review. "
        "The shipped `examples/NAME.phrases.yaml` adds candidates written offline by a large LLM (Claude, the model "
        "behind the engineering session; no API model is reachable from this machine, so they were written into "
        "`NAME.candidates.yaml` and screened by `causalsynth lexicon import`, which keeps only what the extractor "
        "reads back as exactly its own fact). Their writer had read one asia corpus note (`001-terse.md`) earlier; "
        "candidates close to it were removed.",
        "",
        *rich_md,
        *draft_md,
    ]
    return finish(md, rich_checks + draft_checks, t0)


if __name__ == "__main__":
    text = run_main(run)
    if not QUICK:
        OUT.write_text(text)
        print(f"wrote {OUT}")
