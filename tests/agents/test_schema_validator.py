"""The schema validator node: a skeleton value that is not a state is caught and named, in any batch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from causalsynth.agents.schema_validator import validate_schema
from causalsynth.tools.causal.sampler import Sampler
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.format_check import check_text, texts_to_check
from causalsynth.tools.text.lexicon import TextSpec
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab {}<>[]XY_\x00", max_size=40), max_size=6), st.integers(0, 30), st.integers(5, 60))
def test_batch_text_suspects_include_every_text_the_format_check_faults(
    texts: list[str], min_chars: int, max_chars: int
) -> None:
    # Setup: limits, a forbidden phrase, and texts with placeholders in every shape
    rules = TextSpec(min_chars=min_chars, max_chars=max(min_chars, max_chars), forbidden=["Ab", "x_y"])

    # Run
    suspects = set(texts_to_check(texts, rules))

    # Assert: no text that check_text faults is left out of the suspects
    assert {i for i, t in enumerate(texts) if check_text(t, rules)} <= suspects


def test_format_violations_are_found_in_a_batch() -> None:
    # Setup: a long batch where three texts break the format (placeholder, too short, forbidden phrase)
    runtime, records = _batch(300)
    rules = runtime.context.domain.lexicon.text
    records[5]["text"] += " Value: {value}."
    records[99]["text"] = "   "
    records[250]["text"] += f" {rules.forbidden[0].upper()}." if rules.forbidden else " {HR}"

    # Run
    out = validate_schema({"records": records, "batch": 0}, runtime)  # type: ignore[arg-type]

    # Assert
    flagged = {r["id"]: [v["kind"] for v in r["violations"]] for r in out["records"] if r["violations"]}
    assert set(flagged) == {5, 99, 250}
    assert all(kinds and set(kinds) == {"format"} for kinds in flagged.values())
