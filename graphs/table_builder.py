"""Build the relational run graph.

::

    START -> sample_tables -> generate_text -> validate_tables
    validate_tables -> repair          (records of the batch still have violations, rounds left)
    repair -> generate_text            (texts to rewrite, with feedback)
    repair -> validate_tables          (only columns redrawn)
    validate_tables -> write_tables    (every record of the batch accepted or rejected)
    write_tables -> sample_tables | END
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.repairer import repair
from agents.table_generator import generate_text
from agents.table_sampler import sample_tables
from agents.table_validator import validate_tables
from agents.table_writer import write_tables
from graphs.builder import traced
from graphs.routing import after_repair, after_validate_tables, after_write_tables
from graphs.table_context import TableRunContext
from graphs.table_state import TableRunState


def build_table_graph() -> CompiledStateGraph[TableRunState, TableRunContext, TableRunState, TableRunState]:
    """The compiled relational graph; dependencies come in through ``context=TableRunContext(...)``."""
    builder = StateGraph(TableRunState, context_schema=TableRunContext)
    for name, node in (
        ("sample_tables", sample_tables),
        ("generate_text", generate_text),
        ("validate_tables", validate_tables),
        ("repair", repair),
        ("write_tables", write_tables),
    ):
        builder.add_node(name, traced(name, node))
    builder.add_edge(START, "sample_tables")
    builder.add_edge("sample_tables", "generate_text")
    builder.add_edge("generate_text", "validate_tables")
    builder.add_conditional_edges("validate_tables", after_validate_tables)
    builder.add_conditional_edges("repair", after_repair)
    builder.add_conditional_edges(
        "write_tables", after_write_tables, {"sample_tables": "sample_tables", "__end__": END}
    )
    return builder.compile()


def table_recursion_limit(n: int, batch_size: int, max_rounds: int) -> int:
    """Super-steps a run needs: per batch, sample + generate + (validate, repair, generate) per round + write."""
    batches = max(1, -(-n // batch_size))
    return batches * (4 + 3 * (max_rounds + 1)) + 10
