"""Custom graph nodes at named points, with their routing, from build_graph(nodes=...) and from a plugin."""

from __future__ import annotations

import pytest

from causalsynth.graphs.api import build_graph, generate
from causalsynth.graphs.builder import compile_graph
from causalsynth.tools.errors import UsageError
from causalsynth.tools.plugins import GraphNode
from causalsynth.tools.spec import load_domain
from tests.plugins.test_tools import asia_with


def test_a_node_after_generation_can_route_the_batch_back_to_the_generator(asia):
    # Setup: a second look that sends the first round back to the Generator once
    seen: list[int] = []

    def second_look(state, runtime):
        seen.append(len(state["records"]))
        return {"info": {"looked_at": len(state["records"])}}

    def again_once(state) -> str:
        return "again" if len(seen) == 1 else "next"

    node = GraphNode("second_look", second_look, at="after_generation", router=again_once,
                     targets={"again": "generate", "next": "next"})  # fmt: skip
    graph = build_graph(asia, nodes=[node])
    # Run
    result = generate(asia, 20, llm="template", graph=compile_graph(graph), batch_size=20)
    # Assert: every record was generated twice before it was checked, and accepted
    assert seen == [20, 20] and result.report["n_accepted"] == 20
    assert result.report["rounds_histogram"] == {"1": 20} and result.report["generator_calls"] == 40
    drawn = compile_graph(graph).get_graph().draw_mermaid()
    assert "generate --> second_look" in drawn
    assert "second_look -. &nbsp;again&nbsp; .-> generate" in drawn
    assert "second_look -. &nbsp;next&nbsp; .-> validate_schema" in drawn


def test_a_node_before_writing_sees_the_batch_and_can_amend_the_report(asia):
    def audit(state, runtime):
        report = state.get("report")
        if report is None:
            return {"info": {"audited": len(state.get("accepted", []))}}
        return {"report": {**report, "audited_by": "ward-7"}}

    graph = build_graph(asia, nodes=[GraphNode("audit", audit, at="before_writing")])
    result = generate(asia, 30, llm="template", graph=compile_graph(graph), batch_size=10)
    assert result.report["audited_by"] == "ward-7" and result.report["n_accepted"] == 30


@pytest.mark.parametrize(
    ("node", "message"),
    [(GraphNode("generate", lambda s, r: {}), "already has a node of that name"),
     (GraphNode("x", lambda s, r: {}, at="somewhere"), "unknown point 'somewhere'"),  # type: ignore[arg-type]
     (GraphNode("x", lambda s, r: {}, router=lambda s: "a", targets={"a": "nowhere"}), "unknown nodes: nowhere")],
)  # fmt: skip
def test_a_bad_extra_node_is_refused_naming_it(asia, node, message):
    with pytest.raises(UsageError, match=message):
        build_graph(asia, nodes=[node])


def test_a_plugin_node_named_by_the_spec_is_placed_at_its_point(tmp_path):
    pytest.importorskip("hospital_plugin", reason="make setup installs examples/plugins")
    spec = load_domain(asia_with(tmp_path, "plugins: {nodes: [{name: redact_identifiers, at: before_writing}]}\n"))
    edges = {(e.source, e.target) for e in compile_graph(build_graph(spec)).get_graph().edges}
    assert {("assess", "redact_identifiers"), ("redact_identifiers", "write")} <= edges  # assess routes to it
    assert ("assess", "write") not in edges
    default = load_domain(asia_with(tmp_path, "plugins: {nodes: [redact_identifiers]}\n"))
    drawn = compile_graph(build_graph(default)).get_graph().draw_mermaid()
    assert "generate --> redact_identifiers" in drawn and "redact_identifiers --> validate_schema" in drawn


def test_extra_nodes_fit_in_the_step_budget_of_a_run_that_uses_every_round(asia):
    # Setup: a node that empties every text, so each record of each batch uses all its rounds, and one more node
    def blank(state, runtime):
        return {"records": [{**r, "text": ""} for r in state["records"]]}

    nodes = [GraphNode("blank", blank), GraphNode("look", lambda s, r: {}, at="before_writing")]
    graph = compile_graph(build_graph(asia, nodes=nodes))
    # Run
    result = generate(asia, 50, llm="template", graph=graph, batch_size=5, max_rounds=3)
    # Assert: ten batches of four rounds each finish, every record rejected with its reasons
    assert result.report["n_rejected"] == 50 and result.report["generator_calls"] == 200
