"""Scripted chat models for the plugin tests: the routing edges are exercised without a real model."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

_HINT = re.compile(r'\(for example: "([^"]*)"\)')


def _hints(messages: list[BaseMessage]) -> str:
    return " ".join(_HINT.findall("\n".join(str(m.content) for m in messages[:2])))


class DrugNoteModel(GenericFakeChatModel):
    """Writes each fact's example sentence, then a drug and a record number.

    The first attempt misspells the drug (``salbutomol``); a correction prompt that names the formulary spelling
    gets it right. Every text carries an invented record number, which must never reach the output.
    """

    messages: Any = Field(default_factory=lambda: iter(()))
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        self.calls.append(list(messages))
        prompt = "\n".join(str(m.content) for m in messages)
        drug = "salbutamol" if "did you mean 'salbutamol'" in prompt else "salbutomol"
        text = f"{_hints(messages)} Given {drug} nebulisers. Record MRN-482913 on file."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


class ToolCallingModel(GenericFakeChatModel):
    """A model with native tool calls: in a tool turn it calls ``tool`` with ``args`` once, then stops; when
    asked to write, it writes each fact's example sentence. Every call's messages are kept."""

    messages: Any = Field(default_factory=lambda: iter(()))
    tool: str = "glossary"
    args: dict[str, Any] = Field(default_factory=lambda: {"term": "dyspnoea"})
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_choice: list[Any] = Field(default_factory=list)

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kw: Any) -> Any:
        self.bound_choice.append(tool_choice)
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any):
        self.calls.append(list(messages))
        tool_turn = isinstance(messages[0], SystemMessage) and str(messages[0].content).startswith("Before you write")
        if tool_turn and not isinstance(messages[-1], ToolMessage):
            reply = AIMessage("", tool_calls=[{"name": self.tool, "args": self.args, "id": f"c{len(self.calls)}"}])
        elif tool_turn:
            reply = AIMessage("no more lookups")
        else:
            reply = AIMessage(_hints(messages))
        return ChatResult(generations=[ChatGeneration(message=reply)])
