"""Domain exceptions: every error a user can cause says what went wrong and where."""

from __future__ import annotations

from dataclasses import dataclass


class CausalSynthError(Exception):
    """Base class for errors caused by user input (specs, data files, CLI values)."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a user input, with where it was found.

    Attributes:
        where: location, e.g. ``spec.yaml:12 model.nodes.lung.cpt[1]``.
        message: what is wrong, in one sentence.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(CausalSynthError):
    """A domain spec is invalid; carries every problem found, not only the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self._format())

    def _format(self) -> str:
        if len(self.problems) == 1:
            return f"invalid spec {self.source}: {self.problems[0]}"
        lines = [f"invalid spec {self.source}: {len(self.problems)} problems"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class DataError(CausalSynthError):
    """A data file or table does not match what the spec declares."""


class UsageError(CausalSynthError):
    """A command-line value or API argument is malformed (e.g. ``--do X`` without ``=STATE``)."""


class EvidenceTooRareError(CausalSynthError):
    """Sampling given evidence would need more draws than the budget allows."""
