"""Plugins: what the hooks cost a run that uses none, and what a validator tool costs per record.

Run: ``.venv/bin/python bench/plugins.py`` (prints; nothing is written).

(a) The built-in path: ``generate("asia", N, llm="template")`` with the plugin hooks as shipped (``run_plugins`` once
    per batch in the Generator and the verifier) against the same run with the hooks replaced by a no-op, arms
    alternating in one process; median records/s and their ratio (target: no measurable difference).
(b) A run whose spec names the example plugin's ``formulary_check`` validator tool (it must be installed:
    ``make setup``) against the same spec without it: the tool runs once per record and attempt, each call on its
    own thread so that a hung tool cannot stop the run; the difference per record is printed, with what one
    ``tool.invoke`` costs (LangChain's argument validation and callbacks) over calling the function itself.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import timeit
from pathlib import Path

import _common  # noqa: F401  (sets sys.path and warning filters)
from _common import ROOT

import causalsynth as cs
from causalsynth.agents import causal_verifier, generator
from causalsynth.agents.run_plugins import run_plugins

N = 50_000
ROUNDS = 4


def _none(ctx: object) -> None:
    return None


def timed(spec: object, n: int, seed: int) -> float:
    start = time.perf_counter()
    cs.generate(spec, n, llm="template", seed=seed)  # type: ignore[arg-type]
    return time.perf_counter() - start


def main() -> None:
    cs.generate("asia", 2_000, llm="template")  # warm-up
    arms: dict[str, list[float]] = {"hooks": [], "no-op": []}
    for i in range(ROUNDS):
        for arm in ("no-op", "hooks") if i % 2 == 0 else ("hooks", "no-op"):
            for module in (causal_verifier, generator):
                module.run_plugins = run_plugins if arm == "hooks" else _none  # type: ignore[assignment]
            arms[arm].append(timed("asia", N, i))
    for module in (causal_verifier, generator):
        module.run_plugins = run_plugins  # type: ignore[assignment]
    rates = {arm: N / statistics.median(ts) for arm, ts in arms.items()}
    print(f"(a) asia, template, n={N:,}, {ROUNDS} runs per arm, alternating")
    for arm, ts in arms.items():
        print(f"    {arm:6} seconds {[round(t, 2) for t in ts]}  median {rates[arm]:,.0f} records/s")
    print(f"    hooks / no-op throughput: {rates['hooks'] / rates['no-op']:.3f}")

    class Ctx:
        domain = cs.load_spec("asia")

    per_call = timeit.timeit(lambda: run_plugins(Ctx()), number=20_000) / 20_000  # type: ignore[arg-type]
    print(f"    run_plugins, first call of a run (spec without plugins): {per_call * 1e6:.2f} us; 2 calls per batch")

    text = (
        (ROOT / "examples" / "asia.yaml")
        .read_text()
        .replace("../retrieval_corpus/asia", str(ROOT / "retrieval_corpus" / "asia"))
    )
    with tempfile.TemporaryDirectory() as tmp:
        plain, checked = Path(tmp) / "plain.yaml", Path(tmp) / "checked.yaml"
        plain.write_text(text)
        checked.write_text(
            text.replace("  bnlearn: asia\n", "  bnlearn: asia\nplugins: {validators: [formulary_check]}\n", 1)
        )
        n = 10_000
        base = [timed(plain, n, s) for s in range(2)]
        tool = [timed(checked, n, s) for s in range(2)]
    extra = (statistics.median(tool) - statistics.median(base)) / n
    from hospital_plugin.formulary import formulary_check

    note = "Seen today. No recent travel. TB screen negative. Current smoker. No lung cancer. Chest X-ray is clear."
    invoke = timeit.timeit(lambda: formulary_check.invoke({"text": note}), number=2_000) / 2_000
    func = timeit.timeit(lambda: formulary_check.func(note), number=2_000) / 2_000  # type: ignore[attr-defined]
    print(f"    one formulary_check call: tool.invoke {invoke * 1e6:.0f} us, the function itself {func * 1e6:.0f} us")
    print(
        f"(b) asia, template, n={n:,}: without {statistics.median(base):.2f} s, with formulary_check "
        f"{statistics.median(tool):.2f} s: {extra * 1e6:.0f} us per record for one validator tool"
    )


if __name__ == "__main__":
    main()
