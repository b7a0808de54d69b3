"""Prompts of the natural-language rule compiler: the rule language, the table's columns, and the retry."""

from __future__ import annotations

from causalsynth.tools.relational.rules import AGGREGATES, FUNCTIONS, Scope

SYSTEM = """You translate one business rule, written in English, into an expression of a small rule language.
The expression is checked on each row of one table and must be true for rows that follow the rule.

The language:
- column names of the table; a parent table's column as TABLE.COLUMN (e.g. patients.age)
- literals: numbers, 'text' in single quotes, true, false, date('YYYY-MM-DD')
- arithmetic + - * / %, comparisons == != < <= > >= (chains like 0 <= x <= 10 work)
- x in ('a', 'b'), x not in ('a', 'b'), x is null, x is not null
- and, or, not, parentheses
- BODY if CONDITION: the rule applies only to rows where CONDITION holds
- functions: {functions}
- aggregates over a child table's rows: count(CHILD), {aggregates}(CHILD.COLUMN)
Nothing else exists: no other functions, no attributes, no lists, no assignments.

Answer with the expression only, on one line, without explanation or quotes."""

EXAMPLES = """Examples:
rule: employees on an employment contract are adults
answer: age >= 18 if contract == 'employment'
rule: an order's total equals the sum of its items
answer: total == sum(items.amount)
rule: the status is open or closed
answer: status in ('open', 'closed')"""


def describe_scope(scope: Scope) -> str:
    """The table's columns (with kinds and allowed values), its ancestors' and its children's."""
    lines = [f"Table: {scope.table}"]

    def columns(table: str) -> str:
        parts = []
        for name, col in scope.tables[table].items():
            kind = {"num": "number", "str": "text", "bool": "true/false"}.get(col.kind, col.kind)
            values = f" one of {', '.join(repr(v) for v in col.categories)}" if col.categories else ""
            parts.append(f"  {name}: {kind}{values}")
        return "\n".join(parts)

    lines.append(columns(scope.table))
    for up in scope.ancestors():
        lines.append(f"Parent table {up} (write {up}.COLUMN):")
        lines.append(columns(up))
    for child in scope.children():
        lines.append(f"Child table {child} (aggregate with count({child}), sum({child}.COLUMN), ...):")
        lines.append(columns(child))
    return "\n".join(lines)


def system_prompt() -> str:
    """The instructions, with the language's functions."""
    functions = ", ".join(f"{name}({', '.join(args)})" for name, (args, _) in FUNCTIONS.items())
    return SYSTEM.format(functions=functions, aggregates="/".join(a for a in AGGREGATES if a != "count"))


def user_prompt(sentence: str, scope: Scope) -> str:
    """The request for one sentence."""
    return f"{describe_scope(scope)}\n\n{EXAMPLES}\n\nrule: {sentence}\nanswer:"


def retry_prompt(answer: str, error: str) -> str:
    """The second chance: the previous answer and the parser's error."""
    return (
        f"Your answer {answer!r} is not a valid expression: {error}\n"
        "Answer again with the corrected expression only, on one line."
    )
