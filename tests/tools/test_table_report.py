"""The relational report's selection drift: how far rejection moved the accepted states from the requested ones."""

from __future__ import annotations

from causalsynth.tools.relational.report import selection_drift


def test_rejecting_without_regard_to_state_leaves_no_drift():
    requested = {"t.x=a": 60, "t.x=b": 40}
    assert selection_drift(requested, {"t.x=a": 30, "t.x=b": 20}) == {"t.x": 0.0}


def test_rejecting_one_state_shows_as_drift():
    # all of b rejected: accepted is 100% a against 50% requested, a distance of 0.5
    requested = {"t.x=a": 50, "t.x=b": 50, "t.y=u": 10}
    assert selection_drift(requested, {"t.x=a": 50, "t.y=u": 10}) == {"t.x": 0.5, "t.y": 0.0}


def test_a_variable_with_nothing_accepted_is_left_out():
    assert selection_drift({"t.x=a": 5}, {}) == {}
