"""A scripted chat model for unit tests of the correction path (the real local LLM is tested in its own issue)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

_HINT = re.compile(r'\(for example: "([^"]*)"\)')


class ScriptedChatModel(GenericFakeChatModel):
    """Writes back the example sentence the prompt gives for each fact.

    ``first`` rewrites the text of a first attempt (e.g. the semantic backdoor: turn a non-smoker into a
    smoker); a correction prompt gets the faithful text when ``fix`` is true. A prompt containing ``fail_for``
    raises, like an overloaded server.
    """

    messages: Any = Field(default_factory=lambda: iter(()))
    first: Callable[[str], str] | None = None
    fix: bool = True
    fail_for: str | None = None
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        prompt = "\n".join(str(m.content) for m in messages)
        if self.fail_for is not None and self.fail_for in prompt:
            raise RuntimeError("model overloaded")
        text = " ".join(_HINT.findall(str(messages[1].content)))
        correcting = "It has these errors" in prompt
        if self.first is not None and not (correcting and self.fix):
            text = self.first(text)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])
