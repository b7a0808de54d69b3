"""The schema validator node: a skeleton value that is not a state is caught and named, in any batch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from causalsynth.agents.schema_validator import validate_schema
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.template import TemplateRealiser


def _batch(n: int) -> tuple[Any, list[dict[str, Any]]]:
    domain = load_domain("asia")
    skeletons = Sampler(domain.network).sample(n, seed=3).data.astype(str).to_dict("records")
    realiser = TemplateRealiser(domain.lexicon)
    records = [
        {"id": i, "skeleton": sk, "text": realiser.text(sk, i), "attempts": 1, "violations": [], "history": []}
        for i, sk in enumerate(skeletons)
    ]
    return SimpleNamespace(context=SimpleNamespace(domain=domain)), records


def test_values_that_are_not_states_are_caught_per_record_and_named() -> None:
    # Setup: 500 records; one holds a value that is no state, one lacks a variable
    runtime, records = _batch(500)
    records[17]["skeleton"] = {**records[17]["skeleton"], "smoke": "sometimes"}
    records[403]["skeleton"] = {k: v for k, v in records[403]["skeleton"].items() if k != "dysp"}

    # Run
    out = validate_schema({"records": records, "batch": 0}, runtime)  # type: ignore[arg-type]

    # Assert: exactly those two records carry an invalid_state violation naming the variable; nothing is lost
    flagged = {r["id"]: r["violations"] for r in out["records"] if r["violations"]}
    assert set(flagged) == {17, 403}
    assert [(v["kind"], v["variable"], v["found"]) for v in flagged[17]] == [("invalid_state", "smoke", "sometimes")]
    assert [(v["kind"], v["variable"], v["found"]) for v in flagged[403]] == [("invalid_state", "dysp", None)]
    assert [r["id"] for r in out["records"]] == list(range(500))
    assert out["info"]["failing"] == 2


def test_a_clean_batch_gets_no_violation() -> None:
    runtime, records = _batch(200)
    out = validate_schema({"records": records, "batch": 0}, runtime)  # type: ignore[arg-type]
    assert not any(r["violations"] for r in out["records"])
