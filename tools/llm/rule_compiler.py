"""Compile a natural-language business rule into the rule language with a chat model (injected).

The model only proposes text. The proposal is parsed and type-checked against the schema like any rule
(``rules.compile_rule``); it is never executed. An answer that does not parse gets one retry that quotes
the parser's error; a second failure is a :class:`RuleCompileError` naming both attempts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from causalsynth.tools.errors import CausalSynthError
from causalsynth.tools.llm.rule_prompts import retry_prompt, system_prompt, user_prompt
from causalsynth.tools.relational.rule_grammar import rule_gbnf
from causalsynth.tools.relational.rules import Rule, RuleError, Scope, compile_rule

#: Longest answer considered (a rule is one line; a long answer is not one).
MAX_ANSWER = 2000


class RuleCompileError(CausalSynthError):
    """The model did not produce a valid rule for a sentence within the allowed attempts."""


@dataclass(frozen=True)
class CompiledRule:
    """A sentence, the rule it became, and the model's answers on the way."""

    sentence: str
    table: str
    rule: Rule
    answers: tuple[str, ...]


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_PREFIX = re.compile(r"^(answer|rule|expression)\s*:\s*", re.IGNORECASE)


def clean_answer(content: str) -> str:
    """The expression in a model's answer: code fences, labels and wrapping quotes or backticks removed."""
    text = _FENCE.sub("", content.strip()[:MAX_ANSWER]).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = _PREFIX.sub("", lines[0]) if lines else ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in '`"':
        text = text[1:-1].strip()
    return text


class NlRuleCompiler:
    """Turns sentences into checked rules with one chat model; ``retries`` extra attempts after a parse error."""

    def __init__(self, model: BaseChatModel, retries: int = 1) -> None:
        self.model = model
        self.retries = retries

    def _ask(self, messages: list[BaseMessage], sentence: str, grammar: str | None) -> str:
        try:
            if grammar:  # a rule is one short line: 96 tokens is room enough
                reply = self.model.invoke(messages, grammar=grammar, max_tokens=96)
            else:
                reply = self.model.invoke(messages)
        except Exception as exc:  # any provider failure is one clear error for this sentence
            raise RuleCompileError(f"rule {sentence!r}: the chat model failed: {type(exc).__name__}: {exc}") from None
        content = reply.content if isinstance(reply.content, str) else str(reply.content)
        return content

    def compile(self, sentence: str, scope: Scope, name: str = "") -> CompiledRule:
        """The rule for ``sentence`` on ``scope.table``.

        Raises:
            RuleCompileError: the model failed, or its answers did not parse and check within the attempts.
        """
        messages: list[BaseMessage] = [SystemMessage(system_prompt()), HumanMessage(user_prompt(sentence, scope))]
        # A model that takes a grammar (our llama.cpp model) is held to the rule language while it writes.
        grammar = rule_gbnf(scope) if getattr(self.model, "accepts_grammar", False) else None
        answers: list[str] = []
        errors: list[str] = []
        for _ in range(1 + self.retries):
            raw = self._ask(messages, sentence, grammar)
            answer = clean_answer(raw)
            answers.append(answer)
            try:
                rule = compile_rule(answer, scope, name=name)
            except RuleError as exc:
                errors.append(exc.message + (f" (at column {exc.column})" if exc.column else ""))
                messages += [AIMessage(raw), HumanMessage(retry_prompt(answer, errors[-1]))]
                continue
            return CompiledRule(sentence, scope.table, rule, tuple(answers))
        tried = "; ".join(f"attempt {i + 1}: {a!r}: {e}" for i, (a, e) in enumerate(zip(answers, errors, strict=True)))
        raise RuleCompileError(f"{scope.table}: could not compile {sentence!r} into a valid rule ({tried})")
