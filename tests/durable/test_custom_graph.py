"""Durable runs of custom graphs (``generate(graph=...)``): graphs built by ``build_graph`` with extra nodes, of both
topologies, checkpoint and resume to the uninterrupted result; a graph whose batches cannot be matched by the
output files is refused, naming why, before anything runs (or, for a ``Command`` jump, at the first boundary)."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import causalsynth as cs
from causalsynth.graphs.builder import compile_graph
from causalsynth.graphs.durable import CHECKPOINTS, SETTINGS, DurabilityError
from causalsynth.tools.errors import UsageError
from causalsynth.tools.plugins import GraphNode
from tests.durable import test_tables
from tests.durable.test_resume import Interrupt, same_output

RUN = {"llm": "template", "batch_size": 50, "seed": 8, "max_rounds": 2}


def _audited(spec: str, relational: bool = False):
    """``build_graph(spec)`` with a node after generation that drops every fifth text (so corrections happen)
    and one before writing that stamps the report: both act on the state only."""

    def blank_some(state, runtime):
        if relational:  # the first text of every fifth record: the verifier sends it back to the Generator
            table, column = runtime.context.schema.realised()
            if state.get("round", 0) or table not in state.get("tables", {}):
                return {}
            cols = dict(state["tables"][table])
            cols[column] = ["" if e % 5 == 0 else t for e, t in zip(cols["_entity"], cols[column], strict=True)]
            return {"tables": {**state["tables"], table: cols}}
        return {"records": [{**r, "text": "" if r["id"] % 5 == 0 and r["attempts"] == 1 else r["text"]}
                            for r in state["records"]]}  # fmt: skip

    def stamp(state, runtime):
        report = state.get("report")
        return {"report": {**report, "audited": True}} if report is not None else {}

    nodes = [GraphNode("blank_some", blank_some, at="after_generation"), GraphNode("stamp", stamp, at="before_writing")]
    return compile_graph(cs.build_graph(spec, nodes=nodes), relational)


@pytest.mark.parametrize("after", [False, True])
def test_a_graph_with_custom_nodes_checkpoints_and_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, after):
    # Setup
    reference = tmp_path / "reference"
    cs.generate("asia", 400, out=reference, graph=_audited("asia"), **RUN)
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=5, after=after)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 400, out=out, graph=_audited("asia"), **RUN)
    assert (out / CHECKPOINTS).is_file() and (out / SETTINGS).is_file()
    monkeypatch.undo()
    # Run
    result = cs.generate("asia", 400, resume=out, graph=_audited("asia"), **RUN)
    # Assert: the custom nodes ran (corrections, the stamp) and the output is the uninterrupted one
    assert result.report["audited"] is True and result.report["rounds_histogram"].get("1", 0) > 0
    same_output(reference, out)
    assert not (out / CHECKPOINTS).exists()


def test_a_relational_graph_with_a_custom_node_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    # Setup
    run = test_tables.RUN
    reference = tmp_path / "reference"
    cs.generate("hospital", test_tables.N, out=reference, graph=_audited("hospital", True), **run)
    out = tmp_path / "run"
    test_tables.Interrupt(monkeypatch, at=6, after=True)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("hospital", test_tables.N, out=out, graph=_audited("hospital", True), **run)
    monkeypatch.undo()
    # Run
    result = cs.generate("hospital", test_tables.N, resume=out, graph=_audited("hospital", True), **run)
    # Assert: the node made the Generator write more texts than a run without it
    plain = cs.generate("hospital", test_tables.N, **run).report
    assert result.report["texts_realised"] > plain["texts_realised"]
    test_tables.same_tables(reference, out)


def test_a_graph_edited_by_hand_keeping_the_batch_frame_is_durable(tmp_path, monkeypatch):
    # Setup: a node added with the LangGraph API between assess and write
    def builder():
        graph = cs.build_graph("asia")
        graph.add_node("audit", lambda state: {})
        graph.branches["assess"]["after_assess"].ends["write"] = "audit"
        graph.add_edge("audit", "write")
        return graph.compile()

    reference = tmp_path / "reference"
    cs.generate("asia", 400, out=reference, graph=builder(), **RUN)
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=3, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 400, out=out, graph=builder(), **RUN)
    monkeypatch.undo()
    # Run
    cs.generate("asia", 400, resume=out, graph=builder(), **RUN)
    # Assert
    same_output(reference, out)


def test_resuming_with_another_graph_is_refused(tmp_path, monkeypatch):
    # Setup
    out = tmp_path / "run"
    Interrupt(monkeypatch, at=2, after=False)
    with pytest.raises(KeyboardInterrupt):
        cs.generate("asia", 400, out=out, graph=_audited("asia"), **RUN)
    monkeypatch.undo()
    # Run / Assert
    with pytest.raises(UsageError, match="graph_nodes was"):
        cs.generate("asia", 400, resume=out, **RUN)


def _enters_sample_from(source: str):
    graph = cs.build_graph("asia")
    graph.add_node("again", lambda state: {})
    graph.branches["assess"]["after_assess"].ends["write"] = "again"
    graph.add_conditional_edges("again", lambda state: "write", {"write": "write", "sample": "sample"})
    return graph.compile()


def _replaced_write():
    graph = cs.build_graph("asia")
    graph.nodes.pop("write")
    graph.add_node("write", lambda state: {})
    return graph.compile()


def _unmapped_router():
    graph = cs.build_graph("asia")
    graph.add_node("look", lambda state: {})
    graph.branches["assess"]["after_assess"].ends["write"] = "look"
    graph.add_conditional_edges("look", lambda state: "write")
    return graph.compile()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _enters_sample_from("again"), "'sample' is entered from 'again'"),
        (_replaced_write, "needs the built-in node 'write'"),
        (_unmapped_router, "the router after 'look' does not declare where it goes"),
        (lambda: cs.build_graph("asia").compile(checkpointer=InMemorySaver()), "compiled with a checkpointer"),
        (lambda: cs.build_graph("asia").compile(interrupt_before=["write"]), "interrupts"),
        (lambda: object(), "needs a LangGraph StateGraph"),
    ],
)
def test_a_graph_that_cannot_be_checkpointed_is_refused_naming_why(tmp_path, capsys, make, message):
    # Run / Assert
    with pytest.raises(UsageError, match=message):
        cs.generate("asia", 40, out=tmp_path / "run", graph=make(), **RUN)
    assert not (tmp_path / "run" / CHECKPOINTS).exists()


def test_a_graph_that_jumps_to_sample_mid_batch_is_stopped_at_the_boundary(tmp_path):
    # Setup: a node that sends the second batch back to 'sample' with a Command (invisible in the topology)
    def jump(state):
        return Command(goto="sample") if state.get("batch") == 1 else Command(goto="write")

    builder = cs.build_graph("asia")
    builder.add_node("jump", jump)
    builder.branches["assess"]["after_assess"].ends["write"] = "jump"
    graph = builder.compile()
    # Run / Assert
    with pytest.raises(DurabilityError, match="enters 'sample' other than from START or 'write'"):
        cs.generate("asia", 400, out=tmp_path / "run", graph=graph, **RUN)


def test_without_a_folder_a_custom_graph_runs_as_compiled(tmp_path):
    # Run: no folder, so no checkpoint: the graph's own checkpointer is the user's business
    graph = cs.build_graph("asia").compile(checkpointer=InMemorySaver())
    result = cs.generate("asia", 40, graph=graph, config={"configurable": {"thread_id": "mine"}}, **RUN)
    # Assert
    assert result.report["n_accepted"] + result.report["n_rejected"] == 40
