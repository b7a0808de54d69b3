"""``causalsynth.fit``: learn a spec from a real table, with differential privacy by default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from causalsynth.tools.errors import UsageError
from causalsynth.tools.privacy.accountant import check_budget
from causalsynth.tools.privacy.dagfile import read_dag
from causalsynth.tools.privacy.domain import PublicBounds
from causalsynth.tools.privacy.fitting import FitOptions, fit_table
from causalsynth.tools.privacy.inputs import read_bounds, read_real_table
from causalsynth.tools.spec import Domain, load_domain_data
from causalsynth.tools.tabular import write_text


@dataclass
class FitOutput:
    """What :func:`fit` made: the spec (as a dict, and as YAML on first use), the loaded spec, what the fit reports."""

    spec: dict[str, Any]
    domain: Domain
    provenance: dict[str, Any]
    messages: list[str] = field(default_factory=list)
    path: Path | None = None

    @cached_property
    def yaml(self) -> str:
        """The spec as YAML: what ``out`` holds (written on demand otherwise; a wide table's spec takes a second)."""
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: half the time on a large fitted spec
        return yaml.dump(self.spec, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120)


def fit(
    data: pd.DataFrame | str | Path,
    *,
    out: str | Path | None = None,
    dag: str | Path | Mapping[str, list[str]] | None = None,
    structure: Literal["learn"] = "learn",
    epsilon: float | None = 1.0,
    delta: float | None = 1e-6,
    dp: bool = True,
    bounds: str | Path | Mapping[str, Mapping[str, Any]] | None = None,
    bins: int | None = None,
    target: str | None = None,
    seed: int = 0,
    name: str | None = None,
    say: Callable[[str], None] | None = None,
) -> FitOutput:
    """Fit a spec to a real table: a DAG (``dag``, else learned), CPTs, column decoding and provenance.

    With ``dp`` (the default) every statistic is released through OpenDP under one ``(epsilon, delta)`` budget;
    ``dp=False`` uses exact counts and, for a given ``dag``, reports which of its implied CIs the data contradicts.

    Raises:
        UsageError: a bad parameter, named; PrivacyBudgetError: a plan over budget (before the data is read).
        DataError: a table that cannot be fitted; a DAG with unknown columns or a cycle.
    """
    if structure != "learn":
        raise UsageError(f"structure must be 'learn', got {structure!r}")
    if bins is not None and not 2 <= bins <= 64:
        raise UsageError(f"bins must be between 2 and 64, got {bins}")
    if dp:
        if epsilon is None or delta is None:
            raise UsageError("a DP fit needs epsilon and delta (or dp=False)")
        check_budget(epsilon, delta)
    source = str(data) if isinstance(data, str | Path) else "data"
    table = read_real_table(Path(data)) if isinstance(data, str | Path) else data
    if not isinstance(table, pd.DataFrame):
        raise UsageError(f"data must be a DataFrame or a .csv/.parquet path, got {type(data).__name__}")
    parents = read_dag(Path(dag)) if isinstance(dag, str | Path) else (dict(dag) if dag is not None else None)
    public = _bounds(bounds)
    stem = name or (Path(data).stem if isinstance(data, str | Path) else "fitted")
    options = FitOptions(epsilon=epsilon if dp else None, delta=delta if dp else None, dp=dp, dag=parents,
                         bounds=public, bins=bins, target=target, seed=seed, name=stem)  # fmt: skip
    result = fit_table(table, source, options, say or (lambda _: None))
    domain = load_domain_data(result.spec, source=str(out) if out is not None else "<fitted spec>")
    output = FitOutput(spec=result.spec, domain=domain, provenance=result.spec["fit"], messages=result.messages)
    if out is not None:
        output.path = Path(out)
        write_text(output.yaml, output.path)
    return output


def _bounds(bounds: str | Path | Mapping[str, Mapping[str, Any]] | None) -> dict[str, PublicBounds]:
    if bounds is None:
        return {}
    if isinstance(bounds, str | Path):
        return read_bounds(Path(bounds))
    out = {}
    for col, entry in bounds.items():
        cats = entry.get("categories")
        out[str(col)] = PublicBounds(entry.get("low"), entry.get("high"), tuple(map(str, cats)) if cats else None)
    return out
