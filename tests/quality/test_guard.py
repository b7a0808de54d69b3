"""The privacy guard in the graph: records closer to a training row than real outsiders are resampled, none lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.quality.guard import PrivacyGuard
from tests.conftest import run_cli


def _table(n: int, seed: int) -> pd.DataFrame:
    """Eight spread-out columns (numbers and categories, some dependent): exact repeats of a row are rare."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 100, n)
    b = np.round(a * 0.5 + rng.normal(0, 15, n), 1)
    cols = {"a": np.round(a, 1), "b": b}
    for name in ("c", "d", "e", "f"):
        cols[name] = np.round(rng.uniform(0, 50, n), 1)
    cols["g"] = rng.choice(["p", "q", "r", "s", "t"], n)
    cols["h"] = np.where(cols["a"] > 50, rng.choice(["x", "y"], n, p=[0.8, 0.2]), rng.choice(["x", "y"], n))
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("guard")
    real = _table(1_600, seed=4)
    paths = {"train": folder / "train.csv", "hold": folder / "hold.csv", "spec": folder / "spec.yaml",
             "dp_spec": folder / "dp.yaml"}  # fmt: skip
    real.iloc[:1_200].to_csv(paths["train"], index=False)
    real.iloc[1_200:].to_csv(paths["hold"], index=False)
    cs.fit(paths["train"], out=paths["spec"], dp=False, bins=8, name="guarded")
    cs.fit(paths["train"], out=paths["dp_spec"], epsilon=2.0, delta=1e-6, bins=8, name="guarded_dp")
    return paths


def test_no_accepted_record_is_closer_to_a_training_row_than_the_holdout_yardstick(
    reference: dict[str, Path], tmp_path: Path
) -> None:
    # Setup: a spec fitted (without DP) on the training rows; the guard's yardstick from the holdout
    n = 600

    # Run
    result = cs.generate(reference["spec"], n, llm="template", out=tmp_path / "run", seed=1,
                         privacy_reference=reference["train"], privacy_holdout=reference["hold"])  # fmt: skip

    # Assert: the guard found records to resample and reported them
    guard_report = result.report["privacy_guard"]
    assert guard_report["resampled"] > 0
    assert guard_report["threshold"] > 0
    # no accepted record is nearer to a training row than the threshold (an independent guard re-measures)
    domain = cs.load_spec(reference["spec"])
    guard = PrivacyGuard.from_files(domain, reference["train"], reference["hold"])
    records = pd.read_parquet(tmp_path / "run" / "records.parquet")
    skeletons = records[list(domain.network.names)].astype(str).to_dict("records")
    assert guard.distances(skeletons).min() >= guard_report["threshold"] - 1e-9  # ties with the yardstick may stay
    # no record is lost or duplicated; a record the guard gave up on says why
    rejects = pd.read_parquet(tmp_path / "run" / "rejects.parquet")
    assert sorted([*records.record_id, *rejects.record_id]) == list(range(n))
    assert (rejects.reason.str.contains("closer to a training row") == (guard_report["rejected"] > 0)).all()
    assert result.report["n_accepted"] + result.report["n_rejected"] == n


def test_without_the_guard_some_records_are_that_close(reference: dict[str, Path]) -> None:
    # The property above is the guard's doing: the same run unguarded has records under the threshold
    result = cs.generate(reference["spec"], 600, llm="template", seed=1)
    domain = cs.load_spec(reference["spec"])
    guard = PrivacyGuard.from_files(domain, reference["train"], reference["hold"])
    skeletons = result.records[list(domain.network.names)].astype(str).to_dict("records")
    assert guard.too_close(skeletons).sum() > 0


def test_a_dp_fitted_spec_refuses_the_guard_unless_told_and_then_reports_the_guarantee_void(
    reference: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="differential privacy.*--privacy-filter-breaks-dp"):
        cs.generate(reference["dp_spec"], 50, llm="template", privacy_reference=reference["train"])
    result = cs.generate(reference["dp_spec"], 50, llm="template", privacy_reference=reference["train"],
                         privacy_filter_breaks_dp=True)  # fmt: skip
    assert result.report["privacy_guard"]["dp_guarantee"].startswith("void")


def test_bad_references_are_named_by_the_cli(
    reference: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Setup: a reference without a column of the spec, and one that does not exist
    partial = tmp_path / "partial.csv"
    pd.read_csv(reference["train"]).drop(columns=["g"]).to_csv(partial, index=False)
    spec = str(reference["spec"])

    # Run / Assert: one readable line each, exit code 2, no output folder passed off as complete
    for args, says in (
        (["--privacy-reference", str(partial)], "no column for the spec's variable(s) g"),
        (["--privacy-reference", str(tmp_path / "nope.csv")], "nope.csv"),
        (["--privacy-holdout", str(reference["hold"])], "--privacy-holdout needs --privacy-reference"),
    ):
        code, _, err = run_cli(capsys, "run", spec, "-n", "5", "--llm", "template", "--out", str(tmp_path / "o"),
                               *args)  # fmt: skip
        assert code == 2, err
        assert says in err and "Traceback" not in err
        assert not (tmp_path / "o" / "records.parquet").exists()


def test_a_hand_written_spec_needs_state_names_in_the_reference(tmp_path: Path) -> None:
    domain = cs.load_spec("asia")
    rows = pd.DataFrame([{v: domain.network.states(v)[0] for v in domain.network.names}] * 30)
    rows.loc[3, "smoke"] = "sometimes"
    with pytest.raises(DataError, match="column smoke holds 'sometimes'"):
        PrivacyGuard(domain, rows, None)
