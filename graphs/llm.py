"""Choose the Generator's realiser from the ``--llm`` value: ``template``, ``local`` or ``PROVIDER:MODEL``."""

from __future__ import annotations

import re

from tools.errors import UsageError
from tools.lexicon import Lexicon
from tools.realisation import Realiser
from tools.template import TemplateRealiser

_PROVIDER_MODEL = re.compile(r"^([A-Za-z][\w-]*):(\S+)$")


def make_realiser(llm: str, lexicon: Lexicon, *, seed: int = 0, concurrency: int = 4) -> Realiser:
    """Build the realiser ``llm`` names.

    Raises:
        UsageError: an unknown form, or a backend that is not installed, naming what to install.
    """
    if llm == "template":
        return TemplateRealiser(lexicon, seed=seed)
    if llm == "local":
        raise UsageError(
            "--llm local: the embedded SmolLM2 backend is not part of this version yet; use --llm template, or "
            "--llm PROVIDER:MODEL with a LangChain integration installed"
        )
    match = _PROVIDER_MODEL.match(llm)
    if match is None:
        raise UsageError(f"--llm {llm!r}: expected 'template', 'local' or PROVIDER:MODEL (e.g. openai:gpt-4o-mini)")
    provider, model_name = match.groups()
    try:
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise UsageError(
            f"--llm {llm}: needs the 'langchain' package and the {provider} integration (e.g. langchain-{provider})"
        ) from None
    try:
        model = init_chat_model(model_name, model_provider=provider)
    except Exception as exc:  # missing integration, missing API key, unknown provider: all user-fixable
        raise UsageError(f"--llm {llm}: cannot create the chat model: {exc}") from None
    from agents.chat_realiser import ChatRealiser

    return ChatRealiser(model, lexicon, concurrency=concurrency, name=llm)
