"""A user's DAG for ``fit --dag``.

A spec-style ``nodes:`` block (``model: nodes:`` or top-level) or an edge list (``parent -> child`` or
``parent,child`` per line).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import networkx as nx

from causalsynth.tools.errors import DataError, UsageError
from causalsynth.tools.yamlio import load_yaml


def read_dag(path: Path) -> dict[str, list[str]]:
    """``{child: [parents]}`` from a DAG file (nodes absent from it get no parents later).

    Raises:
        UsageError: unreadable file or a line that is not an edge.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--dag {path}: cannot read: {exc}") from None
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        data, _ = load_yaml(text, str(path))
        nodes = data.get("model", {}).get("nodes") if isinstance(data, dict) and "model" in data else None
        nodes = nodes if nodes is not None else (data.get("nodes") if isinstance(data, dict) else None)
        if not isinstance(nodes, dict):
            raise UsageError(f"--dag {path}: expected a 'nodes:' mapping (or 'model: nodes:') of variables")
        out: dict[str, list[str]] = {}
        for name, node in nodes.items():
            parents = node.get("parents", []) if isinstance(node, dict) else []
            if not isinstance(parents, list):
                raise UsageError(f"--dag {path}: nodes.{name}.parents must be a list")
            out[str(name)] = [str(p) for p in parents]
        return out
    out = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        sep = "->" if "->" in line else ","
        parent, _, child = (part.strip() for part in line.partition(sep))
        if not parent or not child:
            raise UsageError(f"--dag {path}:{lineno}: expected 'parent -> child', got {raw.strip()!r}")
        out.setdefault(child, []).append(parent)
        out.setdefault(parent, [])
    return out


def check_dag(dag: dict[str, list[str]], columns: Sequence[str], source: str) -> dict[str, list[str]]:
    """The DAG over every column (missing ones get no parents), checked.

    Raises:
        DataError: a node or parent that is not a column, or a cycle (named).
    """
    known = set(columns)
    unknown = sorted({n for n in dag if n not in known} | {p for ps in dag.values() for p in ps if p not in known})
    if unknown:
        raise DataError(
            f"{source}: the DAG names unknown column(s) {', '.join(unknown)}; columns: {', '.join(columns)}"
        )
    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    graph.add_edges_from((p, c) for c, ps in dag.items() for p in ps)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(graph))
        raise DataError(f"{source}: the DAG has a cycle: {cycle}")
    return {c: list(dict.fromkeys(dag.get(c, []))) for c in columns}
