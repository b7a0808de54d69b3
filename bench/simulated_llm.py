"""A SIMULATED prior-biased LLM, for benchmarking the correction loop. It is not a language model.

It writes the faithful template realisation of a skeleton, except that each *rare* fact (a state other than
the variable's most probable one under the SCM's marginal) is written as the likelier state with probability
``flip_rate``: the semantic backdoor as a dial. Its behaviour is defined as follows, and nothing else:

- a fresh attempt (the first, or any attempt in rejection mode) re-rolls every rare fact independently;
- a correction attempt (iterative mode: feedback names the violated facts) keeps the previous text's other
  facts and rewrites only the named ones; each is written correctly, except that the prior pulls it back
  with the same probability ``flip_rate`` (feedback earns no extra obedience).

Each attempt counts one LLM call; tokens are estimated from word counts (4/3 tokens per word).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from causalsynth.tools.causal.inference import exact_marginals
from causalsynth.tools.spec import Domain
from causalsynth.tools.text.realisation import Realisation, RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser


class SimulatedBiasedLLM:
    """Template realisation with rare facts flipped toward the modal state at ``flip_rate`` (a simulation)."""

    def __init__(self, domain: Domain, flip_rate: float, seed: int = 0) -> None:
        self.name = f"simulated-biased-llm(flip={flip_rate})"
        self.flip_rate = flip_rate
        self.seed = seed
        self.template = TemplateRealiser(domain.lexicon, seed=seed)
        marginals = exact_marginals(domain.network, domain.lexicon.observed)
        self.mode = {v: domain.network.states(v)[int(np.argmax(p))] for v, p in marginals.items()}

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One simulated call per request."""
        out = []
        for req in requests:
            rng = np.random.default_rng([self.seed, 7, req.record_id, req.attempt])
            named = {v["variable"] for v in req.feedback if v["variable"] in self.mode}
            if req.previous_text is not None and named:
                candidates = sorted(named)  # a correction: only the named facts are rewritten
            else:
                candidates = [v for v, m in self.mode.items() if req.skeleton[v] != m]
            flips = {v for v in candidates if req.skeleton[v] != self.mode[v] and rng.random() < self.flip_rate}
            written = {**req.skeleton, **{v: self.mode[v] for v in flips}}
            text = self.template.text(written, req.record_id, 0)
            words = len(text.split())
            out.append(Realisation(text=text, llm_calls=1, prompt_tokens=round(words * 4 / 3) * 2,
                                   completion_tokens=round(words * 4 / 3), tokens_estimated=True))  # fmt: skip
        return out
