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
    """One numeric state: values decoded uniformly in ``[low, high)`` (``[low, high]`` when ``closed``)."""

    state: str
    low: float
    high: float
    closed: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> BinSpec:
        if not self.low <= self.high:
            raise ValueError(f"bin {self.state!r}: low {self.low} is above high {self.high}")
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
