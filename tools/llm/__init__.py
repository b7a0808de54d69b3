"""The LLM layer: which model writes, and how it is asked.

The embedded GGUF fetched from a PyPI wheel (``local_model``) and run in-process by llama.cpp behind a LangChain chat
model (``local_chat``); the realiser over any LangChain chat model (``chat_realiser``) and its prompts (``prompts``);
the natural-language rule compiler (``rule_compiler``, ``rule_prompts``); and the factory that turns ``local``,
``template`` or ``PROVIDER:MODEL`` into a realiser (``factory``).
"""
