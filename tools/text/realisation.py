"""The realiser contract: skeleton + domain context + optional references + optional feedback -> realisation.

A realiser is anything with ``name`` and ``realise(requests) -> realisations`` (one per request, same order).
The template realiser (``tools.text.template``) and the chat-model realiser (``tools.llm.chat_realiser``) implement it;
the Generator node only sees this protocol. Values are plain dicts and strings so graph state stays JSON-like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict


class Violation(TypedDict):
    """One reason a realisation is not acceptable, naming what is wrong.

    ``kind`` is ``contradiction`` (the text states another value), ``omission`` (an observed fact is missing),
    ``latent`` (a variable that must not be stated is), ``invalid_state`` (the skeleton holds a value that is not
    a state), ``format`` (the text breaks the spec's format rules) or ``generation`` (the generator call failed);
    ``variable`` is the variable, or ``text``.
    """

    kind: str
    variable: str
    expected: str | None
    found: str | None
    message: str


@dataclass(frozen=True)
class RealisationRequest:
    """What the Generator asks for one record.

    Attributes:
        record_id: stable id of the record (seeds deterministic realisers).
        skeleton: the record's variable assignment.
        attempt: 0 for the first realisation, k for the k-th correction or retry.
        feedback: the violations of the previous attempt, in iterative mode (empty otherwise).
        previous_text: the text those violations were found in (None in rejection mode).
        references: passages retrieved from the corpus for this record, shown to a model as quoted reference
            material (style, never facts); realisers without a model ignore them.
    """

    record_id: int
    skeleton: Mapping[str, str]
    attempt: int = 0
    feedback: Sequence[Violation] = ()
    previous_text: str | None = None
    references: Sequence[str] = ()


@dataclass(frozen=True)
class Realisation:
    """A realiser's answer: the text, and what producing it cost.

    ``error`` is set (and ``text`` empty) when the call failed for this record, e.g. a model error; the record
    then fails this attempt with a format violation instead of stopping the run. ``dropped_sentences`` counts the
    model's free sentences removed from an anchored text because they stated a fact (``tools.text.anchoring``).
    """

    text: str
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    error: str | None = None
    dropped_sentences: int = 0
    #: The call failed for a reason outside the text (connection refused, timeout, 5xx after the retries): the
    #: record is ``failed``, not rejected, and left out of the measures of the text.
    infrastructure: bool = False


class Realiser(Protocol):
    """Turns skeletons into texts."""

    name: str

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """Return one realisation per request, in order."""
        ...
