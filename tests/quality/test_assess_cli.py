"""``causalsynth assess`` and ``causalsynth.assess``: the files it writes, and user errors as one line, exit 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import causalsynth as cs
from causalsynth.graphs.cli import main
from causalsynth.tools.causal.sampler import Sampler


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def asia_files(tmp_path_factory, asia):
    folder = tmp_path_factory.mktemp("asia")
    sampler = Sampler(asia.network)
    for name, n, seed in (("train.csv", 1500, 1), ("hold.csv", 600, 2), ("synth.parquet", 1200, 3)):
        data = sampler.sample(n, seed=seed).data
        (data.to_parquet if name.endswith("parquet") else lambda p: data.to_csv(p, index=False))(folder / name)
    return folder


def test_assess_writes_json_and_a_self_contained_page(capsys, asia_files, tmp_path):
    # Setup
    f = asia_files
    out = tmp_path / "out"
    # Run
    code, stdout, err = run(capsys, "assess", str(f / "synth.parquet"), "--real", str(f / "train.csv"), "--holdout",
                            str(f / "hold.csv"), "--spec", "asia", "--target", "dysp", "--out", str(out))  # fmt: skip
    # Assert
    assert code == 0, err
    assert "2-way TVD" in stdout and "privacy" in stdout
    a = json.loads((out / "assessment.json").read_text())
    table = a["tables"]["table"]
    assert {"fidelity", "dag", "utility", "privacy", "scorecard"} <= set(table)
    assert table["dag"]["summary"]["synth"]["n_ci_tests"] > 0
    # a fresh sample of the same network leaks nothing
    assert table["privacy"]["verdict"]["level"] == "no more than chance"
    page = (out / "report.html").read_text()
    for section in ("scorecard", "marginals", "pairwise", "dag", "utility", "privacy"):
        assert f'<section id="{section}"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing to fetch
    assert "<script" not in page
    assert page.count("data:image/png;base64,") >= 5


def test_api_takes_dataframes_and_returns_plain_data(asia):
    # Setup
    sampler = Sampler(asia.network)
    train, synth = sampler.sample(800, seed=1).data, sampler.sample(800, seed=2).data
    # Run
    result = cs.assess(synth, train, spec="asia")
    # Assert
    assert result.json_path is None and result.html.startswith("<!doctype html>")
    json.dumps(result.assessment)  # JSON-ready as returned
    assert result.assessment["tables"]["table"]["dag"]["variables"] == list(asia.network.names)


def test_relational_folder_is_assessed_per_table_with_fk_cardinalities(tmp_path):
    # Setup
    rng = np.random.default_rng(0)
    for label, per in (("real", 2), ("synth", 3)):
        folder = tmp_path / label
        folder.mkdir()
        patients = pd.DataFrame({"patient_id": [f"p{i}" for i in range(150)], "sex": rng.choice(["f", "m"], 150)})
        ids = [f"p{i}" for i in range(150) for _ in range(per if i % 2 else 2)]
        visits = pd.DataFrame(
            {"visit_id": range(len(ids)), "patient_id": ids, "ward": rng.choice(["a", "b"], len(ids))}
        )
        patients.to_parquet(folder / "patients.parquet")
        visits.to_parquet(folder / "visits.parquet")
    # Run
    result = cs.assess(tmp_path / "synth", tmp_path / "real", out=tmp_path / "out")
    # Assert
    a = result.assessment
    assert set(a["tables"]) == {"patients", "visits"}
    assert a["foreign_keys"][0]["child"] == "visits" and a["foreign_keys"][0]["tvd"] == pytest.approx(0.5)
    page = result.html
    assert '<section id="foreign-keys"' in page and '<section id="visits-marginals"' in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--real", "{f}/train.csv"], "missing.csv: file not found"),
        (["{f}/synth.parquet", "--real", "{f}/nope.csv"], "nope.csv: file not found"),
        (["{f}/synth.parquet", "--real", "{f}/train.txt"], "unsupported extension"),
        (["{f}/synth.parquet", "--real", "{f}/train.csv", "--target", "zzz"], "--target 'zzz'"),
        (["{f}/narrow.csv", "--real", "{f}/train.csv"], "synthetic table: missing column(s) dysp"),
        (["{f}/bad_states.csv", "--real", "{f}/train.csv", "--spec", "asia"], "column smoke holds 'maybe'"),
        (["{f}/numbers.csv", "--real", "{f}/num_real.csv"], "column x holds 'abc', not a number"),
        (["{f}/synth.parquet", "--real", "{f}/train.csv", "--spec", "nonesuch.yaml"], "nonesuch.yaml"),
        (["{f}/synth.parquet", "--real", "{f}/train.csv", "--folds", "1"], "--folds"),
    ],
)
def test_malformed_input_is_one_line_and_exit_2(capsys, asia_files, tmp_path, args, message):
    # Setup
    f = asia_files
    train = pd.read_csv(f / "train.csv", dtype=str)
    train.drop(columns=["dysp"]).to_csv(f / "narrow.csv", index=False)
    train.assign(smoke="maybe").to_csv(f / "bad_states.csv", index=False)
    pd.DataFrame({"x": [str(i * 1.5) for i in range(40)]}).to_csv(f / "num_real.csv", index=False)
    pd.DataFrame({"x": ["abc"] + [str(i) for i in range(39)]}).to_csv(f / "numbers.csv", index=False)
    (f / "train.txt").write_text("x\n1\n")
    argv = [a.format(f=f) for a in args]
    # Run
    code, _, err = run(capsys, "assess", *argv, "--out", str(tmp_path / "o"))
    # Assert
    assert code == 2, err
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_out_must_name_a_folder(capsys, asia_files):
    code, _, err = run(capsys, "assess", str(asia_files / "synth.parquet"), "--real", str(asia_files / "train.csv"),
                       "--out", "")  # fmt: skip
    assert code == 2 and "--out needs a folder" in err


def test_a_run_folder_gets_its_own_page_without_real_data(tmp_path, capsys):
    # Setup
    from causalsynth.graphs.assess_api import write_run_report

    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["run", "asia", "-n", "20", "--llm", "template", "--out", str(run_dir)])
    capsys.readouterr()
    # Run
    page = write_run_report(run_dir).read_text()
    # Assert
    assert '<section id="run"' in page and "realizability funnel" not in page  # the plot is an image, not text
    assert page.count("data:image/png;base64,") == 1 and "Example texts and their facts" in page


def test_run_report_needs_a_run_folder(tmp_path):
    from causalsynth.graphs.assess_api import write_run_report

    with pytest.raises(cs.DataError, match="not an agent run folder"):
        write_run_report(tmp_path)
