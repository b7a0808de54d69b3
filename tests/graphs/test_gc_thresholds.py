"""A run raises the garbage collector's thresholds while it works and gives the process its own back."""

from __future__ import annotations

import gc

import pytest

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.runner import RUN_GC_THRESHOLDS, fewer_collections, run
from causalsynth.tools.text.template import TemplateRealiser


class _Watching(TemplateRealiser):
    """The template realiser, noting the collector's thresholds whenever it is called."""

    seen: list[tuple[int, int, int]]

    def realise(self, requests):  # type: ignore[no-untyped-def]
        self.seen.append(gc.get_threshold())
        return super().realise(requests)


def test_a_run_collects_less_often_and_restores_the_thresholds_it_found(asia, tmp_path):
    # Setup: a process with its own thresholds
    before = gc.get_threshold()
    gc.set_threshold(1234, 11, 12)
    realiser = _Watching(asia.lexicon, seed=0)
    realiser.seen = []
    try:
        # Run
        report = run(asia, realiser, RunSettings(n=300, batch_size=100, seed=0), tmp_path / "run")
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*before)

    # Assert
    assert report["n_accepted"] == 300
    assert realiser.seen and all(t == RUN_GC_THRESHOLDS for t in realiser.seen)
    assert after == (1234, 11, 12)


def test_thresholds_come_back_when_the_block_fails_and_higher_ones_are_kept():
    before = gc.get_threshold()
    try:
        gc.set_threshold(500_000, 5, 5)
        with pytest.raises(RuntimeError), fewer_collections():
            assert gc.get_threshold() == (500_000, 20, 100)  # a higher threshold the process chose is not lowered
            raise RuntimeError("boom")
        assert gc.get_threshold() == (500_000, 5, 5)
    finally:
        gc.set_threshold(*before)
