"""Generate 100 ASIA chest-clinic notes from Python, records in memory (``python examples/generate_asia.py``).

``llm="template"`` writes each note from the spec's phrases (no model); drop it for the embedded local model,
or pass ``"openai:gpt-4o-mini"``, any LangChain chat model object, or a realiser.
"""

import causalsynth as cs

result = cs.generate("examples/asia.yaml", 100, seed=0, llm="template")
print(f"{len(result.records)} accepted, {len(result.rejects)} rejected")  # noqa: T201
print(result.records[["record_id", "smoke", "lung", "text"]].head(3).to_string())  # noqa: T201
print("realizability:", result.report["realizability"])  # noqa: T201
