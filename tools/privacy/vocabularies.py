"""Public code lists a private category domain can be completed from.

A category column without a public list names only the values its Gaussian-threshold releases let through; the
rest of its rows become one ``rare category`` state. Where every released name belongs to one well-known list (US
state codes, month names, credit sub-grades) and they name a good part of it, the list itself is public knowledge:
the column's states become the whole list, and the unnamed values are measured like any other state by the family
tables. Choosing the list reads only the released names, so it is post-processing and costs no budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR "
    "PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
_STATE_NAMES = (
    "Alabama,Alaska,Arizona,Arkansas,California,Colorado,Connecticut,Delaware,District of Columbia,Florida,Georgia,"
    "Hawaii,Idaho,Illinois,Indiana,Iowa,Kansas,Kentucky,Louisiana,Maine,Maryland,Massachusetts,Michigan,Minnesota,"
    "Mississippi,Missouri,Montana,Nebraska,Nevada,New Hampshire,New Jersey,New Mexico,New York,North Carolina,"
    "North Dakota,Ohio,Oklahoma,Oregon,Pennsylvania,Rhode Island,South Carolina,South Dakota,Tennessee,Texas,Utah,"
    "Vermont,Virginia,Washington,West Virginia,Wisconsin,Wyoming"
).split(",")
_MONTHS = "January February March April May June July August September October November December".split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


@dataclass(frozen=True)
class Vocabulary:
    """A public list of values, matched without regard to case.

    ``ordered``: its values run along a scale (grades, months), so the unnamed ones (the rare end of a scale) are
    not alike; an unordered list's unnamed values (the small states) are pooled toward each other when the
    measurements cannot tell them apart (:func:`causalsynth.tools.privacy.cpts.pooled`).
    """

    name: str
    entries: tuple[str, ...]
    ordered: bool = True


VOCABULARIES = (
    Vocabulary("US state codes (50 states and DC)", tuple(_STATES), ordered=False),
    Vocabulary("US state names (50 states and DC)", tuple(_STATE_NAMES), ordered=False),
    Vocabulary("month names", tuple(_MONTHS)),
    Vocabulary("month abbreviations", tuple(m[:3] for m in _MONTHS)),
    Vocabulary("weekday names", tuple(_DAYS)),
    Vocabulary("weekday abbreviations", tuple(d[:3] for d in _DAYS)),
    Vocabulary("credit grades A-G", tuple("ABCDEFG")),
    Vocabulary("credit sub-grades A1-G5", tuple(f"{g}{k}" for g in "ABCDEFG" for k in range(1, 6))),
)

#: A list completes a column only where the released names are at least this part of it and at least
#: ``MIN_NAMED`` values: a few names that happen to be state codes ("IN", "OR", "ME") or grades ("A", "B", "C")
#: complete nothing.
MIN_PART = 0.15
MIN_NAMED = 5


@dataclass(frozen=True)
class Completion:
    """The values a list adds to a column's released names, and which list."""

    vocabulary: Vocabulary
    added: tuple[str, ...]


def completion(named: Sequence[str]) -> Completion | None:
    """The list every released name belongs to, if they cover enough of it, and the values it adds.

    The added values are spelled in the names' case where all of them share one (``ca`` for lower-case codes).
    The smallest such list wins (``A``-``G`` grades, not sub-grades). ``None`` where no list fits.
    """
    names = [str(n) for n in named]
    if len(names) < MIN_NAMED:
        return None
    seen = {n.casefold() for n in names}
    for vocab in sorted(VOCABULARIES, key=lambda v: len(v.entries)):
        folded = {v.casefold(): v for v in vocab.entries}
        if seen <= set(folded) and len(seen) >= MIN_PART * len(folded):
            missing = [v for k, v in folded.items() if k not in seen]
            return Completion(vocab, tuple(_cased(v, names) for v in missing))
    return None


def _cased(value: str, names: Sequence[str]) -> str:
    if all(n.isupper() for n in names):
        return value.upper()
    if all(n.islower() for n in names):
        return value.lower()
    return value
