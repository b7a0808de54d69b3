"""The embedded model for real: SmolLM2-135M-Instruct through llama.cpp on this machine's CPU.

Run: ``.venv/bin/python bench/llm.py`` (writes ``bench/results/llm.md``; about an hour on 2 cores).
``--quick`` runs 1/5 of the records (a smoke run; results are not written).
``--batched`` runs only part (c) and replaces that section of ``bench/results/llm.md``.

(a) What helps speed: anchored realisation of the same ASIA records with each configuration, in this process,
    in interleaved order (the machine is shared and noisy, so compare ratios within the table): quantisation
    (the shipped Q4_1, and Q8_0 / Q4_0 converted by llama.cpp at set-up), llama.cpp contexts x threads, and
    segmented generation (only the free sentences are decoded) vs one call under the whole-text GBNF.
(b) Modes, end to end through the graph: ASIA (n = 200) and clinic (n = 100); rejection and iterative with plain
    prompting, and anchored + iterative; the same budget of 1 + max_rounds generator calls per record.
    Realizability, rounds, LLM calls and tokens per accepted record, accepted records/s, selection-bias TVD and
    drift, free sentences dropped; three texts per mode and one corrected record before and after.
(c) Batched decoding (issue 19) against the previous implementation (one record per llama.cpp call, prefix
    caching per context), both in this process on the same records (same seeds, so the same skeletons and
    references), arms alternating old/new/new/old so that the shared machine's load falls on both: the default
    ``run`` path (anchored, iterative, 2 contexts x 1 thread) on ASIA with retrieval on and off and on clinic with
    retrieval on. The load average is printed beside each run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
import pandas as pd
from _common import ROOT, Check, Result, finish, run_main, table

OUT = Path(__file__).resolve().parent / "results" / "llm.md"
QUICK = "--quick" in sys.argv
SCALE = 20 if QUICK else 1
#: Records per domain: anchored runs use the issue's sizes; plain prompting decodes a whole note per call at
#: about 40 tokens/s on one core and fails most records (so it spends every round), so its runs are smaller to
#: fit the machine's time: the rates below carry their Wilson intervals.
DOMAINS = (("asia", 200 // SCALE, 50 // SCALE), ("clinic", 100 // SCALE, 25 // SCALE))
MODES = (("rejection", "free"), ("iterative", "free"), ("iterative", "anchored"))
MAX_ROUNDS = 2
N_SPEED = 40 // SCALE
SPEED_CONFIGS = (  # (label, quant, contexts, threads, generation)
    ("Q4_1, 1 context x 2 threads, segmented", "q4_1", 1, 2, "segmented"),
    ("Q4_1, 2 contexts x 1 thread, segmented", "q4_1", 2, 1, "segmented"),
    ("Q8_0, 2 contexts x 1 thread, segmented", "q8_0", 2, 1, "segmented"),
    ("Q4_0, 2 contexts x 1 thread, segmented", "q4_0", 2, 1, "segmented"),
    ("Q4_1, 2 contexts x 1 thread, one call under the whole GBNF", "q4_1", 2, 1, "grammar"),
)


def _spec(name: str) -> Path:
    return ROOT / "examples" / f"{name}.yaml"


def speed() -> tuple[list[str], list[Check], dict[str, float]]:
    """(a): records/s of anchored realisation per configuration, interleaved over two passes."""
    from causalsynth.tools.causal.sampler import Sampler
    from causalsynth.tools.llm.chat_realiser import ChatRealiser
    from causalsynth.tools.llm.local_chat import LocalChatModel
    from causalsynth.tools.llm.local_model import requantized
    from causalsynth.tools.spec import load_domain
    from causalsynth.tools.text.realisation import RealisationRequest

    domain = load_domain(_spec("asia"))
    data = Sampler(domain.network).sample(N_SPEED, seed=21).data
    skeletons = [{k: str(v) for k, v in row.items()} for row in data.to_dict("records")]
    realisers = []
    for label, quant, contexts, threads, how in SPEED_CONFIGS:
        model = LocalChatModel(
            model_path=str(requantized(quant)), contexts=contexts, threads=threads, anchored_generation=how
        )
        realisers.append((label, ChatRealiser(model, domain.lexicon, realize="anchored", anchoring="grammar",
                                              seeded_calls=True, concurrency=contexts)))  # fmt: skip
    seconds = {label: 0.0 for label, _ in realisers}
    tokens = {label: 0 for label, _ in realisers}
    half = len(skeletons) // 2
    for part, order in ((skeletons[:half], realisers), (skeletons[half:], list(reversed(realisers)))):
        offset = 0 if part is skeletons[:half] else half
        for label, realiser in order:
            requests = [RealisationRequest(record_id=offset + i, skeleton=s) for i, s in enumerate(part)]
            realiser.realise(requests[:1])  # warm the prompt cache
            start = time.perf_counter()
            out = realiser.realise(requests)
            seconds[label] += time.perf_counter() - start
            tokens[label] += sum(r.completion_tokens for r in out)
    rate = {label: len(skeletons) / s for label, s in seconds.items()}
    base = rate[SPEED_CONFIGS[0][0]]
    rows = [[label, rate[label], rate[label] / base, tokens[label] / len(skeletons)] for label, _ in realisers]
    md = [
        "## (a) What helps speed (anchored realisation of the same ASIA records, in one process)",
        "",
        table(["configuration", "records/s", "vs first row", "decoded tokens/record"], rows),
        "",
    ]
    return md, [], rate


def modes(best: tuple[str, int]) -> tuple[list[str], list[Check], list[dict[str, Any]]]:
    """(b): each mode end to end through the graph."""
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run
    from causalsynth.tools.llm.chat_realiser import ChatRealiser
    from causalsynth.tools.llm.local_chat import LocalChatModel
    from causalsynth.tools.llm.local_model import requantized
    from causalsynth.tools.spec import load_domain

    quant, contexts = best
    rows: list[list[Any]] = []
    runs: list[dict[str, Any]] = []
    checks: list[Check] = []
    examples: list[str] = []
    for name, n_anchored, n_plain in DOMAINS:
        domain = load_domain(_spec(name))
        for mode, realize in MODES:
            n = n_anchored if realize == "anchored" else n_plain
            print(f"{name} {mode} {realize} n={n} ...", file=sys.stderr, flush=True)
            model = LocalChatModel(model_path=str(requantized(quant)), contexts=contexts, threads=1)
            realiser = ChatRealiser(model, domain.lexicon, realize=realize,  # type: ignore[arg-type]
                                    anchoring="grammar", seeded_calls=True, concurrency=contexts)  # fmt: skip
            settings = RunSettings(n=n, mode=mode, max_rounds=MAX_ROUNDS, batch_size=50, seed=7, llm="local",  # type: ignore[arg-type]
                                   realize=realize)  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                report = run(domain, realiser, settings, Path(tmp))
                records = pd.read_parquet(Path(tmp) / "records.parquet")
                rejects = pd.read_parquet(Path(tmp) / "rejects.parquet")
            label = f"{mode} + {realize}" if realize == "anchored" else f"{mode} (plain prompting)"
            drift = report["selection_bias"]["drift"]
            rounds = (records.rounds.mean() if len(records) else float("nan"),)
            rows.append([
                name, n, label, _wilson(report["n_accepted"], n), rounds[0], report["llm_calls_per_accepted"],
                report["tokens_per_accepted"], report["accepted_per_second"], report["selection_bias_tvd"],
                drift.get("mean") if isinstance(drift, dict) else None, report["dropped_sentences"],
            ])  # fmt: skip
            runs.append({"domain": name, "label": label, "report": report})
            examples += _examples(name, label, records, rejects)
            if name == "asia" and realize == "anchored":
                checks.append(Check("modes", "ASIA anchored + iterative realizability", ">= 0.99",
                                    f"{report['realizability']:.4f}", report["realizability"] >= 0.99))  # fmt: skip
                rate = report["accepted_per_second"] or 0.0
                checks.append(Check("modes", "ASIA anchored + iterative accepted records/s end to end", ">= 2",
                                    f"{rate:.2f}", rate >= 2.0))  # fmt: skip
            if realize == "free":
                checks.append(Check("modes", f"{name} {label} realizability", "measured, reported honestly",
                                    f"{report['realizability']:.4f}", None))  # fmt: skip
    header = ["domain", "n", "mode", "realizability", "mean rounds (accepted)", "LLM calls / accepted",
              "tokens / accepted", "accepted records/s", "selection-bias TVD", "drift TVD",
              "free sentences dropped"]  # fmt: skip
    md = [
        f"## (b) Modes end to end (SmolLM2-135M {quant.upper()}, {contexts} contexts, max_rounds = {MAX_ROUNDS})",
        "",
        table(header, rows),
        "",
        "## Example texts",
        "",
        *examples,
    ]
    return md, checks, runs


BATCHED_CASES = (  # (domain, retrieval, n, target accepted/s)
    ("asia", True, 60 // SCALE, 4.0),
    ("asia", False, 60 // SCALE, 8.0),
    ("clinic", True, 40 // SCALE, 3.0),
)


def batched() -> tuple[list[str], list[Check]]:
    """(c): accepted records/s end to end, previous implementation vs batched decoding, alternating arms."""
    import os

    from causalsynth.graphs.api import generate
    from causalsynth.tools.llm.local_chat import LocalChatModel
    from causalsynth.tools.llm.local_model import default_model

    path = str(default_model())
    arms = {  # the CLI's default local model: 2 contexts x 1 thread
        "previous": LocalChatModel(model_path=path, contexts=2, threads=1, batched=False),
        "batched": LocalChatModel(model_path=path, contexts=2, threads=1, batched=True),
    }
    rows: list[list[Any]] = []
    checks: list[Check] = []
    for name, retrieval, n, target in BATCHED_CASES:
        rates: dict[str, list[float]] = {"previous": [], "batched": []}
        real: dict[str, list[float]] = {"previous": [], "batched": []}
        loads: list[float] = []
        for arm in ("previous", "batched", "batched", "previous"):
            load = os.getloadavg()[0]
            print(f"{name} retrieval={retrieval} {arm} n={n} load {load:.1f} ...", file=sys.stderr, flush=True)
            res = generate(_spec(name), n, seed=11, llm=arms[arm], retrieval=retrieval, max_rounds=2)
            rates[arm].append(res.report["accepted_per_second"] or 0.0)
            real[arm].append(res.report["realizability"])
            loads += [load, os.getloadavg()[0]]
        old, new = (sum(rates[a]) / len(rates[a]) for a in ("previous", "batched"))
        label = f"{name}, retrieval {'on' if retrieval else 'off'}, n = {n}"
        rows.append([label, " / ".join(f"{r:.2f}" for r in rates["previous"]), old,
                     " / ".join(f"{r:.2f}" for r in rates["batched"]), new, new / old if old else float("nan"),
                     f"{min(real['batched']):.3f}", f"{min(loads):.1f}-{max(loads):.1f}"])  # fmt: skip
        checks.append(Check("batched", f"{label}: accepted records/s, batched", f">= {target:g} (idle 2 cores)",
                            f"{new:.2f} (previous {old:.2f}, x{new / old if old else float('nan'):.2f})",
                            new >= target))  # fmt: skip
        checks.append(Check("batched", f"{label}: realizability, batched", ">= 0.99", f"{min(real['batched']):.3f}",
                            min(real["batched"]) >= 0.99))  # fmt: skip
    header = ["case", "previous: accepted/s per run", "previous mean", "batched: accepted/s per run",
              "batched mean", "batched / previous", "realizability (batched, worst run)", "load average"]  # fmt: skip
    md = [
        "## (c) Batched decoding against the previous implementation (issue 19)",
        "",
        "Same process, same records (seed 11: the same skeletons and references in both arms), the default `run`",
        "path (anchored, iterative, max_rounds = 2, SmolLM2 Q4_0, 2 contexts x 1 thread), arms run in the order",
        "previous, batched, batched, previous. Command: `.venv/bin/python bench/llm.py --batched`. The machine is",
        "shared: the load average (1 minute, at the start and end of each run) says how much of its 2 cores the",
        "runs got; compare the ratio column, not the absolute rates, across tables.",
        "",
        table(header, rows),
        "",
    ]
    return md, checks


def _wilson(k: int, n: int, z: float = 1.96) -> str:
    """``k/n = p [lo, hi]`` with the Wilson 95% interval."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return f"{k}/{n} = {p:.3f} [{max(0.0, centre - half):.3f}, {min(1.0, centre + half):.3f}]"


def _examples(name: str, label: str, records: pd.DataFrame, rejects: pd.DataFrame) -> list[str]:
    out = [f"### {name}, {label}", ""]
    for _, row in records.head(3).iterrows():
        out += [f"- record {row.record_id} (rounds {row.rounds}): {row.text}"]
    if records.empty:
        out += ["- (no accepted record)"]
    corrected = records[records.rounds > 0]
    if len(corrected) and "iterative" in label:
        row = corrected.iloc[0]
        before = json.loads(row.history)[-1]
        problems = "; ".join(v["message"] for v in before["violations"])
        out += ["", f"Corrected record {row.record_id}:", "", f"- before: {before['text']}",
                f"- violations fed back: {problems}", f"- after (accepted): {row.text}"]  # fmt: skip
    elif "iterative" in label and len(rejects):
        # No correction succeeded: show one record's first attempt, the feedback, and the rewrite it produced.
        history = json.loads(rejects.iloc[0].history)
        first, second = history[0], history[1] if len(history) > 1 else None
        out += ["", f"A correction that did not succeed (record {rejects.iloc[0].record_id}):", "",
                f"- attempt 1: {first['text'][:600]}",
                f"- violations fed back: {'; '.join(v['message'] for v in first['violations'])}"]  # fmt: skip
        if second is not None:
            out += [f"- attempt 2, after the feedback: {second['text'][:600]}",
                    f"- its violations: {'; '.join(v['message'] for v in second['violations'])}"]  # fmt: skip
    if len(rejects):
        row = rejects.iloc[0]
        out += ["", f"A rejected record ({row.record_id}): {row.reason}"]
    return [*out, ""]


def run() -> Result:
    """Both parts; the fastest configuration of (a) runs (b)."""
    t0 = time.perf_counter()
    md = [
        "# The embedded LLM: SmolLM2-135M-Instruct through llama.cpp (bench/llm.py)",
        "",
        "Machine: the 2-core, no-GPU sandbox, shared with other work; absolute rates drift between runs, ratios in",
        "one table are comparable. Command: `.venv/bin/python bench/llm.py`.",
        "",
    ]
    speed_md, checks, rate = speed()
    md += speed_md
    fastest = max((c for c in SPEED_CONFIGS if c[4] == "segmented"), key=lambda c: rate[c[0]])
    modes_md, mode_checks, _ = modes((fastest[1], fastest[2]))
    md += [f"The fastest segmented configuration ({fastest[0]}) runs part (b).", "", *modes_md]
    return finish(md, checks + mode_checks, t0)


def _batched_only() -> Result:
    t0 = time.perf_counter()
    md, checks = batched()
    return finish(md, checks, t0)


def _replace_section(text: str, section: str) -> str:
    """``text`` (llm.md) with its part (c) replaced by ``section`` (or ``section`` added before the portable part)."""
    start = text.find("## (c) Batched decoding")
    if start >= 0:
        end = text.find("\n## ", start + 5)
        end = text.find("\n## Portable", start) if end < 0 else end
        return text[:start] + section.rstrip() + "\n" + (text[end:] if end >= 0 else "")
    at = text.find("## Portable")
    return text[:at] + section.rstrip() + "\n\n" + text[at:] if at >= 0 else text + "\n" + section


if __name__ == "__main__" and "--batched" in sys.argv:
    text = run_main(_batched_only)
    if not QUICK:
        OUT.write_text(_replace_section(OUT.read_text(), text))
        print(f"wrote {OUT}")
elif __name__ == "__main__":
    text = run_main(run)
    if not QUICK:
        OUT.write_text(text)
        print(f"wrote {OUT}")
