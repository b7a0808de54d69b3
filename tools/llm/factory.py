"""Choose the Generator's realiser from the ``--llm`` value: ``template``, ``local`` or ``PROVIDER:MODEL``.

- ``template``: the deterministic phrase realiser (no model).
- ``plugin:NAME``: the realiser an installed plugin registered under ``causalsynth.realisers``.
- ``local`` (the default): a GGUF run in-process by llama.cpp; SmolLM2-135M-Instruct unless ``--model-path``
  names another. Anchored requests get a per-record GBNF grammar.
- ``PROVIDER:MODEL``: any LangChain chat model through ``init_chat_model`` (keys from the environment, e.g.
  ``OPENAI_API_KEY``), with the provider's own retries and timeout plus ours. ``--base-url`` points an
  OpenAI-compatible provider at another server (a llama.cpp server, vLLM, ...). Anchored requests use JSON-schema
  structured output (the ``text`` field's pattern is the anchor); with ``--base-url`` they send the anchor's GBNF
  in the request's ``grammar`` field (the llama.cpp servers' extension; a server that ignores it gets plain
  prompting, still verified). ``--anchor-via`` overrides the choice.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from causalsynth.tools.errors import UsageError
from causalsynth.tools.plugins import PluginError, check_callable, load
from causalsynth.tools.text.lexicon import Lexicon
from causalsynth.tools.text.realisation import Realiser
from causalsynth.tools.text.template import TemplateRealiser

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from causalsynth.tools.llm.chat_realiser import Anchoring
    from causalsynth.tools.llm.local_chat import LocalChatModel

_PROVIDER_MODEL = re.compile(r"^([A-Za-z][\w-]*):(\S+)$")


@dataclass(frozen=True)
class LLMOptions:
    """How to reach and drive the model (CLI flags)."""

    realize: Literal["free", "anchored"] = "anchored"
    concurrency: int = 2
    model_path: Path | None = None
    base_url: str | None = None
    anchor_via: Literal["auto", "grammar", "json-schema", "prompt"] = "auto"
    timeout: float = 120.0
    retries: int = 2
    temperature: float = 0.7
    threads: int | None = None  # llama.cpp threads per context (None: CPU count divided by the contexts)


def make_realiser(llm: str, lexicon: Lexicon, *, seed: int = 0, options: LLMOptions | None = None) -> Realiser:
    """Build the realiser ``llm`` names.

    Raises:
        UsageError: an unknown form, a backend that is not installed (naming what to install), a model file that
            is missing or not a GGUF, or a provider that cannot be configured.
    """
    opts = options or LLMOptions()
    if opts.realize not in ("free", "anchored"):
        raise UsageError(f"--realize must be 'free' or 'anchored', got {opts.realize!r}")
    if llm == "template":
        return TemplateRealiser(lexicon, seed=seed)
    if llm.startswith("plugin:"):
        return plugin_realiser(llm.removeprefix("plugin:"), lexicon, seed)
    from causalsynth.tools.llm.chat_realiser import ChatRealiser

    if llm == "local":
        if opts.base_url is not None:
            raise UsageError("--base-url applies to PROVIDER:MODEL (e.g. openai:NAME), not to --llm local")
        if opts.anchor_via == "json-schema":
            raise UsageError("--anchor-via json-schema applies to PROVIDER:MODEL; --llm local anchors with a grammar")
        model = local_model(opts, seed)
        return ChatRealiser(
            model, lexicon, realize=opts.realize, anchoring="prompt" if opts.anchor_via == "prompt" else "grammar",
            seed=seed, seeded_calls=True, concurrency=model.contexts,
            timeout=None, retries=opts.retries, name=f"local:{Path(model.model_path).name}",
        )  # fmt: skip
    match = _PROVIDER_MODEL.match(llm)
    if match is None:
        raise UsageError(f"--llm {llm!r}: expected 'template', 'local' or PROVIDER:MODEL (e.g. openai:gpt-4o-mini)")
    provider, model_name = match.groups()
    chat = provider_model(provider, model_name, opts)
    anchoring: Anchoring
    if opts.anchor_via == "auto":  # a local OpenAI-compatible server is most often llama.cpp's
        anchoring = "llama-server" if opts.base_url is not None else "structured"
    else:
        anchoring = _ANCHORING[opts.anchor_via]
    # The provider's client retries transient errors itself (with backoff, honouring Retry-After); retrying
    # again on top would multiply the calls. Our own timeout is only the hard cap over all of its attempts.
    return ChatRealiser(
        chat, lexicon, realize=opts.realize, anchoring=anchoring, seed=seed, seeded_calls=provider == "openai",
        concurrency=opts.concurrency, timeout=opts.timeout * (opts.retries + 1) + 5.0, retries=0, name=llm,
    )  # fmt: skip


def plugin_realiser(name: str, lexicon: Lexicon, seed: int) -> Realiser:
    """The realiser a plugin registered under ``causalsynth.realisers`` (a factory ``(lexicon, seed) -> Realiser``).

    Raises:
        UsageError: no such plugin, it failed to load, or what it made is not a realiser.
    """
    try:
        factory = load("realisers", name, check_callable)
    except PluginError as exc:
        raise UsageError(f"--llm plugin:{name}: {exc}") from None
    try:
        realiser = factory(lexicon, seed)
    except Exception as exc:  # the plugin's own failure, named, instead of a traceback
        raise UsageError(
            f"--llm plugin:{name}: the plugin's realiser factory failed: {type(exc).__name__}: {exc}"
        ) from None
    if not (isinstance(getattr(realiser, "name", None), str) and callable(getattr(realiser, "realise", None))):
        raise UsageError(f"--llm plugin:{name}: the plugin made {type(realiser).__name__}, not a realiser")
    return realiser


def make_chat_model(llm: str, options: LLMOptions | None = None) -> BaseChatModel:
    """The chat model ``llm`` names (``local`` or ``PROVIDER:MODEL``), for agents that need a model directly.

    Raises:
        UsageError: as :func:`make_realiser`.
    """
    opts = options or LLMOptions()
    if llm == "local":
        return local_model(opts)
    match = _PROVIDER_MODEL.match(llm)
    if match is None:
        raise UsageError(f"--llm {llm!r}: expected 'local' or PROVIDER:MODEL (e.g. openai:gpt-4o-mini)")
    provider, model_name = match.groups()
    return provider_model(provider, model_name, opts)


_ANCHORING: dict[str, Anchoring] = {"grammar": "llama-server", "json-schema": "structured", "prompt": "prompt"}


def local_model(opts: LLMOptions, seed: int = 0) -> LocalChatModel:
    """The in-process llama.cpp chat model (the default GGUF is fetched on first use if set-up has not)."""
    from causalsynth.tools.llm.local_chat import LocalChatModel
    from causalsynth.tools.llm.local_model import default_model

    path = opts.model_path or default_model()
    contexts = max(1, min(opts.concurrency, os.cpu_count() or 1))
    return LocalChatModel(
        model_path=str(path), contexts=contexts, threads=opts.threads, temperature=opts.temperature, seed=seed
    )


def provider_model(provider: str, model_name: str, opts: LLMOptions) -> BaseChatModel:
    """A LangChain chat model by provider and name, with timeouts and retries (the provider's own)."""
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise UsageError(
            f"--llm {provider}:{model_name}: needs the 'langchain' package and the {provider} integration "
            f"(e.g. langchain-{provider})"
        ) from None
    kwargs: dict[str, Any] = {"timeout": opts.timeout, "max_retries": opts.retries, "temperature": opts.temperature}
    if opts.base_url is not None:
        if not re.match(r"^https?://[^\s/]+", opts.base_url):
            raise UsageError(f"--base-url {opts.base_url!r}: expected http(s)://HOST[:PORT]/PATH")
        kwargs["base_url"] = opts.base_url
        if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            kwargs["api_key"] = "not-needed"  # a local OpenAI-compatible server usually wants no key
    try:
        return init_chat_model(model_name, model_provider=provider, **kwargs)
    except Exception as exc:  # missing integration, missing API key, unknown provider: all user-fixable
        raise UsageError(f"--llm {provider}:{model_name}: cannot create the chat model: {exc}") from None
