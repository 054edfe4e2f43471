"""The aggregating cells (MeanCell) and their count rule, in the SimPy engine: GCN equality, emission, loss, order."""
from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ampsim.cells.aggregate import AttentionCell, MeanCell, WaveCount
from ampsim.cells.execute import EngineExecutor, RunSpec
from ampsim.cells.noise import dropout, noise_keys, uniform
from ampsim.cells.protocol import Cell, NodeInputs, emission_of, node_inputs
from ampsim.cells.rule import CellRule
from ampsim.data.graphdata import GraphData
from ampsim.engine.messages import Message
from ampsim.engine.simulation import Simulation
from ampsim.trace.tracers import ListTracer
from ampsim.train.node_classification import gcn_adjacency

pytestmark = pytest.mark.usefixtures("one_thread")


def graph_data(G: nx.Graph, F: int = 5, seed: int = 0) -> GraphData:
    pairs = [(u, v) for u, v in G.edges()] + [(v, u) for u, v in G.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    x = torch.randn(G.number_of_nodes(), F, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return GraphData(ei, x, None, G.number_of_nodes(), "node")


def make_cell(norm: str = "sym", waves: int = 2, dropout: float = 0.0) -> MeanCell:
    torch.manual_seed(3)
    cell = MeanCell(5, 4, 3, waves=waves, norm=norm, dropout=dropout).double()
    with torch.no_grad():
        for b in cell.biases:
            b.uniform_(-0.5, 0.5)
    return cell


def all_start(cell, n: int, seed: int = 0, noise=None) -> RunSpec:
    return RunSpec(tuple(range(n)), cell.start_message(n), seed, noise)


def gcn(cell: MeanCell, data: GraphData) -> torch.Tensor:
    """The K-layer GCN with the cell's weights (dense): act(Â h W_j + b_j)."""
    A = gcn_adjacency(data.edge_index, data.num_nodes).to_dense().double()
    h = data.x
    for j in range(cell.waves):
        h = A @ cell.weights[j](h) + cell.biases[j]
        if j + 1 < cell.waves:
            h = torch.relu(h)
    return h


def test_protocol_declared():
    cell = make_cell()
    assert isinstance(cell, Cell)
    assert emission_of(cell) == "counted" and cell.count_rule.key == "wave-count/2"
    assert cell.msg_size == 4 + 3 + 2 and cell.output_size == 3
    assert cell.state_size == 4 + (4 + 3) + 2 + 4
    assert cell.start_message(2).tolist() == [[0.0] * 9] * 2
    with pytest.raises(ValueError, match="pass inputs"):
        cell.init_state(torch.zeros(1, 5, dtype=torch.float64))


def test_wave_count_rule():
    rule = WaveCount(2)
    s = rule.start(2)
    assert rule.deliver(s, 0)[1] == 1            # start: emit wave 0
    assert rule.deliver(s, 0)[1] == 0            # a second start message changes nothing
    assert rule.deliver(s, 2)[1] == 0            # an early wave-1 message is counted
    assert rule.deliver(s, 1)[1] == 0
    assert rule.deliver(s, 1)[1] == 2            # wave 0 complete (3 = degree + 1): emit wave 1
    assert s == [True, 1, 3, 2, 2]
    assert rule.deliver(s, 2)[1] == 0 and rule.finished(s)
    iso = rule.start(0)                           # no neighbours: both waves complete at the start
    assert rule.deliver(iso, 0)[1] == 3 and rule.finished(iso)
    with pytest.raises(ValueError):
        WaveCount(0)


@pytest.mark.parametrize("delay", ["constant", "uniform"])
@pytest.mark.parametrize("waves", [1, 2, 3])
def test_mean_cell_is_gcn(delay, waves):
    data = graph_data(nx.gnp_random_graph(9, 0.35, seed=2))
    cell = make_cell(waves=waves)
    ex = EngineExecutor()
    final = ex.execute(cell, data, [all_start(cell, 9, seed=5)], 10_000, delay)[0]
    res = ex.last_results[0]
    assert res.reason == "quiescent"
    assert res.deliveries == 9 + waves * data.edge_index.shape[1]       # n + K * 2|E|
    assert bool(cell.finished(final).all())
    assert torch.allclose(cell.output(final), gcn(cell, data), atol=1e-12)


def test_mean_norm_is_neighbourhood_mean():
    data = graph_data(nx.path_graph(4))
    cell = make_cell(norm="mean", waves=1)
    final = EngineExecutor().execute(cell, data, [all_start(cell, 4)], 1000)[0]
    A = torch.eye(4, dtype=torch.float64)
    for u, v in data.edge_index.t().tolist():
        A[u, v] = 1.0
    want = (A / A.sum(1, keepdim=True)) @ cell.weights[0](data.x) + cell.biases[0]
    assert torch.allclose(cell.output(final), want, atol=1e-12)


def test_every_node_emits_once_per_wave():
    data = graph_data(nx.cycle_graph(6))
    cell = make_cell(waves=2)
    tracer = ListTracer(states=False)
    EngineExecutor(lambda i: tracer).execute(cell, data, [all_start(cell, 6)], 1000, "uniform")
    sends = [r for r in tracer.records if r.event == "send" and r.src >= 0]
    per_node = {v: len({r.cause_id for r in sends if r.src == v}) for v in range(6)}
    assert per_node == {v: 2 for v in range(6)}       # two broadcasts each (waves 0 and 1)
    assert len(sends) == 2 * 12


def test_loss_reads_out_what_arrived():
    """With loss the run stalls; finished nodes are exactly the GCN, the others read out what arrived."""
    data = graph_data(nx.gnp_random_graph(14, 0.2, seed=0))
    cell = make_cell()
    ex = EngineExecutor()
    final = ex.execute(cell, data, [all_start(cell, 14, seed=3)], 10_000, "uniform", loss=0.05)[0]
    res = ex.last_results[0]
    assert res.reason == "stalled" and res.dropped > 0
    done = cell.finished(final)
    assert int(done.sum()) == 6 and set(res.stuck) == set((~done).nonzero().flatten().tolist())
    out = cell.output(final)
    assert torch.allclose(out[done], gcn(cell, data)[done], atol=1e-12)
    assert bool(torch.isfinite(out).all())
    # an unfinished node at wave 0: h^1 from the counted messages scaled by (d+1)/c, then its own wave-1 message
    w = final[:, cell._w]
    v = int(((w == 0) & (final[:, cell._started] > 0)).nonzero()[0, 0])
    row = final[v: v + 1]
    d, c0, c1 = row[0, cell._deg], row[0, cell._counts][0], row[0, cell._counts][1]
    h1 = torch.relu(row[:, cell._agg_slices[0]] * (d + 1).rsqrt() * (d + 1) / c0 + cell.biases[0])
    S1 = row[:, cell._agg_slices[1]] + (d + 1).rsqrt() * cell.weights[1](h1)
    want = S1 * (d + 1).rsqrt() * (d + 1) / (c1 + 1) + cell.biases[1]
    assert torch.allclose(out[v: v + 1], want, atol=1e-12)


def test_cell_rule_assumes_degree_and_ids_and_traces_repeat():
    cell = make_cell(dropout=0.5)
    rule = CellRule(cell, noise_seed=3)
    assert rule.assumes == frozenset({"degree", "ids"})
    assert rule.params() == {"kind": "mean", "hidden": 4, "msg_size": 9, "gate": False, "waves": 2}
    data = graph_data(nx.cycle_graph(5))

    def trace():
        tracer = ListTracer()
        start = {v: Message("start", cell.start_message(1)[0]) for v in range(5)}
        Simulation(data.edge_index, CellRule(cell, 3), delay="uniform", seed=2, start=start, features=data.x,
                   num_nodes=5, tracer=tracer).run()
        return [tuple(r) for r in tracer.records]

    assert trace() == trace()


def test_noise_is_a_pure_function():
    keys = noise_keys(11, torch.arange(6))
    assert keys.tolist() == noise_keys(11, torch.arange(6)).tolist()
    assert keys.min() >= 0 and keys.max() < 1 << 24 and len(set(keys.tolist())) == 6
    assert noise_keys(None, torch.arange(3)).tolist() == [-1, -1, -1]
    u = uniform(keys, 2, 1000)
    assert u.shape == (6, 1000) and 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    # one row at a time (the engine) == all rows at once (the batched executor)
    assert torch.equal(torch.cat([uniform(keys[i: i + 1], 2, 1000) for i in range(6)]), u)
    x = torch.ones(6, 1000)
    y = dropout(x, 0.25, keys.double(), 2)
    assert torch.equal(y, (u >= 0.25).float() / 0.75)
    assert torch.equal(dropout(x, 0.25, torch.full((6,), -1.0), 2), x)   # no key: no noise


def test_dropout_in_training_only_and_by_noise_seed():
    data = graph_data(nx.cycle_graph(5))
    cell = make_cell(dropout=0.5)
    run = lambda noise: EngineExecutor().execute(cell, data, [all_start(cell, 5, noise=noise)], 1000)[0]  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    cell.eval()
    assert torch.allclose(cell.output(run(1)), gcn(cell, data), atol=1e-12)
    assert torch.allclose(cell.output(run(None)), gcn(cell, data), atol=1e-12)
    cell.train()
    assert torch.allclose(cell.output(run(None)), gcn(cell, data), atol=1e-12)


def _wave_messages(cell: MeanCell, values, deg: int):
    """Messages a node of degree ``deg`` gets: deg wave-0 and deg wave-1 messages with the given slot values."""
    msgs = []
    for j, sl in enumerate(cell._slots):
        for i in range(deg):
            m = torch.zeros(1, cell.msg_size, dtype=torch.float64)
            m[0, sl] = torch.tensor(values[j][i], dtype=torch.float64)
            m[0, cell.msg_size - cell.waves + j] = 1.0
            msgs.append(m)
    return msgs


@settings(max_examples=40, deadline=None)
@given(deg=st.integers(1, 4), data=st.data())
def test_order_invariance(deg, data):
    """A node's state after any permutation of its incoming messages (start included) agrees to 1e-5."""
    cell = make_cell()
    vals = data.draw(st.lists(st.lists(st.lists(st.floats(-3, 3), min_size=4, max_size=4), min_size=deg,
                                       max_size=deg), min_size=2, max_size=2))
    vals[1] = [v[:3] for v in vals[1]]
    msgs = [cell.start_message(1)] + _wave_messages(cell, vals, deg)
    order = data.draw(st.permutations(range(len(msgs))))
    x = torch.randn(1, 5, generator=torch.Generator().manual_seed(deg), dtype=torch.float64)
    inputs = node_inputs([deg], noise_seed=None, dtype=torch.float64)

    def run(seq):
        s = cell.init_state(x, inputs)
        emits = []
        for i in seq:
            s, out, e = cell.step(s, msgs[i])
            emits.append(out[0, -2:] * e)
        return s, torch.stack(emits).sum(0)

    s0, e0 = run(range(len(msgs)))
    s1, e1 = run(order)
    assert torch.allclose(s0, s1, atol=1e-5)
    assert e0.tolist() == e1.tolist() == [1.0, 1.0]      # each wave emitted exactly once, whatever the order
    assert bool(cell.finished(s1)[0])


# --------------------------------------------------------------------------- the attention cell
def make_attention(dropout: float = 0.0, waves: int = 2) -> AttentionCell:
    torch.manual_seed(6)
    cell = AttentionCell(5, 3, 4, heads=2, out_heads=2, waves=waves, dropout=dropout, attn_dropout=dropout).double()
    with torch.no_grad():
        for b in cell.biases:
            b.uniform_(-0.5, 0.5)
    return cell


def gat(cell: AttentionCell, data: GraphData) -> torch.Tensor:
    """Dense reference: softmax over N(v) ∪ {v} of LeakyReLU(q_j(z_v^0) + a_j · z_u^j), per head."""
    n = data.num_nodes
    adj = torch.eye(n, dtype=torch.bool)
    adj[data.edge_index[0], data.edge_index[1]] = True
    z0 = cell.weights[0](data.x)
    h = data.x
    for j in range(cell.waves):
        H, f = cell.heads_of[j], cell.feats_of[j]
        z = cell.weights[j](h).reshape(n, H, f)
        e = torch.nn.functional.leaky_relu(cell.query[j](z0)[:, None, :] + (z * cell.att[j]).sum(-1)[None], 0.2)
        a = torch.softmax(e.masked_fill(~adj[:, :, None], float("-inf")), dim=1)
        agg = torch.einsum("vuh,uhf->vhf", a, z)
        h = (torch.nn.functional.elu(agg.reshape(n, H * f) + cell.biases[j]) if j + 1 < cell.waves
             else agg.mean(1) + cell.biases[j])
    return h


def test_attention_protocol_declared():
    cell = make_attention()
    assert isinstance(cell, Cell) and emission_of(cell) == "counted"
    assert cell.dims == [5, 6, 4] and cell.output_size == 4
    assert cell.msg_size == 6 + 8 + 1 + 2
    assert cell.state_size == 6 + (2 * 2 + 6) + (2 * 2 + 8) + 2 + 4
    with pytest.raises(ValueError, match="heads"):
        AttentionCell(5, 3, heads=0)


@pytest.mark.parametrize("delay", ["constant", "uniform"])
@pytest.mark.parametrize("waves", [1, 2, 3])
def test_attention_cell_is_gat(delay, waves):
    data = graph_data(nx.gnp_random_graph(9, 0.35, seed=2))
    cell = make_attention(waves=waves)
    ex = EngineExecutor()
    final = ex.execute(cell, data, [all_start(cell, 9, seed=5)], 10_000, delay)[0]
    assert ex.last_results[0].reason == "quiescent"
    assert ex.last_results[0].deliveries == 9 + waves * data.edge_index.shape[1]
    assert torch.allclose(cell.output(final), gat(cell, data), atol=1e-12)


def test_attention_dropout_is_seeded():
    data = graph_data(nx.cycle_graph(5))
    cell = make_attention(dropout=0.5)
    run = lambda noise: EngineExecutor().execute(cell, data, [all_start(cell, 5, noise=noise)], 1000)[0]  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    cell.eval()
    assert torch.allclose(cell.output(run(1)), gat(cell, data), atol=1e-12)


def test_attention_loss_reads_out_the_softmax_of_what_arrived():
    data = graph_data(nx.gnp_random_graph(14, 0.2, seed=0))
    cell = make_attention()
    ex = EngineExecutor()
    final = ex.execute(cell, data, [all_start(cell, 14, seed=3)], 10_000, "uniform", loss=0.05)[0]
    assert ex.last_results[0].reason == "stalled"
    done = cell.finished(final)
    out = cell.output(final)
    assert int(done.sum()) == 6 and bool(torch.isfinite(out).all())
    assert torch.allclose(out[done], gat(cell, data)[done], atol=1e-12)


def _attention_messages(cell: AttentionCell, values, deg: int):
    msgs = []
    for j, sl in enumerate(cell._slots):
        for i in range(deg):
            m = torch.zeros(1, cell.msg_size, dtype=torch.float64)
            m[0, sl] = torch.tensor(values[j][i][: sl.stop - sl.start], dtype=torch.float64)
            m[0, cell.msg_size - cell.waves + j] = 1.0
            m[0, cell._msg_extra.start] = float(10 + i)      # sender noise keys
            msgs.append(m)
    return msgs


@settings(max_examples=40, deadline=None)
@given(deg=st.integers(1, 4), data=st.data())
def test_attention_order_invariance(deg, data):
    """The running softmax: any permutation of a node's incoming messages gives the same state (1e-5)."""
    cell = make_attention(dropout=0.3)
    vals = data.draw(st.lists(st.lists(st.lists(st.floats(-3, 3), min_size=8, max_size=8), min_size=deg,
                                       max_size=deg), min_size=2, max_size=2))
    msgs = [cell.start_message(1)] + _attention_messages(cell, vals, deg)
    order = data.draw(st.permutations(range(len(msgs))))
    x = torch.randn(1, 5, generator=torch.Generator().manual_seed(deg), dtype=torch.float64)
    inputs = node_inputs([deg], noise_seed=4, dtype=torch.float64)

    def run(seq):
        s = cell.init_state(x, inputs)
        for i in seq:
            s = cell.step(s, msgs[i])[0]
        return s

    a, b = run(range(len(msgs))), run(order)
    assert torch.allclose(a, b, atol=1e-5) and bool(cell.finished(b)[0])
    assert torch.allclose(cell.output(a), cell.output(b), atol=1e-5)


# --------------------------------------------------------------------------- delay invariance of a whole run
def _permuted_delays(order: list) -> "Custom":
    """Delays ``1 + order[k] / len(order)`` for the k-th copy sent (cycled): distinct delays, so the arrival
    order of a run is the one ``order`` (a permutation) makes, not the send order."""
    from ampsim.engine.delays import Custom

    calls = iter(range(10**9))
    return Custom(lambda rng, mid, src, dst: 1.0 + order[next(calls) % len(order)] / len(order), name="permuted")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), p=st.floats(0.2, 0.8), graph_seed=st.integers(0, 1000),
       order=st.permutations(range(40)), delay_seed=st.integers(0, 1000), train=st.booleans())
def test_mean_run_outputs_do_not_depend_on_the_delays(n, p, graph_seed, order, delay_seed, train):
    """A quiescent loss-free run of MeanCell computes the same outputs under constant, uniform and
    permuted delays (the aggregate is order-free: invariance is a theorem), to 1e-6; dropout with
    one noise seed too (a mask depends on the node, the wave and the column, never on the order).
    Engine (SimPy) and batched executor alike."""
    from ampsim.batched import BatchedExecutor

    data = graph_data(nx.gnp_random_graph(n, p, seed=graph_seed))
    cell = make_cell(dropout=0.5 if train else 0.0)
    cell.train(train)
    noise = 7 if train else None
    edges = data.edge_index.shape[1]
    outs = []
    for ex in (EngineExecutor(), BatchedExecutor()):
        for delay in ("constant", "uniform", _permuted_delays(list(order))):
            final = ex.execute(cell, data, [all_start(cell, n, seed=delay_seed, noise=noise)], 10_000, delay)[0]
            done = ex.last_results[0] if isinstance(ex, EngineExecutor) else None
            if done is not None:
                assert (done.reason, done.deliveries) == ("quiescent", n + 2 * edges)
            else:
                assert ex.last.reasons == ("quiescent",) and ex.last.deliveries == (n + 2 * edges,)
            assert bool(cell.finished(final).all())
            outs.append(cell.output(final).detach())
    for o in outs[1:]:
        assert torch.allclose(o, outs[0], rtol=0.0, atol=1e-6)
    if not train:
        assert torch.allclose(outs[0], gcn(cell, data), rtol=0.0, atol=1e-6)


def test_permuted_delays_reorder_the_deliveries():
    """The permuted-delay run of the invariance property is not the constant run in disguise."""
    data = graph_data(nx.gnp_random_graph(7, 0.5, seed=1))
    cell = make_cell()
    order = [(17 * k) % 40 for k in range(40)]
    seen = []
    for delay in ("constant", _permuted_delays(order)):
        tracer = ListTracer(states=False)
        EngineExecutor(lambda i: tracer).execute(cell, data, [all_start(cell, 7, 3)], 1000, delay)
        seen.append([(r.dst, r.src) for r in tracer.records if r.event == "deliver"])
    assert sorted(seen[0]) == sorted(seen[1]) and seen[0] != seen[1]
