"""One template-pipeline run through the graph, printed as JSON (a child process of ``bench/loop.py``).

Run by ``loop.py`` twice per round: with the working tree's ``causalsynth`` and with a baseline commit's (laid out
by ``_common.baseline_view`` and put first on ``PYTHONPATH``), so both arms time the same records in one command.
Usage: ``throughput_child.py SPEC N BATCH [WARM]``: with WARM, a first run of the same size (another seed) warms the
process's caches (implied CIs, exact marginals, sentences read) and the second is timed: the steady state of a
long-lived process; without it, the first run of a fresh process is timed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore", FutureWarning)


def main() -> None:
    import causalsynth
    from causalsynth.agents.context import RunSettings
    from causalsynth.graphs.runner import run
    from causalsynth.tools.spec import load_domain
    from causalsynth.tools.text.template import TemplateRealiser

    spec, n, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    warm = len(sys.argv) > 4 and sys.argv[4] == "warm"
    domain = load_domain(spec)
    with tempfile.TemporaryDirectory() as tmp:
        if warm:
            run(domain, TemplateRealiser(domain.lexicon, seed=1), RunSettings(n=n, batch_size=batch, seed=1),
                Path(tmp) / "warm-up")  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        report = run(domain, TemplateRealiser(domain.lexicon, seed=0), RunSettings(n=n, batch_size=batch),
                     Path(tmp) / "run")  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        records = (Path(tmp) / "run" / "records.parquet").read_bytes()
    print(json.dumps({"package": str(Path(causalsynth.__file__).parent), "n": n, "wall": wall, "cpu": cpu,
                      "realizability": report["realizability"], "records_bytes": len(records)}))  # fmt: skip


if __name__ == "__main__":
    main()
