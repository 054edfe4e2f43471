"""What every synthetic task shares: :class:`TaskSplit`, seeding (an ``rng`` or an int seed, never
a global RNG), tensors from edge lists, and the graph properties the tasks label by (triangles,
4-cycles, 1-WL colours). The task families are :mod:`ampsim.data.table2_tasks` and
:mod:`ampsim.data.parity`; :mod:`ampsim.data.tasks` names them all."""
from __future__ import annotations

import hashlib
import operator
import random
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

import networkx as nx
import torch

from .graphdata import GraphData

__all__ = ["RngLike", "TaskSplit", "to_networkx", "nodes_on_triangles", "edges_among_neighbours", "contains_4cycle", "wl_colours", "wl_colour_histogram"]

RngLike = Union[random.Random, int]

@dataclass(frozen=True)
class TaskSplit:
    """One Table-2 data set: train and test graphs plus the settings the paper pairs with it.

    ``hidden`` is the hidden size of Section 5.1 (16 or 32); ``aggr`` the aggregation /
    pooling the paper prescribes (``"sum"``, or ``"max"`` for MAX and ``"mean"`` for MEAN);
    ``level`` is ``"node"`` or ``"graph"``.
    """

    train: list[GraphData]
    test: list[GraphData]
    num_classes: int
    hidden: int
    aggr: str
    level: str
    name: str = ""

    @property
    def num_features(self) -> int:
        """Width of the node features ``x`` (identical across the split)."""
        return int(self.train[0].x.shape[1])


def _as_rng(rng: RngLike) -> random.Random:
    """Return ``rng`` itself if it is a :class:`random.Random`, else ``Random(int(rng))``."""
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, bool):
        raise TypeError("rng must be a random.Random or an int seed, not a bool")
    try:
        seed = operator.index(rng)
    except TypeError:
        raise TypeError(f"rng must be a random.Random or an int seed, got {type(rng).__name__}") from None
    return random.Random(seed)


def _nx_seed(rng: random.Random) -> int:
    """An integer seed for networkx, drawn from ``rng`` (networkx then uses its own Random)."""
    return rng.randrange(2**32)


def _edge_index(edges: Iterable[tuple[int, int]], num_nodes: int) -> torch.Tensor:
    """Undirected edge list -> (2, 2|E|) long tensor, each edge once per direction.

    Self-loops are rejected, duplicates merged; directed edges are sorted by
    (source, target) so that neighbour order is ascending and reproducible.
    """
    directed: set[tuple[int, int]] = set()
    for u, v in edges:
        u, v = int(u), int(v)
        if u == v:
            raise ValueError(f"self-loop at node {u}")
        if not (0 <= u < num_nodes and 0 <= v < num_nodes):
            raise ValueError(f"edge ({u}, {v}) out of range for {num_nodes} nodes")
        directed.add((u, v))
        directed.add((v, u))
    if not directed:
        return torch.zeros((2, 0), dtype=torch.long)
    pairs = sorted(directed)
    return torch.tensor(pairs, dtype=torch.long).t().contiguous()


def _one_hot(colours: Sequence[int], width: int) -> torch.Tensor:
    x = torch.zeros((len(colours), width), dtype=torch.float32)
    x[torch.arange(len(colours)), torch.tensor(list(colours), dtype=torch.long)] = 1.0
    return x


def _ones(n: int) -> torch.Tensor:
    return torch.ones((n, 1), dtype=torch.float32)


def _graph_label(label: int) -> torch.Tensor:
    return torch.tensor([int(label)], dtype=torch.long)


def _adjacency(edge_index: torch.Tensor, num_nodes: int) -> list[set[int]]:
    adj: list[set[int]] = [set() for _ in range(num_nodes)]
    if edge_index.numel():
        for u, v in edge_index.t().tolist():
            if u != v:
                adj[u].add(v)
                adj[v].add(u)
    return adj


def _adjacency_of(graph: Union[GraphData, torch.Tensor], num_nodes: Optional[int]) -> list[set[int]]:
    if isinstance(graph, GraphData):
        return _adjacency(graph.edge_index, graph.num_nodes)
    if num_nodes is None:
        raise ValueError("num_nodes is required when passing a bare edge_index")
    return _adjacency(graph, num_nodes)


def to_networkx(graph: GraphData) -> nx.Graph:
    """The undirected simple networkx graph of ``graph`` (nodes ``0..n-1``, no attributes)."""
    g = nx.Graph()
    g.add_nodes_from(range(graph.num_nodes))
    if graph.edge_index.numel():
        g.add_edges_from(map(tuple, graph.edge_index.t().tolist()))
    return g


def nodes_on_triangles(graph: Union[GraphData, torch.Tensor], num_nodes: Optional[int] = None) -> list[int]:
    """Per node: 1 if it lies on a triangle, else 0 (the Triangles label, Sato et al.)."""
    adj = _adjacency_of(graph, num_nodes)
    out = []
    for v, nbrs in enumerate(adj):
        on = any(adj[a] & (nbrs - {a}) for a in nbrs)
        out.append(1 if on else 0)
    return out


def edges_among_neighbours(graph: Union[GraphData, torch.Tensor], num_nodes: Optional[int] = None) -> list[int]:
    """Per node: the number of edges between its neighbours (the LCC label, Sato et al.)."""
    adj = _adjacency_of(graph, num_nodes)
    out = []
    for nbrs in adj:
        out.append(sum(len(adj[a] & nbrs) for a in nbrs) // 2)
    return out


def contains_4cycle(edge_index: torch.Tensor, num_nodes: int) -> bool:
    """Whether the simple undirected graph contains a cycle of length 4.

    A 4-cycle u-a-v-b-u exists iff two distinct nodes u, v share at least two
    neighbours; this checks every pair through the neighbour sets.
    """
    adj = _adjacency(edge_index, num_nodes)
    for u in range(num_nodes):
        for v in range(u + 1, num_nodes):
            if len((adj[u] & adj[v]) - {u, v}) >= 2:
                return True
    return False


def wl_colours(graph: GraphData, iterations: int = 3) -> list[str]:
    """1-WL colour refinement, ``iterations`` rounds, starting from the rows of ``graph.x``.

    Colours are canonical strings (a hash of the colour history), so colours of
    different graphs, or of different components of one graph, are comparable:
    two nodes get the same colour iff 1-WL cannot tell them apart after that
    many rounds.
    """
    if iterations < 0:
        raise ValueError("iterations must be >= 0")
    adj = _adjacency(graph.edge_index, graph.num_nodes)
    colours = [_hash(repr(tuple(float(v) for v in row))) for row in graph.x.tolist()]
    for _ in range(iterations):
        colours = [
            _hash(colours[v] + "|" + ",".join(sorted(colours[u] for u in adj[v])))
            for v in range(graph.num_nodes)
        ]
    return colours


def wl_colour_histogram(
    graph: GraphData, iterations: int = 3, nodes: Optional[Iterable[int]] = None
) -> Counter:
    """Histogram (``Counter`` colour -> count) of the 1-WL colours after ``iterations`` rounds.

    ``nodes`` restricts the count to a subset (for example one connected component
    of Limits1/Limits2, whose two components live in one :class:`GraphData`); the
    refinement itself always runs on the whole graph.
    """
    colours = wl_colours(graph, iterations)
    if nodes is None:
        return Counter(colours)
    return Counter(colours[int(v)] for v in nodes)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
