"""The shortest-path parity task of Table 3 and Figure 6 (Section 5.2, "Long-range information
propagation"): one origin (:func:`shortest_path_parity`), several at once (:func:`multi_source_parity`),
and :func:`longrange_split`, the train set plus one test set per graph size. Where it follows the
authors' code rather than the paper's text: :mod:`ampsim.data.tasks`."""
from __future__ import annotations

import operator
import random
from collections import deque
from typing import Optional, Sequence

import torch

from .. import validate as V
from .graphdata import GraphData

from .task_graphs import RngLike, _as_rng, _edge_index

__all__ = ["LONGRANGE_TEST_SIZES", "shortest_path_parity", "multi_source_parity", "longrange_split", "marked_origin_features"]

#: Default Table-3 test graph sizes (Table 3's header; the code stops at 1000).
LONGRANGE_TEST_SIZES: tuple[int, ...] = (10, 25, 50, 100, 250, 500, 1000, 2500)

# Feature width of the Table-3 graphs (the code's ``num_features = 5``).
_PARITY_FEATURES = 5



def _random_tree_plus_edges(n: int, rng: random.Random) -> list[set[int]]:
    """Aldous-Broder on K_n (uniform random labelled tree) plus ``n // 5`` extra edges.

    The walk picks a uniformly random node of K_n at each step (a lazy step when it
    picks the current node, which does not change the law of the tree); the first
    entrance into a new node adds the edge from the previous node. Extra edges join
    uniformly random distinct pairs that are not yet adjacent.
    """
    if n < 1:
        raise ValueError("num_nodes must be >= 1")
    adj: list[set[int]] = [set() for _ in range(n)]
    current = rng.randrange(n)
    in_tree = {current}
    while len(in_tree) < n:
        nxt = rng.randrange(n)
        if nxt not in in_tree:
            in_tree.add(nxt)
            adj[current].add(nxt)
            adj[nxt].add(current)
        current = nxt
    for _ in range(n // 5):
        while True:
            i, j = rng.sample(range(n), 2)
            if j not in adj[i]:
                break
        adj[i].add(j)
        adj[j].add(i)
    return adj


def _bfs(adj: list[set[int]], origin: int) -> list[int]:
    dist = [-1] * len(adj)
    dist[origin] = 0
    queue = deque([origin])
    while queue:
        v = queue.popleft()
        for u in sorted(adj[v]):
            if dist[u] < 0:
                dist[u] = dist[v] + 1
                queue.append(u)
    return dist


def _adj_edge_index(adj: list[set[int]]) -> torch.Tensor:
    return _edge_index(((u, v) for u, nbrs in enumerate(adj) for v in nbrs if u < v), len(adj))


def _parity_graph(n: int, rng: random.Random, sources: Optional[int]) -> GraphData:
    adj = _random_tree_plus_edges(n, rng)
    if sources is None:  # single-source task
        origins = [rng.randrange(n)]
    else:
        if not 1 <= sources <= n:
            raise ValueError(f"sources must be in 1..{n}, got {sources}")
        origins = rng.sample(range(n), sources)
    dists = [_bfs(adj, o) for o in origins]
    width = _PARITY_FEATURES if sources is None else max(_PARITY_FEATURES, sources)
    if sources is None:
        distances = torch.tensor(dists[0], dtype=torch.long)
    else:
        distances = torch.tensor(dists, dtype=torch.long).t().contiguous()
    y = (distances % 2 == 0).long()
    return GraphData(
        edge_index=_adj_edge_index(adj),
        x=torch.zeros((n, width), dtype=torch.float32),
        y=y,
        num_nodes=n,
        level="node",
        starts=torch.tensor(origins, dtype=torch.long),
        meta={"distances": distances, "diameter": int(distances.max())},
    )


def shortest_path_parity(num_graphs: int, num_nodes: int, rng: RngLike) -> list[GraphData]:
    """Shortest-path parity (paper Section 5.2, Table 3): ``num_graphs`` graphs of ``num_nodes`` nodes.

    Graph: a uniform random spanning tree of K_n (Aldous-Broder) plus ``n // 5`` extra
    edges between distinct non-adjacent pairs, so ``n - 1 + n // 5`` edges, connected.
    A uniformly random origin; label ``y[v] = 1`` if the BFS distance from the origin
    to v is even (the origin itself is 1), else 0. ``x = zeros(n, 5)``: AMP nodes all
    start identical, the origin is marked only by receiving the initial message,
    ``starts = tensor([origin])``. ``meta["distances"]`` is the long tensor of BFS
    distances (for the per-distance plots of Figure 5a) and ``meta["diameter"]`` is
    their maximum, i.e. the origin's eccentricity (named as in the code; it is not the
    graph diameter). For synchronous baselines see :func:`marked_origin_features`.
    """
    V.nonneg_int("num_graphs", num_graphs)
    V.positive_int("num_nodes", num_nodes)
    r = _as_rng(rng)
    return [_parity_graph(num_nodes, r, None) for _ in range(num_graphs)]


def multi_source_parity(num_graphs: int, num_nodes: int, rng: RngLike, sources: int = 3) -> list[GraphData]:
    """Multi-source parity (paper Section 5.2, Figure 6b): several parity tasks on one graph.

    Same graphs as :func:`shortest_path_parity`; ``sources`` distinct uniformly random
    origins. ``y`` has shape ``(n, sources)``: column i is the parity label w.r.t.
    origin ``starts[i]`` (so the initial message for head i goes to ``starts[i]``).
    ``meta["distances"]`` has shape ``(n, sources)``; ``meta["diameter"]`` is the
    largest origin eccentricity. ``x = zeros(n, max(5, sources))``. The paper solves
    three tasks at once, the authors' code two (``MultisourceOddeven``); the default is
    the paper's 3.
    """
    V.nonneg_int("num_graphs", num_graphs)
    V.positive_int("num_nodes", num_nodes)
    V.integer("sources", sources, 1, num_nodes)
    r = _as_rng(rng)
    return [_parity_graph(num_nodes, r, int(sources)) for _ in range(num_graphs)]


def marked_origin_features(graph: GraphData) -> torch.Tensor:
    """Node features for synchronous GNN baselines, with the origin(s) marked (Section 5.2).

    Single-source graphs (``y`` 1-D): the origin's row is all ones, as in the code.
    Multi-source graphs: column i is 1 at origin ``starts[i]``. AMP itself uses the
    unmarked ``graph.x``.
    """
    if graph.starts is None:
        raise ValueError("graph has no origins (starts is None)")
    x = torch.zeros_like(graph.x)
    if graph.y.dim() == 1:
        x[graph.starts] = 1.0
    else:
        for i, origin in enumerate(graph.starts.tolist()):
            x[origin, i] = 1.0
    return x


def _split_rng(seed: int, tag: str) -> random.Random:
    """A reproducible child RNG per split, so that e.g. changing ``train_graphs``
    leaves the test sets unchanged."""
    return random.Random(f"ampsim.tasks.longrange:{operator.index(seed)}:{tag}")


def longrange_split(
    seed: RngLike,
    train_graphs: int = 100,
    train_nodes: int = 10,
    test_sizes: Sequence[int] = LONGRANGE_TEST_SIZES,
    test_graphs: int = 10,
    sources: Optional[int] = None,
) -> dict:
    """Train and per-size test sets of the shortest-path parity task (Section 5.2, Table 3).

    ``train_graphs`` defaults to the code's 100 (the paper says 25; see the module
    docstring), of ``train_nodes = 10`` nodes; ``test_graphs = 10`` fresh graphs for
    each size in ``test_sizes`` (Table 3's header, 10 .. 2500). ``sources=None`` builds
    the single-origin task (Table 3, Figure 6a); an int builds the multi-source task
    with that many origins (Figure 6b; the paper uses 3).

    Each split draws from its own RNG derived from ``seed`` and the split name, so the
    test graphs of one size do not depend on the other arguments.

    Returns ``{"train": [...], "test": {size: [...]}, "num_classes": 2, "hidden": 30,
    "heads": 1 or sources, "sources": sources, "seed": seed}`` (hidden 30 is the
    paper's and ``main_longrange.py``'s default).
    """
    def make(count: int, n: int, tag: str) -> list[GraphData]:
        r = _split_rng(seed, tag)
        if sources is None:
            return shortest_path_parity(count, n, r)
        return multi_source_parity(count, n, r, sources=sources)

    if isinstance(seed, random.Random):
        # Draw one base value so that all splits derive from the same state.
        seed = seed.getrandbits(64)
    suffix = "" if sources is None else f":s{int(sources)}"
    train = make(train_graphs, train_nodes, f"train:{train_nodes}{suffix}")
    test = {int(size): make(test_graphs, int(size), f"test:{int(size)}{suffix}") for size in test_sizes}
    return {
        "train": train,
        "test": test,
        "num_classes": 2,
        "hidden": 30,
        "heads": 1 if sources is None else int(sources),
        "sources": sources,
        "seed": seed,
    }
