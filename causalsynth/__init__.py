"""causalsynth: causally valid, schema valid, private and linguistically rich synthetic data.

The public API, for scripts, notebooks and plugins::

    import causalsynth as cs

    result = cs.generate("examples/asia.yaml", 100, llm="template")   # records in memory
    result.records.head(); result.report["realizability"]

``generate`` runs the agent graph (sample, retrieve, realise, validate, verify, correct, assess, write);
``sample``, ``counterfactual`` and ``verify`` are the causal engine's jobs; ``load_spec`` loads and checks a spec;
``build_graph`` returns the uncompiled LangGraph ``StateGraph`` to extend. Everything else is internal: the
capabilities live in ``causalsynth.tools``, the graph's nodes in ``causalsynth.agents``, the wiring and the CLI in
``causalsynth.graphs``.
"""

from causalsynth.graphs.api import (
    GenerationResult,
    build_graph,
    counterfactual,
    generate,
    load_spec,
    sample,
    verify,
)
from causalsynth.graphs.assess_api import AssessmentResult, assess
from causalsynth.graphs.fit_api import FitOutput, fit
from causalsynth.graphs.retrieval import RetrievalOptions
from causalsynth.tools.causal.noise import NoiseModel
from causalsynth.tools.errors import CausalSynthError, DataError, SpecError, UsageError
from causalsynth.tools.llm.factory import LLMOptions
from causalsynth.tools.plugins import GraphNode
from causalsynth.tools.relational.fake_values import ValueProvider
from causalsynth.tools.spec import Domain, example_names

__all__ = [
    "AssessmentResult",
    "CausalSynthError",
    "DataError",
    "FitOutput",
    "Domain",
    "GenerationResult",
    "GraphNode",
    "LLMOptions",
    "NoiseModel",
    "SpecError",
    "UsageError",
    "ValueProvider",
    "assess",
    "build_graph",
    "counterfactual",
    "example_names",
    "fit",
    "generate",
    "load_spec",
    "sample",
    "verify",
    "RetrievalOptions",
]
