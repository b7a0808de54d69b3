"""A realiser over any LangChain chat model, with async calls under a concurrency cap.

The model is injected (never built here). Each request becomes one chat call: the domain's system prompt, the
record's facts and, in iterative mode, the previous text with the violations to fix. A failed call fails only
its record's attempt (``Realisation.error``); the run goes on. Token counts come from the model's
``usage_metadata``; when a model reports none they are estimated from word counts and flagged as estimated.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agents.prompts import correction_prompt, facts_prompt, system_prompt
from tools.lexicon import Lexicon
from tools.realisation import Realisation, RealisationRequest

T = TypeVar("T")


class LoopThread:
    """One event loop on a daemon thread, for the realiser's whole life.

    Provider clients (httpx) bind their connection pools to the loop that first used them, so every batch must
    run on the same loop; a loop per call would fail from the second batch on ("Event loop is closed").
    Running it on its own thread also makes ``realise`` callable from code that already has a loop running.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop thread and wait for its result."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="causalsynth-llm", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Stop the loop (a later ``run`` starts a new one)."""
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


class ChatRealiser:
    """Realise skeletons with a chat model."""

    def __init__(
        self,
        model: BaseChatModel,
        lexicon: Lexicon,
        *,
        concurrency: int = 4,
        timeout: float = 300.0,
        retries: int = 1,
        name: str | None = None,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.model = model
        self.lexicon = lexicon
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.name = name or f"chat:{type(model).__name__}"
        self._system = system_prompt(lexicon)
        self._loop = LoopThread()
        #: Longest text kept from a reply: beyond the spec's limit it fails the format check anyway, and a huge
        #: reply must not be carried into state and fed back in the correction prompt.
        self.max_reply_chars = lexicon.text.max_chars + 2000

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
        return self._loop.run(self.arealise(requests))

    async def arealise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """Async form of :meth:`realise`."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(request: RealisationRequest) -> Realisation:
            msgs = self.messages(request)
            calls = 0
            async with gate:
                for attempt in range(self.retries + 1):
                    calls += 1
                    try:
                        reply = await asyncio.wait_for(self.model.ainvoke(msgs), self.timeout)
                        break
                    except Exception as exc:  # any model failure fails this attempt, not the run
                        if attempt == self.retries:
                            why = f"no reply within {self.timeout:g} s" if isinstance(exc, TimeoutError) else exc
                            name = type(exc).__name__
                            return Realisation(text="", llm_calls=calls, error=f"{name}: {why}")
                        await asyncio.sleep(min(2.0**attempt, 30.0))
            return _realisation(reply, msgs, calls, self.max_reply_chars)

        return list(await asyncio.gather(*(one(r) for r in requests)))


def _realisation(reply: BaseMessage, sent: list[BaseMessage], calls: int, max_chars: int) -> Realisation:
    text = reply.content if isinstance(reply.content, str) else _join_content(reply.content)
    usage = getattr(reply, "usage_metadata", None)
    kept = text.strip()[:max_chars]
    if usage:
        return Realisation(text=kept, llm_calls=calls, prompt_tokens=int(usage.get("input_tokens", 0)),
                           completion_tokens=int(usage.get("output_tokens", 0)))  # fmt: skip
    prompt_words = sum(len(str(m.content).split()) for m in sent)
    return Realisation(
        text=kept,
        llm_calls=calls,
        prompt_tokens=round(prompt_words * 4 / 3),
        completion_tokens=round(len(text.split()) * 4 / 3),
        tokens_estimated=True,
    )


def _join_content(parts: list[Any]) -> str:
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts if isinstance(p, (str, dict)))
