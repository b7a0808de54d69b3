"""causalsynth fit on the command line: a real table end to end, and one clear error line per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli


@pytest.fixture()
def good_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 500
    a = rng.integers(0, 3, n)
    table = pd.DataFrame({"a": a, "b": np.where(rng.random(n) < 0.8, a, 2 - a), "c": rng.choice(["x", "y"], n)})
    path = tmp_path / "good.csv"
    table.to_csv(path, index=False)
    return path


def test_fit_then_sample_then_verify(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path) -> None:
    # Setup
    spec, sample = tmp_path / "spec.yaml", tmp_path / "sample.csv"

    # Run
    fit_code, _, fit_err = run_cli(capsys, "fit", str(good_csv), "--out", str(spec), "--epsilon", "2")
    sample_code, _, _ = run_cli(capsys, "sample", str(spec), "-n", "300", "--out", str(sample))
    verify_code, verify_out, _ = run_cli(capsys, "verify", str(sample), "--spec", str(spec))

    # Assert
    assert (fit_code, sample_code, verify_code) == (0, 0, 0)
    assert "budget: epsilon=2" in fit_err and "cpts" in fit_err
    assert pd.read_csv(sample)["a"].isin([0, 1, 2]).all()
    assert "FPR at alpha=0.05" in verify_out


def _write(tmp_path: Path, name: str, table: pd.DataFrame) -> Path:
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


BAD_TABLES = {
    "empty": (pd.DataFrame({"a": []}), "empty"),
    "single": (pd.DataFrame({"a": [1], "b": [2]}), "single row"),
    "allnull": (pd.DataFrame({"a": [1, 2, 3], "b": [None, None, None]}), "column b: every value is null"),
    "constant": (pd.DataFrame({"a": [1, 2, 3], "b": [5, 5, 5]}), "column b: every row holds the same value"),
    "wide": (pd.DataFrame({"a": [1, 2] * 5000, "id": [f"k{i}" for i in range(10_000)]}), "10,000 distinct categories"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_table_is_one_error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str) -> None:
    # Setup
    table, expected = BAD_TABLES[case]
    path = _write(tmp_path, f"{case}.csv", table)

    # Run
    code, _, err = run_cli(capsys, "fit", str(path), "--out", str(tmp_path / "s.yaml"))

    # Assert
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert not (tmp_path / "s.yaml").exists()


@pytest.mark.parametrize(
    ("dag", "expected"),
    [("a -> zz\n", "unknown column(s) zz"), ("a -> b\nb -> c\nc -> a\n", "cycle")],
)
def test_bad_dag_is_one_error_line(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path, dag: str,
                                   expected: str) -> None:  # fmt: skip
    # Setup
    dag_file = tmp_path / "dag.txt"
    dag_file.write_text(dag)

    # Run
    code, _, err = run_cli(capsys, "fit", str(good_csv), "--out", str(tmp_path / "s.yaml"), "--dag", str(dag_file))

    # Assert
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert expected in err


@pytest.mark.parametrize("epsilon", ["0", "-1"])
def test_nonpositive_epsilon_is_refused(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path,
                                        epsilon: str) -> None:  # fmt: skip
    # Run
    code, _, err = run_cli(capsys, "fit", str(good_csv), "--out", str(tmp_path / "s.yaml"), "--epsilon", epsilon)

    # Assert
    assert code == 2 and err.startswith("error: --epsilon must be a finite number above 0")
    assert len(err.strip().splitlines()) == 1


def test_spec_nodes_block_is_a_dag_file(capsys: pytest.CaptureFixture[str], good_csv: Path, tmp_path: Path) -> None:
    # Setup
    dag_file = tmp_path / "dag.yaml"
    dag_file.write_text("model:\n  nodes:\n    a: {states: [x]}\n    b: {states: [x], parents: [a]}\n")
    spec = tmp_path / "s.yaml"

    # Run
    code, _, err = run_cli(capsys, "fit", str(good_csv), "--out", str(spec), "--dag", str(dag_file), "--no-dp")

    # Assert
    assert code == 0, err
    assert "DAG check" in err
    assert "parents:\n      - a" in spec.read_text()
