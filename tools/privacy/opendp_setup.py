"""The one place OpenDP is imported and configured: features, and the space every fit measurement reads from.

``contrib`` enables OpenDP's mechanisms; ``honest-but-curious`` enables user-defined transformations, which we use
only for row-wise maps and histograms of the table, whose stability (one row in, one count out) we state.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd


@lru_cache(maxsize=1)
def dp() -> Any:
    """The configured ``opendp.prelude`` module."""
    import opendp.prelude as prelude

    prelude.enable_features("contrib", "honest-but-curious")
    return prelude


@lru_cache(maxsize=1)
def table_space() -> tuple[Any, Any]:
    """The input space of every measurement: a pandas table under the symmetric (add/remove one row) distance."""
    lib = dp()
    domain = lib.user_domain("CausalSynthTable", member=lambda x: isinstance(x, pd.DataFrame))
    return domain, lib.symmetric_distance()


def measure_type() -> Any:
    """The privacy measure all fit measurements compose in: approximate zero-concentrated DP."""
    lib = dp()
    return lib.approximate(lib.zero_concentrated_divergence())
