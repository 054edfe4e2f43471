"""The settled driver (order-free counted cells, wave by wave) == the SimPy engine and the level path."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from ampsim import native
from ampsim.batched import BatchedExecutor
from ampsim.cells.aggregate import AttentionCell, MeanCell
from ampsim.cells.execute import EngineExecutor, RunSpec

from .test_planned import F, graph_data, graphs, grads

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(params=["compiled", "eager"])
def path(request, monkeypatch):
    """The attention aggregate and the dropout draws in compiled code (the default where it builds) or in torch."""
    if request.param == "compiled":
        if not native.available():
            pytest.skip(f"the compiled library cannot be built here: {native.failure()}")
        monkeypatch.delenv(native.ENV, raising=False)
    else:
        monkeypatch.setenv(native.ENV, "0")
    return request.param


def make_cell(kind: str, waves: int = 2, dropout: float = 0.5):
    torch.manual_seed(6)
    if kind == "mean":
        cell = MeanCell(F, 4, 3, waves=waves, dropout=dropout).double()
    else:
        cell = AttentionCell(F, 3, 4, heads=2, waves=waves, dropout=dropout, attn_dropout=dropout).double()
    with torch.no_grad():
        for b in cell.biases:
            b.uniform_(-0.5, 0.5)
    return cell


def runs_of(cell, n: int, seed: int, noise=3) -> list[RunSpec]:
    """Every node started; a run of every other node (its neighbours stall); a run of node 0 only."""
    half = tuple(range(0, n, 2))
    return [RunSpec(tuple(range(n)), cell.start_message(n), seed, noise),
            RunSpec(half, cell.start_message(len(half)), seed + 1, noise),
            RunSpec((0,), cell.start_message(1), seed + 2, noise)]


def check(cell, data, runs, budget, delay, loss, train: bool, path: str):
    cell.train(train)
    eng = EngineExecutor()
    ref = eng.execute(cell, data, runs, budget, delay, loss=loss)
    g_ref = grads(cell, cell.output(ref.reshape(-1, ref.shape[-1])))
    ex = BatchedExecutor()
    out = ex.execute(cell, data, runs, budget, delay, loss=loss)
    assert ex.last_path == path
    assert torch.allclose(out, ref, atol=1e-9), (out - ref).abs().max()
    assert ex.last.reasons == tuple(r.reason for r in eng.last_results)
    assert ex.last.deliveries == tuple(r.deliveries for r in eng.last_results)
    for a, b in zip(grads(cell, cell.output(out.reshape(-1, out.shape[-1]))), g_ref):
        assert torch.allclose(a, b, atol=1e-9)
    ref_path = BatchedExecutor(settled=False).execute(cell, data, runs, budget, delay, loss=loss)
    assert torch.allclose(out, ref_path, atol=1e-9)
    return ex


@pytest.mark.parametrize("kind", ["mean", "attention"])
@pytest.mark.parametrize("waves", [1, 2, 3])
@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_settled_equals_engine(kind, waves, delay, path):
    """States, end reasons, deliveries and gradients; loss-free and uncut: no plan at all (K <= 2)."""
    cell = make_cell(kind, waves)
    for gi, data in enumerate(graphs()):
        for train in (False, True):
            ex = check(cell, data, runs_of(cell, data.num_nodes, 20 + gi), 10_000, delay, 0.0, train, "settled")
            assert ex.plans.misses == (0 if waves <= 2 else 1)


@pytest.mark.parametrize("kind", ["mean", "attention"])
@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_settled_with_loss_and_cut_budgets(kind, delay, path):
    """With loss, or a budget that cuts a run, the planned schedule says which copies arrived."""
    cell = make_cell(kind, 2)
    data = graphs()[0]
    runs = runs_of(cell, data.num_nodes, 5)
    for budget, loss in ((10_000, 0.15), (30, 0.0), (61, 0.1)):
        ex = check(cell, data, runs, budget, delay, loss, True, "settled")
        assert ex.plans.misses == 1


def test_budget_equal_to_the_deliveries_ends_with_the_budget():
    cell = make_cell("mean", 2)
    data = graph_data(nx.cycle_graph(5), 0)
    run = [RunSpec(tuple(range(5)), cell.start_message(5), 0, None)]
    full = 5 + 2 * 10
    for budget, reason in ((full, "message_budget"), (full + 1, "quiescent")):
        ex = check(cell, data, run, budget, "uniform", 0.0, False, "settled")
        assert ex.last.reasons == (reason,) and ex.last.deliveries == (full,)


def test_feature_gradients_keep_and_many_graphs():
    cell = make_cell("attention", 2)
    gs = graphs()
    runs = [runs_of(cell, g.num_nodes, 40 + i, noise=i) for i, g in enumerate(gs)]
    xs = [g.x.clone().requires_grad_(True) for g in gs]
    ex = BatchedExecutor()
    out = ex.unroll(cell, gs, [[r.starts for r in rr] for rr in runs], [[r.seed for r in rr] for rr in runs],
                    torch.cat([r.messages for rr in runs for r in rr]), 10_000, "uniform", features=xs,
                    noise_seeds=[rr[0].noise_seed for rr in runs])
    assert ex.last_path == "settled"
    ref = BatchedExecutor(settled=False).unroll(cell, gs, [[r.starts for r in rr] for rr in runs],
                                                [[r.seed for r in rr] for rr in runs],
                                                torch.cat([r.messages for rr in runs for r in rr]), 10_000,
                                                "uniform", features=xs, noise_seeds=[rr[0].noise_seed for rr in runs])
    a, b = out.final(), ref.final()
    assert torch.allclose(a, b, atol=1e-9)
    ga = torch.autograd.grad(cell.output(a).sum(), xs)
    gb = torch.autograd.grad(cell.output(b).sum(), xs)
    for u, v in zip(ga, gb):
        assert torch.allclose(u, v, atol=1e-9)
    keep = BatchedExecutor().execute_many(cell, gs, runs, 10_000, "uniform", keep=[[0, 2], [1], [3]])
    full = BatchedExecutor().execute_many(cell, gs, runs, 10_000, "uniform")
    for k, f, idx in zip(keep, full, ([0, 2], [1], [3])):
        assert torch.allclose(k, f.reshape(-1, f.shape[-1])[idx], atol=1e-12)


def test_reference_paths_when_asked_or_needed():
    """``settled=False``, ``record=True`` and ``history=True`` use the level path; start messages with a wave
    mask are refused by both (the planner reads starts as tag 0; tests/batched/test_planned.py)."""
    cell = make_cell("mean", 2)
    data = graphs()[0]
    run = runs_of(cell, data.num_nodes, 1)[:1]
    for ex in (BatchedExecutor(settled=False), BatchedExecutor(record=True)):
        ex.execute(cell, data, run, 10_000, "uniform")
        assert ex.last_path == "planned"
    ex = BatchedExecutor(segment_rows=0)
    ex.unroll(cell, [data], [[run[0].starts]], [[run[0].seed]], run[0].messages, 10_000, "uniform", history=True,
              noise_seeds=[run[0].noise_seed])
    assert ex.last_path == "planned"
    odd = run[0].messages.clone()
    odd[0, -1] = 1.0  # a start message that carries wave 1: read by step, not as a start
    with pytest.raises(ValueError, match="start message row 0 has tag 2"):
        BatchedExecutor().execute(cell, data, [RunSpec(run[0].starts, odd, 1, 3)], 10_000, "uniform")
    with pytest.raises(ValueError, match="settled"):
        BatchedExecutor(settled="yes")
