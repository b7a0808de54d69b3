"""Kill tests for a relational spec (``hospital``: a lookup table, three record tables, a text column): SIGKILL a
template run at 20 points (random times, inside a batch's part write, inside a database transaction, inside a
checkpoint write, inside publishing), resume each, and compare with an uninterrupted run of the same seed."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import types
from pathlib import Path

import pytest

import causalsynth as cs
from causalsynth.graphs import durable
from causalsynth.tools.sinks import folder as folder_module
from causalsynth.tools.sinks import resumable
from causalsynth.tools.sinks.sqlite import SqliteSink
from tests.durable.test_tables import RUN, N, same_tables

#: Long integration runs: `make test-slow` (and CI) runs them, `make test` leaves them out.
pytestmark = pytest.mark.slow


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child(out: str, where: str, k: int) -> None:
    """Run in a forked process; die by SIGKILL at the ``k``-th event of kind ``where`` (or never: ``time``)."""
    count = [0]

    def hit() -> bool:
        count[0] += 1
        return count[0] == k

    if where == "part":  # half of a table's part file is on disk under its temporary name
        real_write = resumable.pq.write_table

        def write_table(table, path, *args, **kwargs):
            if hit():
                real_write(table.slice(0, len(table) // 2), path)
                _die()
            real_write(table, path, *args, **kwargs)

        resumable.pq.write_table = write_table
    elif where == "database":  # a batch's transaction is open, with rows deleted and none committed
        real_insert = SqliteSink.insert

        def insert(self, tables):
            if hit():
                self.conn.execute("BEGIN")
                self.conn.execute('DELETE FROM "patients" WHERE rowid % 2 = 0')
                _die()
            real_insert(self, tables)

        SqliteSink.insert = insert
    elif where in ("checkpoint-before", "checkpoint-after"):
        real_put = durable.SqliteSaver.put

        def put(self, config, checkpoint, metadata, new_versions):
            if where == "checkpoint-before" and hit():
                _die()
            saved = real_put(self, config, checkpoint, metadata, new_versions)
            if where == "checkpoint-after" and hit():
                _die()
            return saved

        durable.SqliteSaver.put = put
    elif where == "publish":  # some files moved into place, others not, no report yet
        real_replace = os.replace

        def replace(src, dst):
            real_replace(src, dst)
            if hit():
                _die()

        folder_module.os = types.SimpleNamespace(chmod=os.chmod, replace=replace)
    cs.generate("hospital", N, out=out, **RUN)
    os._exit(0)


def _events(out: Path) -> int:
    try:
        return (out / "run.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def _killed_run(out: Path, where: str, k: int, after: float | None) -> int:
    """Run in a child; for ``time``, SIGKILL it ``after`` seconds once ``k`` events are in its log. Its exit code."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(str(out), where, k))
    process.start()
    if after is not None:
        while process.is_alive() and _events(out) < k:
            time.sleep(0.001)
        time.sleep(after)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
    process.join()
    return int(process.exitcode or 0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("reference")
    cs.generate("hospital", N, out=out, **RUN)  # also warms what the forked runs inherit (the parsed network)
    return out, _events(out)


def _points(events: int) -> list[tuple[str, int, float | None]]:
    """Ten random moments (a random number of the run's events logged, then a random 0-30 ms), and ten chosen
    ones: inside three part writes, inside three database transactions, inside two checkpoint writes, inside
    publishing."""
    rng = random.Random(16)
    points: list[tuple[str, int, float | None]] = [
        ("time", rng.randint(1, events - 2), rng.uniform(0, 0.03)) for _ in range(10)
    ]
    points += [("part", rng.randint(1, 25), None) for _ in range(3)]  # about 3 part writes per batch, 10 batches
    points += [("database", rng.randint(2, 11), None) for _ in range(3)]  # the lookups' insert, then one per batch
    points += [("checkpoint-before", rng.randint(2, 10), None), ("checkpoint-after", rng.randint(2, 10), None)]
    points += [("publish", 3, None), ("publish", 9, None)]  # after a few tables' files, after the database
    return points


def test_twenty_kill_points_resume_a_relational_run_to_the_uninterrupted_result(reference, tmp_path):
    # Setup
    ref, events = reference
    interrupted = 0
    progress: set[int] = set()
    for i, (where, k, after) in enumerate(_points(events)):
        out = tmp_path / f"kill{i}"
        code = _killed_run(out, where, k, after)
        finished = (out / "report.json").exists()
        interrupted += code == -signal.SIGKILL
        parts = out / resumable.PARTS
        if where == "time":  # how far the run got: the batches on disk when it was killed
            progress.add(len(list(parts.iterdir())) if parts.is_dir() and not finished else -1)
        # Run
        if not finished:
            if (out / durable.SETTINGS).exists():
                cs.generate("hospital", N, resume=out, **RUN)
            else:  # killed before the run wrote anything: nothing to resume, start it again
                cs.generate("hospital", N, out=out, **RUN)
        # Assert
        same_tables(ref, out)
        if not finished:
            assert not parts.exists() and not (out / durable.CHECKPOINTS).exists(), (where, k)
    assert interrupted >= 18  # the timed kills may land after the run's end; the others always interrupt it
    assert len(progress - {-1}) >= 4  # the timed kills landed at different batches
