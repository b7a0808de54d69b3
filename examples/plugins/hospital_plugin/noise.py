"""Noise model ``reverse_cdf``: the inverse-CDF structural form with the states taken in reverse order.

It has the same conditional distributions as the built-in ``inverse_cdf`` (so the same observational and
interventional answers) but is another SCM: counterfactual twins differ, which is what a hospital's analysts may
want to test their conclusions against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth import NoiseModel
from causalsynth.tools.causal.noise import InverseCDF


class ReverseInverseCDF(NoiseModel):
    """``X = F^-1(U | parents)`` with the CDF taken from the last declared state to the first."""

    name = "reverse_cdf"
    domain = "numbers in [0, 1)"

    def __init__(self) -> None:
        self._base = InverseCDF()

    def dim(self, card: int) -> int:
        """One uniform per node."""
        return 1

    def valid(self, u: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Uniform noise lies in [0, 1)."""
        return self._base.valid(u)

    def draw(self, rng: np.random.Generator, n: int, card: int) -> NDArray[np.float64]:
        """Uniforms on [0, 1)."""
        return self._base.draw(rng, n, card)

    def prepare(self, cpt: NDArray[np.float64]) -> Any:
        """The base model's parameters of the CPT with its states reversed, and the number of states."""
        return self._base.prepare(np.ascontiguousarray(cpt[:, ::-1])), cpt.shape[1]

    def assign(self, params: Any, cfg: NDArray[np.intp] | None, u: NDArray[np.float64], out: Any) -> None:
        """The base model's state, counted from the other end."""
        base, card = params
        self._base.assign(base, cfg, u, out)
        out[:] = card - 1 - out

    def abduct(self, params: Any, cfg: NDArray[np.intp] | None, codes: Any, rng: np.random.Generator) -> Any:
        """The base model's posterior noise for the reversed codes."""
        base, card = params
        return self._base.abduct(base, cfg, card - 1 - np.asarray(codes), rng)
