"""The agent graph: throughput of the template pipeline, and iterative correction vs rejection sampling.

Run: ``.venv/bin/python bench/loop.py`` (writes ``bench/results/loop.md``).

(a) Throughput: ``causalsynth run`` on the ALARM ICU spec with the template realiser, n = 10,000, end to end
    through the LangGraph graph (sampling, realisation, schema check, extraction and verification, assessment
    with CI tests and exact-marginal TVD, Parquet sinks). In the same process, two references: the same
    realise + extract + check work in a plain loop (the graph's overhead), and LangGraph ``Send`` fan-out of
    one trivial node per record (the per-record design the graph avoids).
(b) A SIMULATED prior-biased LLM (``bench/simulated_llm.py``; not a language model): rare facts are written as
    the likelier state at a set flip rate. Per flip rate, realizability and selection-bias TVD of iterative
    correction vs rejection sampling with the same budget of 1 + max_rounds generator calls per record.
"""

from __future__ import annotations

import operator
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import _common  # noqa: F401  (sets sys.path and warning filters)
import pandas as pd
from _common import ROOT, Check, Result, Timer, finish, run_main, table
from langgraph.types import Send
from typing_extensions import TypedDict

OUT = Path(__file__).resolve().parent / "results" / "loop.md"
N_THROUGHPUT = 20_000
#: The template path before its vectorisation (issue 19): timed against the working tree in the same command.
BASELINE = "afd7913"
AB_ROUNDS = 3
FLIP_RATES = (0.0, 0.1, 0.2, 0.3, 0.5)
SIM = (("asia", 5_000), ("alarm", 3_000))
MAX_ROUNDS = 3
SEEDS = (11, 12, 13)


def _spec(name: str) -> Path:
    return ROOT / "examples" / f"{name}.yaml"


def throughput() -> Result:
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run
    from causalsynth.tools.causal.sampler import Sampler
    from causalsynth.tools.spec import load_domain
    from causalsynth.tools.text.consistency import check_facts
    from causalsynth.tools.text.extract import extract
    from causalsynth.tools.text.template import TemplateRealiser

    t_start = time.perf_counter()
    domain = load_domain(_spec("alarm"))
    lex = domain.lexicon
    md = [
        "## (a) Throughput: template realiser, ALARM ICU record, n = 20,000",
        "",
        f"{len(lex.observed)} observed and {len(lex.latent)} latent variables; mean note length measured below.",
        "",
    ]
    rows = []
    reports = {}
    for batch in (1_000, 5_000):
        with tempfile.TemporaryDirectory() as tmp, Timer() as t:
            report = run(
                domain, TemplateRealiser(lex, seed=0), RunSettings(n=N_THROUGHPUT, batch_size=batch), Path(tmp)
            )
            texts = pd.read_parquet(Path(tmp) / "records.parquet")
        reports[batch] = (report, t.seconds, texts)
        rows.append([f"graph, batch {batch:,}", f"{t.seconds:.2f}", f"{N_THROUGHPUT / t.seconds:,.0f}"])

    # Reference 1: the same per-record work without the graph.
    skeletons = Sampler(domain.network).sample(N_THROUGHPUT, seed=0).data.astype(str).to_dict("records")
    realiser = TemplateRealiser(lex, seed=0)
    with Timer() as plain:
        bad = sum(bool(check_facts(lex, s, extract(lex, realiser.text(s, i)))) for i, s in enumerate(skeletons))
    rows.append(
        ["plain loop: realise + extract + check only", f"{plain.seconds:.2f}", f"{N_THROUGHPUT / plain.seconds:,.0f}"]
    )

    # Reference 2: LangGraph Send fan-out, one trivial node per record.
    send_s = _send_fanout(N_THROUGHPUT)
    rows.append(["LangGraph Send, one trivial node per record", f"{send_s:.2f}", f"{N_THROUGHPUT / send_s:,.0f}"])

    report, seconds, records = reports[1_000]
    rate = N_THROUGHPUT / seconds
    mismatches = 0
    for rec in records.to_dict("records"):
        if extract(lex, rec["text"]).stated() != {v: rec[v] for v in lex.observed}:
            mismatches += 1
    mean_chars = records.text.str.len().mean()
    md += [
        table(["pipeline", "seconds", "records/s"], rows),
        "",
        f"Mean note length {mean_chars:.0f} characters. Graph overhead vs the plain loop: "
        f"{seconds / plain.seconds:.2f}x the time (the graph also samples, assesses and writes Parquet). "
        f"Graph vs per-record Send: {send_s / seconds:.1f}x faster, and Send does no work per record.",
        "",
        table(
            ["measure", "value"],
            [
                ["realizability", report["realizability"]],
                ["records whose re-extracted facts differ from the skeleton", mismatches],
                ["ci_fpr_extracted", report["ci_fpr_extracted"]],
                ["ci_fpr_skeleton", report["ci_fpr_skeleton"]],
                ["implied CIs testable on observed variables", report["ci"]["extracted"]["n_tests"]],
                ["ci_power_extracted", report["ci_power_extracted"]],
                ["selection_bias_tvd (accepted)", report["selection_bias_tvd"]],
                ["TVD of all skeletons (sampling floor)", report["selection_bias"]["all_skeletons"]["mean"]],
            ],
        ),
    ]
    checks = [
        Check("a", "realizability, template on ALARM", "100%", f"{report['realizability']:.2%}",
              report["realizability"] == 1.0),
        Check("a", "extraction recovers every stated fact", "0 mismatches", str(mismatches + bad),
              mismatches + bad == 0),
        Check("a", "FPR on extracted = FPR on skeletons", "equal",
              f"{report['ci_fpr_extracted']:.4f} vs {report['ci_fpr_skeleton']:.4f}",
              report["ci_fpr_extracted"] == report["ci_fpr_skeleton"]),
        Check("a", "records/s through the graph, batch 1,000, first run of this process", "info", f"{rate:,.0f}",
              None),
    ]  # fmt: skip
    ab_md, ab_checks, warm = _against_baseline()
    checks.append(Check("a", "end-to-end records/s through the graph (batch 5,000, warm process: median wall of the "
                        "A/B below)", ">= 10,000", f"{warm:,.0f}", warm >= 10_000))  # fmt: skip
    return finish(md + ab_md, checks + ab_checks, t_start)


def _against_baseline() -> tuple[list[str], list[Check], float]:
    """The same run through the graph with the baseline commit's package and the working tree's, alternated.

    Each arm is a child process (``throughput_child.py``) that runs once to warm its caches, then is timed; CPU
    seconds are reported beside wall seconds because the machine is shared (the load average is printed). Also
    returns the working tree's warm records/s (median wall), the steady state the target is checked on.
    """
    import json
    import statistics

    from _common import baseline_view, run_baseline

    view = baseline_view(BASELINE)
    args = (str(_spec("alarm")), str(N_THROUGHPUT), "5000", "warm")
    arms: dict[str, list[dict[str, float]]] = {"baseline": [], "now": []}
    load = os.getloadavg()[0]
    for _ in range(AB_ROUNDS):
        for arm, path in (("baseline", view), ("now", ROOT / "bench")):
            arms[arm].append(json.loads(run_baseline(path, str(ROOT / "bench" / "throughput_child.py"), *args)))
    load = max(load, os.getloadavg()[0])

    def median(arm: str, key: str) -> float:
        return statistics.median(r[key] for r in arms[arm])

    rows = [[arm, f"{median(arm, 'wall'):.2f}", f"{N_THROUGHPUT / median(arm, 'wall'):,.0f}",
             f"{median(arm, 'cpu'):.2f}", f"{N_THROUGHPUT / median(arm, 'cpu'):,.0f}",
             f"{min(r['realizability'] for r in arms[arm]):.4f}"] for arm in arms]  # fmt: skip
    speedup_wall = median("baseline", "wall") / median("now", "wall")
    speedup_cpu = median("baseline", "cpu") / median("now", "cpu")
    md = [
        "",
        f"### Against the previous implementation (commit {BASELINE}), same command",
        "",
        f"Child processes alternate {AB_ROUNDS} times per arm; each runs n = {N_THROUGHPUT:,} once to warm its",
        f"caches, then is timed (medians). Load average up to {load:.1f} on {os.cpu_count()} cores while it ran.",
        "",
        table(["arm", "wall s", "records/s (wall)", "CPU s", "records/s (CPU)", "realizability"], rows),
        "",
        f"Speed-up: {speedup_wall:.2f}x wall, {speedup_cpu:.2f}x CPU.",
    ]
    checks = [Check("a", "template path vs previous implementation (CPU)", "faster", f"{speedup_cpu:.2f}x",
                    speedup_cpu > 1.0)]  # fmt: skip
    return md, checks, N_THROUGHPUT / median("now", "wall")


class _FanState(TypedDict, total=False):
    items: list[int]
    done: Annotated[list[int], operator.add]


class _One(TypedDict):
    item: int


def _send_fanout(n: int) -> float:
    from langgraph.graph import END, START, StateGraph

    def fan(state: _FanState) -> list[Send]:
        return [Send("work", {"item": i}) for i in state["items"]]

    def work(state: _One) -> dict[str, list[int]]:
        return {"done": [state["item"]]}

    builder = StateGraph(_FanState)
    builder.add_node("work", work)
    builder.add_conditional_edges(START, fan, ["work"])
    builder.add_edge("work", END)
    graph = builder.compile()
    with Timer() as t:
        out = graph.invoke({"items": list(range(n))})
    assert len(out["done"]) == n
    return t.seconds


def simulation() -> Result:
    from simulated_llm import SimulatedBiasedLLM

    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run
    from causalsynth.tools.spec import load_domain

    t_start = time.perf_counter()
    md = [
        "## (b) Iterative correction vs rejection sampling, with a SIMULATED prior-biased LLM",
        "",
        "**This is a simulation, not a language model** (`bench/simulated_llm.py`): each rare fact (a state other",
        "than the variable's most probable one) is written as the likelier state with probability `flip`. A fresh",
        "attempt re-rolls every rare fact; a correction rewrites only the facts the feedback names, each again",
        f"pulled back with probability `flip`. Budget: 1 + {MAX_ROUNDS} generator calls per record in both modes.",
        f"Each cell is the mean over seeds {', '.join(map(str, SEEDS))} (same skeletons in both modes).",
        "",
        "* `TVD`: `selection_bias_tvd`, the mean total variation distance of all single and pairwise marginals of",
        "  the accepted records from the SCM's exact marginals; `floor`: the same for all requested skeletons",
        "  (sampling noise alone, reached when nothing is dropped).",
        "* `drift`: the same distance between the accepted records and all requested skeletons: the part of the",
        "  TVD that the selection causes, without the sampling noise.",
        "",
    ]
    checks = []
    for name, n in SIM:
        domain = load_domain(_spec(name))
        rows = []
        for flip in FLIP_RATES:
            got: dict[str, list[dict]] = {"iterative": [], "rejection": []}
            for seed in SEEDS:
                for mode in ("iterative", "rejection"):
                    settings = RunSettings(n=n, mode=mode, max_rounds=MAX_ROUNDS, batch_size=1_000, seed=seed,
                                           llm=f"simulated(flip={flip})")  # fmt: skip
                    got[mode].append(run(domain, SimulatedBiasedLLM(domain, flip, seed=seed), settings, None))

            def mean(mode: str, pick: Any) -> float:
                return float(sum(pick(r) for r in got[mode]) / len(got[mode]))

            tvd = {m: mean(m, lambda r: r["selection_bias_tvd"]) for m in got}
            drift = {m: mean(m, lambda r: r["selection_bias"]["drift"]["mean"]) for m in got}
            floor = mean("iterative", lambda r: r["selection_bias"]["all_skeletons"]["mean"])
            rows.append([
                flip, mean("iterative", lambda r: r["realizability"]), mean("rejection", lambda r: r["realizability"]),
                tvd["iterative"], tvd["rejection"], floor, drift["iterative"], drift["rejection"],
                mean("iterative", lambda r: r["llm_calls_per_accepted"]),
                mean("rejection", lambda r: r["llm_calls_per_accepted"]),
            ])  # fmt: skip
            if flip > 0:
                checks.append(
                    Check("b", f"{name}, flip {flip}: TVD iterative < rejection", "iterative lower",
                          f"{tvd['iterative']:.4f} vs {tvd['rejection']:.4f}", tvd["iterative"] < tvd["rejection"])
                )  # fmt: skip
                checks.append(
                    Check("b", f"{name}, flip {flip}: drift iterative < rejection", "iterative lower",
                          f"{drift['iterative']:.5f} vs {drift['rejection']:.5f}",
                          drift["iterative"] < drift["rejection"])
                )  # fmt: skip
        md += [
            f"### {name} (n = {n:,})",
            "",
            table(
                [
                    "flip",
                    "realiz. iter",
                    "realiz. rej",
                    "TVD iter",
                    "TVD rej",
                    "floor",
                    "drift iter",
                    "drift rej",
                    "calls/acc iter",
                    "calls/acc rej",
                ],
                rows,
            ),  # fmt: skip
            "",
        ]
    md += [
        "Why iterative wins: with k rare facts and flip rate p, a fresh attempt is clean with probability",
        "(1 - p)^k, so rejection sampling keeps a record within K + 1 attempts with probability",
        "1 - (1 - (1 - p)^k)^(K+1), which falls fast with k: records with many rare facts (the SCM's tails) are",
        "dropped and the accepted distribution drifts toward the modes. Targeted correction keeps what was right",
        "and retries each named fact on its own, so a record is lost only if some fact flips K + 1 times in a row",
        "(probability about k p^(K+1)), nearly independent of how unusual the record is.",
        "",
        "Where the TVD comparison is close (ASIA at flip 0.1), rejection drops well under 1% of the records: the",
        "drift it causes is far below the sampling floor of n records, so the TVD against the SCM separates the",
        "modes by less than its own noise there (single seeds went either way); the drift column, which removes",
        "the sampling noise, separates them at every flip rate.",
    ]
    return finish(md, checks, t_start)


def main() -> None:
    parts = []
    for section in (throughput, simulation):
        parts.append(run_main(section))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    import subprocess

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    header = (
        "# Agent graph benchmarks\n\nProduced by `.venv/bin/python bench/loop.py` "
        f"at commit {rev.stdout.strip() or '?'} on a {os.cpu_count()}-core machine.\n\n"
    )
    OUT.write_text(header + "\n".join(parts))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
