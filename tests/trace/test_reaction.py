"""Reaction analysis (ampsim.trace.reaction): one record per message that reached a node, exact
against the engine executor, aggregated per node / hop distance / time, and drawn."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import networkx as nx
import pytest
import torch

from ampsim.cells.aggregate import MeanCell
from ampsim.cells.execute import EngineExecutor, RunSpec
from ampsim.cells.models import origin_runs
from ampsim.data.graphdata import GraphData
from ampsim.trace.reaction import aggregate, hop_distances, trace_reactions
from ampsim.train.figure4 import demo_cell
from ampsim.viz.reaction import plot_reactions


def path_data(n):
    edges = sorted({(u, v) for a, b in nx.path_graph(n).edges for u, v in ((a, b), (b, a))})
    return GraphData(torch.tensor(edges).t().contiguous(), torch.ones(n, 1, dtype=torch.float64),
                     torch.zeros(n, dtype=torch.long), n)


@pytest.mark.parametrize("kind, bias", [("rnn", -6.0), ("iter", 3.0)])
def test_reactions_match_the_engine_run(kind, bias):
    cell = demo_cell(kind, 1, seed=1, halt_bias=bias)
    g = path_data(6)
    run = origin_runs([0], 3, seed=0, dtype=torch.float64)[0]
    rr = trace_reactions(cell, g, run, budget=60, delay="uniform")
    ref = EngineExecutor().execute(cell, g, [run], 60, "uniform")
    assert torch.equal(ref[0], rr.final_states)
    result = EngineExecutor()
    result.execute(cell, g, [run], 60, "uniform")
    res = result.last_results[0]
    live = [r for r in rr.reactions if not r.dropped]
    assert len(live) == res.total_deliveries - 1  # every delivery but the start message
    assert len(rr.reactions) - len(live) == res.dropped
    assert all(r.emitted for r in live) and all(r.change >= 0 for r in rr.reactions)
    if kind == "iter":
        assert res.dropped > 0 and all(r.halt is not None and 0 <= r.mass <= 1 for r in live)
        halted = {r.node for r in rr.reactions if r.dropped}
        assert all(bool(cell.halted(rr.final_states[v:v + 1])[0]) for v in halted)
    else:
        assert all(r.halt is None and r.mass is None and r.gate is None for r in live)


def test_aggregates_per_node_distance_and_time():
    cell = demo_cell("iter", 1, seed=1, halt_bias=3.0)
    g = path_data(6)
    rr = trace_reactions(cell, g, origin_runs([0], 3, dtype=torch.float64)[0], budget=60)
    assert hop_distances(g, [0]) == [0, 1, 2, 3, 4, 5]
    per_node = aggregate(rr.reactions, lambda r: r.node)
    assert sum(a["messages"] for a in per_node.values()) == len(rr.reactions)
    assert sum(a["dropped"] for a in per_node.values()) == sum(r.dropped for r in rr.reactions)
    per_hop = aggregate(rr.reactions, lambda r: hop_distances(g, [0])[r.node])
    assert per_hop.keys() == per_node.keys()  # on a path from node 0, hop distance = node
    per_time = aggregate(rr.reactions, lambda r: int(r.t))
    assert sum(a["processed"] for a in per_time.values()) == sum(not r.dropped for r in rr.reactions)
    node1 = [r for r in rr.reactions if r.node == 1 and not r.dropped]
    assert per_node[1]["change_total"] == pytest.approx(sum(r.change for r in node1))


def test_plot_reactions_draws_every_message():
    cell = demo_cell("iter", 1, seed=1, halt_bias=3.0)
    g = path_data(5)
    rr = trace_reactions(cell, g, origin_runs([0], 3, dtype=torch.float64)[0], budget=50)
    ax = plot_reactions(rr.reactions, 5, lane_key=hop_distances(g, [0]))
    by_gid = {c.get_gid(): c for c in ax.collections}
    assert len(by_gid["reactions"].get_offsets()) == sum(not r.dropped for r in rr.reactions)
    assert len(by_gid["drops"].get_offsets()) == sum(r.dropped for r in rr.reactions)


def test_reactions_of_an_aggregating_cell():
    """Any cell of the protocol can be traced: the mean cell emits exactly when a wave completes."""
    G = nx.cycle_graph(5)
    pairs = [(u, v) for u, v in G.edges()] + [(v, u) for u, v in G.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).t().contiguous()
    data = GraphData(ei, torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), None, 5, "node")
    torch.manual_seed(0)
    cell = MeanCell(3, 4, 2, waves=2)
    run = trace_reactions(cell, data, RunSpec(tuple(range(5)), cell.start_message(5), 1), budget=100,
                          delay="uniform")
    assert run.reason == "quiescent" and len(run.reactions) == 2 * 10
    # each node emits once on its neighbour messages: when wave 0 completes (wave 1's completion emits nothing)
    assert sum(r.emitted for r in run.reactions) == 5
    assert all(r.gate is None and r.halt is None and r.change > 0 for r in run.reactions)
