"""Exogenous noise models: how a node's value is a deterministic function of its parents and its noise U.

A Bayesian network fixes only the conditional distributions ``P(X | parents)``; many structural causal
models share them and they agree on every observational and interventional query, but they can disagree on
counterfactuals. Choosing a noise model chooses one SCM:

* :class:`InverseCDF` (default): ``U ~ Uniform[0, 1)`` and ``X = F^-1(U | parents)`` with the CDF taken in the
  order the states are declared. It is monotone in that order, so counterfactuals depend on it: reorder the
  states and the twins change, the distributions do not.
* :class:`GumbelMax`: one standard Gumbel per state and ``X = argmax_k log P(k | parents) + G_k``. Its
  counterfactuals do not depend on state order and satisfy counterfactual stability (Oberst & Sontag, 2019).

A new model subclasses :class:`NoiseModel` and is passed to :class:`causalsynth.tools.causal.sampler.Sampler`, or is
registered by a plugin under ``causalsynth.noise_models`` and named like a built-in one (:func:`noise_model`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.plugins import installed, load

Codes = NDArray[np.integer[Any]]
Floats = NDArray[np.float64]


class NoiseModel(ABC):
    """One way of writing each node as ``X = f(parents, U)``."""

    name: str = "abstract"

    @abstractmethod
    def dim(self, card: int) -> int:
        """Number of noise values per record for a node with ``card`` states."""

    #: What valid noise looks like, for error messages.
    domain: str = "finite numbers"

    def valid(self, u: Floats) -> NDArray[np.bool_]:
        """Per record, whether its noise ``u`` (shape ``(n, dim)``) can come from this model."""
        return np.asarray(np.isfinite(u).all(axis=1))

    @abstractmethod
    def draw(self, rng: np.random.Generator, n: int, card: int) -> Floats:
        """Draw the noise of ``n`` records, shape ``(n, dim)``, consuming ``rng`` in record order."""

    @abstractmethod
    def prepare(self, cpt: Floats) -> Any:
        """Precompute what :meth:`assign` needs from a CPT of shape ``(configs, card)``."""

    @abstractmethod
    def assign(self, params: Any, cfg: NDArray[np.intp] | None, u: Floats, out: Codes) -> None:
        """Write into ``out`` the state codes for parent configurations ``cfg`` (None for roots)."""

    @abstractmethod
    def abduct(self, params: Any, cfg: NDArray[np.intp] | None, codes: Codes, rng: np.random.Generator) -> Floats:
        """Sample noise from its posterior given the observed codes (for records whose noise was not kept)."""


class InverseCDF(NoiseModel):
    """``X = F^-1(U | parents)`` with one uniform U per node (state order matters for counterfactuals)."""

    name = "inverse_cdf"

    def dim(self, card: int) -> int:
        """One uniform per node."""
        return 1

    domain = "numbers in [0, 1)"

    def valid(self, u: Floats) -> NDArray[np.bool_]:
        """Uniform noise lies in [0, 1) (NaN fails the comparison)."""
        return np.asarray(((u >= 0.0) & (u < 1.0)).all(axis=1))

    def draw(self, rng: np.random.Generator, n: int, card: int) -> Floats:
        """Uniforms on [0, 1)."""
        return rng.random(n).reshape(n, 1)

    def prepare(self, cpt: Floats) -> tuple[Floats, Floats]:
        """Thresholds ``T[k, c]``: the state is the number of thresholds ``<= U``.

        Thresholds after the last state with positive mass are set to +inf, so a state of probability zero
        is never produced, whatever the rounding of the cumulative sums.
        """
        cum = np.cumsum(cpt, axis=1)
        cum /= cum[:, -1:]
        remaining = cpt[:, ::-1].cumsum(axis=1)[:, ::-1]  # mass of states k..card-1
        thresholds = cum[:, :-1].copy()
        thresholds[remaining[:, 1:] <= 0] = np.inf
        lower = np.concatenate([np.zeros((cpt.shape[0], 1)), cum[:, :-1]], axis=1)
        return np.ascontiguousarray(thresholds.T), np.stack([lower, cum])

    def assign(self, params: Any, cfg: NDArray[np.intp] | None, u: Floats, out: Codes) -> None:
        """Count thresholds below U, one gather per state boundary."""
        thresholds = params[0]
        u1 = u[:, 0]
        out[:] = 0
        for row in thresholds:
            out += u1 >= (row[0] if cfg is None else row[cfg])

    def abduct(self, params: Any, cfg: NDArray[np.intp] | None, codes: Codes, rng: np.random.Generator) -> Floats:
        """U given X=k is uniform on [F(k-1), F(k))."""
        lower, upper = params[1]
        idx = (np.zeros_like(codes, dtype=np.intp) if cfg is None else cfg, codes)
        lo, hi = lower[idx], upper[idx]
        return (lo + rng.random(len(codes)) * (hi - lo)).reshape(-1, 1)


class GumbelMax(NoiseModel):
    """``X = argmax_k log P(k | parents) + G_k`` with i.i.d. standard Gumbels (order-free counterfactuals)."""

    name = "gumbel_max"

    def dim(self, card: int) -> int:
        """One Gumbel per state."""
        return card

    def draw(self, rng: np.random.Generator, n: int, card: int) -> Floats:
        """Standard Gumbels, shape ``(n, card)``."""
        return rng.gumbel(size=(n, card))

    def prepare(self, cpt: Floats) -> Floats:
        """Log-probabilities, -inf for impossible states."""
        with np.errstate(divide="ignore"):
            return np.log(cpt)

    def assign(self, params: Any, cfg: NDArray[np.intp] | None, u: Floats, out: Codes) -> None:
        """Argmax of perturbed log-probabilities."""
        logp = params[0] if cfg is None else params[cfg]
        out[:] = np.argmax(logp + u, axis=1)

    def abduct(self, params: Any, cfg: NDArray[np.intp] | None, codes: Codes, rng: np.random.Generator) -> Floats:
        """Top-down posterior sampling: the winner's perturbed value is the max, the others fall below it."""
        n = len(codes)
        logp = np.broadcast_to(params[0], (n, params.shape[1])) if cfg is None else params[cfg]
        finite = np.isfinite(logp)
        log_z = np.log(np.sum(np.exp(np.where(finite, logp, -np.inf)), axis=1))
        top = log_z + rng.gumbel(size=n)  # max of the perturbed values ~ Gumbel(log Z)
        with np.errstate(invalid="ignore"):
            raw = np.where(finite, logp, 0.0) + rng.gumbel(size=logp.shape)
            below = -np.logaddexp(-top[:, None], -raw)  # Gumbel(logp) truncated to < top
        perturbed = np.where(finite, below, raw)
        perturbed[np.arange(n), codes] = top
        return np.asarray(perturbed - np.where(finite, logp, 0.0), dtype=np.float64)


NOISE_MODELS: dict[str, type[NoiseModel]] = {m.name: m for m in (InverseCDF, GumbelMax)}


def check_noise_model(obj: Any) -> str | None:
    """A plugin noise model must be a :class:`NoiseModel` subclass (instantiated without arguments)."""
    if not (isinstance(obj, type) and issubclass(obj, NoiseModel)):
        return f"expected a NoiseModel subclass, got {obj!r}"
    return None


def noise_model_names() -> list[str]:
    """The built-in noise models and the installed plugins' (nothing is imported)."""
    return [*NOISE_MODELS, *sorted(set(installed("noise_models")) - set(NOISE_MODELS))]


def noise_model(name: str) -> NoiseModel:
    """A new noise model by name: built-in first, else the plugin registered under it (``causalsynth.noise_models``).

    Raises:
        PluginError: no such model, or its plugin failed to load.
    """
    if name in NOISE_MODELS:
        return NOISE_MODELS[name]()
    model: NoiseModel = load("noise_models", name, check_noise_model)()
    return model
