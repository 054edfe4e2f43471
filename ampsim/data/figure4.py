"""Figure 4's three pairs of graphs (Section 4.3), as data: node colours one-hot in ``x``.

* ``"4a"``: two 4-cycles vs one 8-cycle, coloured ``i mod 4``;
* ``"4b"``: a white centre with 2 vs 3 blue leaves;
* ``"4c"``: red r = 0 joined to the blue nodes a = 1 and d = 4; first: a and d each on a
  triangle (a-b-c, d-e-f); second: a hexagon a-b-c-d-e-f with a and d opposite.

What AMP sees on them (the separation by execution) is :mod:`ampsim.train.figure4`; the graph
specs ``figure4:P:K`` (:mod:`ampsim.graph_families`) read the uncoloured graphs from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .graphdata import GraphData

__all__ = ["GraphPair", "figure4_pairs", "WHITE", "BLUE", "RED", "COLOURS"]

WHITE, BLUE, RED = 0, 1, 2
COLOURS = ("white", "blue", "red")


@dataclass(frozen=True)
class GraphPair:
    """Two graphs of Figure 4 (``first`` = top/left, ``second`` = bottom/right), with node colours."""

    name: str
    first: GraphData
    second: GraphData
    colours_first: tuple[int, ...]
    colours_second: tuple[int, ...]


def _graph(edges: Sequence[tuple[int, int]], colours: Sequence[int], width: int) -> GraphData:
    n = len(colours)
    directed = sorted({(u, v) for a, b in edges for u, v in ((a, b), (b, a))})
    x = torch.zeros(n, width)
    x[torch.arange(n), torch.tensor(list(colours))] = 1.0
    return GraphData(torch.tensor(directed, dtype=torch.long).t().contiguous(), x,
                     torch.zeros(n, dtype=torch.long), n, "node")


def _cycle(nodes: Sequence[int]) -> list[tuple[int, int]]:
    return [(nodes[i], nodes[(i + 1) % len(nodes)]) for i in range(len(nodes))]


def figure4_pairs() -> dict[str, GraphPair]:
    """The three pairs ``"4a"``, ``"4b"``, ``"4c"`` (see the module docstring); start candidates are all nodes."""
    four = [i % 4 for i in range(8)]
    a1 = _cycle([0, 1, 2, 3]) + _cycle([4, 5, 6, 7])
    a2 = _cycle(list(range(8)))
    b1 = [(0, 1), (0, 2)]
    b2 = [(0, 1), (0, 2), (0, 3)]
    # 4c: r = 0 (red), a = 1 and d = 4 (blue), the rest white.
    c1 = [(0, 1), (0, 4), (1, 2), (1, 3), (2, 3), (4, 5), (4, 6), (5, 6)]
    c2 = [(0, 1), (0, 4)] + _cycle([1, 2, 3, 4, 5, 6])
    c_col = (RED, BLUE, WHITE, WHITE, BLUE, WHITE, WHITE)
    return {
        "4a": GraphPair("4a", _graph(a1, four, 4), _graph(a2, four, 4), tuple(four), tuple(four)),
        "4b": GraphPair("4b", _graph(b1, [WHITE, BLUE, BLUE], 3), _graph(b2, [WHITE, BLUE, BLUE, BLUE], 3),
                        (WHITE, BLUE, BLUE), (WHITE, BLUE, BLUE, BLUE)),
        "4c": GraphPair("4c", _graph(c1, c_col, 3), _graph(c2, c_col, 3), c_col, c_col),
    }
