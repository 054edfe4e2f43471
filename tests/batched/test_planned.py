"""Aggregating cells in BatchedExecutor == the SimPy engine: states, emissions, gradients, under delays and loss."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from ampsim.batched import BatchedExecutor, plan
from ampsim.cells.aggregate import AttentionCell, MeanCell
from ampsim.cells.cells import AMPCell
from ampsim.cells.execute import EngineExecutor, RunSpec, graph_of
from ampsim.data.graphdata import GraphData
from ampsim.trace.tracers import ListTracer

pytestmark = pytest.mark.usefixtures("one_thread")

F = 5


def graph_data(G: nx.Graph, seed: int) -> GraphData:
    G = nx.convert_node_labels_to_integers(G)
    pairs = [(u, v) for u, v in G.edges()] + [(v, u) for u, v in G.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    x = torch.randn(G.number_of_nodes(), F, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return GraphData(ei, x, None, G.number_of_nodes(), "node")


def graphs() -> list[GraphData]:
    iso = nx.path_graph(3)
    iso.add_node(3)  # an isolated node completes every wave at its start
    return [graph_data(nx.gnp_random_graph(12, 0.3, seed=1), 0), graph_data(nx.star_graph(4), 1),
            graph_data(iso, 2)]


def make_cell(dropout: float = 0.5, kind: str = "mean"):
    torch.manual_seed(5)
    if kind == "mean":
        cell = MeanCell(F, 4, 3, waves=2, dropout=dropout).double()
    else:
        cell = AttentionCell(F, 3, 4, heads=2, waves=2, dropout=dropout, attn_dropout=dropout).double()
    with torch.no_grad():
        for b in cell.biases:
            b.uniform_(-0.5, 0.5)
    return cell


def all_start(cell, n: int, seed: int, noise=7) -> RunSpec:
    return RunSpec(tuple(range(n)), cell.start_message(n), seed, noise)


def engine_run(cell, data, run, delay, loss):
    tracer = ListTracer(states=False)
    ex = EngineExecutor(lambda i: tracer)
    final = ex.execute(cell, data, [run], 10_000, delay, loss=loss)[0]
    delivered = [(r.dst, r.msg_id, r.cause_id) for r in tracer.records if r.event == "deliver"]
    return final, ex.last_results[0], delivered


def grads(cell, out) -> list[torch.Tensor]:
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    cell.zero_grad()
    (out * w).sum().backward()
    return [p.grad.clone() for p in cell.parameters()]


@pytest.mark.parametrize("kind", ["mean", "attention"])
@pytest.mark.parametrize("loss", [0.0, 0.1])
@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_engine_equals_batched(delay, loss, kind):
    cell = make_cell(kind=kind)
    for gi, data in enumerate(graphs()):
        run = all_start(cell, data.num_nodes, seed=11 + gi)
        ref, res, delivered = engine_run(cell, data, run, delay, loss)
        g_ref = grads(cell, cell.output(ref))
        for mode in ("auto", "lockstep"):
            ex = BatchedExecutor(mode=mode, record=True)
            out = ex.execute(cell, data, [run], 10_000, delay, loss=loss)[0]
            assert torch.allclose(out, ref, atol=1e-5), (gi, mode)
            assert ex.last.reasons == (res.reason,) and ex.last.deliveries == (res.deliveries,)
            assert sorted((d, m, c) for _, d, m, c in ex.last.records[0]) == sorted(delivered)
            for a, b in zip(grads(cell, cell.output(out)), g_ref):
                assert torch.allclose(a, b, atol=1e-5), (gi, mode)


@pytest.mark.parametrize("kind", ["mean", "attention"])
def test_planned_path_is_levels_and_cached(kind):
    """The counted cell's reference path is planned (one batch per level, no lock-step), once per seed,
    and equals lock-step."""
    cell = make_cell(kind=kind)
    data = graphs()[0]
    ex = BatchedExecutor(settled=False)
    run = all_start(cell, data.num_nodes, seed=4)
    a = ex.execute(cell, data, [run], 10_000, "uniform")
    sched = plan(graph_of(data), [(run.starts, 4)], 10_000, "uniform", rule=cell.count_rule)
    assert ex.last.batches == sched.num_levels and ex.last.program is not None and ex.last_path == "planned"
    misses = ex.plans.misses
    b = ex.execute(cell, data, [run], 10_000, "uniform")        # same seed: the compiled program is reused
    assert ex.plans.misses == misses and torch.equal(a, b)
    lock = BatchedExecutor(mode="lockstep")
    c = lock.execute(cell, data, [run], 10_000, "uniform")
    assert torch.allclose(a, c, atol=1e-12) and lock.last.batches > ex.last.batches and lock.last_path == "lockstep"
    ex.execute(cell, data, [RunSpec(run.starts, run.messages, 5, 7)], 10_000, "uniform")
    assert ex.plans.misses == misses + 1                          # a new delay seed is planned anew


def test_constant_delays_plan_once_for_any_seed():
    cell = make_cell()
    data = graphs()[0]
    ex = BatchedExecutor(settled=False)
    for seed in range(3):
        ex.execute(cell, data, [all_start(cell, data.num_nodes, seed, noise=seed)], 10_000, "constant")
    assert ex.plans.misses == 1


def test_execute_many_and_noise_seeds():
    cell = make_cell()
    gs = graphs()
    runs = [[all_start(cell, g.num_nodes, seed=3 + i, noise=i)] for i, g in enumerate(gs)]
    many = BatchedExecutor().execute_many(cell, gs, runs, 10_000, "uniform")
    for g, rr, out in zip(gs, runs, many):
        assert torch.allclose(out, EngineExecutor().execute(cell, g, rr, 10_000, "uniform"), atol=1e-5)
    bad = [RunSpec((0,), cell.start_message(1), 0, 1), RunSpec((1,), cell.start_message(1), 0, 2)]
    with pytest.raises(ValueError, match="share one noise_seed"):
        BatchedExecutor().execute(cell, gs[0], bad, 100)


@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_always_emit_cell_with_loss(delay):
    """Message loss in the level path of an always-emit cell (GRU) equals the engine's."""
    torch.manual_seed(2)
    cell = AMPCell("gru", F, 6, 3).double()
    data = graphs()[0]
    runs = [RunSpec((i,), cell.start_message(1), 100 + i) for i in range(4)]
    eng = EngineExecutor()
    ref = eng.execute(cell, data, runs, 60, delay, loss=0.2)
    ex = BatchedExecutor()
    out = ex.execute(cell, data, runs, 60, delay, loss=0.2)
    assert torch.allclose(out, ref, atol=1e-5)
    assert ex.last.deliveries == tuple(r.deliveries for r in eng.last_results)
    assert ex.last.reasons == tuple(r.reason for r in eng.last_results)
    assert sum(r.dropped for r in eng.last_results) > 0
    assert not torch.allclose(out, BatchedExecutor().execute(cell, data, runs, 60, delay), atol=1e-3)


def test_learned_cell_with_loss_in_lockstep():
    """The lock-step driver (a learned gate) loses the engine's copies too."""
    torch.manual_seed(4)
    cell = AMPCell("gru", F, 6, 3, gate=True).double()
    with torch.no_grad():
        cell.emit_gate.bias.fill_(0.6)
    data = graphs()[0]
    runs = [RunSpec((i,), cell.start_message(1), 200 + i) for i in range(4)]
    eng = EngineExecutor()
    ref = eng.execute(cell, data, runs, 60, "uniform", loss=0.2)
    ex = BatchedExecutor()
    out = ex.execute(cell, data, runs, 60, "uniform", loss=0.2)
    assert torch.allclose(out, ref, atol=1e-5)
    assert ex.last.deliveries == tuple(r.deliveries for r in eng.last_results)


@pytest.mark.parametrize("kind", ["mean", "attention"])
def test_a_start_message_with_a_wave_mask_is_refused_by_the_planned_paths(kind):
    """The planner reads every start message as tag 0; one that carries a wave (mask bit set) is counted by
    the cell as a neighbour's message, so the levels and settled paths refuse it; the engine and the
    lock-step driver (which read each message as the cell does) agree on it."""
    cell = make_cell(0.0, kind)
    data = graphs()[0]
    m = cell.start_message(3)
    m[1, -2] = 1.0                      # the second start message carries wave 0
    m[1, :2] = 0.5
    run = RunSpec((0, 2, 4), m, 3, None)
    assert cell.message_tags(m).tolist() == [0, 1, 0]
    for settled in (True, False):
        with pytest.raises(ValueError, match=r"start message row 1 has tag 1 for .*Cell .*plans every start "
                                             r"message as tag 0"):
            BatchedExecutor(settled=settled).execute(cell, data, [run], 10_000)
    eng = EngineExecutor()
    ref = eng.execute(cell, data, [run], 10_000)
    bx = BatchedExecutor(mode="lockstep")
    out = bx.execute(cell, data, [run], 10_000)
    assert torch.allclose(out, ref, atol=1e-12)
    assert bx.last.deliveries == (eng.last_results[0].deliveries,)
    ok = RunSpec((0, 2, 4), cell.start_message(3), 3, None)   # all-zero masks: planned as usual
    assert torch.allclose(BatchedExecutor().execute(cell, data, [ok], 10_000),
                          EngineExecutor().execute(cell, data, [ok], 10_000), atol=1e-12)
