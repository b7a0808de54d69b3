"""The command line: contract names and outputs, and user errors as one line with exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from causalsynth.graphs.cli import main
from causalsynth.tools.tabular import read_table

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".jsonl"])
def test_sample_writes_each_format(capsys, tmp_path, asia, ext):
    out = tmp_path / f"asia{ext}"
    # Run
    code, _, err = run(capsys, "sample", "asia", "-n", "300", "--seed", "1", "--out", str(out), "--with-noise")
    # Assert
    assert code == 0, err
    table = read_table(out)
    assert len(table) == 300
    assert set(asia.network.names) <= set(table.columns)
    assert {f"{v}__u" for v in asia.network.names} <= set(table.columns)


def test_sample_with_do_and_evidence(capsys, tmp_path):
    out = tmp_path / "s.csv"
    code, _, err = run(
        capsys,
        "sample",
        str(ROOT / "examples" / "asia.yaml"),
        "-n",
        "200",
        "--seed",
        "3",
        "--out",
        str(out),
        "--do",
        "smoke=yes",
        "--evidence",
        "dysp=yes",
    )
    assert code == 0, err
    table = pd.read_csv(out, dtype=str)
    assert (table["smoke"] == "yes").all() and (table["dysp"] == "yes").all() and len(table) == 200


def test_same_seed_same_file(capsys, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run(capsys, "sample", "alarm", "-n", "500", "--seed", "7", "--out", str(a))
    run(capsys, "sample", "alarm", "-n", "500", "--seed", "7", "--out", str(b))
    assert a.read_bytes() == b.read_bytes()


def test_counterfactual_table(capsys, tmp_path, asia):
    out = tmp_path / "cf.parquet"
    # Run
    code, _, err = run(
        capsys, "counterfactual", "asia", "-n", "2000", "--seed", "2", "--do", "smoke=no", "--out", str(out)
    )
    # Assert
    assert code == 0, err
    table = pd.read_parquet(out)
    assert list(table.columns) == [*asia.network.names, *(f"{v}__cf" for v in asia.network.names)]
    assert (table["smoke__cf"] == "no").all()
    for var in ("asia", "tub"):  # not descendants of smoke
        assert (table[var] == table[f"{var}__cf"]).all()
    same = table["smoke"] == "no"
    for var in asia.network.names:
        assert (table.loc[same, var] == table.loc[same, f"{var}__cf"]).all()


def test_counterfactual_from_a_factual_file_with_and_without_noise(capsys, tmp_path):
    with_noise, plain = tmp_path / "f_noise.parquet", tmp_path / "f_plain.csv"
    run(capsys, "sample", "asia", "-n", "1000", "--seed", "4", "--out", str(with_noise), "--with-noise")
    run(capsys, "sample", "asia", "-n", "1000", "--seed", "4", "--out", str(plain))
    out_a, out_b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    # Run
    code_a, _, err_a = run(
        capsys, "counterfactual", "asia", "--factual", str(with_noise), "--do", "lung=yes", "--out", str(out_a)
    )
    code_b, _, err_b = run(
        capsys, "counterfactual", "asia", "--factual", str(plain), "--do", "lung=yes", "--out", str(out_b)
    )
    # Assert
    assert code_a == 0 and code_b == 0, (err_a, err_b)
    a, b = pd.read_parquet(out_a), pd.read_parquet(out_b)
    assert (a["either__cf"] == "yes").all() and (b["either__cf"] == "yes").all()
    assert (a["smoke"] == a["smoke__cf"]).all() and (b["bronc"] == b["bronc__cf"]).all()


def test_verify_prints_table_and_writes_json(capsys, tmp_path):
    data, report = tmp_path / "d.parquet", tmp_path / "r.json"
    run(capsys, "sample", "asia", "-n", "5000", "--seed", "0", "--out", str(data))
    # Run
    code, out, err = run(capsys, "verify", str(data), "--spec", "asia", "--alpha", "0.01", "--json", str(report))
    # Assert
    assert code == 0, err
    assert "_||_" in out and "FPR" in out
    payload = json.loads(report.read_text())
    assert payload["n_tests"] == 20 and payload["alpha"] == 0.01
    assert payload["fpr"] == payload["n_rejected"] / payload["n_tests"]
    assert payload["n_rejected"] <= 3  # data from the model: P(>= 3 of 20 rejected at 0.01) is about 0.001
    assert payload["power"] >= 0.7  # the DAG's edges are found dependent at n = 5,000
    assert len(payload["cis"]) == 20 and len(payload["marginals"]) == 8


def test_verify_catches_a_table_that_breaks_the_dag(capsys, tmp_path):
    # Setup: dyspnoea copied from the Asia visit, a dependence the DAG rules out given dysp's parents
    data, broken, report = tmp_path / "d.parquet", tmp_path / "b.parquet", tmp_path / "r.json"
    run(capsys, "sample", "asia", "-n", "5000", "--seed", "1", "--out", str(data))
    table = pd.read_parquet(data)
    table["dysp"] = table["asia"]
    table.to_parquet(broken)
    # Run
    code, _, err = run(capsys, "verify", str(broken), "--spec", "asia", "--alpha", "0.01", "--json", str(report))
    # Assert
    assert code == 0, err
    rejected = [c for c in json.loads(report.read_text())["cis"] if c["rejected"]]
    assert any({c["x"], c["y"]} == {"asia", "dysp"} for c in rejected)


def test_verify_under_do_checks_against_the_mutilated_network(capsys, tmp_path):
    data = tmp_path / "do.parquet"
    run(capsys, "sample", "asia", "-n", "20000", "--seed", "1", "--do", "either=yes", "--out", str(data))
    ok, bad = tmp_path / "ok.json", tmp_path / "bad.json"
    # Run
    code_ok, _, _ = run(capsys, "verify", str(data), "--spec", "asia", "--do", "either=yes", "--json", str(ok))
    code_bad, _, _ = run(capsys, "verify", str(data), "--spec", "asia", "--json", str(bad))
    # Assert: the interventional data fits the mutilated network's marginals, not the observational ones
    assert code_ok == 0 and code_bad == 0
    worst_ok = min(m["p_value"] for m in json.loads(ok.read_text())["marginals"])
    worst_bad = min(m["p_value"] for m in json.loads(bad.read_text())["marginals"])
    assert worst_ok > 1e-4 and worst_bad < 1e-10


MALFORMED = {
    "yaml_syntax": ("model: {bnlearn: asia\n", "YAML syntax error"),
    "cycle": (
        "model:\n  nodes:\n"
        "    a: {states: [x, y], parents: [b], cpt: [{when: {b: x}, probs: [1, 0]}, {when: {b: y}, probs: [0, 1]}]}\n"
        "    b: {states: [x, y], parents: [a], cpt: [{when: {a: x}, probs: [1, 0]}, {when: {a: y}, probs: [0, 1]}]}\n",
        "cycle: a -> b -> a",
    ),
    "unknown_parent": ("model:\n  nodes:\n    a: {states: [x, y], parents: [q], cpt: []}\n", "unknown parent 'q'"),
    "cpt_shape": ("model:\n  nodes:\n    a: {states: [x, y], probs: [1.0]}\n", "CPT shape mismatch"),
    "cpt_sum": ("model:\n  nodes:\n    a: {states: [x, y], probs: [0.5, 0.6]}\n", "sum to 1.1, not 1"),
    "duplicate_states": ("model:\n  nodes:\n    a: {states: [x, x], probs: [0.5, 0.5]}\n", "duplicate states"),
    "empty_states": ("model:\n  nodes:\n    a: {states: [], probs: []}\n", "a has no states"),
    "unknown_bnlearn": ("model: {bnlearn: nosuch}\n", "valid names: alarm"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_spec_exits_2_with_a_readable_message(capsys, tmp_path, kind):
    text, expected = MALFORMED[kind]
    spec = tmp_path / f"{kind}.yaml"
    spec.write_text(text)
    out = tmp_path / "never.csv"
    # Run
    code, _, err = run(capsys, "sample", str(spec), "-n", "5", "--out", str(out))
    # Assert
    assert code == 2
    assert err.startswith("error: ") and expected in err and f"{kind}.yaml" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sample", "asia", "-n", "5", "--do", "smoke"], "--do 'smoke': expected VAR=STATE"),
        (["sample", "asia", "-n", "5", "--do", "smoke=sometimes"], "smoke has no state 'sometimes'"),
        (["sample", "asia", "-n", "5", "--evidence", "ghost=yes"], "unknown variable 'ghost'"),
        (["sample", "asia", "-n", "0"], "'-n' / '--rows'"),
        (["sample", "asia", "-n", "5", "--out", "x.txt"], "unsupported extension '.txt'"),
        (["sample", "nonexistent_net", "-n", "5"], "nor a bnlearn network name"),
        (["sample", "asia", "-n", "5", "--noise-model", "laplace"], "choose one of inverse_cdf, gumbel_max"),
        (["sample", "asia", "-n", "5", "--bogus"], "No such option: --bogus"),
        (["counterfactual", "asia", "-n", "5"], "needs at least one --do"),
        (["sample", "asia", "-n", "50", "--evidence", "either=no", "--evidence", "tub=yes"], "impossible"),
        (["verify", "missing.parquet", "--spec", "asia"], "missing.parquet: file not found"),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args)
    assert code == 2
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob("*.csv"))


def test_verify_names_bad_column_values(capsys, tmp_path):
    data = tmp_path / "d.csv"
    run(capsys, "sample", "asia", "-n", "50", "--out", str(data))
    table = pd.read_csv(data, dtype=str)
    table.loc[7, "lung"] = "perhaps"
    table.to_csv(data, index=False)
    # Run
    code, _, err = run(capsys, "verify", str(data), "--spec", "asia")
    # Assert
    assert code == 2 and "column lung row 7: value 'perhaps'" in err


def test_console_script_end_to_end(tmp_path):
    exe = shutil.which("causalsynth", path=str(Path(sys.executable).parent))
    assert exe is not None, "the console script is installed with the package"
    out = tmp_path / "s.jsonl"
    ok = subprocess.run([exe, "sample", "asia", "-n", "10", "--out", str(out)], capture_output=True, text=True)
    bad = subprocess.run([exe, "sample", "asia", "-n", "10", "--do", "x=y"], capture_output=True, text=True)
    assert ok.returncode == 0 and len(out.read_text().splitlines()) == 10
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_output_files_get_the_modes_of_ordinary_files(capsys, tmp_path):
    import os
    import stat

    out = tmp_path / "s.csv"
    old = os.umask(0o022)
    try:
        run(capsys, "sample", "asia", "-n", "10", "--out", str(out))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.mark.parametrize("target", ["folder.csv", "file.txt/x.csv"])
def test_unwritable_output_exits_2(capsys, tmp_path, target):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file.txt").write_text("not a folder")
    code, _, err = run(capsys, "sample", "asia", "-n", "10", "--out", str(tmp_path / target))
    assert code == 2 and ("cannot write" in err or "is a folder" in err)
    assert "Traceback" not in err


def test_verify_refuses_an_empty_table(capsys, tmp_path):
    data = tmp_path / "empty.csv"
    data.write_text("asia,tub,smoke,lung,bronc,either,xray,dysp\n")
    code, _, err = run(capsys, "verify", str(data), "--spec", "asia")
    assert code == 2 and "no rows to verify" in err


def test_counterfactual_accepts_factual_parquet_with_other_categories(capsys, tmp_path):
    plain = tmp_path / "plain.csv"
    run(capsys, "sample", "asia", "-n", "300", "--seed", "3", "--out", str(plain))
    factual = tmp_path / "factual.parquet"
    pd.read_csv(plain, dtype=str).astype("category").to_parquet(factual)  # categories sorted, not declared order
    out = tmp_path / "cf.csv"
    # Run
    code, _, err = run(
        capsys, "counterfactual", "asia", "--factual", str(factual), "--do", "smoke=no", "--out", str(out)
    )
    # Assert
    assert code == 0, err
    table = pd.read_csv(out, dtype=str)
    assert len(table) == 300 and (table["smoke__cf"] == "no").all() and (table["asia"] == table["asia__cf"]).all()


def test_counterfactual_with_invalid_noise_column_writes_nothing(capsys, tmp_path):
    data = tmp_path / "noisy.csv"
    run(capsys, "sample", "asia", "-n", "100", "--seed", "3", "--out", str(data), "--with-noise")
    table = pd.read_csv(data)
    out = tmp_path / "cf.csv"
    for bad, expected in ((1.5, "noise for lung, row 4"), (float("nan"), "noise columns of lung are not numbers")):
        table.loc[4, "lung__u"] = bad  # NaN is written as an empty cell
        table.to_csv(data, index=False)
        code, _, err = run(
            capsys, "counterfactual", "asia", "--factual", str(data), "--do", "smoke=no", "--out", str(out)
        )
        assert code == 2 and expected in err and not out.exists()


# -- run -----------------------------------------------------------------------------------------------
def test_run_writes_the_contract_files(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run(
        capsys, "run", str(ROOT / "examples" / "asia.yaml"), "-n", "300", "--out", str(out), "--llm", "template"
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    contract = "n_requested n_accepted n_rejected realizability llm_calls_per_accepted tokens_per_accepted"
    contract += " ci_fpr_extracted ci_fpr_skeleton selection_bias_tvd mode llm"
    for key in contract.split():
        assert key in report, key
    assert report["mode"] == "iterative" and report["llm"] == "template"
    records = pd.read_parquet(out / "records.parquet")
    rejects = pd.read_parquet(out / "rejects.parquet")
    assert len(records) + len(rejects) == 300
    page = (out / "report.html").read_text()  # the run's own report, self-contained
    assert "<html" in page and records.text.iloc[0][:40] in page and "<script src" not in page
    assert (out / "run.jsonl").read_text().count("\n") >= 6
    assert "realizability" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "sometimes"], "--mode must be 'iterative' or 'rejection'"),
        (["--max-rounds", "-1"], "--max-rounds must be between 0 and 100"),
        (["--batch-size", "0"], "--batch-size must be between"),
        (["--llm", "no provider here"], "expected 'template', 'local' or PROVIDER:MODEL"),
        (["--llm", "someprovider:model-x"], "--llm someprovider:model-x: cannot create the chat model"),
        (["--realize", "loosely"], "--realize must be 'free' or 'anchored'"),
        (["--anchor-via", "telepathy"], "--anchor-via must be auto, grammar, json-schema or prompt"),
        (["--model-path", "/no/such/model.gguf"], "--model-path /no/such/model.gguf: no such file"),
        (["--model-path", str(ROOT / "README.md")], "not a GGUF file"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--base-url applies to PROVIDER:MODEL"),
        (["--llm", "openai:x", "--base-url", "127.0.0.1:8000"], "--base-url '127.0.0.1:8000': expected http(s)://"),
        (["--llm", "local", "--anchor-via", "json-schema"], "--anchor-via json-schema applies to PROVIDER:MODEL"),
    ],
)
def test_run_rejects_bad_flags(capsys, tmp_path, args, message):
    out = tmp_path / "run"
    code, _, err = run(capsys, "run", str(ROOT / "examples" / "asia.yaml"), "-n", "5", "--out", str(out), *args)
    assert code == 2
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err
    assert not (out / "report.json").exists()


def test_run_with_a_broken_lexicon_names_the_line(capsys, tmp_path, write_spec):
    spec = write_spec(
        """
        model:
          nodes:
            smoke: {states: ["yes", "no"], probs: [0.3, 0.7]}
        variables:
          smoke:
            states:
              "yes": {phrases: ["Uses cigarettes."], patterns: [smoker]}
              "no": {phrases: ["Non-smoker."], patterns: [non smoker]}
        """
    )
    code, _, err = run(capsys, "run", str(spec), "-n", "5", "--out", str(tmp_path / "o"), "--llm", "template")
    assert code == 2
    assert "spec.yaml:7 variables.smoke.states.yes.phrases[0]" in err and "reads back as no fact" in err


def test_run_into_a_file_path_is_an_error(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    code, _, err = run(capsys, "run", "asia", "-n", "5", "--out", str(target), "--llm", "template")
    assert code == 2 and "is not a folder" in err


def test_run_refuses_variables_named_like_output_columns(capsys, tmp_path, write_spec):
    spec = write_spec("model:\n  nodes:\n    text: {states: [a, b], probs: [0.5, 0.5]}\n")
    code, _, err = run(capsys, "run", str(spec), "-n", "5", "--out", str(tmp_path / "o"), "--llm", "template")
    assert code == 2 and "clash with output columns" in err


def test_run_needs_an_output_folder_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "run", "asia", "-n", "5", "--out", "")
    assert code == 2 and "--out needs a folder name" in err
    assert list(tmp_path.iterdir()) == []
