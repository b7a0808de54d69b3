"""``causalsynth fit``: learn a spec from a real table (registered on the main app in ``graphs.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from causalsynth.graphs.fit_api import fit
from causalsynth.tools.errors import UsageError


def fit_cmd(
    data: Annotated[Path, typer.Argument(help="The real table: .csv or .parquet.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the fitted spec (YAML).")],
    dag: Annotated[
        Path | None, typer.Option("--dag", help="Your DAG: a spec 'nodes:' block (YAML) or an edge list (a -> b).")
    ] = None,
    structure: Annotated[
        str | None, typer.Option("--structure", help="'learn': choose the DAG from the data (the default).")
    ] = None,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy budget epsilon (> 0).")] = 1.0,
    delta: Annotated[float, typer.Option("--delta", help="Privacy budget delta, in (0, 1).")] = 1e-6,
    no_dp: Annotated[
        bool, typer.Option("--no-dp", help="Exact statistics, no privacy (the data is not private).")
    ] = False,
    bounds: Annotated[
        Path | None, typer.Option("--bounds", help="Public bounds: COL: {low, high} or COL: {categories: [...]}.")
    ] = None,
    bins: Annotated[
        int | None,
        typer.Option("--bins", help="Bins per numeric column (2-64); default: from the rows and budget (DP), 10."),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Column to root a learned structure at.")] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Recorded in the spec (OpenDP draws its noise from a secure, unseeded source)."
        ),
    ] = 0,
) -> None:
    """Fit a spec (DAG, CPTs, column decoding, provenance) to a real table, with differential privacy by default."""
    if dag is not None and structure is not None:
        raise UsageError("give either --dag FILE or --structure learn, not both")
    if structure is not None and structure != "learn":
        raise UsageError(f"--structure must be 'learn', got {structure!r}")
    result = fit(data, out=out, dag=dag, epsilon=epsilon, delta=delta, dp=not no_dp, bounds=bounds, bins=bins,
                 target=target, seed=seed, say=_say)  # fmt: skip
    for line in result.messages:
        _say(line)
    prov = result.provenance
    spent = f"epsilon={prov['epsilon']:g}, delta={prov['delta']:g}" if prov["dp"] else "no DP"
    _say(f"wrote {out}: {prov['columns']} columns, {prov['structure']}, {spent}")


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
