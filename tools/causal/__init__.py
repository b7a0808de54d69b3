"""The causal engine.

A discrete structural causal model (``network``) loaded from a bnlearn name, a BIF/XMLBIF file or an inline spec
(``sources``); vectorised ancestral sampling that keeps each record's exogenous noise, with interventions and
counterfactuals (``sampler``, ``noise``); exact inference (``inference``); and the test of a table against the DAG
it should obey: implied conditional independences and marginals (``citests``, ``conformance``).
"""
