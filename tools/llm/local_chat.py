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
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from causalsynth.tools.errors import UsageError
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

    #: Callers may pass ``grammar=`` (GBNF text) per call (the rule compiler does).
    accepts_grammar: ClassVar[bool] = True

    _pool: queue.Queue[Any] = PrivateAttr(default_factory=queue.Queue)
    _loaded: int = PrivateAttr(default=0)
    _formatter_cache: Any = PrivateAttr(default=None)

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
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            response_metadata={"finish_reason": finish, "model": Path(self.model_path).name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

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
