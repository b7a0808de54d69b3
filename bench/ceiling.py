"""The local-model path against what this CPU can compute: tokens per record, llama.cpp's raw rate, the ceiling.

Run: ``.venv/bin/python bench/ceiling.py`` (replaces part (e) of ``bench/results/llm.md``).

(1) llama.cpp's raw prompt-evaluation rate for the default model (SmolLM2-135M Q4_0) on this machine: one context
    evaluating 448 tokens of one sequence in calls of 56, all cores, flash attention off and on; best of 3. This is
    an upper bound on the decoder's rate, which adds attention over many records' cells, padding and sampling.
(2) The default ``run`` path (anchored, iterative, 2 contexts x 1 thread) per case, end to end in a child process:
    the working tree and the previous commit (:data:`BASELINE`), alternating, the same records. Each child counts
    the tokens its batched decoder evaluates (``llama_decode`` rows, padding excluded) and the seconds inside
    ``llama_decode``.
(3) The ceiling: raw rate / tokens evaluated per accepted record = the most records/s the path could reach if every
    token were evaluated at llama.cpp's best rate and nothing else took time. The issue's targets are set beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (sets sys.path and warning filters)
from _common import ROOT, Check, Result, baseline_view, finish, run_baseline, run_main, table

OUT = Path(__file__).resolve().parent / "results" / "llm.md"
#: The decoder before prefixes were kept between rounds and rounds were sized by tokens (issue 19, this stop).
BASELINE = "1748556"
CASES = (  # (spec, retrieval, n, target accepted records/s)
    ("asia", True, 60, 4.0),
    ("asia", False, 60, 8.0),
    ("clinic", True, 40, 3.0),
)
ROUNDS = 2


def _raw_rate() -> list[list[str]]:
    import llama_cpp

    from causalsynth.tools.llm.local_model import default_model

    rows = []
    for flash in (False, True):
        llm = llama_cpp.Llama(model_path=str(default_model()), n_ctx=1024, n_threads=os.cpu_count() or 1,
                              n_threads_batch=os.cpu_count() or 1, n_batch=56, n_ubatch=56, flash_attn=flash,
                              verbose=False)  # fmt: skip
        best = 0.0
        for _ in range(3):
            llm.reset()
            t = time.perf_counter()
            llm.eval([100 + i % 500 for i in range(448)])
            best = max(best, 448 / (time.perf_counter() - t))
        rows.append([f"flash attention {'on' if flash else 'off'}", f"{os.cpu_count()}", f"{best:.0f}"])
        del llm
    return rows


def child() -> None:
    """In a child process: one run of ``argv`` = SPEC N RETRIEVAL, printing what it counted as JSON."""
    import resource

    # The package under test is the one first on PYTHONPATH (the baseline's view, or the installed working tree):
    # not the checkout that ``_common`` puts first on sys.path.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    from causalsynth.tools.llm import batch_decode

    spec, n, retrieval = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    counted = {"tokens": 0, "decode_s": 0.0}
    decode = batch_decode.BatchDecoder._decode

    def counting(self: object, items: list[object]) -> None:
        t = time.perf_counter()
        decode(self, items)  # type: ignore[arg-type]
        counted["decode_s"] += time.perf_counter() - t
        counted["tokens"] += len(items)

    batch_decode.BatchDecoder._decode = counting  # type: ignore[method-assign]
    from causalsynth.graphs.api import generate

    wall = time.perf_counter()
    res = generate(ROOT / "examples" / f"{spec}.yaml", n, seed=11, retrieval=retrieval, max_rounds=2)
    wall = time.perf_counter() - wall
    ru = resource.getrusage(resource.RUSAGE_SELF)
    import causalsynth

    report = res.report
    print(json.dumps({"package": str(Path(causalsynth.__file__).parent), "wall": wall,
                      "cpu": ru.ru_utime + ru.ru_stime, "accepted": report["n_accepted"],
                      "per_s": report["accepted_per_second"], "realizability": report["realizability"],
                      **counted}))  # fmt: skip


def run() -> Result:
    t0 = time.perf_counter()
    raw = _raw_rate()
    view = baseline_view(BASELINE)
    rows, checks = [], []
    for spec, retrieval, n, target in CASES:
        got: dict[str, list[dict[str, float]]] = {"previous": [], "now": []}
        loads = []
        for _ in range(ROUNDS):
            for arm, path in (("previous", view), ("now", ROOT / "bench")):
                loads.append(os.getloadavg()[0])
                out = run_baseline(path, __file__, "--child", spec, str(n), "1" if retrieval else "0")
                got[arm].append(json.loads(out.strip().splitlines()[-1]))
                assert (got[arm][-1]["package"].startswith(str(view))) == (arm == "previous"), got[arm][-1]
        loads.append(os.getloadavg()[0])

        def med(arm: str, key: str, per: bool = False) -> float:
            return statistics.median(r[key] / (r["accepted"] if per else 1) for r in got[arm])

        label = f"{spec}, retrieval {'on' if retrieval else 'off'}, n = {n}"
        rows.append([label, f"{med('previous', 'per_s'):.2f}", f"{med('now', 'per_s'):.2f}",
                     f"{med('previous', 'cpu', per=True):.3f}", f"{med('now', 'cpu', per=True):.3f}",
                     f"{med('previous', 'tokens', per=True):.0f}", f"{med('now', 'tokens', per=True):.0f}",
                     f"{statistics.median(r['tokens'] / r['decode_s'] for r in got['now']):.0f}",
                     "", f"{target:g}", f"{min(r['realizability'] for r in got['now']):.3f}",
                     f"{min(loads):.1f}-{max(loads):.1f}"])  # fmt: skip
        checks.append(Check("e", f"{label}: accepted/s, kept prefixes vs previous (same records)", "faster",
                            f"{med('now', 'per_s'):.2f} vs {med('previous', 'per_s'):.2f}",
                            med("now", "per_s") > med("previous", "per_s")))  # fmt: skip
    # The ceiling from the better of the raw rates measured before and after the runs.
    raw = [[*a[:2], f"{max(float(a[2]), float(b[2])):.0f}"] for a, b in zip(raw, _raw_rate(), strict=True)]
    best = max(float(r[2]) for r in raw)
    for row, (_, _, _, target) in zip(rows, CASES, strict=True):
        row[8] = f"{best / float(row[6]):.2f}"
        checks.append(Check("e", f"{row[0]}: target within this CPU's ceiling", f">= {target:g}/s possible",
                            f"ceiling {row[8]}/s", float(row[8]) >= target))  # fmt: skip
    md = [
        "## (e) The local-model path against this CPU's ceiling (`bench/ceiling.py`)",
        "",
        "Command: `.venv/bin/python bench/ceiling.py`. (1) llama.cpp's raw prompt-evaluation rate for the default",
        "model, one context, all cores, 448 tokens in calls of 56, best of 3 before and 3 after the runs:",
        "",
        table(["configuration", "threads", "tokens/s"], raw),
        "",
        "(2) The default `run` path (anchored, iterative, max_rounds 2, 2 contexts x 1 thread), seed 11, child",
        f"processes alternating {ROUNDS} times per arm: the working tree and the previous commit {BASELINE} (before",
        "prefixes were kept between rounds and rounds were sized by real tokens). Medians. Tokens: rows evaluated",
        "by `llama_decode` per accepted record (padding excluded); decoder rate: those tokens per second inside",
        "`llama_decode`, per context. (3) Ceiling: the raw rate above (the better configuration) divided by the",
        "tokens per accepted record: the most records/s if every token ran at llama.cpp's best rate and nothing",
        "else took time.",
        "",
        table(
            [
                "case",
                "previous accepted/s",
                "now accepted/s",
                "previous CPU s/record",
                "now CPU s/record",
                "previous tokens/record",
                "now tokens/record",
                "decoder tokens/s per context",
                "ceiling records/s",
                "target records/s",
                "realizability (now, worst)",
                "load average",
            ],
            rows,
        ),  # fmt: skip
        "",
    ]
    return finish(md, checks, t0)


def _replace_part(text: str, section: str) -> str:
    """``text`` (llm.md) with part (e) replaced by ``section``, or ``section`` added before the portable part."""
    start = text.find("## (e) ")
    if start >= 0:
        end = text.find("\n## ", start + 5)
        return text[:start] + section.rstrip() + "\n" + (text[end:] if end >= 0 else "")
    at = text.find("## Portable")
    return text[:at] + section.rstrip() + "\n\n" + text[at:] if at >= 0 else text + "\n" + section


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child()
elif __name__ == "__main__":
    text = run_main(run)
    OUT.write_text(_replace_part(OUT.read_text(), text))
    print(f"wrote {OUT}")
