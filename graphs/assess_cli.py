"""``causalsynth assess``: fidelity, utility and privacy attacks of a synthetic table, as JSON and as a page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from causalsynth.graphs.assess_api import assess
from causalsynth.tools.errors import UsageError


def assess_cmd(
    synth: Annotated[Path, typer.Argument(help="Synthetic table (.parquet/.csv/.jsonl) or a run folder.")],
    real: Annotated[Path, typer.Option("--real", help="The real (training) table, or folder of tables.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for assessment.json and report.html.")],
    holdout: Annotated[
        Path | None, typer.Option("--holdout", help="Real rows the generator never saw (privacy baselines).")
    ] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="Spec whose DAG's CIs are tested on both tables.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Column to predict for TSTR vs TRTR.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds every split and attack.")] = 0,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="Utility folds.")] = 5,
) -> None:
    """Assess a synthetic table against real data: fidelity, DAG CI tests, TSTR utility, privacy attacks."""
    if str(out) in ("", "."):
        raise UsageError("--out needs a folder name (assess writes assessment.json and report.html into it)")
    result = assess(synth, real, holdout, spec=spec, target=target, out=out, seed=seed, folds=folds)
    console = Console()
    for name, table in result.assessment["tables"].items():
        label = f"{name}: " if len(result.assessment["tables"]) > 1 else ""
        for card in table["scorecard"]:
            value = card["value"]
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            console.print(f"{label}{card['name']}: {shown} ({card['status']}; {card['note']})", markup=False)
    console.print(f"wrote {result.json_path} and {result.html_path}", markup=False)
