"""Task models: runs, readouts (start / pool / all), targets, init without the global RNG."""
from __future__ import annotations

import pytest
import torch

from ampsim.cells.execute import EngineExecutor
from ampsim.cells.models import (
    AMPModel,
    cell_kind,
    init_parameters,
    nll,
    origin_runs,
    run_seed,
    start_runs,
)
from ampsim.data.graphdata import GraphData
from ampsim.data.tasks import limits1, shortest_path_parity
from ampsim.engine.rng import derive_seed


class FixedExecutor:
    """Returns prescribed final states and records what it was asked to run."""

    def __init__(self, states: torch.Tensor) -> None:
        self.states = states
        self.calls = []

    def execute(self, cell, graph, runs, budget, delay="constant", fifo=False):
        self.calls.append((list(runs), budget, delay, fifo))
        return self.states


def path3() -> GraphData:
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    return GraphData(ei, torch.ones(3, 1), torch.tensor([0, 1, 0]), 3, "node")


def test_cell_kind_names():
    assert [cell_kind(m) for m in ("amp-rnn", "AMP-GRU", "amp-lstm", "amp-act", "amp-iter", "gru")] == [
        "rnn", "gru", "lstm", "act", "iter", "gru"]
    with pytest.raises(ValueError, match="unknown model"):
        cell_kind("amp-transformer")


def test_start_runs_one_per_node_with_derived_seeds():
    msg = torch.ones(1, 3)
    runs = start_runs(3, msg, seed=7)
    assert [r.starts for r in runs] == [(0,), (1,), (2,)]
    assert [r.seed for r in runs] == [derive_seed(7, f"run{i}") for i in range(3)]
    assert all(torch.equal(r.messages, msg) for r in runs)


def test_origin_runs_one_hot_per_origin():
    (run,) = origin_runs([4, 1], 6, seed=3)
    assert run.starts == (4, 1)
    assert run.seed == run_seed(3, 0)
    expected = torch.zeros(2, 6)
    expected[0, 0] = expected[1, 1] = 1.0
    assert torch.equal(run.messages, expected)
    with pytest.raises(ValueError, match="msg_size >= 3"):
        origin_runs([0, 1, 2], 2)


def test_init_parameters_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state().clone()
    with torch.device("meta"):
        a = AMPModel("lstm", 4, 8, 2)
        b = AMPModel("lstm", 4, 8, 2)
    a.to_empty(device="cpu")
    b.to_empty(device="cpu")
    init_parameters(a, torch.Generator().manual_seed(5))
    init_parameters(b, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    # PyTorch's default laws: Linear U(+-1/sqrt(fan_in)), LSTMCell U(+-1/sqrt(H))
    assert a.cell.encoder.weight.abs().max() <= 1 / 4 ** 0.5
    assert a.cell.update.weight_hh.abs().max() <= 1 / 8 ** 0.5
    assert a.cell.update.weight_hh.abs().max() > 0.5 / 8 ** 0.5


def test_start_readout_takes_each_node_in_its_own_run():
    model = AMPModel("rnn", 1, 2, 2, readout="start")
    states = torch.arange(3 * 3 * 2, dtype=torch.float32).reshape(3, 3, 2)
    ex = FixedExecutor(states)
    with torch.no_grad():
        model.decoders[0].weight.copy_(torch.eye(2))
        model.decoders[0].bias.zero_()
        out = model(path3(), ex, budget=15)
    own = torch.stack([states[i, i] for i in range(3)])
    assert torch.allclose(out, torch.log_softmax(own, -1))
    runs, budget, delay, fifo = ex.calls[0]
    assert [r.starts for r in runs] == [(0,), (1,), (2,)] and budget == 15 and delay == "constant"


@pytest.mark.parametrize("aggr, expected", [("sum", [[12.0, 15.0]]), ("max", [[8.0, 9.0]]), ("mean", [[4.0, 5.0]])])
def test_pool_readout_pools_start_nodes(aggr, expected):
    model = AMPModel("gru", 1, 2, 2, readout="pool", aggr=aggr)
    states = torch.arange(3 * 3 * 2, dtype=torch.float32).reshape(3, 3, 2)
    states[2, 2] = torch.tensor([4.0, 5.0])  # own rows: states[i, i] = (0, 1), (8, 9), (4, 5)
    with torch.no_grad():
        model.decoders[0].weight.copy_(torch.eye(2))
        model.decoders[0].bias.zero_()
        out = model(path3(), FixedExecutor(states), budget=15)
    assert out.shape == (1, 2)
    assert torch.allclose(out, torch.log_softmax(torch.tensor(expected), -1))


def test_all_readout_decodes_every_node_per_head_and_targets_match():
    model = AMPModel("act", 5, 2, 2, readout="all", heads=2, msg_size=6)
    H = 2
    states = torch.zeros(1, 4, model.cell.state_size)
    states[0, :, H:2 * H] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 2.0]])  # the ACT accumulator
    g = GraphData(torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]), torch.zeros(4, 5),
                  torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]]), 4, "node", starts=torch.tensor([0, 3]))
    ex = FixedExecutor(states)
    with torch.no_grad():
        for dec in model.decoders:
            dec.weight.copy_(torch.eye(2))
            dec.bias.zero_()
        model.decoders[1].weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        out = model(g, ex, budget=40)
    assert out.shape == (2, 4, 2)
    assert out[0].argmax(-1).tolist() == [0, 1, 0, 1]
    assert out[1].argmax(-1).tolist() == [1, 0, 1, 0]
    assert model.targets(g).tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]
    (run,) = ex.calls[0][0]
    assert run.starts == (0, 3) and run.messages[1].tolist() == [0, 1, 0, 0, 0, 0]


def test_model_argument_errors():
    with pytest.raises(ValueError, match="readout"):
        AMPModel("rnn", 1, 4, 2, readout="nodes")
    with pytest.raises(ValueError, match="pooling"):
        AMPModel("rnn", 1, 4, 2, readout="pool", aggr="median")
    with pytest.raises(ValueError, match="heads"):
        AMPModel("rnn", 1, 4, 2, readout="start", heads=2)
    model = AMPModel("rnn", 5, 4, 2, readout="all")
    with pytest.raises(ValueError, match="starts"):
        model.runs(path3())


def test_engine_forward_limits1_gives_log_probabilities():
    g = limits1(0).train[0]
    model = AMPModel("rnn", 4, 4, 2, readout="start")
    init_parameters(model, torch.Generator().manual_seed(0))
    out = model(g, EngineExecutor(), budget=5 * 16)
    assert out.shape == (16, 2)
    assert torch.allclose(out.exp().sum(-1), torch.ones(16))
    loss = nll(out, model.targets(g))
    loss.backward()
    assert model.cell.update.weight.grad.abs().sum() > 0


def test_engine_forward_parity_single_run_from_origin():
    g = shortest_path_parity(1, 10, 3)[0]
    model = AMPModel("iter", 5, 4, 2, readout="all")
    with torch.no_grad():
        out = model(g, EngineExecutor(), budget=100)
    assert out.shape == (1, 10, 2)
    assert model.targets(g).shape == (1, 10)


@pytest.mark.parametrize("kind,readout,aggr", [("rnn", "start", "sum"), ("gru", "pool", "max"),
                                               ("lstm", "pool", "mean"), ("gru", "all", "sum")])
def test_forward_many_computes_what_the_readout_reads_with_the_engine_numbers(kind, readout, aggr):
    from ampsim.batched import BatchedExecutor

    graphs = limits1(0).train[:3] if readout != "all" else shortest_path_parity(1, 9, 3)[:3]
    F = graphs[0].x.shape[1]
    model = AMPModel(kind, F, 4, 2, readout=readout, aggr=aggr, msg_size=5 if readout == "all" else 3).double()
    init_parameters(model, torch.Generator().manual_seed(1))
    graphs = [GraphData(g.edge_index, g.x.double(), g.y, g.num_nodes, g.level, g.starts, g.meta) for g in graphs]
    budget = 4 * graphs[0].num_nodes
    params = list(model.parameters())
    ref = [model(g, EngineExecutor(), budget) for g in graphs]            # every delivery, one message at a time
    bx = BatchedExecutor()
    got = model.forward_many(graphs, bx, [budget] * len(graphs))           # only what the readout reads
    computed, every = bx.last.states.shape[0], bx.last.deliveries
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=0.0)
    g_ref = torch.autograd.grad(sum(r.sum() for r in ref), params)
    g_got = torch.autograd.grad(sum(r.sum() for r in got), params)
    for a, b in zip(g_ref, g_got):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=0.0)
    n_init = sum(g.num_nodes for g in graphs)
    assert computed < 1 + n_init + sum(every)  # pruned (not "all") and equal rows computed once (all features 0)
    plain = BatchedExecutor(dedup=False)
    again = model.forward_many(graphs, plain, [budget] * len(graphs))
    for a, b in zip(ref, again):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=0.0)
    if readout == "all":
        assert plain.last.states.shape[0] == 1 + n_init + sum(every)  # every final state is read: no pruning
    else:
        assert plain.last.states.shape[0] < 1 + n_init + sum(every)
