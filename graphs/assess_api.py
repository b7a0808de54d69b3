"""``causalsynth.assess``: assess a synthetic table (or a run folder) against the real data it stands in for.

Writes ``assessment.json`` and ``report.html`` (one self-contained page) into ``out``. The synthetic input can be
a table file, a DataFrame, an agent run folder (``records.parquet`` + ``report.json``: the run's own report joins
the page) or a relational run folder (one file per table: each table is assessed, plus the foreign-key
cardinalities); the real and holdout inputs then are folders (or dicts of DataFrames) with the same table names.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.quality import report_html as rh
from causalsynth.tools.quality.assessment import assess_table, fk_cardinality, infer_links
from causalsynth.tools.tabular import FORMATS, read_table, write_text

TableInput = str | Path | pd.DataFrame
TablesInput = TableInput | dict[str, pd.DataFrame]
NOT_TABLES = {"rejects", "run"}  # files of a run folder that are not synthetic tables


@dataclass
class AssessmentResult:
    """What :func:`assess` measured (plain JSON-like data) and where it wrote it."""

    assessment: dict[str, Any]
    json_path: Path | None
    html_path: Path | None
    html: str


def _folder_tables(path: Path, what: str) -> dict[str, pd.DataFrame]:
    files: dict[str, Path] = {}
    for suffix in FORMATS:  # parquet first: a relational run writes each table as .parquet and .csv
        for f in sorted(path.glob(f"*{suffix}")):
            if f.stem not in files and f.stem not in NOT_TABLES:
                files[f.stem] = f
    if not files:
        raise DataError(f"{what} {path}: a folder with no table file ({', '.join(FORMATS)})")
    return {name: read_table(f) for name, f in files.items()}


def _load(value: TablesInput | None, what: str) -> tuple[dict[str, pd.DataFrame] | None, dict[str, Any] | None]:
    """Tables by name (``table`` for a single one), and an agent run's report if ``value`` is a run folder."""
    if value is None:
        return None, None
    if isinstance(value, pd.DataFrame):
        return {"table": value}, None
    if isinstance(value, dict):
        if not value or not all(isinstance(v, pd.DataFrame) for v in value.values()):
            raise UsageError(f"{what}: a dict of tables must map names to DataFrames")
        return dict(value), None
    path = Path(value)
    if path.is_dir():
        run = None
        if (path / "records.parquet").exists() and (path / "report.json").is_file():
            try:
                run = json.loads((path / "report.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DataError(f"{what} {path}/report.json: cannot read: {exc}") from None
            return {"table": read_table(path / "records.parquet")}, run
        return _folder_tables(path, what), None
    if not path.exists():
        raise DataError(f"{what} {path}: file not found")
    return {"table": read_table(path)}, None


def _match(synth: dict[str, pd.DataFrame], other: dict[str, pd.DataFrame], what: str) -> dict[str, pd.DataFrame]:
    if len(synth) == 1 and len(other) == 1:
        return {next(iter(synth)): next(iter(other.values()))}
    missing = [t for t in synth if t not in other]
    if missing:
        raise DataError(f"{what}: no table named {', '.join(missing)} (have: {', '.join(other)})")
    return {t: other[t] for t in synth}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def assess(
    synth: TablesInput,
    real: TablesInput,
    holdout: TablesInput | None = None,
    *,
    spec: str | Path | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    folds: int = 5,
) -> AssessmentResult:
    """Assess ``synth`` against the training data ``real`` (and ``holdout``, real rows the generator never saw).

    Args:
        synth: the synthetic table: a file, a DataFrame, an agent run folder or a relational run folder.
        real: the real table(s) the generator was fitted on or stands in for.
        holdout: real rows the generator never saw; needed by every privacy measure (their baseline) and used as
            the utility test set.
        spec: a spec (file, example name or bnlearn name) whose DAG's CIs are tested on both tables.
        target: the column to predict for TSTR/TRTR utility (skipped without it).
        out: folder for ``assessment.json`` and ``report.html`` (nothing is written if None).
        seed: seeds every split and attack.
        folds: utility folds.

    Raises:
        DataError: an input cannot be read or does not match the real table.
        UsageError: a bad argument (e.g. a target that is not a column).
    """
    if folds < 2:
        raise UsageError(f"folds must be at least 2, got {folds}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}")
    network, schema = None, None
    if spec is not None:
        from causalsynth.tools.spec import load_domain

        domain = load_domain(spec)
        network, schema = domain.network, domain.schema
    synth_tables, run = _load(synth, "synthetic")
    real_tables, _ = _load(real, "real")
    hold_tables, _ = _load(holdout, "holdout")
    assert synth_tables is not None and real_tables is not None
    real_m = _match(synth_tables, real_tables, "real")
    hold_m = _match(synth_tables, hold_tables, "holdout") if hold_tables is not None else None
    relational = len(synth_tables) > 1
    if target is not None and relational and not any(target in t.columns for t in real_m.values()):
        raise UsageError(f"--target {target!r}: no real table has that column")
    per: dict[str, Any] = {}
    for name, table in synth_tables.items():
        t = target if target is not None and target in real_m[name].columns else None
        if not relational and target is not None and t is None:
            raise UsageError(f"--target {target!r}: no such column in the real table (have: "
                             f"{', '.join(map(str, real_m[name].columns))})")  # fmt: skip
        per[name] = assess_table(
            table, real_m[name], hold_m[name] if hold_m else None, network=network, target=t, seed=seed, folds=folds
        )
    assessment: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {
            "synth": str(synth) if not isinstance(synth, pd.DataFrame | dict) else "<in memory>",
            "real": str(real) if not isinstance(real, pd.DataFrame | dict) else "<in memory>",
            "holdout": None
            if holdout is None
            else str(holdout)
            if not isinstance(holdout, pd.DataFrame | dict)
            else "<in memory>",
            "spec": str(spec) if spec is not None else None,
            "target": target,
            "seed": seed,
        },  # fmt: skip
        "tables": per,
    }
    if relational:
        if schema is not None:
            links = [(c, schema.fk[c], p, schema.pk(p)) for c, p in schema.parent.items() if p is not None]
            links = [x for x in links if x[0] in synth_tables and x[2] in synth_tables]
        else:
            links = infer_links(real_m)
        assessment["foreign_keys"] = fk_cardinality(synth_tables, real_m, links)
    if run is not None:
        assessment["run"] = run
    assessment = _clean(assessment)
    page = render(assessment, synth_tables, real_m)
    json_path = html_path = None
    if out is not None:
        folder = Path(out)
        if str(folder) in ("", "."):
            raise UsageError("out needs a folder name")
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder}: exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        json_path, html_path = folder / "assessment.json", folder / "report.html"
        write_text(json.dumps(assessment, indent=2, default=str), json_path)
        write_text(page, html_path)
    return AssessmentResult(assessment, json_path, html_path, page)


def render(assessment: dict[str, Any], synth: dict[str, pd.DataFrame], real: dict[str, pd.DataFrame]) -> str:
    """The HTML page of an assessment."""
    tables = assessment["tables"]
    inputs = assessment["inputs"]
    meta = (f"synthetic {rh.html.escape(str(inputs['synth']))} against real {rh.html.escape(str(inputs['real']))}"
            f"{', holdout ' + rh.html.escape(str(inputs['holdout'])) if inputs['holdout'] else ''}; "
            f"seed {inputs['seed']}; {assessment['created']}")  # fmt: skip
    if len(tables) == 1:
        name = next(iter(tables))
        body = rh.table_sections(tables[name], real[name], synth[name])
    else:
        cards = [c | {"name": f"{t}: {c['name']}"} for t, a in tables.items() for c in a["scorecard"]]
        body = rh.scorecard_section(cards) + rh.fk_section(assessment.get("foreign_keys", []))
        for t, a in tables.items():
            body += f"<h2 id='table-{rh.html.escape(t)}'>Table {rh.html.escape(t)}</h2>"
            body += rh.table_sections(a, real[t], synth[t], prefix=f"{t}-")
    if "run" in assessment:
        body += rh.run_section(assessment["run"], next(iter(synth.values())))
    return rh.page("Synthetic data assessment", meta, body, assessment)


def write_run_report(folder: str | Path) -> Path:
    """``report.html`` of an agent run folder on its own (no real data): the run's funnel, rounds, violations, texts.

    ``assess`` gives the full page when real data is at hand; this is the page a run can write by itself.

    Raises:
        DataError: the folder is not an agent run folder (``records.parquet`` and ``report.json``).
    """
    path = Path(folder)
    if not ((path / "records.parquet").exists() and (path / "report.json").is_file()):
        raise DataError(f"{path}: not an agent run folder (needs records.parquet and report.json)")
    tables, run = _load(path, "run folder")
    assert tables is not None and run is not None
    records = next(iter(tables.values()))
    meta = f"agent run {rh.html.escape(str(path))}; {rh.html.escape(str(run.get('domain', '')))}"
    page = rh.page("Synthetic data run report", meta, rh.run_section(_clean(run), records), {"inputs": None})
    out = path / "report.html"
    write_text(page, out)
    return out
