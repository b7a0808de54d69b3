"""Generator tools: before writing a record, the model may call LangChain tools; what they return reaches the prompt.

Per record and attempt the model gets the record's facts and the tools, and answers with tool calls, one round at
a time, until it stops or a bound is reached (``ToolLimits``: calls, and seconds for the model's turns and the
tools together). Each call's output is kept as reference material for the record's prompt. A tool that raises,
hangs past the budget or is given arguments its schema refuses becomes an error of that record (the Generator
turns it into a violation with the reason); the run goes on.

How the model is asked:

- our llama.cpp model (``accepts_grammar``): each turn is constrained by a GBNF grammar built from the tools' JSON
  schemas (``{"tool": NAME, "args": {...}}``, or ``{"tool": "done"}`` once a call was made or when calls are
  optional), so every reply is a well-formed call of a real tool;
- any other LangChain chat model: ``bind_tools`` and its native tool calls, fed back as ``ToolMessage``s, the loop
  LangGraph's ``ToolNode`` runs, bounded here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from causalsynth.tools.llm.prompts import facts_prompt
from causalsynth.tools.plugins import ToolLimits, bounded_call
from causalsynth.tools.text.lexicon import Lexicon
from causalsynth.tools.text.realisation import RealisationRequest

#: Longest tool output kept for the prompt.
MAX_OUTPUT_CHARS = 1200
#: Longest string argument the grammar lets the local model write.
MAX_ARG_CHARS = 60
DONE = "done"
#: Timeouts in a row after which a tool is not called again in the run.
GIVE_UP_AFTER = 3


@dataclass(frozen=True)
class ToolCall:
    """One tool call of one record: what was asked, what came back (or why nothing did), and how long it took."""

    tool: str
    args: dict[str, Any]
    seconds: float
    output: str | None = None
    error: str | None = None


@dataclass
class ToolRound:
    """The tool calls made for one record's attempt, and the model turns they cost."""

    calls: list[ToolCall] = field(default_factory=list)
    model_calls: int = 0
    stopped: str | None = None  # why the loop ended early: the call or seconds budget, or a model error

    @property
    def references(self) -> list[str]:
        """Each successful call as a passage for the prompt."""
        return [f"{c.tool}({_args_text(c.args)}) returned: {c.output}" for c in self.calls if c.error is None]

    @property
    def errors(self) -> list[ToolCall]:
        """The calls that failed."""
        return [c for c in self.calls if c.error is not None]


class ToolCaller:
    """Runs the Generator's tool loop for records, with a chat model and LangChain tools."""

    def __init__(self, model: BaseChatModel, tools: Sequence[BaseTool], lexicon: Lexicon, limits: ToolLimits,
                 seed: int = 0) -> None:  # fmt: skip
        if not tools:
            raise ValueError("a ToolCaller needs at least one tool")
        self.model = model
        self.tools = {t.name: t for t in tools}
        self.lexicon = lexicon
        self.limits = limits
        self.seed = seed
        self.grammar_calls = bool(getattr(model, "accepts_grammar", False))
        self.timeouts: dict[str, int] = {}  # per tool: calls in a row that gave no answer in time
        self.down: dict[str, str] = {}  # tools given up on for the rest of the run, and why
        self._bound: dict[bool, Any] = {}

    def system(self) -> str:
        """The tool turn's instructions, with each tool's name, arguments and description."""
        kind = self.lexicon.text.kind
        lines = [f"Before you write a {kind}, you can look things up with these tools:"]
        for tool in self.tools.values():
            args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in tool.args.items())
            lines.append(f"- {tool.name}({args}): {tool.description}")
        if self.grammar_calls:
            lines.append('Answer with one JSON object: {"tool": NAME, "args": {...}}, or {"tool": "done"} when done.')
        return "\n".join(lines)

    def run(self, request: RealisationRequest, config: RunnableConfig | None = None) -> ToolRound:
        """The tool loop for one record's attempt."""
        messages: list[BaseMessage] = [
            SystemMessage(self.system()),
            HumanMessage(f"{facts_prompt(self.lexicon, request.skeleton)}\nFirst, look up what you need."),
        ]
        out = ToolRound()
        deadline = time.perf_counter() + self.limits.seconds
        while len(out.calls) < self.limits.calls:
            left = deadline - time.perf_counter()
            if left <= 0:
                out.stopped = f"tool budget of {self.limits.seconds:g} s spent"
                break
            optional = bool(out.calls) or not self.limits.require
            turn = bounded_call(lambda: self._turn(messages, request, optional, config), left)
            out.model_calls += 1
            if turn.error is not None:
                out.stopped = f"model turn failed: {turn.error}"
                break
            ai, calls = turn.value
            if not calls:
                break
            messages.append(ai)
            for call_id, name, args in calls[: self.limits.calls - len(out.calls)]:
                left = deadline - time.perf_counter()
                call = self._call(name, args, left, config)
                out.calls.append(call)
                messages.append(ToolMessage(call.output if call.error is None else f"error: {call.error}",
                                            tool_call_id=call_id, name=name))  # fmt: skip
        else:
            out.stopped = f"limit of {self.limits.calls} tool call(s) reached"
        return out

    def _call(
        self, name: str, args: Mapping[str, Any], seconds: float, config: RunnableConfig | None = None
    ) -> ToolCall:
        tool = self.tools.get(name)
        if tool is None:
            return ToolCall(name, dict(args), 0.0, error=f"no tool named {name!r}")
        if name in self.down:
            return ToolCall(name, dict(args), 0.0, error=self.down[name])
        if seconds <= 0:
            return ToolCall(name, dict(args), 0.0, error="no time left in the tool budget")
        got = bounded_call(lambda: tool.invoke(dict(args), config), seconds)  # a child span of the node
        self.timeouts[name] = self.timeouts.get(name, 0) + 1 if got.timed_out else 0
        if self.timeouts[name] >= GIVE_UP_AFTER:  # a dead service: not called again in this run
            self.down[name] = f"not called: it gave no answer {GIVE_UP_AFTER} times in a row earlier in this run"
        if got.timed_out:
            budget = f"no answer within the record's tool budget of {self.limits.seconds:g} s"
            return ToolCall(name, dict(args), got.seconds, error=budget)
        if got.error is not None:
            return ToolCall(name, dict(args), got.seconds, error=got.error)
        return ToolCall(name, dict(args), got.seconds, output=str(got.value)[:MAX_OUTPUT_CHARS])

    def _turn(
        self, messages: list[BaseMessage], request: RealisationRequest, optional: bool, config: RunnableConfig | None
    ) -> tuple[AIMessage, list[tuple[str, str, dict[str, Any]]]]:
        """One model turn: the reply and its calls as ``(id, tool, args)``."""
        if self.grammar_calls:
            return self._grammar_turn(messages, request, optional, config)
        if optional not in self._bound:  # bound once per tool choice: optional, or a call required
            choice = None if optional else "any"
            self._bound[optional] = self.model.bind_tools(list(self.tools.values()), tool_choice=choice)
        reply = self._bound[optional].invoke(messages, config)
        assert isinstance(reply, AIMessage)
        calls = [(str(c.get("id") or f"call_{i}"), c["name"], dict(c.get("args") or {}))
                 for i, c in enumerate(reply.tool_calls)]  # fmt: skip
        return reply, calls

    def _grammar_turn(
        self, messages: list[BaseMessage], request: RealisationRequest, optional: bool, config: RunnableConfig | None
    ) -> tuple[AIMessage, list[tuple[str, str, dict[str, Any]]]]:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        schema = call_schema(self.tools, optional)
        seed = (self.seed * 1_000_003 + request.record_id * 101 + request.attempt * 7 + len(messages)) % 2**31
        reply = self.model.invoke(
            messages, config, grammar=json_schema_to_gbnf(json.dumps(schema)), seed=seed, max_tokens=96
        )
        assert isinstance(reply, AIMessage)
        try:
            parsed = json.loads(str(reply.content))
        except json.JSONDecodeError as exc:  # cut off by max_tokens: no call this turn
            raise ValueError(f"the model's tool call is not complete JSON ({exc.msg})") from None
        name = parsed.get("tool")
        if name == DONE:
            return reply, []
        call_id = f"call_{len(messages)}"
        ai = AIMessage(content="", tool_calls=[{"name": name, "args": parsed.get("args") or {}, "id": call_id}])
        return ai, [(call_id, str(name), dict(parsed.get("args") or {}))]


def call_schema(tools: Mapping[str, BaseTool], optional: bool) -> dict[str, Any]:
    """The JSON schema of one tool call (``{"tool": NAME, "args": ARGS}``), ``{"tool": "done"}`` when optional."""
    options: list[dict[str, Any]] = []
    for name, tool in tools.items():
        args = _bounded_strings(_schema_of(tool))
        options.append({"type": "object", "properties": {"tool": {"const": name}, "args": args},
                        "required": ["tool", "args"]})  # fmt: skip
    if optional:
        options.append({"type": "object", "properties": {"tool": {"const": DONE}}, "required": ["tool"]})
    return {"oneOf": options}


def _schema_of(tool: BaseTool) -> dict[str, Any]:
    raw: dict[str, Any] = convert_to_openai_tool(tool)["function"]["parameters"]
    props = {k: {kk: vv for kk, vv in v.items() if kk not in ("title", "description", "default")}
             for k, v in (raw.get("properties") or {}).items()}  # fmt: skip
    return {"type": "object", "properties": props, "required": list(raw.get("required") or list(props))}


def _bounded_strings(schema: dict[str, Any]) -> dict[str, Any]:
    """Cap every string property's length, so a tiny model cannot ramble inside an argument."""
    props = {}
    for key, value in schema["properties"].items():
        if value.get("type") == "string":
            value = {**value, "maxLength": min(int(value.get("maxLength", MAX_ARG_CHARS)), MAX_ARG_CHARS)}
            value.setdefault("minLength", 1)
        props[key] = value
    return {**schema, "properties": props}


def _args_text(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def trace_event(record_id: int, attempt: int, call: ToolCall) -> dict[str, Any]:
    """The ``run.jsonl`` event of one tool call."""
    event: dict[str, Any] = {"event": "tool_call", "record_id": record_id, "attempt": attempt, "tool": call.tool,
                             "args": call.args, "seconds": round(call.seconds, 6)}  # fmt: skip
    if call.error is not None:
        event["error"] = call.error
    else:
        event["output_chars"] = len(call.output or "")
    return event


Emit = Callable[[Mapping[str, Any]], None]
