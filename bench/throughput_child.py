"""One template-pipeline run through the graph, printed as JSON (a child process of ``bench/loop.py``).

Run by ``loop.py`` twice per round: with the working tree's ``causalsynth`` and with a baseline commit's (laid out
by ``_common.baseline_view`` and put first on ``PYTHONPATH``), so both arms time the same records in one command.
Usage: ``throughput_child.py SPEC N BATCH``.
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
    domain = load_domain(spec)
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        report = run(domain, TemplateRealiser(domain.lexicon, seed=0), RunSettings(n=n, batch_size=batch), Path(tmp))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        records = (Path(tmp) / "records.parquet").read_bytes()
    print(json.dumps({"package": str(Path(causalsynth.__file__).parent), "n": n, "wall": wall, "cpu": cpu,
                      "realizability": report["realizability"], "records_bytes": len(records)}))  # fmt: skip


if __name__ == "__main__":
    main()
