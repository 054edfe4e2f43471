"""Graph families that 1-WL (and 3-WL) cannot tell apart: Theorem 4.4's hard pairs, as CLI graph specs.

* ``csl:N:S`` -- the circular skip-link graph CSL(N, S): the cycle C_N plus the skip links
  i - (i + S mod N). For 2 <= S <= N - 2 and 2S != N it is 4-regular, so every CSL(N, S) of one N
  gets the same 1-WL colouring (Murphy et al. 2019; the Skip-Cycles set of Table 2 is CSL(41, S)
  for S in ``ampsim.data.tasks.SKIP_LENGTHS``).
* ``rook:N`` -- the N x N rook's graph K_N x K_N (cells of an N x N board, joined when they share
  a row or a column). ``rook:4`` is strongly regular with parameters (16, 6, 2, 2).
* ``shrikhande`` -- the Shrikhande graph: Z_4 x Z_4, (a, b) ~ (a', b') when the difference is
  +-(1, 0), +-(0, 1) or +-(1, 1). Also strongly regular (16, 6, 2, 2), so 3-WL (2-FWL) cannot
  separate it from ``rook:4``; it has no 4-clique, ``rook:4`` has eight.
* ``cotrees:K`` -- tree K (1 or 2) of the smallest pair of non-isomorphic trees with the same degree
  sequence and the same adjacency spectrum (9 nodes; found by enumerating ``networkx.nonisomorphic_trees``):
  every invariant of degrees, spectrum and clique counts agrees on them.
* ``figure4:P:K`` -- graph K (1 = top/left, 2 = bottom/right) of Figure 4's pair P (4a, 4b, 4c),
  as built by :func:`ampsim.data.figure4.figure4_pairs` (colours dropped).

:data:`FAMILY_SPECS` maps each name to a builder ``(parts, spec) -> networkx.Graph`` with the
signature of ``ampsim.graphs.GRAPH_SPECS``, which registers them.
"""
from __future__ import annotations

import itertools

import networkx as nx

from .engine.errors import GraphError

__all__ = ["csl_graph", "rook_graph", "shrikhande_graph", "cospectral_tree", "figure4_graph", "FAMILY_SPECS"]

COSPECTRAL_TREES = (
    ((0, 6), (1, 0), (1, 2), (1, 5), (2, 3), (2, 4), (6, 7), (7, 8)),
    ((0, 5), (0, 7), (1, 0), (1, 2), (2, 3), (2, 4), (5, 6), (7, 8)),
)


def csl_graph(n: int, skip: int) -> nx.Graph:
    """CSL(n, skip): nodes 0..n-1, edges i-(i+1) and i-(i+skip) (mod n)."""
    if n < 5:
        raise GraphError(f"csl:{n}:{skip}: a circular skip-link graph needs N >= 5")
    if not 2 <= skip <= n - 2:
        raise GraphError(f"csl:{n}:{skip}: the skip length S must satisfy 2 <= S <= N-2 (S = 1 or N-1 repeats the cycle)")
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for i in range(n):
        g.add_edge(i, (i + 1) % n)
        g.add_edge(i, (i + skip) % n)
    return g


def rook_graph(n: int) -> nx.Graph:
    """The n x n rook's graph: cell (r, c) is node r*n + c; joined when in the same row or column."""
    if n < 2:
        raise GraphError(f"rook:{n}: the board needs N >= 2")
    g = nx.Graph()
    g.add_nodes_from(range(n * n))
    for (r1, c1), (r2, c2) in itertools.combinations(itertools.product(range(n), repeat=2), 2):
        if r1 == r2 or c1 == c2:
            g.add_edge(r1 * n + c1, r2 * n + c2)
    return g


def shrikhande_graph() -> nx.Graph:
    """The Shrikhande graph: node 4a + b for (a, b) in Z_4^2, joined when the difference is in
    {+-(1, 0), +-(0, 1), +-(1, 1)}."""
    steps = [(1, 0), (3, 0), (0, 1), (0, 3), (1, 1), (3, 3)]
    g = nx.Graph()
    g.add_nodes_from(range(16))
    for a, b in itertools.product(range(4), repeat=2):
        for da, db in steps:
            g.add_edge(4 * a + b, 4 * ((a + da) % 4) + (b + db) % 4)
    return g


def cospectral_tree(side: int) -> nx.Graph:
    """Tree ``side`` (1 or 2) of :data:`COSPECTRAL_TREES`: 9 nodes, degrees (1,1,1,1,2,2,2,3,3) and one
    adjacency spectrum for both, not isomorphic."""
    if side not in (1, 2):
        raise GraphError(f"cotrees:{side}: use cotrees:1 or cotrees:2")
    g = nx.Graph()
    g.add_nodes_from(range(9))
    g.add_edges_from(COSPECTRAL_TREES[side - 1])
    return g


def figure4_graph(pair: str, side: int) -> nx.Graph:
    """Graph ``side`` (1 or 2) of Figure 4's pair ``pair`` (``"4a"``, ``"4b"``, ``"4c"``), uncoloured."""
    from .data.figure4 import figure4_pairs  # lazily: it imports torch

    pairs = figure4_pairs()
    if pair not in pairs or side not in (1, 2):
        raise GraphError(f"figure4:{pair}:{side}: use figure4:P:K with P in {sorted(pairs)} and K in 1, 2")
    data = pairs[pair].first if side == 1 else pairs[pair].second
    g = nx.Graph()
    g.add_nodes_from(range(data.num_nodes))
    g.add_edges_from((int(u), int(v)) for u, v in data.edge_index.t().tolist())
    return g


def _ints(parts: list, spec: str, count: int) -> list:
    if len(parts) != count:
        raise GraphError(f"graph spec {spec!r} needs {count} number(s) after the name")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise GraphError(f"graph spec {spec!r}: expected integers, got {':'.join(parts)!r}") from None


def _spec_csl(p: list, s: str) -> nx.Graph:
    n, skip = _ints(p, s, 2)
    return csl_graph(n, skip)


def _spec_rook(p: list, s: str) -> nx.Graph:
    return rook_graph(_ints(p, s, 1)[0])


def _spec_shrikhande(p: list, s: str) -> nx.Graph:
    _ints(p, s, 0)
    return shrikhande_graph()


def _spec_cotrees(p: list, s: str) -> nx.Graph:
    return cospectral_tree(_ints(p, s, 1)[0])


def _spec_figure4(p: list, s: str) -> nx.Graph:
    if len(p) != 2:
        raise GraphError(f"graph spec {s!r}: use figure4:P:K, e.g. figure4:4c:1")
    return figure4_graph(p[0], _ints(p[1:], s, 1)[0])


FAMILY_SPECS = {
    "csl": _spec_csl,
    "rook": _spec_rook,
    "shrikhande": _spec_shrikhande,
    "cotrees": _spec_cotrees,
    "figure4": _spec_figure4,
}
