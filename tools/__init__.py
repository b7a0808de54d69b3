"""Deterministic capabilities: causal networks, sampling, interventions, counterfactuals, CI tests, I/O."""
