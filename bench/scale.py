"""Scaling out with ``--engine dask``: 1 vs 2 worker processes, and a scheduler with workers started by hand.

Run on an idle machine: ``.venv/bin/python bench/scale.py`` (writes ``bench/results/scale.md``; about 8 minutes
on an idle 2-core machine). ``--quick`` runs small sizes (a smoke run; results are not written); ``--part b`` runs
only part (b) (printed, not written). ``--help`` prints this text.

(a) Template pipeline, ALARM: records/s of the same run (same seed, same shards) on a 1-worker and a 2-worker
    LocalCluster, arms alternated in this one process, several repetitions; parallel efficiency = speed-up / 2.
(b) Local model, ASIA anchored (SmolLM2-135M through llama.cpp): the same, each worker holding one llama.cpp
    context with ONE thread (``--concurrency 1 --threads 1``), so the 1-worker arm uses one core and the 2-worker
    arm two. A reference arm runs the same records in one process with two contexts of one thread each (the
    whole machine without Dask). The model is loaded once per worker in a warm-up run, not timed. 48 records in
    6 shards of one whole batch of 8 (3 per worker on 2 workers), so every llama.cpp batch is the size the
    single-process run decodes.
(c) Across hosts, checked on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes started from the
    command line, ``causalsynth run/sample --engine dask --scheduler ADDRESS`` against them, outputs compared with
    the local run, and every socket those processes listen on checked to be on loopback.

The machine is shared with other engineers: the load average is printed before and after every timed run, and
the CPU seconds the working processes used (Dask workers: every thread of each worker process; the in-process arm:
this process), so that "cores used" = CPU seconds / wall seconds shows how much of the machine each arm got, and
for the Dask arms the CPU seconds of this process too (the client, and the LocalCluster's scheduler, which runs
in it), the cost of the engine itself.
Clusters are started before the timing starts; a timed run includes connecting the client, pickling the spec to
the workers, the shards, and merging the report.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets sys.path and warning filters)
import pandas as pd
from _common import ROOT, Check, Result, finish, run_main, table

from causalsynth import generate
from causalsynth.graphs.dask_engine import local_cluster
from causalsynth.tools.llm.factory import LLMOptions

OUT = Path(__file__).resolve().parent / "results" / "scale.md"
QUICK = "--quick" in sys.argv
ONLY_B = "--part" in sys.argv
N_TEMPLATE = 2_000 if QUICK else 20_000
N_LLM = 16 if QUICK else 48
LLM_BATCH = 8
REPS = 1 if QUICK else 3
SHARDS = 8
BIN = Path(sys.executable).parent


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("record_id").reset_index(drop=True)


def timed(label: str, **kwargs: Any) -> dict[str, Any]:
    """One run of ``generate``: wall time, and CPU seconds of the processes that did the work."""
    address = kwargs.get("scheduler")
    cpu = (lambda: _cluster_cpu(address)) if address else _own_cpu
    before, cpu_before = load(), cpu()
    own_before = _own_cpu()
    start = time.perf_counter()
    result = generate(**kwargs)
    seconds = time.perf_counter() - start
    own = _own_cpu() - own_before
    cpu_s = cpu() - cpu_before
    row = {"arm": label, "n": kwargs["n"], "seconds": seconds, "records/s": kwargs["n"] / seconds,
           "cpu s": cpu_s, "cores used": cpu_s / seconds, "cpu s/record": cpu_s / kwargs["n"],
           "client cpu s": own if address else None, "shards": (result.report.get("engine") or {}).get("shards"),
           "load before": before, "load after": load(), "records": by_id(result.records)}  # fmt: skip
    print(f"  {label}: {seconds:.1f} s, {row['records/s']:.2f} records/s, {row['cores used']:.2f} cores "
          f"(load {before} -> {row['load after']})")  # fmt: skip
    return row


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _cluster_cpu(address: str) -> float:
    """CPU seconds (user + system, every thread) the cluster's worker processes have used so far."""
    from distributed import Client

    with Client(address) as client:
        return float(sum(client.run(_worker_cpu).values()))


def _worker_cpu() -> float:
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def scaling(section: str, arms: dict[str, dict[str, Any]], reps: int) -> tuple[list[str], list[Check]]:
    """Alternate the arms ``reps`` times; a table of every run, the median rates, speed-up and efficiency."""
    rows: list[dict[str, Any]] = []
    for rep in range(reps):
        for label, kwargs in arms.items():
            print(f"{section} rep {rep + 1}: {label}")
            rows.append(timed(label, **kwargs) | {"rep": rep + 1})
    first = rows[0]["records"]
    same = all(r["records"].equals(first) for r in rows)
    median = {label: float(pd.Series([r["records/s"] for r in rows if r["arm"] == label]).median()) for label in arms}
    md = [table(["rep", "arm", "records", "shards", "seconds", "records/s", "CPU s", "cores used", "CPU s / record",
                 "client + scheduler CPU s", "load 1/5/15 min before", "after"],
                [[r["rep"], r["arm"], r["n"], r["shards"] or "-", r["seconds"], r["records/s"], r["cpu s"],
                  r["cores used"], r["cpu s/record"], "-" if r["client cpu s"] is None else r["client cpu s"],
                  r["load before"], r["load after"]] for r in rows])]  # fmt: skip
    one, two = list(arms)[:2]
    speedup = median[two] / median[one]
    md += ["", "Median records/s: " + ", ".join(f"{k} {v:.3g}" for k, v in median.items()) + ".",
           f"Speed-up 2 workers / 1 worker: **{speedup:.2f}x**, parallel efficiency **{speedup / 2:.2f}**.",
           f"Every run produced the same records (sorted by id): {'yes' if same else 'NO'}."]  # fmt: skip
    checks = [Check(section, f"{section}: same records in every arm", "identical", "yes" if same else "no", same)]
    return md, checks + [Check(section, f"{section}: speed-up 2 vs 1 worker", "info", f"{speedup:.2f}x", None)]


def part_a(one: str, two: str) -> tuple[list[str], list[Check]]:
    common = {"spec": "alarm", "n": N_TEMPLATE, "seed": 1, "llm": "template", "engine": "dask", "shards": SHARDS}
    for address in (one, two):  # warm-up: workers import the package and compile the graph
        generate(**{**common, "n": 200, "scheduler": address})
    arms = {"1 worker": {**common, "scheduler": one}, "2 workers": {**common, "scheduler": two}}
    md, checks = scaling("(a) template ALARM", arms, REPS)
    intro = f"{N_TEMPLATE:,} records, seed 1, {SHARDS} shards, batch size 1000, template realiser."
    return ["## (a) Template pipeline, ALARM", "", intro, "", *md], checks


def part_b(one: str, two: str) -> tuple[list[str], list[Check]]:
    per_worker = LLMOptions(concurrency=1, threads=1)
    common = {"spec": "asia", "n": N_LLM, "seed": 2, "llm": "local", "realize": "anchored", "retrieval": False,
              "max_rounds": 2, "batch_size": LLM_BATCH}  # fmt: skip
    # the same shards in both arms: whole batches of 8 (one llama.cpp batch each), 3 per worker on 2 workers
    dask = {**common, "engine": "dask", "llm_options": per_worker, "shards": N_LLM // LLM_BATCH}
    for address in (one, two):  # warm-up: every worker loads the model once (one small shard per worker, or more)
        generate(**{**dask, "n": 8, "batch_size": 1, "shards": 8, "scheduler": address})
    loaded = {"1-worker": _models_loaded(one), "2-worker": _models_loaded(two)}
    print(f"  models loaded per worker after the warm-up: {loaded}")
    arms = {
        "1 worker (1 context x 1 thread)": {**dask, "scheduler": one},
        "2 workers (1 context x 1 thread each)": {**dask, "scheduler": two},
        "one process, no Dask (2 contexts x 1 thread)": {**common, "llm_options": LLMOptions(concurrency=2, threads=1)},
    }
    md, checks = scaling("(b) local model ASIA anchored", arms, REPS)
    after = {"1-worker": _models_loaded(one), "2-worker": _models_loaded(two)}
    once = after == loaded and all(v == 1 for counts in after.values() for v in counts)
    md += [
        f"Realisers (models) built per worker process: {after['1-worker']} on the 1-worker cluster, "
        f"{after['2-worker']} on the 2-worker cluster, the same after the warm-up as after every timed run: "
        f"each worker loaded the model once and reused it for all its shards ({'yes' if once else 'NO'})."
    ]
    checks.append(Check("(b)", "(b) model loaded once per worker, reused across shards and runs", "yes",
                        "yes" if once else "no", once))  # fmt: skip
    speed = [c for c in checks if "speed-up" in c.name][0]
    x = float(speed.value.rstrip("x"))
    checks = [c for c in checks if c is not speed]
    checks.append(Check("(b)", "(b) local model: 2 workers vs 1 worker records/s", ">= 1.6x", f"{x:.2f}x", x >= 1.6))
    intro = [
        "## (b) Local model, ASIA anchored (SmolLM2-135M Q4_0 through llama.cpp)", "",
        f"{N_LLM} records, seed 2, iterative + anchored, max_rounds 2, batch size {LLM_BATCH}, {N_LLM // LLM_BATCH} "
        "shards of one whole batch each (model runs cut shards at batch boundaries), no retrieval.",
        "Threads: each worker process holds ONE llama.cpp context with ONE thread (`--concurrency 1 --threads 1`): "
        "the 1-worker arm uses one core, the 2-worker arm two. The third arm is the same run in one process "
        "without Dask, with two contexts of one thread each (both cores).", "",
    ]  # fmt: skip
    return [*intro, *md], checks


def part_c(tmp: Path) -> tuple[list[str], list[Check]]:
    """A scheduler and two workers started from the command line on 127.0.0.1; run and sample against them."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)]  # fmt: skip
    try:
        time.sleep(3)
        for _ in range(2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1",
                                           "--nthreads", "1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp))  # fmt: skip
        _wait_workers(address, 2)
        cli = str(BIN / "causalsynth")
        run_local = [cli, "run", "asia", "-n", "500", "--llm", "template", "--seed", "9"]
        subprocess.run([*run_local, "--out", str(tmp / "local")], check=True, capture_output=True)
        subprocess.run([*run_local, "--out", str(tmp / "cluster"), "--engine", "dask", "--scheduler", address,
                        "--shards", "5"], check=True, capture_output=True)  # fmt: skip
        sample = [cli, "sample", "alarm", "-n", "20000", "--seed", "9"]
        subprocess.run([*sample, "--out", str(tmp / "s_local.parquet")], check=True, capture_output=True)
        subprocess.run([*sample, "--out", str(tmp / "s_cluster.parquet"), "--engine", "dask", "--scheduler", address],
                       check=True, capture_output=True)  # fmt: skip
        sockets = _listening([p.pid for p in procs])
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    runs_equal = by_id(pd.read_parquet(tmp / "local" / "records.parquet")).equals(
        by_id(pd.read_parquet(tmp / "cluster" / "records.parquet"))
    )
    samples_equal = pd.read_parquet(tmp / "s_local.parquet").equals(pd.read_parquet(tmp / "s_cluster.parquet"))
    files = sorted(p.name for p in (tmp / "cluster" / "records.parquet").iterdir())
    loopback = bool(sockets) and all(s.startswith("127.0.0.1:") for s in sockets)
    md = [
        "## (c) Across hosts: `dask scheduler` and two `dask worker` processes from the command line", "",
        "On several machines: run `dask scheduler --host ADDR` on one, `dask worker tcp://ADDR:8786 --host "
        "WORKER_ADDR --nthreads 1` on each of the others (one task thread per worker process; llama.cpp has its own "
        "threads, `--threads`), and `causalsynth run ... --engine dask --scheduler tcp://ADDR:8786` wherever the "
        "client is. What must be shared: the same causalsynth version on every host (llama-cpp-python built on, or "
        "portably for, each host's CPU); the model file at the same path on every worker (`--model-path`, or the "
        "default cache `~/.cache/causalsynth/models`); the run folder (`--out`) on a file system that the client and "
        "every worker see at the same path, since workers write their shard files there directly; API keys in the "
        "workers' environment. The spec itself travels pickled with each shard. What was checked here, with every "
        "process on 127.0.0.1:", "",
        "```", f"dask scheduler --host 127.0.0.1 --port {port} --no-dashboard",
        f"dask worker {address} --host 127.0.0.1 --nthreads 1 --no-dashboard --dashboard-address 127.0.0.1:0  # x2",
        f"causalsynth run asia -n 500 --llm template --seed 9 --out DIR --engine dask --scheduler {address} --shards 5",
        f"causalsynth sample alarm -n 20000 --seed 9 --out FILE.parquet --engine dask --scheduler {address}", "```", "",
        f"- `run`: records equal to the local run's: {'yes' if runs_equal else 'NO'}; `records.parquet` is a dataset "
        f"of {len(files)} files ({files[0]} .. {files[-1]}).",
        f"- `sample`: table equal to the local sample: {'yes' if samples_equal else 'NO'}.",
        f"- Sockets the scheduler and workers listen on: {', '.join(sorted(sockets))} (all loopback: "
        f"{'yes' if loopback else 'NO'}).",
    ]  # fmt: skip
    checks = [Check("(c)", "(c) CLI scheduler + 2 workers: run equals local", "identical", str(runs_equal), runs_equal),
              Check("(c)", "(c) CLI scheduler + 2 workers: sample equals local", "identical", str(samples_equal),
                    samples_equal),
              Check("(c)", "(c) every listening socket on 127.0.0.1", "yes", str(loopback), loopback)]  # fmt: skip
    return md, checks


def _models_loaded(address: str) -> list[int]:
    """Per worker process: how many realisers it has built for the local model."""
    from distributed import Client

    with Client(address) as client:
        counts = client.run(_built_here)
    return sorted(counts.values())


def _built_here() -> int:
    from causalsynth.graphs.dask_engine import BUILT

    return sum(count for key, count in BUILT.items() if key.startswith("local:"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(n, timeout=120)


def _listening(pids: list[int]) -> set[str]:
    """``host:port`` of every TCP socket the processes (and their children) listen on."""
    import psutil

    procs = [psutil.Process(p) for p in pids]
    procs += [c for p in list(procs) for c in p.children(recursive=True)]
    wanted = {str(p.pid) for p in procs}
    text = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    out = set()
    for line in text.splitlines():
        if any(re.search(rf"pid={pid},", line) for pid in wanted):
            out.add(line.split()[3])
    return out


def run() -> Result:
    t0 = time.perf_counter()
    if ONLY_B:
        with local_cluster(1) as c1, local_cluster(2) as c2:
            md, checks = part_b(c1.scheduler_address, c2.scheduler_address)
        return finish(md, checks, t0)
    md = ["# Scaling out: `--engine dask`, 1 vs 2 workers (bench/scale.py)", "",
          f"Machine: {os.cpu_count()} cores, no GPU, shared with other engineers (load averages below). "
          f"Command: `.venv/bin/python bench/scale.py`.", ""]  # fmt: skip
    checks: list[Check] = []
    with local_cluster(1) as c1, local_cluster(2) as c2:
        for part in (part_a, part_b):
            part_md, part_checks = part(c1.scheduler_address, c2.scheduler_address)
            md += [*part_md, ""]
            checks += part_checks
    with tempfile.TemporaryDirectory() as tmp:
        part_md, part_checks = part_c(Path(tmp))
    md += [*part_md, ""]
    checks += part_checks
    return finish(md, checks, t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition; nothing written")
    parser.add_argument("--part", choices=["b"], help="only part (b), the local model; printed, not written")
    args = parser.parse_args()
    text = run_main(run)
    if not (QUICK or args.part):
        OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
