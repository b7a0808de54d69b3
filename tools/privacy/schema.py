"""The spec-file models a fitted spec adds: per-column decoding (``columns:``) and provenance (``fit:``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["integer", "float", "date", "category", "boolean"]

#: The state that stands for a missing value, and the one that stands for categories too rare to be named.
NULL_STATE = "missing value"
OTHER_STATE = "rare category"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BinSpec(_Strict):
    """One numeric state: values decoded in ``[low, high)`` (``[low, high]`` when ``closed``).

    Uniformly, unless ``points`` gives the bin's inverse CDF at evenly spaced probabilities ``0, 1/m, ..., 1``
    (decoded by linear interpolation; integer and date kinds take the floor, integer ``k`` standing for
    ``[k, k + 1)``). Under DP the points are post-processed from the released noisy histogram.
    """

    state: str
    low: float
    high: float
    closed: bool = False
    points: list[float] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BinSpec:
        if not self.low <= self.high:
            raise ValueError(f"bin {self.state!r}: low {self.low} is above high {self.high}")
        if self.points is not None:
            p = self.points
            if len(p) < 2 or any(b < a for a, b in zip(p, p[1:], strict=False)):
                raise ValueError(f"bin {self.state!r}: points must be at least 2 non-decreasing values")
            if p[0] < self.low - 1e-9 or p[-1] > self.high + 1 + 1e-9:
                raise ValueError(f"bin {self.state!r}: points outside the bin [{self.low}, {self.high}]")
        return self


class ColumnSpec(_Strict):
    """How a variable's states become a column's values: type, numeric bins, category values, nulls."""

    kind: Kind
    bins: list[BinSpec] | None = None  # numeric kinds: one per non-null state
    categories: dict[str, str] | None = None  # category/boolean: state -> the value written
    null_state: str | None = None  # the state decoded as a missing value
    decimals: int | None = Field(default=None, ge=0, le=12)  # floats are rounded to this many decimals

    @model_validator(mode="after")
    def _bins_for_numbers(self) -> ColumnSpec:
        numeric = self.kind in {"integer", "float", "date"}
        if numeric and not self.bins:
            raise ValueError(f"a {self.kind} column needs 'bins'")
        if not numeric and self.bins:
            raise ValueError(f"a {self.kind} column takes no 'bins'")
        return self

    def states(self) -> set[str]:
        """Every state this column decodes."""
        out = {b.state for b in self.bins or []} | set(self.categories or {})
        return out | ({self.null_state} if self.null_state else set())


class SpendSpec(_Strict):
    """One line of the budget split: what was measured and what it cost."""

    step: str
    rho: float
    delta: float = 0.0
    queries: int = 1


class FitSpec(_Strict):
    """Provenance of a fitted spec: which data, how, and what privacy it spent."""

    data_sha256: str
    rows: float  # the noisy row count under DP, the exact one without
    columns: int
    dp: bool
    mechanism: str
    structure: str
    epsilon: float | None = None
    delta: float | None = None
    rho: float | None = None
    accountant: str | None = None
    budget: list[SpendSpec] = Field(default_factory=list)
    seed: int = 0
    libraries: dict[str, str] = Field(default_factory=dict)
    dag_check: dict[str, Any] | None = None
    #: what the private domain left out, in words (a category list too rare to name, nulls within the noise)
    notes: list[str] | None = None
