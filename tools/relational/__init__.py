"""Relational data: tables, keys, foreign keys, business rules, and their repair.

Table schemas in a spec (``tables``, checked at load by ``spec_check``); sampling whole records, a root row and its
descendants (``sampling``, with ``fake_values`` for columns outside the causal model and ``derive`` for computed
ones); the business-rule language, parsed by lark and interpreted, never evaluated as code (``rules``,
``rule_eval``, ``rule_grammar``, ``rule_lock``); the Schema Validator's checks (``checks``), deterministic repair
(``repair``) and the relational report (``report``).
"""
