"""Model failures are handled, not hidden: each kind is retried or becomes a reject with its reason, no record is
lost or duplicated, and the run completes (a fatal one stops the run with a clear error and no partial output)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.runner import run
from causalsynth.tools.llm.chat_realiser import ChatRealiser, FatalModelError, classify_error
from causalsynth.tools.spec import Domain, load_domain
from tests.conftest import ROOT
from tests.fakes import AuthError, ScheduledFailureModel, TransientServerError


@pytest.fixture(scope="module")
def asia_spec() -> Domain:
    return load_domain(ROOT / "examples" / "asia.yaml")


def _outputs(out):
    return pd.read_parquet(out / "records.parquet"), pd.read_parquet(out / "rejects.parquet")


@pytest.mark.parametrize("failure", ["transient", "permanent", "hang", "empty", "garbage", "huge"])
def test_each_failure_kind_is_retried_or_rejected_with_its_reason(asia_spec, tmp_path, failure):
    # Calls alternate: fail, succeed, fail, ... (one at a time, so the order is fixed): a retried failure is
    # followed by a good reply; a failed attempt gets one more round (max_rounds=1).
    model = ScheduledFailureModel(schedule=[failure, "ok"], hang_s=2.0)
    realiser = ChatRealiser(model, asia_spec.lexicon, timeout=0.3, retries=1, concurrency=1)
    report = run(asia_spec, realiser, RunSettings(n=12, batch_size=5, max_rounds=1), tmp_path)
    records, rejects = _outputs(tmp_path)
    assert sorted([*records.record_id, *rejects.record_id]) == list(range(12)), "a record was lost or duplicated"
    assert report["n_accepted"] + report["n_rejected"] == 12
    for _, row in rejects.iterrows():
        history = json.loads(row.history)
        assert row.reason and len(history) == 2
        assert all(attempt["violations"] for attempt in history)
    if failure in ("transient", "hang"):
        # Retried inside the call: a transient failure or a timeout costs a call, not the record.
        assert report["n_rejected"] == 0 and report["llm_calls"] > report["generator_calls"]
    else:
        # A bad reply is not retried blindly: it fails its attempt with a reason the next round sees.
        assert report["violations"], report["violations"]
        kinds = {v["kind"] for _, r in rejects.iterrows() for a in json.loads(r.history) for v in a["violations"]}
        assert kinds <= {"generation", "format", "omission", "contradiction"}
    if failure == "huge":
        assert records.text.str.len().max() <= asia_spec.lexicon.text.max_chars


def test_every_call_failing_rejects_every_record_with_reasons(asia_spec, tmp_path):
    model = ScheduledFailureModel(schedule=["permanent"])
    realiser = ChatRealiser(model, asia_spec.lexicon, retries=0)
    report = run(asia_spec, realiser, RunSettings(n=7, batch_size=3, max_rounds=2), tmp_path)
    records, rejects = _outputs(tmp_path)
    assert len(records) == 0 and sorted(rejects.record_id) == list(range(7))
    assert all(
        "the generator failed: ValueError: the model returned an unreadable payload" in r for r in rejects.reason
    )
    assert report["realizability"] == 0.0 and model.n_calls == 7 * 3


def test_an_authentication_error_stops_the_run_without_partial_output(asia_spec, tmp_path):
    model = ScheduledFailureModel(schedule=["ok", "auth"])
    realiser = ChatRealiser(model, asia_spec.lexicon, retries=3)
    with pytest.raises(FatalModelError, match="401 invalid api key"):
        run(asia_spec, realiser, RunSettings(n=6, batch_size=3), tmp_path)
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "records.parquet").exists()
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "aborted" and "401" in events[-1]["reason"]


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TransientServerError("busy"), "transient"),
        (TimeoutError(), "transient"),
        (ConnectionResetError(), "transient"),
        (type("RateLimitError", (Exception,), {})("slow down"), "transient"),
        (AuthError("bad key"), "fatal"),
        (type("NotFound", (Exception,), {"status_code": 404})("no such model"), "fatal"),
        (type("BadRequest", (Exception,), {"status_code": 400})("context too long"), "permanent"),
        (ValueError("odd reply"), "permanent"),
    ],
)
def test_error_classes(exc, kind):
    assert classify_error(exc) == kind
