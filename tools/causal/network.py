"""The discrete causal network: nodes, states, parents and CPTs, in a compact array form.

A :class:`Network` is immutable and always valid (acyclic, CPT rows sum to one); specs build it after
checking user input. pgmpy is used for exact inference, file formats and d-separation helpers; the
sampler works on this module's arrays directly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from causalsynth.tools.errors import DataError, UsageError

if TYPE_CHECKING:
    from pgmpy.models import DiscreteBayesianNetwork

#: Largest deviation from 1 tolerated in the sum of a CPT column.
SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Node:
    """One discrete variable and its conditional probability table.

    Attributes:
        name: variable name.
        states: state names, in the order that defines integer codes 0..card-1.
        parents: parent names; parent configurations enumerate the cartesian product of the parents'
            states with the last parent varying fastest.
        cpt: float array of shape ``(n_parent_configs, card)``; row ``c`` is ``P(node | config c)``.
    """

    name: str
    states: tuple[str, ...]
    parents: tuple[str, ...]
    cpt: NDArray[np.float64] = field(repr=False)

    @property
    def card(self) -> int:
        """Number of states."""
        return len(self.states)


def cpt_sum_problem(row: Sequence[float] | NDArray[np.float64]) -> str | None:
    """Return why a probability row is invalid (negative, not finite, not summing to 1), or None."""
    arr = np.asarray(row, dtype=float)
    if not np.all(np.isfinite(arr)):
        return "probabilities must be finite numbers"
    if np.any(arr < 0):
        return f"probabilities must be >= 0, got {_fmt(arr)}"
    total = float(arr.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        return f"probabilities {_fmt(arr)} sum to {total:.6g}, not 1"
    return None


def _fmt(arr: NDArray[np.float64]) -> str:
    return "[" + ", ".join(f"{x:.6g}" for x in arr) + "]"


class Network:
    """An immutable discrete Bayesian network over named variables.

    Args:
        nodes: the variables; declaration order is kept (it names the per-node random streams).
        name: a label for reports.

    Raises:
        ValueError: on programming errors (unknown parent, cycle, bad CPT shape). User-facing input is
            checked earlier by :mod:`causalsynth.tools.spec`, which reports every problem with its location.
    """

    def __init__(self, nodes: Iterable[Node], name: str = "network") -> None:
        self.name = name
        self._nodes: dict[str, Node] = {}
        for node in nodes:
            if node.name in self._nodes:
                raise ValueError(f"duplicate node {node.name!r}")
            self._nodes[node.name] = node
        graph = nx.DiGraph()
        graph.add_nodes_from(self._nodes)
        for node in self._nodes.values():
            for parent in node.parents:
                if parent not in self._nodes:
                    raise ValueError(f"{node.name}: unknown parent {parent!r}")
                graph.add_edge(parent, node.name)
            expected = (int(np.prod([self._nodes[p].card for p in node.parents])), node.card)
            if node.cpt.shape != expected:
                raise ValueError(f"{node.name}: CPT shape {node.cpt.shape}, expected {expected}")
        if not nx.is_directed_acyclic_graph(graph):
            raise ValueError(f"cycle: {nx.find_cycle(graph)}")
        self.graph: nx.DiGraph = graph
        index = {n: i for i, n in enumerate(self._nodes)}
        self.order: tuple[str, ...] = tuple(nx.lexicographical_topological_sort(graph, key=index.__getitem__))

    # -- access -------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Variable names in declaration order."""
        return tuple(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, name: str) -> Node:
        """Return the node called ``name``."""
        return self._nodes[name]

    def states(self, name: str) -> tuple[str, ...]:
        """Return the states of ``name``."""
        return self._nodes[name].states

    def edges(self) -> list[tuple[str, str]]:
        """Return the directed edges ``(parent, child)``."""
        return list(self.graph.edges())

    def descendants(self, names: Iterable[str]) -> set[str]:
        """Return every strict descendant of any of ``names``."""
        out: set[str] = set()
        for name in names:
            out |= nx.descendants(self.graph, name)
        return out

    def parent_configs(self, name: str) -> list[tuple[str, ...]]:
        """Parent state tuples in CPT row order (last parent fastest)."""
        return list(itertools.product(*(self.states(p) for p in self._nodes[name].parents)))

    # -- user values ----------------------------------------------------------------------------------
    def resolve_assignment(self, assignment: Mapping[str, str], what: str) -> dict[str, int]:
        """Check ``{variable: state}`` against the network and return ``{variable: code}``.

        Args:
            assignment: variable to state name.
            what: how the user gave it (``--do``, ``evidence``), used in error messages.

        Raises:
            UsageError: naming the unknown variable or state and listing the valid ones.
        """
        codes: dict[str, int] = {}
        for var, state in assignment.items():
            if var not in self._nodes:
                raise UsageError(f"{what}: unknown variable {var!r}; variables of {self.name}: {', '.join(self.names)}")
            states = self.states(var)
            if state not in states:
                raise UsageError(f"{what}: {var} has no state {state!r}; valid states: {', '.join(states)}")
            codes[var] = states.index(state)
        return codes

    @cached_property
    def code_dtype(self) -> type[np.integer[Any]]:
        """Smallest integer type holding every state code."""
        return np.int8 if max(n.card for n in self._nodes.values()) <= 127 else np.int16

    def encode(self, data: pd.DataFrame, source: str = "data") -> list[NDArray[np.integer[Any]]]:
        """Return integer codes per variable (declaration order), checking columns and states.

        Raises:
            DataError: naming a missing column, or a column's invalid value and the first row holding it.
        """
        missing = [name for name in self.names if name not in data.columns]
        if missing:
            raise DataError(f"{source}: missing column(s) {', '.join(missing)} required by {self.name}")
        out: list[NDArray[np.integer[Any]]] = []
        for name in self.names:
            states = list(self.states(name))
            col = data[name]
            if isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == states:
                codes = col.cat.codes.to_numpy()
            else:
                codes = pd.Index(states).get_indexer(pd.Index(col.astype("string")))
            if (codes < 0).any():
                row = int(np.flatnonzero(codes < 0)[0])
                value = col.iloc[row]
                raise DataError(
                    f"{source}: column {name} row {row}: value {str(value)!r} is not a state of {name} "
                    f"(valid: {', '.join(states)})"
                )
            out.append(codes.astype(self.code_dtype, copy=False))
        return out

    # -- transformations ------------------------------------------------------------------------------
    def mutilate(self, do: Mapping[str, str]) -> Network:
        """Return the network under the hard intervention ``do(X=x, ...)``.

        Incoming edges of each intervened node are cut and its CPT becomes a point mass on the set state.
        """
        codes = self.resolve_assignment(do, "do")
        nodes = []
        for node in self._nodes.values():
            if node.name in codes:
                cpt = np.zeros((1, node.card))
                cpt[0, codes[node.name]] = 1.0
                node = Node(node.name, node.states, (), cpt)
            nodes.append(node)
        return Network(nodes, name=f"{self.name} | do({', '.join(f'{k}={v}' for k, v in do.items())})")

    # -- serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (declaration order, CPT rows in parent-configuration order)."""
        return {
            "name": self.name,
            "nodes": [
                {"name": n.name, "states": list(n.states), "parents": list(n.parents), "cpt": n.cpt.tolist()}
                for n in self._nodes.values()
            ],
        }

    @cached_property
    def digest(self) -> str:
        """A hash of the nodes, states, parents and CPTs (not the name): the key of cached derived results."""
        return hashlib.sha256(json.dumps(self.to_dict()["nodes"]).encode()).hexdigest()[:32]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Network:
        """Inverse of :meth:`to_dict`."""
        nodes = [
            Node(str(n["name"]), tuple(n["states"]), tuple(n["parents"]), np.asarray(n["cpt"], dtype=float))
            for n in data["nodes"]
        ]
        return cls(nodes, name=str(data["name"]))

    # -- pgmpy interop --------------------------------------------------------------------------------
    @classmethod
    def from_pgmpy(cls, model: Any, name: str = "network") -> Network:
        """Build a network from a pgmpy ``DiscreteBayesianNetwork`` (CPD evidence order is kept)."""
        nodes = []
        for var in model.nodes():
            cpd = model.get_cpds(var)
            if cpd is None:
                raise ValueError(f"{var}: no CPD")
            parents = tuple(str(p) for p in cpd.variables[1:])
            states = tuple(str(s) for s in cpd.state_names[var])
            values = np.asarray(cpd.get_values(), dtype=float).reshape(len(states), -1)
            nodes.append(Node(str(var), states, parents, np.ascontiguousarray(values.T)))
        return cls(nodes, name=name)

    @cached_property
    def pgmpy(self) -> DiscreteBayesianNetwork:
        """The equivalent pgmpy ``DiscreteBayesianNetwork`` (built once, on first use)."""
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork

        model = DiscreteBayesianNetwork()
        model.add_nodes_from(self.names)
        model.add_edges_from(self.edges())
        for node in self._nodes.values():
            state_names = {node.name: list(node.states)}
            state_names.update({p: list(self.states(p)) for p in node.parents})
            model.add_cpds(
                TabularCPD(
                    node.name,
                    node.card,
                    node.cpt.T,
                    evidence=list(node.parents) or None,
                    evidence_card=[self._nodes[p].card for p in node.parents] or None,
                    state_names=state_names,
                )
            )
        return model
