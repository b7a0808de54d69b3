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
from dataclasses import replace
from typing import Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from causalsynth.tools.errors import CausalSynthError
from causalsynth.tools.llm.prompts import (
    anchored_prompt,
    correction_prompt,
    facts_prompt,
    reference_block,
    system_prompt,
)
from causalsynth.tools.text.anchoring import Anchor, drop_fact_sentences, make_anchor
from causalsynth.tools.text.lexicon import Lexicon
from causalsynth.tools.text.realisation import Realisation, RealisationRequest
from causalsynth.tools.text.template import TemplateRealiser, uniforms

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


Anchoring = Literal["grammar", "llama-server", "structured", "prompt"]
#: How a fact-anchored request reaches each kind of model: ``grammar`` (our llama.cpp model: a per-call GBNF),
#: ``llama-server`` (an OpenAI-compatible llama.cpp server: the same GBNF in the request's ``grammar`` field),
#: ``structured`` (a provider with JSON-schema structured output: a ``text`` field whose pattern is the anchor),
#: ``prompt`` (no constraint: the required sentences are only asked for; verification and correction do the rest).
ANCHORINGS: tuple[Anchoring, ...] = ("grammar", "llama-server", "structured", "prompt")


class FatalModelError(CausalSynthError):
    """A model error no retry can fix (bad key, unknown model, no permission): the run stops with it."""


class ModelUnavailableError(CausalSynthError):
    """Every recent model call failed for infrastructure reasons: the run stops (its batches so far are kept)."""


class Outage:
    """Consecutive infrastructure failures (after retries); ``limit`` of them in a row: the server is down."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.last = ""

    @property
    def down(self) -> bool:
        """Whether the last ``limit`` calls all failed."""
        return self.in_a_row >= self.limit

    def failed(self, error: str) -> None:
        """Note one call that failed after its retries."""
        self.in_a_row += 1
        self.last = error

    def succeeded(self) -> None:
        """Note one call that got a reply (or a failure that is not the server's)."""
        self.in_a_row = 0

    def reason(self) -> str:
        """What the run is told when it stops."""
        return (
            f"the model failed {self.in_a_row} calls in a row after retries (last: {self.last}); the run stopped "
            "early. Its finished batches are kept: fix the model server and continue with --resume DIR"
        )


class ChatRealiser:
    """Realise skeletons with a chat model, freely or anchored on the facts' canonical phrases."""

    def __init__(
        self,
        model: BaseChatModel,
        lexicon: Lexicon,
        *,
        realize: Literal["free", "anchored"] = "free",
        anchoring: Anchoring = "prompt",
        seed: int = 0,
        seeded_calls: bool = False,
        concurrency: int = 4,
        timeout: float | None = 300.0,
        retries: int = 2,
        name: str | None = None,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if realize not in ("free", "anchored") or anchoring not in ANCHORINGS:
            raise ValueError(f"unknown realize={realize!r} or anchoring={anchoring!r}")
        self.model = model
        self.lexicon = lexicon
        self.realize = realize
        self.anchoring = anchoring
        self.seed = seed
        self.seeded_calls = seeded_calls
        self.concurrency = concurrency
        if getattr(model, "batched", False) is True:  # it decodes whatever is in flight together: send the batch
            self.concurrency = max(concurrency, int(getattr(model, "max_batch", concurrency)))
        self.timeout = timeout
        self.retries = retries
        self.name = name or f"chat:{type(model).__name__}"
        self._system = system_prompt(lexicon, lexicon.text.examples)
        self._planner = TemplateRealiser(lexicon, seed=seed)
        self._loop = LoopThread()
        # Every call failing for a while (after its retries) means the server is down, not that some records are hard.
        self._outage = Outage(max(32, 4 * concurrency))
        #: Longest text kept from a reply: beyond the spec's limit it fails the format check anyway, and a huge
        #: reply must not be carried into state and fed back in the correction prompt.
        self.max_reply_chars = lexicon.text.max_chars + 2000

    def anchor(self, request: RealisationRequest) -> Anchor | None:
        """The request's anchor in anchored mode (new phrasings on every attempt), else ``None``."""
        if self.realize != "anchored":
            return None
        parts = self._planner.parts(request.skeleton, request.record_id, request.attempt)
        return make_anchor(parts, self.lexicon.text.max_chars, self.lexicon.text.free_sentences)

    def messages(self, request: RealisationRequest, anchor: Anchor | None = None) -> list[BaseMessage]:
        """The chat messages for one request."""
        task = anchored_prompt(self.lexicon) if anchor is not None else facts_prompt(self.lexicon, request.skeleton)
        if request.references:  # per record, so after the system prompt: that stays in the prompt cache
            task = f"{reference_block(self.lexicon, request.references)}\n\n{task}"
        msgs: list[BaseMessage] = [SystemMessage(self._system), HumanMessage(task)]
        if request.previous_text is not None and request.feedback:
            msgs.append(HumanMessage(correction_prompt(self.lexicon, request.previous_text, request.feedback)))
        return msgs

    def realise(self, requests: Sequence[RealisationRequest]) -> list[Realisation]:
        """One realisation per request; at most ``concurrency`` calls in flight.

        Raises:
            FatalModelError: the model refused in a way no retry can fix (authentication, unknown model).
        """
        # The caller's config (a graph node's: its callbacks make every LLM call a child span of the node) is read
        # here, on the caller's thread, because the calls run on the loop thread.
        return self._loop.run(self.arealise(requests, ensure_config()))

    async def arealise(
        self, requests: Sequence[RealisationRequest], parent: RunnableConfig | None = None
    ) -> list[Realisation]:
        """Async form of :meth:`realise`; ``parent`` is the caller's config (default: the current one)."""
        gate = asyncio.Semaphore(self.concurrency)
        parent = parent if parent is not None else ensure_config()

        async def one(request: RealisationRequest) -> Realisation:
            anchor = self.anchor(request)
            msgs = self.messages(request, anchor)
            runnable, kwargs = self._call(request, anchor)
            calls = 0
            async with gate:
                if self._outage.down:  # the server has failed every call for a while: do not burn the batch
                    return Realisation(text="", error=self._outage.reason(), infrastructure=True)
                for attempt in range(self.retries + 1):
                    calls += 1
                    config = call_config(parent, request, retry=attempt, model=self.name)
                    try:
                        reply = await asyncio.wait_for(runnable.ainvoke(msgs, config, **kwargs), self.timeout)
                        break
                    except Exception as exc:  # any model failure fails this attempt, not the run
                        kind = classify_error(exc)
                        if kind == "fatal":
                            raise FatalModelError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
                        if kind == "permanent" or attempt == self.retries:
                            timed_out = isinstance(exc, TimeoutError) and self.timeout is not None
                            why = f"no reply within {self.timeout:g} s" if timed_out else exc
                            error = f"{type(exc).__name__}: {why}"
                            if kind == "transient":
                                self._outage.failed(error)
                            else:
                                self._outage.succeeded()
                            down = kind == "transient"
                            return Realisation(text="", llm_calls=calls, error=error, infrastructure=down)
                        await asyncio.sleep(min(0.5 * 2.0**attempt, 30.0))
            self._outage.succeeded()
            result = _realisation(reply, msgs, calls, self.max_reply_chars)
            if anchor is None or result.error is not None:
                return result
            text, dropped = drop_fact_sentences(anchor, result.text, self.lexicon)
            return replace(result, text=text, dropped_sentences=dropped)

        results = list(await asyncio.gather(*(one(r) for r in requests)))
        if self._outage.down:
            raise ModelUnavailableError(self._outage.reason())
        return results

    def _call(self, request: RealisationRequest, anchor: Anchor | None) -> tuple[Runnable[Any, Any], dict[str, Any]]:
        """What to invoke for one request, and with which per-call options (seed, grammar)."""
        kwargs: dict[str, Any] = {}
        if self.seeded_calls:  # our llama.cpp model and OpenAI-compatible servers take these per call
            kwargs["seed"] = call_seed(self.seed, request.record_id, request.attempt)
            if anchor is None:  # a free text gets about twice the length of the plain statement of its facts
                plain = " ".join(self._planner.parts(request.skeleton, request.record_id, request.attempt))
                kwargs["max_tokens"] = max(64, len(plain) // 2)
        if anchor is None or self.anchoring == "prompt":
            return self.model, kwargs
        if (
            self.anchoring == "grammar"
        ):  # our llama.cpp model: it takes the anchor itself (see causalsynth.tools.llm.local_chat)
            return self.model, {**kwargs, "anchor": anchor}
        if self.anchoring == "llama-server":
            return self.model, {**kwargs, "extra_body": {"grammar": anchor.gbnf()}}
        try:
            structured = self.model.with_structured_output(anchor.json_schema(), method="json_schema", include_raw=True)
        except (NotImplementedError, ValueError, TypeError):  # no structured output here: plain prompting
            self.anchoring = "prompt"
            return self.model, kwargs
        return structured, kwargs


def call_config(parent: RunnableConfig, request: RealisationRequest, *, retry: int, model: str) -> RunnableConfig:
    """The config of one LLM call: a named child of the caller's span, with the record's facts as metadata.

    The metadata holds the record's id, attempt, retry, batch and the violations it was asked to fix; the tag
    ``record:ID`` lets a viewer filter on one record.
    """
    metadata = dict(parent.get("metadata") or {})
    metadata |= {
        "record_id": request.record_id,
        "attempt": request.attempt,
        "retry": retry,
        "batch": metadata.get("batch"),
        "violations": [v["message"] for v in request.feedback],
        "violation_kinds": [f"{v['kind']}:{v['variable']}" for v in request.feedback],
        "realiser": model,
    }
    return RunnableConfig(
        callbacks=parent.get("callbacks"),
        tags=[*(parent.get("tags") or []), f"record:{request.record_id}"],
        metadata=metadata,
        run_name=f"realise record {request.record_id} attempt {request.attempt}",
    )


def call_seed(seed: int, record_id: int, attempt: int) -> int:
    """A per-call sampling seed: the same record and attempt get the same text, however calls are scheduled."""
    return int(uniforms(seed, [record_id], [attempt], 1)[0, 0] * 2**31)


_FATAL_STATUS = {401, 403, 404}
_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_TRANSIENT_NAMES = ("Timeout", "Connection", "RateLimit", "ServiceUnavailable", "InternalServer", "Overloaded")


def classify_error(exc: BaseException) -> Literal["transient", "fatal", "permanent"]:
    """Whether a model error is worth retrying (transient), stops the run (fatal), or fails only this call.

    Timeouts, connection errors, rate limits and 5xx answers are transient; authentication, permission and
    not-found answers (a wrong key or model name) are fatal: every call would fail the same way. Anything else
    (a bad reply, a 400 for this request) is permanent for this call: the attempt fails with its reason.
    """
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        if status in _FATAL_STATUS:
            return "fatal"
        if status in _TRANSIENT_STATUS or status >= 500:
            return "transient"
        return "permanent"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    return "transient" if any(n in type(exc).__name__ for n in _TRANSIENT_NAMES) else "permanent"


def _realisation(reply: Any, sent: list[BaseMessage], calls: int, max_chars: int) -> Realisation:
    if isinstance(reply, dict):  # structured output with include_raw: {"raw": AIMessage, "parsed": ..., ...}
        parsed = reply.get("parsed")
        text = parsed.get("text") if isinstance(parsed, dict) else None
        raw = reply.get("raw")
        if not isinstance(text, str) or not isinstance(raw, BaseMessage):
            why = reply.get("parsing_error") or "no 'text' field"
            return Realisation(text="", llm_calls=calls, error=f"malformed structured reply: {why}")
        reply = raw.model_copy(update={"content": text})
    text = reply.content if isinstance(reply.content, str) else join_content(reply.content)
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


def join_content(parts: str | Sequence[Any]) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(parts, str):
        return parts
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts if isinstance(p, (str, dict)))
