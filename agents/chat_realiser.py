"""A realiser over any LangChain chat model, with async calls under a concurrency cap.

The model is injected (never built here). Each request becomes one chat call: the domain's system prompt, the
record's facts and, in iterative mode, the previous text with the violations to fix. A failed call fails only
its record's attempt (``Realisation.error``); the run goes on. Token counts come from the model's
``usage_metadata``; when a model reports none they are estimated from word counts and flagged as estimated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agents.prompts import correction_prompt, facts_prompt, system_prompt
from tools.lexicon import Lexicon
from tools.realisation import Realisation, RealisationRequest

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class ChatRealiser:
    """Realise skeletons with a chat model."""

    def __init__(self, model: BaseChatModel, lexicon: Lexicon, *, concurrency: int = 4, name: str | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.model = model
        self.lexicon = lexicon
        self.concurrency = concurrency
        self.name = name or f"chat:{type(model).__name__}"
        self._system = system_prompt(lexicon)

    def messages(self, request: RealisationRequest) -> list[BaseMessage]:
        """The chat messages for one request."""
        msgs: list[BaseMessage] = [
            SystemMessage(self._system),
            HumanMessage(facts_prompt(self.lexicon, request.skeleton, request.examples)),
        ]
        if request.previous_text is not None and request.feedback:
            msgs.append(HumanMessage(correction_prompt(self.lexicon, request.previous_text, request.feedback)))
        return msgs

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One realisation per request; at most ``concurrency`` calls in flight."""
        return run_sync(self.arealise(requests))

    async def arealise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """Async form of :meth:`realise`."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(request: RealisationRequest) -> Realisation:
            msgs = self.messages(request)
            async with gate:
                try:
                    reply = await self.model.ainvoke(msgs)
                except Exception as exc:  # any model failure fails this attempt, not the run
                    return Realisation(text="", llm_calls=1, error=f"{type(exc).__name__}: {exc}")
            return _realisation(reply, msgs)

        return list(await asyncio.gather(*(one(r) for r in requests)))


def _realisation(reply: BaseMessage, sent: list[BaseMessage]) -> Realisation:
    text = reply.content if isinstance(reply.content, str) else _join_content(reply.content)
    usage = getattr(reply, "usage_metadata", None)
    if usage:
        return Realisation(text=text.strip(), llm_calls=1, prompt_tokens=int(usage.get("input_tokens", 0)),
                           completion_tokens=int(usage.get("output_tokens", 0)))  # fmt: skip
    prompt_words = sum(len(str(m.content).split()) for m in sent)
    return Realisation(
        text=text.strip(),
        llm_calls=1,
        prompt_tokens=round(prompt_words * 4 / 3),
        completion_tokens=round(len(text.split()) * 4 / 3),
        tokens_estimated=True,
    )


def _join_content(parts: list[Any]) -> str:
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts if isinstance(p, (str, dict)))
