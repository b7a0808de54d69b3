"""Routers: pure functions of the state, one test per branch."""

from __future__ import annotations

import pytest

from causalsynth.agents.state import Record
from causalsynth.agents.triage import record_route
from causalsynth.graphs.routing import after_verify, after_write
from causalsynth.tools.text.realisation import Violation

BAD = Violation(kind="omission", variable="dysp", expected="yes", found=None, message="missing")


def record(attempts: int, violations: list[Violation]) -> Record:
    return Record(id=0, skeleton={}, text="", attempts=attempts, llm_calls=0, tokens=0, tokens_estimated=False,
                  violations=violations, history=[])  # fmt: skip


@pytest.mark.parametrize(
    ("attempts", "violations", "max_rounds", "route"),
    [
        (1, [], 3, "accept"),
        (4, [], 3, "accept"),  # a clean last attempt is accepted
        (1, [BAD], 3, "correct"),
        (3, [BAD], 3, "correct"),
        (4, [BAD], 3, "reject"),  # 1 + max_rounds calls spent
        (1, [BAD], 0, "reject"),  # no correction rounds at all
    ],
)
def test_record_route(attempts, violations, max_rounds, route):
    assert record_route(record(attempts, violations), max_rounds) == route


def test_after_verify():
    assert after_verify({"records": [record(1, [BAD])]}) == "generate"
    assert after_verify({"records": []}) == "assess"
    assert after_verify({}) == "assess"


def test_after_write():
    assert after_write({"next_id": 10, "n_requested": 25}) == "sample"
    assert after_write({"next_id": 25, "n_requested": 25}) == "__end__"
