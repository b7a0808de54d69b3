"""Retrieval-augmented prompts.

Corpus documents with front matter, checked and chunked (``corpus``); offline MiniLM embeddings (``embedding``); a
Chroma store that mirrors corpus folders by content hash (``store``); the per-record retriever that quotes passages
into prompts (``retriever``); and the check that generated text does not copy the corpus (``leakage``).
"""
