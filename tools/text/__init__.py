"""Records as text, and text back as facts.

The lexicon says how each state is written and read (``lexicon``); the deterministic extractor reads facts out of a
text (``extract``) and compares them with the record (``consistency``); the template realiser writes a record from
the lexicon's phrases (``template``); fact-anchored realisation forces each fact's phrase into an LLM's text
(``anchoring``); ``realisation`` is the contract every realiser keeps, ``format_check`` the text's format rules.
"""
