"""The rule language as a llama.cpp GBNF grammar over one table's scope, for constrained rule compilation.

A local model asked to translate a sentence into a rule is held to this grammar while it writes: it can only
produce a well-formed expression over the names the rule can see (the table's columns, ``PARENT.COLUMN`` for
ancestors, ``count(CHILD)`` and ``AGG(CHILD.COLUMN)`` for children), the language's functions and literals.
The grammar is a strict subset of the lark grammar in ``rules`` (canonical spacing, bounded literals, the
common shapes: comparisons of a column, call or aggregate with a value or column, joined by at most one ``and``
/ ``or`` on each side of an optional ``if``), so every answer parses; a tiny model held to the full language
wanders into endless arithmetic. The type checker (``rules.compile_rule``) still judges each answer, and the
user still reviews the lock file. The grammar only narrows what the model can say; nothing it writes is executed.
"""

from __future__ import annotations

from causalsynth.tools.relational.rules import AGGREGATES, FUNCTIONS, Scope


def _lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _alts(options: list[str]) -> str:
    return " | ".join(_lit(o) for o in options)


def rule_gbnf(scope: Scope) -> str:
    """The GBNF grammar of the rules ``scope.table`` can state."""
    columns = sorted(scope.tables[scope.table])
    columns += [f"{up}.{c}" for up in scope.ancestors() for c in sorted(scope.tables[up])]
    visible = [scope.table, *scope.ancestors()]
    categories = sorted(
        {v for t in visible for col in scope.tables[t].values() for v in col.categories if "'" not in v}
    )
    children = scope.children()
    lines = [
        "root ::= cond",
        'cond ::= expr (" if " expr)?',
        'expr ::= conj (" or " conj)?',
        'conj ::= cmp (" and " cmp)?',
        'cmp ::= lhs " " op " " rhs | lhs " in " tuple | lhs " not in " tuple | lhs " is null" | lhs " is not null"'
        ' | "not " column | column',
        'op ::= "==" | "!=" | "<=" | ">=" | "<" | ">"',
        "lhs ::= column | call" + (" | aggregate" if children else ""),
        'rhs ::= number | string | datelit | column | call | "true" | "false"',
        'tuple ::= "(" lit (", " lit){0,7} ")"',
        "lit ::= number | string",
        'number ::= [0-9]{1,7} ("." [0-9]{1,2})?',
        "string ::= "
        + (_alts([f"'{c}'" for c in categories]) + " | " if categories else "")
        + '"\'" [A-Za-z0-9 _-]{1,30} "\'"',
        'datelit ::= "date(\'" [0-9]{4} "-" [0-9]{2} "-" [0-9]{2} "\')"',
        "column ::= " + _alts(columns),
        'call ::= fname "(" column (", " column)? ")"',
        "fname ::= " + _alts(sorted(FUNCTIONS)),
    ]
    if children:
        child_columns = [f"{ch}.{c}" for ch in children for c in sorted(scope.tables[ch])]
        lines += [
            'aggregate ::= "count(" child ")" | agg "(" childcol ")"',
            "child ::= " + _alts(children),
            "agg ::= " + _alts([a for a in AGGREGATES if a != "count"]),
            "childcol ::= " + _alts(child_columns),
        ]
    return "\n".join(lines) + "\n"
