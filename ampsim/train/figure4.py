"""Figure 4 by execution: pairs of graphs 1-WL cannot tell apart, and what AMP with constant delays sees.

The paper's Section 4.3 claims, for AMP with constant delays:

* **4a** (Garg et al.): a node can learn whether it lies on a 4-cycle or on an
  8-cycle -- here two 4-cycles vs one 8-cycle, coloured ``i mod 4`` as in Limits1.
* **4b** (Xu et al.): the white centre of a star receives its blue neighbours'
  messages one by one, so it can count them, which mean and max aggregation cannot
  -- here a white centre with 2 vs 3 blue leaves.
* **4c**: started at a white or blue node, AMP separates a graph whose white/blue
  nodes all lie on triangles from one without triangles; started at the **red**
  node it cannot. The figure itself is not in our copy of the paper; the pair built
  here has exactly the stated properties: red r is joined to the blue nodes a and d;
  top: a and d each on a triangle (a-b-c, d-e-f); bottom: a hexagon a-b-c-d-e-f with
  a and d opposite. Both graphs are 1-WL-equivalent, and stay so when r is
  individualised (marked), but not when any other node is.

"Separates" is decided by execution: the *start node's view* -- the sequence of
(arrival time, incoming payload, new state) of every delivery it processes during
the run (budget 5n) -- is compared bit for bit between the two graphs. If the
views are equal, every readout of the start node is equal, whatever the cell.

Tie-breaking caveat: simultaneous arrivals are processed in send order, which
follows neighbour indices. For 4c the views from red are identical when r has the
same rank among each blue node's neighbours in both graphs (e.g. r = node 0, the
numbering used here; every numbering of the other six nodes was checked); other
numberings can let the index order itself leak into the run -- an artefact of the
deterministic tie-break, not information about the graph (see docs/learned_amp.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from ..cells.cells import CELL_KINDS, AMPCell
from ..cells.models import init_parameters
from ..cells.rule import CellRule
from ..data.figure4 import BLUE, COLOURS, RED, WHITE, GraphPair, figure4_pairs  # noqa: F401 (also importable from here)
from ..data.graphdata import GraphData
from ..data.tasks import wl_colour_histogram
from ..engine.messages import Message
from ..engine.simulation import Simulation
from ..trace.tracers import ListTracer

__all__ = ["GraphPair", "StartView", "figure4_pairs", "demo_cell", "start_view", "separated", "wl_equivalent", "aggregation_blind", "report"]


@dataclass(frozen=True)
class StartView:
    """What the start node experienced: per processed delivery its time, the payload and the new state."""

    times: tuple[float, ...]
    payloads: tuple[Tensor, ...]
    states: tuple[Tensor, ...]
    output: Tensor

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StartView):
            return NotImplemented
        return (self.times == other.times and len(self.payloads) == len(other.payloads)
                and all(torch.equal(a, b) for a, b in zip(self.payloads, other.payloads))
                and all(torch.equal(a, b) for a, b in zip(self.states, other.states))
                and torch.equal(self.output, other.output))

    __hash__ = None  # type: ignore[assignment]


def wl_equivalent(first: GraphData, second: GraphData, iterations: int = 8,
                  mark: Optional[tuple[int, int]] = None) -> bool:
    """Whether 1-WL gives both graphs the same colour histogram; ``mark=(u, v)`` individualises u and v first."""
    def marked(g: GraphData, v: Optional[int]) -> GraphData:
        if v is None:
            return g
        flag = torch.zeros(g.num_nodes, 1)
        flag[v] = 1.0
        return GraphData(g.edge_index, torch.cat([g.x, flag], 1), g.y, g.num_nodes, g.level)

    u, v = mark if mark is not None else (None, None)
    return wl_colour_histogram(marked(first, u), iterations) == wl_colour_histogram(marked(second, v), iterations)


def aggregation_blind(pair: GraphPair, node: int = 0) -> dict[str, bool]:
    """Per aggregator, whether ``node``'s neighbour features aggregate to the same vector in both graphs."""
    def neighbour_rows(g: GraphData) -> Tensor:
        src, dst = g.edge_index
        return g.x[dst[src == node]]

    a, b = neighbour_rows(pair.first), neighbour_rows(pair.second)
    return {"sum": torch.equal(a.sum(0), b.sum(0)), "mean": torch.equal(a.mean(0), b.mean(0)),
            "max": torch.equal(a.max(0).values, b.max(0).values)}


def demo_cell(kind: str, in_features: int, seed: int = 0, hidden: int = 8, msg_size: int = 3,
              halt_bias: float = -6.0) -> AMPCell:
    """A float64 cell drawn from ``seed``; ACT/Iter get halting bias ``halt_bias`` so they do not halt at once."""
    cell = AMPCell(kind, in_features, hidden, msg_size).double()
    init_parameters(cell, torch.Generator().manual_seed(seed))
    if cell.halting is not None:
        with torch.no_grad():
            cell.halting.bias.fill_(halt_bias)
    return cell


class _Recorder(CellRule):
    """A :class:`CellRule` that also logs every (node view, payload, new state) it computes."""

    def __init__(self, cell: AMPCell) -> None:
        super().__init__(cell)
        self.log: list[tuple[Any, Tensor, Tensor]] = []

    def receive(self, node, state, message):
        new, out = super().receive(node, state, message)
        self.log.append((node, message.payload, new))
        return new, out


@torch.no_grad()
def start_view(graph: GraphData, start: int, cell: AMPCell, delay: str = "constant", seed: int = 0,
               budget: Optional[int] = None) -> StartView:
    """Run ``cell`` from ``start`` (initial message ones(msg_size)) for ``budget`` (5n) deliveries; the start node's view."""
    rule = _Recorder(cell)
    tracer = ListTracer(states=False)
    x = graph.x.to(cell.encoder.weight.dtype)
    msg = Message("start", torch.ones(cell.msg_size, dtype=x.dtype))
    sim = Simulation(graph.edge_index, rule, delay=delay, seed=seed, tracer=tracer, start={start: msg},
                     features=x, num_nodes=graph.num_nodes)
    sim.run(max_deliveries=budget or 5 * graph.num_nodes)
    delivered = [r for r in tracer.messages if r.event == "deliver"]
    me = sim.views[start]
    picked = [(rec.t_deliver, p, s) for rec, (view, p, s) in zip(delivered, rule.log) if view is me]
    return StartView(tuple(t for t, _, _ in picked), tuple(p for _, p, _ in picked),
                     tuple(s for _, _, s in picked), cell.output(sim.states[start])[0])


def separated(pair: GraphPair, start_first: int, start_second: int, cell: AMPCell,
              delay: str = "constant", seed: int = 0) -> bool:
    """Whether the start nodes' views differ (then some readout of the start node tells the graphs apart)."""
    return start_view(pair.first, start_first, cell, delay, seed) != start_view(pair.second, start_second, cell, delay, seed)


CASES_PER_SEED = 6 * 5 + 1
"""Separation checks per seed in :func:`report`: 6 (pair, start) cases x 5 cell kinds, and one delay draw."""
SECONDS_PER_CASE = (0.005, 0.2)
"""One core's time of one check (one random cell on one pair of Figure 4's small graphs)."""


def report(seeds: Sequence[int] = (0, 1, 2), kinds: Sequence[str] = CELL_KINDS) -> list[str]:
    """Lines stating, per pair and start colour, for how many (kind, seed) cells the views differ."""
    pairs = figure4_pairs()
    lines = []
    cases = [("4a", 0, 0, "node 0 (4-cycle vs 8-cycle)"), ("4b", 0, 0, "white centre"),
             ("4b", 1, 1, "blue leaf"), ("4c", 0, 0, "red node"), ("4c", 1, 1, "blue node"),
             ("4c", 2, 2, "white node")]
    for name, u, v, what in cases:
        pair = pairs[name]
        cells = [(k, s) for k in kinds for s in seeds]
        hits = sum(separated(pair, u, v, demo_cell(k, pair.first.x.shape[1], s)) for k, s in cells)
        if name == "4b":
            blind = aggregation_blind(pair, u)
            prop = "aggregation at the start node equal for " + ", ".join(k for k, same in blind.items() if same)
        else:
            prop = (f"1-WL equivalent: {wl_equivalent(pair.first, pair.second)}, "
                    f"with the start marked: {wl_equivalent(pair.first, pair.second, mark=(u, v))}")
        lines.append(f"Figure {name}, start at {what}: separated by {hits}/{len(cells)} random cells; {prop}")
    red_random = sum(separated(pairs["4c"], 0, 0, demo_cell("gru", 3, 0), delay="uniform", seed=s) for s in seeds)
    lines.append(f"Figure 4c, start at red node, uniform random delays: separated in {red_random}/{len(seeds)} delay seeds")
    return lines


if __name__ == "__main__":  # `python -m ampsim.train.figure4`: alias of `ampsim figure4` (the CLI)
    from ampsim.cli import alias

    raise SystemExit(alias(["figure4"]))
