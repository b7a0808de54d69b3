"""The rule language as GBNF: it loads in llama.cpp and names exactly what a rule of the table may read."""

from __future__ import annotations

import pytest

from causalsynth.tools.relational.rule_grammar import rule_gbnf
from causalsynth.tools.spec import load_domain
from tests.conftest import ROOT


@pytest.mark.parametrize("table", ["patients", "admissions", "notes", "doctors"])
def test_grammar_loads_and_names_only_visible_columns(table):
    from llama_cpp import LlamaGrammar

    schema = load_domain(ROOT / "examples" / "hospital.yaml").schema
    scope = schema.scope(table)
    grammar = rule_gbnf(scope)
    LlamaGrammar.from_string(grammar, verbose=False)
    column_rule = next(line for line in grammar.splitlines() if line.startswith("column ::= "))
    names = {alt.strip().strip('"') for alt in column_rule.removeprefix("column ::= ").split("|")}
    expected = set(scope.tables[table]) | {f"{up}.{c}" for up in scope.ancestors() for c in scope.tables[up]}
    assert names == expected
    assert ("aggregate ::=" in grammar) == bool(scope.children())
