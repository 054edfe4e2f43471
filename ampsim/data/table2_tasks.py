"""Table 2's eight expressiveness sets (Section 5.1, "Beyond 1-WL classification"), each a seeded
``f(rng) -> TaskSplit``, collected in :data:`TABLE2` and found by name with :func:`get_task`.
The constructions and where they follow the authors' code: :mod:`ampsim.data.tasks`."""
from __future__ import annotations

import random
from collections import Counter
from typing import Callable, Sequence

import networkx as nx
import torch

from .graphdata import GraphData

from .task_graphs import (RngLike, TaskSplit, _as_rng, _edge_index, _graph_label, _nx_seed, _one_hot, _ones,
                          edges_among_neighbours)

__all__ = ["TABLE2", "TABLE2_ALIASES", "SKIP_LENGTHS", "get_task", "limits1", "limits2", "triangles", "lcc", "max_graphs", "mean_graphs", "four_cycles", "skip_cycles"]

#: Skip lengths of the Skip-Cycles set (class index = position in this tuple).
SKIP_LENGTHS: tuple[int, ...] = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)


def _limits_graph(edges: list[tuple[int, int]]) -> GraphData:
    n = 16
    return GraphData(
        edge_index=_edge_index(edges, n),
        x=_one_hot([i % 4 for i in range(n)], 4),
        y=torch.tensor([0] * 8 + [1] * 8, dtype=torch.long),
        num_nodes=n,
        level="node",
        starts=None,
        meta={"component": torch.tensor([0] * 8 + [1] * 8, dtype=torch.long)},
    )


def _cycle(nodes: Sequence[int]) -> list[tuple[int, int]]:
    return [(nodes[i], nodes[(i + 1) % len(nodes)]) for i in range(len(nodes))]


def _limits1_graph() -> GraphData:
    # A: two 4-cycles (0-3, 4-7); B: one 8-cycle (8-15).
    edges = _cycle([0, 1, 2, 3]) + _cycle([4, 5, 6, 7]) + _cycle(list(range(8, 16)))
    return _limits_graph(edges)


def _limits2_graph() -> GraphData:
    # A: two diamonds (4-cycles with chords 1-3 and 5-7).
    # B: 4-cycles 8-11 and 12-15 joined by 9-15 and 11-13 (one connected graph).
    edges = _cycle([0, 1, 2, 3]) + _cycle([4, 5, 6, 7]) + [(1, 3), (5, 7)]
    edges += _cycle([8, 9, 10, 11]) + _cycle([12, 13, 14, 15]) + [(9, 15), (11, 13)]
    return _limits_graph(edges)


def limits1(rng: RngLike = 0) -> TaskSplit:
    """Limits1 (Garg et al.; paper Section 5.1, Table 2): one 16-node graph, two components.

    Component A (nodes 0-7, label 0) is two disjoint 4-cycles, component B (nodes
    8-15, label 1) is one 8-cycle. Features are the one-hot of ``i mod 4`` (4 dims),
    which makes both components 1-WL-equivalent. Node-level, 2 classes, hidden 16,
    sum aggregation. Deterministic: ``rng`` is accepted for a uniform signature and
    not used; train = test.
    """
    _as_rng(rng)
    return TaskSplit([_limits1_graph()], [_limits1_graph()], 2, 16, "sum", "node", "Limits1")


def limits2(rng: RngLike = 0) -> TaskSplit:
    """Limits2 (Garg et al.; paper Section 5.1, Table 2): one 16-node graph, two components.

    Component A (nodes 0-7, label 0) is two disjoint "diamonds" (4-cycles 0-1-2-3 and
    4-5-6-7 with chords 1-3 and 5-7); component B (nodes 8-15, label 1) is the
    4-cycles 8-9-10-11 and 12-13-14-15 joined by edges 9-15 and 11-13. Features are
    the one-hot of ``i mod 4``; same degrees and colours, so 1-WL cannot separate
    A from B. Node-level, 2 classes, hidden 16, sum. Deterministic; train = test.
    """
    _as_rng(rng)
    return TaskSplit([_limits2_graph()], [_limits2_graph()], 2, 16, "sum", "node", "Limits2")


def _triangles_graph(rng: random.Random, n: int = 60, min_per_class: int = 20) -> GraphData:
    while True:
        g = nx.random_regular_graph(3, n, seed=_nx_seed(rng))
        # Label straight from the networkx adjacency: this loop runs thousands of times.
        adj = [set(g[v]) for v in range(n)]
        labels = [1 if any(adj[a] & adj[v] for a in adj[v]) else 0 for v in range(n)]
        ones = sum(labels)
        if ones >= min_per_class and n - ones >= min_per_class:
            break
    ei = _edge_index(g.edges(), n)
    return GraphData(
        edge_index=ei,
        x=_ones(n),
        y=torch.tensor(labels, dtype=torch.long),
        num_nodes=n,
        level="node",
    )


def triangles(rng: RngLike) -> TaskSplit:
    """Triangles (Sato et al.; paper Section 5.1, Table 2): random 3-regular graph, 60 nodes.

    A node's label is 1 iff it lies on a triangle. The graph is redrawn until each
    class has at least 20 nodes (the code's rule; this is a rare event for a random
    3-regular graph, so expect a few thousand draws, about a second). Features
    ``ones(60, 1)``. Node-level, 2 classes, hidden 16, sum. One training graph and one
    fresh test graph, both drawn from ``rng``.
    """
    r = _as_rng(rng)
    train = [_triangles_graph(r)]
    test = [_triangles_graph(r)]
    return TaskSplit(train, test, 2, 16, "sum", "node", "Triangles")


def _lcc_set(rng: random.Random, graphs: int = 6, n: int = 10, min_per_class: int = 10) -> list[GraphData]:
    while True:
        out: list[GraphData] = []
        counts = Counter()
        while len(out) < graphs:
            g = nx.random_regular_graph(3, n, seed=_nx_seed(rng))
            if not nx.is_connected(g):
                continue
            ei = _edge_index(g.edges(), n)
            labels = edges_among_neighbours(ei, n)
            counts.update(labels)
            out.append(
                GraphData(
                    edge_index=ei,
                    x=_ones(n),
                    y=torch.tensor(labels, dtype=torch.long),
                    num_nodes=n,
                    level="node",
                )
            )
        if all(counts[c] >= min_per_class for c in range(3)):
            return out


def lcc(rng: RngLike) -> TaskSplit:
    """LCC (Sato et al.; paper Section 5.1, Table 2): 6 connected random 3-regular 10-node graphs.

    A node's label is the number of edges among its neighbours (0, 1 or 2; 3 would
    need a K4 component, impossible in a connected 10-node graph). The whole set of
    6 graphs is redrawn until each class has at least 10 nodes. Features
    ``ones(10, 1)``. Node-level, 3 classes, hidden 16, sum. 6 training graphs and 6
    fresh test graphs.
    """
    r = _as_rng(rng)
    train = _lcc_set(r)
    test = _lcc_set(r)
    return TaskSplit(train, test, 3, 16, "sum", "node", "LCC")


def _star_graph(colours: list[int], label: int, width: int = 32) -> GraphData:
    n = len(colours)
    return GraphData(
        edge_index=_edge_index(((0, i) for i in range(1, n)), n),
        x=_one_hot(colours, width),
        y=_graph_label(label),
        num_nodes=n,
        level="graph",
        meta={"leaves": n - 1},
    )


def _max_set() -> list[GraphData]:
    return [_star_graph([0] + [1] * k, k - 1) for k in range(1, 21)]


def _mean_set() -> list[GraphData]:
    return [_star_graph([0] + [1] * k + [2] * k, k - 1) for k in range(1, 11)]


def max_graphs(rng: RngLike = 0) -> TaskSplit:
    """MAX (after Xu et al.; paper Section 5.1, Table 2): stars that max-aggregation cannot count.

    For k = 1..20: a star with centre 0 (colour 0) and k leaves (colour 1); label
    ``k - 1``. Features: one-hot colour padded to 32 columns (as in the code).
    Graph-level, 20 classes, hidden 32, **max** aggregation and pooling.
    Deterministic; train = test (20 graphs).
    """
    _as_rng(rng)
    return TaskSplit(_max_set(), _max_set(), 20, 32, "max", "graph", "MAX")


def mean_graphs(rng: RngLike = 0) -> TaskSplit:
    """MEAN (after Xu et al.; paper Section 5.1, Table 2): stars that mean-aggregation cannot tell apart.

    For k = 1..10: a star with centre 0 (colour 0), k leaves of colour 1 and k of
    colour 2 (2k + 1 nodes); label ``k - 1``. The neighbour-colour distribution is
    the same for every k. Features: one-hot colour padded to 32 columns.
    Graph-level, 10 classes, hidden 32, **mean** aggregation and pooling.
    Deterministic; train = test (10 graphs).
    """
    _as_rng(rng)
    return TaskSplit(_mean_set(), _mean_set(), 10, 32, "mean", "graph", "MEAN")


def _four_cycles_graph(rng: random.Random, p: int = 4) -> GraphData:
    n = 4 * p
    a, b, c, d = 0, p, 2 * p, 3 * p  # group offsets A, B, C, D
    top = list(range(p))
    rng.shuffle(top)  # A_i -- B_top[i]
    bottom = list(range(p))
    rng.shuffle(bottom)  # C_i -- D_bottom[i]
    edges = [(a + i, c + i) for i in range(p)] + [(b + i, d + i) for i in range(p)]
    edges += [(a + i, b + top[i]) for i in range(p)]
    edges += [(c + i, d + bottom[i]) for i in range(p)]
    label = int(any(top[i] == bottom[i] for i in range(p)))
    return GraphData(
        edge_index=_edge_index(edges, n),
        x=_ones(n),
        y=_graph_label(label),
        num_nodes=n,
        level="graph",
        meta={"top": tuple(top), "bottom": tuple(bottom)},
    )


def _four_cycles_set(rng: random.Random, per_class: int = 25) -> list[GraphData]:
    pos: list[GraphData] = []
    neg: list[GraphData] = []
    while len(pos) < per_class or len(neg) < per_class:
        g = _four_cycles_graph(rng)
        bucket = pos if int(g.y[0]) == 1 else neg
        if len(bucket) < per_class:
            bucket.append(g)
    return pos + neg


def four_cycles(rng: RngLike) -> TaskSplit:
    """4-cycles (Loukas; paper Section 5.1, Table 2): does the 16-node graph contain a 4-cycle?

    Nodes form groups A = 0..3, B = 4..7, C = 8..11, D = 12..15 with fixed matchings
    A_i-C_i and B_i-D_i, a uniformly random perfect matching A_i-B_top[i] and another
    C_i-D_bottom[i]. The graph is 2-regular; it has a 4-cycle A_i-B_t-D_t-C_i iff
    ``top[i] == bottom[i]`` for some i, which is the label. ``meta`` keeps ``top`` and
    ``bottom``. Features ``ones(16, 1)``. Graph-level, 2 classes, hidden 16, sum.
    25 positive then 25 negative graphs per split; fresh test set.
    """
    r = _as_rng(rng)
    train = _four_cycles_set(r)
    test = _four_cycles_set(r)
    return TaskSplit(train, test, 2, 16, "sum", "graph", "4-cycles")


def _skip_cycles_set(n: int = 41) -> list[GraphData]:
    out = []
    for cls, s in enumerate(SKIP_LENGTHS):
        edges = [(i, (i + 1) % n) for i in range(n)] + [(i, (i + s) % n) for i in range(n)]
        out.append(
            GraphData(
                edge_index=_edge_index(edges, n),
                x=_ones(n),
                y=_graph_label(cls),
                num_nodes=n,
                level="graph",
                meta={"skip": s},
            )
        )
    return out


def skip_cycles(rng: RngLike = 0) -> TaskSplit:
    """Skip-Cycles (after Chen et al.'s CSL; paper Section 5.1, Table 2): circulant graphs.

    A 41-node cycle plus skip edges i-(i +- s mod 41) for s in
    ``SKIP_LENGTHS = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)``; every graph is 4-regular,
    so 1-WL sees them all as equal. Label = index of s. One graph per class (as in
    the code). Features ``ones(41, 1)``. Graph-level, 10 classes, hidden 32, sum.
    Deterministic; train = test.
    """
    _as_rng(rng)
    return TaskSplit(_skip_cycles_set(), _skip_cycles_set(), 10, 32, "sum", "graph", "Skip-Cycles")


#: Table 2 data sets under the paper's names.
TABLE2: dict[str, Callable[[RngLike], TaskSplit]] = {
    "Limits1": limits1,
    "Limits2": limits2,
    "Triangles": triangles,
    "LCC": lcc,
    "MAX": max_graphs,
    "MEAN": mean_graphs,
    "4-cycles": four_cycles,
    "Skip-Cycles": skip_cycles,
}

#: Lowercase CLI names accepted by :func:`get_task`, mapped to :data:`TABLE2` keys.
TABLE2_ALIASES: dict[str, str] = {
    "limits1": "Limits1",
    "limits2": "Limits2",
    "triangles": "Triangles",
    "lcc": "LCC",
    "max": "MAX",
    "mean": "MEAN",
    "4cycles": "4-cycles",
    "four-cycles": "4-cycles",
    "skipcycles": "Skip-Cycles",
    "skip-cycles": "Skip-Cycles",
}


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in "-_ ")


def get_task(name: str, seed: RngLike = 0) -> TaskSplit:
    """Build a Table-2 set by name: a paper name (``"4-cycles"``) or a CLI name (``"4cycles"``).

    Matching ignores case, ``-``, ``_`` and spaces. Unknown names raise ``ValueError``
    listing the valid ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"task name must be a string, got {name!r}")
    lookup = {_normalise(k): k for k in TABLE2}
    lookup.update({_normalise(k): v for k, v in TABLE2_ALIASES.items()})
    key = lookup.get(_normalise(name))
    if key is None:
        valid = ", ".join(list(TABLE2) + list(TABLE2_ALIASES))
        raise ValueError(f"unknown task {name!r}; valid names: {valid}")
    return TABLE2[key](seed)
