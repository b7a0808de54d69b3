"""Value provider ``hospital_mrn``: medical record numbers in the hospital's format, ``H`` and 7 digits.

The last digit is a Luhn check digit over the first six, so a typo in a copied MRN is detectable. Seeded like
every provider: the same seed gives the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causalsynth import ValueProvider


def luhn_digit(digits: str) -> int:
    """The Luhn check digit of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def _draw(rng: np.random.Generator, n: int, column: Any) -> Any:
    body = rng.integers(0, 1_000_000, n)
    return np.array([f"H{b:06d}{luhn_digit(f'{b:06d}')}" for b in body], dtype=object)


hospital_mrn = ValueProvider(draw=_draw, types=("string",), args=())
