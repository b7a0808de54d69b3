"""The embedded model as a LangChain chat model: a GGUF run in-process by llama.cpp (llama-cpp-python).

Why our own small ``BaseChatModel`` rather than langchain-community's ``ChatLlamaCpp``: the Generator needs a
different grammar for every record (fact anchoring), a per-call seed (reproducible texts whatever the
scheduling), token usage on every reply, and several llama.cpp contexts behind one model so that calls run in
parallel; and langchain-community would add dozens of packages we do not use. This class is about a hundred lines
over ``Llama.create_chat_completion``.

Contexts: llama.cpp contexts are not thread-safe, so the model keeps a pool of ``contexts`` of them, sharing the
memory-mapped weights, each with ``threads`` CPU threads; a call borrows one. LangChain runs the synchronous
``_generate`` in a worker thread for ``ainvoke``, so the realiser's concurrency cap turns into parallel contexts.
Each context keeps the key/value cache of its last prompt, and llama.cpp reuses the longest common prefix, so
the system prompt shared by every call is evaluated once per context (prompt caching).

Batched decoding (``batched=True``, the default): anchored requests do not run one by one. Calls that arrive
together (the realiser sends a whole batch of records at once) are collected for a moment and decoded together by
:class:`causalsynth.tools.llm.batch_decode.BatchDecoder`: one llama.cpp context per ``contexts``, each decoding
many records per call, with the shared prompt prefix and reference passages evaluated once. Records sharing
references go to the same context. Each record's text depends only on its own prompt and seed, not on the
grouping. Other calls (free text, a caller's GBNF grammar) take the one-call-at-a-time path.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from causalsynth.tools.errors import UsageError
from causalsynth.tools.llm.batch_decode import BatchDecoder, Gap, Outcome, Program, split_prompt
from causalsynth.tools.llm.chat_realiser import join_content
from causalsynth.tools.text.anchoring import Anchor

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatModel(BaseChatModel):
    """A GGUF model served in-process by llama.cpp."""

    model_path: str
    contexts: int = 1
    threads: int | None = None
    n_ctx: int = 2048
    max_tokens: int = 400
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    #: How an anchored call is generated: ``segmented`` (the model writes only the gaps; the fact phrases are
    #: appended and evaluated as a batch, as prompt tokens) or ``grammar`` (one call under the whole GBNF).
    anchored_generation: str = "segmented"
    #: Decode anchored (segmented) requests that arrive together as one batch (see the module docstring).
    batched: bool = True
    #: Records in flight at once on the batched path (the realiser's concurrency is raised to this).
    max_batch: int = 64
    #: How long the batcher waits for more requests after the last one arrived, in seconds.
    batch_window: float = 0.03

    #: Callers may pass ``grammar=`` (GBNF text) per call (the rule compiler does).
    accepts_grammar: ClassVar[bool] = True

    _pool: queue.Queue[Any] = PrivateAttr(default_factory=queue.Queue)
    _loaded: int = PrivateAttr(default=0)
    _formatter_cache: Any = PrivateAttr(default=None)
    _batcher: _Batcher | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        """Check the file and load the first context now, so that a bad model fails at start-up."""
        path = Path(self.model_path)
        if not path.is_file():
            raise UsageError(f"--model-path {self.model_path}: no such file")
        if self.contexts < 1:
            raise UsageError(f"contexts must be at least 1, got {self.contexts}")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise UsageError(f"--model-path {self.model_path}: not a GGUF file")
        self._pool.put(self._load())  # fail now, not at the first call, if llama.cpp cannot load it

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise UsageError("--llm local needs llama-cpp-python (make setup installs it)") from None
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.contexts)
        try:
            llm = Llama(
                model_path=self.model_path, n_ctx=self.n_ctx, n_threads=threads, n_threads_batch=threads,
                seed=self.seed, verbose=False,
            )  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"--model-path {self.model_path}: llama.cpp cannot load it: {exc}") from None
        self._loaded += 1
        return llm

    @contextmanager
    def _context(self) -> Iterator[Any]:
        try:
            llm = self._pool.get_nowait()
        except queue.Empty:
            # Contexts are created on demand up to ``contexts``; past that a call waits for a free one.
            llm = self._load() if self._loaded < self.contexts else self._pool.get()
        try:
            yield llm
        finally:
            self._pool.put(llm)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """One chat completion.

        Extra keyword arguments: ``anchor`` (a :class:`tools.text.anchoring.Anchor`: a fact-anchored text), ``grammar``
        (GBNF text), ``seed``, ``max_tokens``.
        """
        anchor: Anchor | None = kwargs.get("anchor")
        grammar = kwargs.get("grammar")
        if self._batches(anchor, grammar):
            assert anchor is not None
            return self._result(self._submit(messages, anchor, kwargs).result())
        if anchor is not None and self.anchored_generation == "grammar":
            grammar, anchor = anchor.gbnf(), None
        chat = [{"role": _ROLES.get(m.type, "user"), "content": join_content(m.content)} for m in messages]
        options: dict[str, Any] = {
            "max_tokens": int(kwargs.get("max_tokens", self.max_tokens)),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": int(kwargs.get("seed", self.seed)),
            "stop": stop,
        }
        if grammar:
            from llama_cpp import LlamaGrammar

            options["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
        with self._context() as llm:
            if anchor is not None:
                text, prompt_tokens, completion_tokens, finish = self._segmented(llm, chat, anchor, options)
            else:
                reply = llm.create_chat_completion(messages=chat, **options)
                choice = reply["choices"][0]
                usage = reply.get("usage") or {}
                text, finish = choice["message"].get("content") or "", choice.get("finish_reason")
                prompt_tokens, completion_tokens = (
                    int(usage.get("prompt_tokens", 0)),
                    int(usage.get("completion_tokens", 0)),
                )
        return self._result(Outcome(text, prompt_tokens, completion_tokens, finish))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async form: a batched request waits on the batcher (no worker thread per call); others run in a thread."""
        anchor: Anchor | None = kwargs.get("anchor")
        if self._batches(anchor, kwargs.get("grammar")):
            assert anchor is not None
            return self._result(await asyncio.wrap_future(self._submit(messages, anchor, kwargs)))
        return await super()._agenerate(messages, stop, run_manager, **kwargs)

    def _batches(self, anchor: Anchor | None, grammar: Any) -> bool:
        return self.batched and anchor is not None and not grammar and self.anchored_generation == "segmented"

    def _result(self, out: Outcome) -> ChatResult:
        message = AIMessage(
            content=out.text,
            usage_metadata={
                "input_tokens": out.prompt_tokens,
                "output_tokens": out.completion_tokens,
                "total_tokens": out.prompt_tokens + out.completion_tokens,
            },
            response_metadata={"finish_reason": out.finish, "model": Path(self.model_path).name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def program(self, messages: list[BaseMessage], anchor: Anchor, kwargs: dict[str, Any]) -> Program:
        """The batched decoder's program for one anchored request: its prompt in parts and its reply's steps."""
        chat = [{"role": _ROLES.get(m.type, "user"), "content": join_content(m.content)} for m in messages]
        with self._context() as llm:
            formatted = self._formatter(llm)(messages=chat)
        prefix, blocks, tail = split_prompt(formatted.prompt)
        seed = int(kwargs.get("seed", self.seed))
        steps: list[str | Gap] = []
        for i, phrase in enumerate(anchor.phrases):
            steps.append((" " if i else "") + phrase)
            if i in anchor.slots and anchor.free_chars >= 2:  # the same slots, budgets and seeds as _segmented
                steps.append(Gap(max_chars=anchor.free_chars, max_tokens=anchor.free_chars // 3 + 4, seed=seed + i))
        return Program(prefix, blocks, tail, tuple(steps), budget=int(kwargs.get("max_tokens", self.max_tokens)))

    def _submit(self, messages: list[BaseMessage], anchor: Anchor, kwargs: dict[str, Any]) -> Future[Outcome]:
        program = self.program(messages, anchor, kwargs)
        if self._batcher is None:
            with self._lock:
                if self._batcher is None:
                    self._batcher = _Batcher(self)
        return self._batcher.submit(program)

    def decoders(self) -> list[BatchDecoder]:
        """The batched decoders: one per context, sharing the loaded weights (made on first use)."""
        with self._context() as llm:
            model = llm._model
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.contexts)
        return [
            BatchDecoder(model, threads=threads, temperature=self.temperature, top_p=self.top_p)
            for _ in range(self.contexts)
        ]

    def _segmented(
        self, llm: Any, chat: list[dict[str, str]], anchor: Anchor, options: dict[str, Any]
    ) -> tuple[str, int, int, str | None]:
        """Write an anchored text gap by gap: after each fact phrase the model may add one free sentence.

        The phrases are never sampled: they are appended to the prompt, so llama.cpp evaluates them as one batch
        (reusing the cached prefix), and only the free sentences are decoded token by token under a small
        grammar (nothing, or one sentence). Returns the text, prompt tokens evaluated, completion tokens, and
        the last finish reason.
        """
        from llama_cpp import LlamaGrammar

        formatted = self._formatter(llm)(messages=chat)
        gap = LlamaGrammar.from_string(anchor.gap_gbnf(), verbose=False)
        text = ""
        prompt_tokens = completion_tokens = last_total = 0
        finish: str | None = None
        budget = int(options["max_tokens"])
        for i, phrase in enumerate(anchor.phrases):
            text += (" " if text else "") + phrase
            if i not in anchor.slots or anchor.free_chars < 2 or budget <= 0:
                continue
            reply = llm.create_completion(
                formatted.prompt + text, max_tokens=min(budget, anchor.free_chars // 3 + 4), grammar=gap,
                temperature=options["temperature"], top_p=options["top_p"], seed=options["seed"] + i,
                stop=formatted.stop,
            )  # fmt: skip
            usage = reply["usage"]
            if not last_total:
                prompt_tokens = int(usage["prompt_tokens"])
            else:  # only what was not in the previous call's context: the phrase just appended
                prompt_tokens += max(0, int(usage["prompt_tokens"]) - last_total)
            last_total = int(usage["prompt_tokens"]) + int(usage["completion_tokens"])
            completion_tokens += int(usage["completion_tokens"])
            budget -= int(usage["completion_tokens"])
            finish = reply["choices"][0].get("finish_reason")
            piece = reply["choices"][0]["text"]
            if piece.strip():
                text += piece
        return text, prompt_tokens, completion_tokens, finish

    def _formatter(self, llm: Any) -> Any:
        """The GGUF's own chat template (ChatML for SmolLM2), as a prompt formatter (made once per model)."""
        if self._formatter_cache is not None:
            return self._formatter_cache
        from llama_cpp import llama_chat_format

        template = llm.metadata.get("tokenizer.chat_template")
        if template is None:
            formatter: Any = llama_chat_format.format_chatml
        else:
            eos = llm._model.token_get_text(llm.token_eos())
            bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
            formatter = llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._formatter_cache = formatter
        return formatter


class _Batcher:
    """Collects the requests that arrive together and decodes them as batches, on worker threads.

    A request waits in the queue until no new one has come for ``batch_window`` seconds (or ``max_batch`` are
    waiting); the collected programs are sorted so that records sharing a prompt prefix and references sit
    together, split into one contiguous share per context, and each share decoded by its context's
    :class:`BatchDecoder` on its own thread (llama.cpp releases the GIL).
    """

    def __init__(self, model: LocalChatModel):
        self.model = model
        self.decoders = model.decoders()
        self._waiting: list[tuple[Program, Future[Outcome]]] = []
        self._cond = threading.Condition()
        self._last = 0.0
        threading.Thread(target=self._serve, name="causalsynth-batch", daemon=True).start()

    def submit(self, program: Program) -> Future[Outcome]:
        """Queue one program; its future gets the outcome."""
        fut: Future[Outcome] = Future()
        with self._cond:
            self._waiting.append((program, fut))
            self._last = time.monotonic()
            self._cond.notify()
        return fut

    def _take(self) -> list[tuple[Program, Future[Outcome]]]:
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            while len(self._waiting) < self.model.max_batch:
                quiet = self.model.batch_window - (time.monotonic() - self._last)
                if quiet <= 0:
                    break
                self._cond.wait(quiet)
            taken, self._waiting = self._waiting[: self.model.max_batch], self._waiting[self.model.max_batch :]
            return taken

    def _serve(self) -> None:
        while True:
            taken = self._take()
            order = sorted(range(len(taken)), key=lambda i: (taken[i][0].prefix, taken[i][0].blocks))
            k = len(self.decoders)
            shares = [order[j * len(order) // k : (j + 1) * len(order) // k] for j in range(k)]
            threads = []
            for decoder, share in zip(self.decoders, shares, strict=True):
                if share:
                    work = [taken[i] for i in share]
                    t = threading.Thread(target=self._run, args=(decoder, work), daemon=True)
                    t.start()
                    threads.append(t)
            for t in threads:
                t.join()

    @staticmethod
    def _run(decoder: BatchDecoder, work: list[tuple[Program, Future[Outcome]]]) -> None:
        # A request whose caller gave up before its share started (its future cancelled: Ctrl-C, a failed run) is
        # not decoded; the others are marked running, so they can no longer be cancelled and setting their results
        # cannot fail (a cancelled future's set_result raised here and killed the thread, leaving its share waiting).
        work = [(p, fut) for p, fut in work if fut.set_running_or_notify_cancel()]
        if not work:
            return
        try:
            outs = decoder.run([p for p, _ in work])
        except Exception as exc:  # every request of the share fails with the reason; the batcher goes on
            for _, fut in work:
                fut.set_exception(exc)
            return
        for (_, fut), out in zip(work, outs, strict=True):
            fut.set_result(out)
