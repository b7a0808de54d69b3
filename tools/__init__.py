"""Deterministic capabilities, grouped by what they do; no graph wiring here.

``causal`` (networks, sampling, interventions, counterfactuals, CI tests), ``text`` (lexicon, extraction, anchoring,
templates), ``relational`` (tables, rules, repair), ``retrieval`` (corpus, embeddings, Chroma), ``llm`` (the local
model, chat realisers, prompts, the model factory), ``sinks`` (run folders, SQLite) and ``quality`` (run measures).
The modules at this level are shared by all of them: domain errors, YAML and table I/O, and the spec loader.
"""
