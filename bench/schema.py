"""Relational schemas: the hospital domain at 5,000 patients, checked by independent SQL; compliance ablation.

Run: ``.venv/bin/python bench/schema.py`` (writes ``bench/results/schema.md``).

(a) ``causalsynth run examples/hospital.yaml`` through the relational graph with the template realiser,
    n = 5,000 patients: throughput, records accepted and rejected, and the hand-written SQL checks in
    ``examples/hospital_checks.sql`` run against the written SQLite file (not by the validator).
(b) Ablation (SynthTab): the same generators without the validator. The raw rows (same seed, notes realised by
    the same template) are loaded into tables without constraints and the same SQL checks count what breaks;
    then the raw rows are offered to the constrained database, which refuses them.
(c) Validator speed: each rule, then every constraint and rule together, on 100,000 raw patients' rows.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

import _common  # noqa: F401  (sets sys.path and warning filters)
import pyarrow.parquet as pq
from _common import ROOT, Check, Result, Timer, finish, run_main, table

from causalsynth.agents.context import RunSettings
from causalsynth.graphs.runner import run as run_tables
from causalsynth.tools.errors import DataError
from causalsynth.tools.relational.checks import check_tables
from causalsynth.tools.relational.frame_data import FrameData, column_kinds
from causalsynth.tools.relational.rule_eval import evaluate
from causalsynth.tools.relational.sampling import RelationalSampler, resamplable_columns, var_column
from causalsynth.tools.sinks.sql_checks import read_checks, run_checks
from causalsynth.tools.sinks.sqlite import SqliteSink, quote
from causalsynth.tools.spec import load_domain
from causalsynth.tools.text.realisation import RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser

OUT = Path(__file__).resolve().parent / "results" / "schema.md"
SPEC = ROOT / "examples" / "hospital.yaml"
CHECKS = ROOT / "examples" / "hospital_checks.sql"
N = 5_000
N_SPEED = 100_000
SEED = 0


def run_hospital() -> Result:
    t_start = time.perf_counter()
    domain = load_domain(SPEC)
    checks = read_checks(CHECKS)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with Timer() as t:
            report = run_tables(domain, TemplateRealiser(domain.lexicon, seed=SEED), RunSettings(n=N, seed=SEED), out)
        counts = run_checks(out / "database.sqlite", checks)
        conn = sqlite3.connect(out / "database.sqlite")
        rows = {tbl: conn.execute(f"SELECT COUNT(*) FROM {tbl}").fetchone()[0] for tbl in domain.schema.order}
        conn.close()
        rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    reasons = Counter(r["rule"] or f"{r['kind']}: {r['table']}.{r['column']}" for r in rejects)
    total_rows = sum(rows.values())
    md = [
        "## (a) hospital, 5,000 patients, template realiser, end to end",
        "",
        f"`causalsynth run examples/hospital.yaml -n {N} --seed {SEED} --llm template --out DIR` (same code path, "
        f"called in-process): {t.seconds:.1f} s, {N / t.seconds:,.0f} patients/s, {total_rows / t.seconds:,.0f} "
        "rows/s written to Parquet, CSV and SQLite.",
        "",
        table(["table", "rows accepted"], [[k, v] for k, v in rows.items()]),
        "",
        f"Accepted {report['n_accepted']:,} of {N:,} patients (with all their admissions and notes), rejected "
        f"{report['n_rejected']:,}; accepted by validation round: {report['accepted_by_round']}; "
        f"{report['values_redrawn']:,} values redrawn by the repairer; {report['texts_realised']:,} notes realised. "
        f"Selection drift (TVD of accepted vs requested states, largest over the SCM variables): "
        f"{report['selection_drift_max']:.4f}.",
        "",
        "Why the rejected records were rejected (violations on their last round):",
        "",
        table(["rule or constraint", "violations"], [[k, v] for k, v in reasons.most_common()]),
        "",
        "Independent SQL checks on the written `database.sqlite` (each counts offending rows):",
        "",
        table(["check", "rows"], [[k, v] for k, v in counts.items()]),
    ]
    bad = {k: v for k, v in counts.items() if v}
    check_list = [
        Check("a", "SQL checks on accepted rows", "0 violations in every check", f"{sum(counts.values())}", not bad),
        Check("a", "orphan keys", "0", str(sum(v for k, v in counts.items() if "orphan" in k)), True),
        Check("a", "duplicate keys", "0", str(sum(v for k, v in counts.items() if "duplicate" in k)), True),
        Check("a", "records settled", "accepted + rejected = n",
              f"{report['n_accepted']} + {report['n_rejected']}", report["n_accepted"] + report["n_rejected"] == N),
        Check("a", "throughput", "informational", f"{N / t.seconds:,.0f} patients/s", None),
    ]  # fmt: skip
    check_list[1].passed = all(v == 0 for k, v in counts.items() if "orphan" in k)
    check_list[2].passed = all(v == 0 for k, v in counts.items() if "duplicate" in k)
    _MEASURED["report"], _MEASURED["counts"] = report, counts
    return finish(md, check_list, t_start)


_MEASURED: dict = {}  # part (a)'s report and SQL counts, shown beside part (b)'s


def ablation() -> Result:
    t_start = time.perf_counter()
    domain = load_domain(SPEC)
    schema = domain.schema
    assert schema is not None
    checks = read_checks(CHECKS)
    frames = RelationalSampler(schema, domain.network, SEED).sample(N)
    notes = frames["notes"]
    realiser = TemplateRealiser(domain.lexicon, seed=SEED)
    requests = [
        RealisationRequest(record_id=int(k), skeleton={v: notes[var_column(v)].iat[i] for v in domain.network.names})
        for i, k in enumerate(notes["note_id"])
    ]
    notes["text"] = [r.text for r in realiser.realise(requests)]
    cols = {t: {c: frames[t][c].tolist() for c in schema.tables[t].columns} for t in schema.order}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.sqlite"
        conn = sqlite3.connect(raw)
        for t in schema.order:
            names = list(schema.tables[t].columns)
            conn.execute(f"CREATE TABLE {quote(t)} ({', '.join(map(quote, names))})")
            rows = zip(*([int(v) if isinstance(v, bool) else v for v in cols[t][c]] for c in names), strict=True)
            conn.executemany(f"INSERT INTO {quote(t)} VALUES ({', '.join('?' for _ in names)})", rows)
        conn.commit()
        conn.close()
        before = run_checks(raw, checks)
        try:
            sink = SqliteSink(Path(tmp) / "constrained.sqlite", schema)
            sink.insert(cols)
            refused = "accepted (unexpected)"
        except DataError as exc:
            refused = str(exc).split(": ", 2)[-1]
        sink.close()
    after, report = _MEASURED["counts"], _MEASURED["report"]
    rows_total = {t: len(frames[t]) for t in schema.order}
    md = [
        "## (b) Ablation: the same generators without the Schema Validator",
        "",
        "Raw rows from the same seed (providers, SCM bindings, offsets, template notes), before any validation, "
        "loaded into unconstrained tables and checked with the same SQL; then offered to the constrained database.",
        "",
        table(
            ["check", "rows before validation", "rows after (accepted, part a)"],
            [[k, v, after.get(k, 0)] for k, v in before.items()],
        ),
        "",
        f"Rows generated: {rows_total}. The constrained SQLite database refuses the raw rows: `{refused}`.",
        "",
        "Compliance before validation as the validator measured it on its first round (share of rows, and of "
        "whole records, with no violation), and after: the accepted rows written in part (a), with the offending "
        f"rows the {len(after)} independent SQL checks found in them.",
        "",
        table(
            ["rows", "compliant before validation", "after validation (SQL: offending rows)"],
            [[t, v, f"{sum(after.values())} offending"] for t, v in report["compliance_before"]["rows"].items()]
            + [
                [
                    "whole records (patient + admissions + notes)",
                    report["compliance_before"]["records"],
                    f"{sum(after.values())} offending",
                ]
            ],
        ),  # fmt: skip
    ]
    broken = sum(before.values())
    check_list = [
        Check("b", "raw rows break rules", "> 0 (the validator has work to do)", str(broken), broken > 0),
        Check("b", "raw rows refused by SQLite", "refused", refused[:60], "constraint failed" in refused),
    ]
    return finish(md, check_list, t_start)


def validator_speed() -> Result:
    t_start = time.perf_counter()
    domain = load_domain(SPEC)
    schema = domain.schema
    assert schema is not None
    frames = RelationalSampler(schema, domain.network, SEED).sample(N_SPEED)
    frames["notes"]["text"] = "Admission note."
    rows = sum(len(frames[t]) for t in schema.record_tables)
    kinds = column_kinds(schema)
    per_rule = []
    for rule in schema.rules:
        with Timer() as t:
            bad = evaluate(rule, FrameData(schema, frames, rule.table), kinds)
        per_rule.append([rule.table, rule.text, len(frames[rule.table]), int(bad.sum()), f"{t.seconds * 1e3:.1f}"])
    with Timer() as whole:
        found = check_tables(schema, frames, resamplable=resamplable_columns(schema))
    md = [
        f"## (c) The Schema Validator on {N_SPEED:,} patients ({rows:,} rows), raw generated rows",
        "",
        "Each rule is one vectorised pass over its table (numpy arrays; ancestors joined through the keys, child "
        "aggregates grouped once):",
        "",
        table(["table", "rule", "rows", "broken", "ms"], per_rule),
        "",
        f"All constraints and rules of all tables at once (`check_tables`, listing every violation with its row): "
        f"{whole.seconds:.2f} s, {rows / whole.seconds:,.0f} rows/s, {len(found):,} violations listed.",
    ]
    return finish(
        md, [Check("c", "validator throughput", "informational", f"{rows / whole.seconds:,.0f} rows/s", None)], t_start
    )


def main() -> None:
    load = os.getloadavg()[0]
    parts = [run_main(section) for section in (run_hospital, ablation, validator_speed)]
    import subprocess

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    header = (
        "# Relational schema benchmarks\n\nProduced by `.venv/bin/python bench/schema.py` "
        f"at commit {rev.stdout.strip() or '?'} on a {os.cpu_count()}-core machine (1-minute load average "
        f"{load:.1f} when it started: other work on the machine slows the throughput figures).\n\n"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(header + "\n".join(parts))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
