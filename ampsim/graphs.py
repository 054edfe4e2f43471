"""Graphs in: networkx graphs, PyG-style ``edge_index``, or CLI specs; one stable numbering out.

AMP runs on simple undirected graphs (Section 3). :func:`as_graph` accepts

* a ``networkx.Graph``: nodes are relabelled 0..n-1 in **sorted order of their
  labels** when the labels are mutually comparable, otherwise in ``G.nodes``
  insertion order; ``Graph.labels`` keeps the original label of each index;
* an ``edge_index`` (2 x E, list/array/tensor; each undirected edge in one or both
  directions) plus ``num_nodes``;
* a :class:`Graph` (returned as is);
* a PyTorch Geometric ``Data`` or ``Batch`` (see :mod:`ampsim.pyg`).

Directed graphs, multigraphs, self-loops and empty graphs are rejected with a
:class:`~ampsim.engine.errors.GraphError`. Neighbours are stored sorted, so every
broadcast visits receivers in ascending index order.

:func:`parse_graph_spec` reads the CLI's specs: ``path:N``, ``cycle:N``,
``star:K`` (K leaves, centre 0), ``complete:N``, ``grid:RxC``, ``petersen``,
``random-regular:D:N:SEED``, ``gnp:N:P:SEED`` (largest component), ``tree:N:SEED``,
or a path to an edge-list file (``u v`` per line, ``#`` comments).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import networkx as nx

from .engine.errors import GraphError

__all__ = ["Graph", "as_graph", "parse_graph_spec", "GRAPH_SPECS"]


@dataclass(frozen=True, eq=False)
class Graph:
    """A simple undirected graph on nodes 0..n-1 with sorted neighbour tuples."""

    num_nodes: int
    neighbors: tuple[tuple[int, ...], ...]
    labels: tuple[Any, ...]
    name: str = ""

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Undirected edges (u, v) with u < v, sorted."""
        return [(u, v) for u in range(self.num_nodes) for v in self.neighbors[u] if u < v]

    @property
    def num_edges(self) -> int:
        return sum(len(nb) for nb in self.neighbors) // 2

    @property
    def degrees(self) -> tuple[int, ...]:
        return tuple(len(nb) for nb in self.neighbors)

    def isolated(self) -> list[int]:
        """Nodes with no neighbour."""
        return [v for v, nb in enumerate(self.neighbors) if not nb]

    def hash(self) -> str:
        """SHA-256 of ``n`` and the sorted edge list: equal for equal relabelled graphs."""
        h = hashlib.sha256(str(self.num_nodes).encode())
        for u, v in self.edges:
            h.update(f";{u},{v}".encode())
        return h.hexdigest()[:16]

    def to_networkx(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(self.num_nodes))
        g.add_edges_from(self.edges)
        return g

    def to_dict(self) -> dict:
        return {"n": self.num_nodes, "edges": [list(e) for e in self.edges], "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> "Graph":
        return _from_edges(int(d["n"]), [tuple(e) for e in d["edges"]], None, d.get("name", ""))

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"Graph({name}n={self.num_nodes}, m={self.num_edges})"


def _from_edges(n: int, edges: Iterable[Sequence[int]], labels: Optional[Sequence[Any]], name: str) -> Graph:
    if n <= 0:
        raise GraphError("the graph is empty: AMP needs at least one node")
    nbrs: list[set[int]] = [set() for _ in range(n)]
    for e in edges:
        u, v = int(e[0]), int(e[1])
        if not (0 <= u < n and 0 <= v < n):
            raise GraphError(f"edge ({u}, {v}) refers to a node outside 0..{n - 1}")
        if u == v:
            raise GraphError(f"self-loop at node {u}: AMP graphs are simple (a node does not message itself)")
        nbrs[u].add(v)
        nbrs[v].add(u)
    return Graph(n, tuple(tuple(sorted(s)) for s in nbrs), tuple(labels) if labels is not None else tuple(range(n)), name)


def _node_order(g: nx.Graph) -> list[Any]:
    nodes = list(g.nodes)
    try:
        return sorted(nodes)
    except TypeError:
        return nodes


def as_graph(graph: Any, num_nodes: Optional[int] = None, name: str = "") -> Graph:
    """A :class:`Graph` from a networkx graph, an ``edge_index`` (+ ``num_nodes``), or a Graph."""
    if isinstance(graph, Graph):
        return graph
    if any(c.__module__.startswith("torch_geometric.") for c in type(graph).__mro__):  # PyG Data / Batch (ampsim.pyg)
        from .pyg import graph_from_pyg

        return graph_from_pyg(graph, name)
    if isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise GraphError("directed graphs are not supported: AMP channels are undirected (use G.to_undirected())")
        if graph.is_multigraph():
            raise GraphError("multigraphs are not supported: AMP graphs have at most one edge per pair (use nx.Graph(G))")
        loops = list(nx.selfloop_edges(graph))
        if loops:
            raise GraphError(f"self-loop at node {loops[0][0]!r}: AMP graphs are simple (a node does not message itself)")
        order = _node_order(graph)
        index = {v: i for i, v in enumerate(order)}
        edges = [(index[u], index[v]) for u, v in graph.edges]
        return _from_edges(len(order), edges, order, name or str(graph.name or ""))
    # edge_index: anything with two rows
    if hasattr(graph, "tolist"):
        graph = graph.tolist()
    try:
        rows = [list(r) for r in graph]
    except TypeError:
        raise GraphError(f"cannot read a graph from {type(graph).__name__}: pass a networkx.Graph or an edge_index") from None
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        raise GraphError("edge_index must have shape (2, E)")
    if num_nodes is None:
        if not rows[0]:
            raise GraphError("the graph is empty: pass num_nodes with an empty edge_index")
        num_nodes = 1 + max(max(rows[0]), max(rows[1]))
    return _from_edges(int(num_nodes), zip(rows[0], rows[1]), None, name)


def _ints(parts: list[str], spec: str, count: int) -> list[int]:
    if len(parts) != count:
        raise GraphError(f"graph spec {spec!r} needs {count} number(s) after the name")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise GraphError(f"graph spec {spec!r}: expected integers, got {':'.join(parts)!r}") from None
    if any(v < 0 for v in values):
        raise GraphError(f"graph spec {spec!r}: numbers must be >= 0")
    return values


def _positive(n: int, spec: str, what: str = "N") -> int:
    if n < 1:
        raise GraphError(f"graph spec {spec!r}: {what} must be >= 1")
    return n


def _spec_path(p: list[str], s: str) -> nx.Graph:
    return nx.path_graph(_positive(_ints(p, s, 1)[0], s))


def _spec_cycle(p: list[str], s: str) -> nx.Graph:
    n = _ints(p, s, 1)[0]
    if n < 3:
        raise GraphError(f"graph spec {s!r}: a cycle needs at least 3 nodes")
    return nx.cycle_graph(n)


def _spec_star(p: list[str], s: str) -> nx.Graph:
    return nx.star_graph(_positive(_ints(p, s, 1)[0], s, "K"))


def _spec_complete(p: list[str], s: str) -> nx.Graph:
    return nx.complete_graph(_positive(_ints(p, s, 1)[0], s))


def _spec_grid(p: list[str], s: str) -> nx.Graph:
    if len(p) != 1 or "x" not in p[0]:
        raise GraphError(f"graph spec {s!r}: use grid:RxC, e.g. grid:3x4")
    r, c = _ints(p[0].split("x"), s, 2)
    g = nx.grid_2d_graph(_positive(r, s, "R"), _positive(c, s, "C"))
    return nx.convert_node_labels_to_integers(g, ordering="sorted")


def _spec_petersen(p: list[str], s: str) -> nx.Graph:
    _ints(p, s, 0)
    return nx.petersen_graph()


def _spec_random_regular(p: list[str], s: str) -> nx.Graph:
    d, n, seed = _ints(p, s, 3)
    if d >= n or (d * n) % 2:
        raise GraphError(f"graph spec {s!r}: a {d}-regular graph on {n} nodes needs d < n and d*n even")
    return nx.random_regular_graph(d, n, seed=seed)


def _spec_gnp(p: list[str], s: str) -> nx.Graph:
    if len(p) != 3:
        raise GraphError(f"graph spec {s!r}: use gnp:N:P:SEED, e.g. gnp:30:0.1:7")
    n, seed = _ints([p[0], p[2]], s, 2)
    try:
        prob = float(p[1])
    except ValueError:
        raise GraphError(f"graph spec {s!r}: P must be a number in [0, 1]") from None
    if not 0.0 <= prob <= 1.0:
        raise GraphError(f"graph spec {s!r}: P must be in [0, 1]")
    g = nx.gnp_random_graph(_positive(n, s), prob, seed=seed)
    largest = max(nx.connected_components(g), key=lambda c: (len(c), -min(c)))
    return nx.convert_node_labels_to_integers(g.subgraph(largest).copy(), ordering="sorted")


def _spec_tree(p: list[str], s: str) -> nx.Graph:
    n, seed = _ints(p, s, 2)
    import random

    rng = random.Random(seed)
    g = nx.Graph()
    g.add_node(0)
    for v in range(1, _positive(n, s)):
        g.add_edge(v, rng.randrange(v))
    return g


GRAPH_SPECS = {
    "path": _spec_path,
    "cycle": _spec_cycle,
    "star": _spec_star,
    "complete": _spec_complete,
    "grid": _spec_grid,
    "petersen": _spec_petersen,
    "random-regular": _spec_random_regular,
    "gnp": _spec_gnp,
    "tree": _spec_tree,
}


def _read_edge_list(path: str) -> Graph:
    edges: list[tuple[int, int]] = []
    nodes: set[int] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            try:
                if len(parts) == 1:
                    nodes.add(int(parts[0]))
                    continue
                u, v = int(parts[0]), int(parts[1])
            except ValueError:
                raise GraphError(f"{path}:{lineno}: expected 'u v' with integer node ids, got {line!r}") from None
            edges.append((u, v))
    g = nx.Graph()
    g.add_nodes_from(nodes)
    for u, v in edges:
        if u == v:
            raise GraphError(f"{path}: self-loop at node {u}")
        g.add_edge(u, v)
    if g.number_of_nodes() == 0:
        raise GraphError(f"{path}: the edge list is empty")
    return as_graph(g, name=os.path.basename(path))


def parse_graph_spec(spec: str) -> Graph:
    """A :class:`Graph` from a CLI spec (see the module docstring) or an edge-list file path."""
    name, _, rest = spec.partition(":")
    builder = GRAPH_SPECS.get(name)
    if builder is None:
        if os.path.exists(spec):
            return _read_edge_list(spec)
        raise GraphError(
            f"unknown graph spec {spec!r}: use one of {', '.join(GRAPH_SPECS)} (e.g. cycle:8) or an edge-list file"
        )
    parts = rest.split(":") if rest else []
    return as_graph(builder(parts, spec), name=spec)
