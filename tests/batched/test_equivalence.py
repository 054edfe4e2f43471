"""BatchedExecutor == EngineExecutor: same deliveries, same final states and gradients (to 1e-5)."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from ampsim.batched import BatchedExecutor, fused, plan
from ampsim.cells.cells import CELL_KINDS, AMPCell
from ampsim.cells.execute import EngineExecutor, RunSpec, graph_of
from ampsim.data.graphdata import GraphData
from ampsim.trace.tracers import ListTracer

# the lead's CellRule reads the gate with float() on a tensor that requires grad
pytestmark = [pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar"),
              pytest.mark.usefixtures("one_thread")]

F, H, M = 3, 6, 3


@pytest.fixture(autouse=True, params=["eager", "fused"])
def level_loop(request, monkeypatch):
    """Every test runs with the eager level loop and with the compiled one (AMPSIM_FUSED=0 / 1)."""
    if request.param == "fused" and not fused.available():
        pytest.skip(f"the compiled level loop cannot be built here: {fused.failure()}")
    monkeypatch.setenv(fused.ENV, "1" if request.param == "fused" else "0")
    return request.param


def graph_data(G: nx.Graph, seed: int, dtype=torch.float64) -> GraphData:
    G = nx.convert_node_labels_to_integers(G)
    pairs = [(u, v) for u, v in G.edges()] + [(v, u) for u, v in G.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    x = torch.randn(G.number_of_nodes(), F, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return GraphData(ei, x, torch.zeros(1, dtype=torch.long), G.number_of_nodes(), "graph")


def graphs(dtype=torch.float64) -> list[GraphData]:
    iso = nx.path_graph(3)
    iso.add_node(3)  # an isolated node: never reached, keeps its encoding
    return [graph_data(nx.cycle_graph(5), 0, dtype), graph_data(nx.gnp_random_graph(7, 0.45, seed=3), 1, dtype),
            graph_data(nx.star_graph(3), 2, dtype), graph_data(iso, 3, dtype)]


def make_cell(kind: str, gate: bool, dtype=torch.float64) -> AMPCell:
    torch.manual_seed(7)
    cell = AMPCell(kind, F, H, M, gate=gate).to(dtype)
    with torch.no_grad():
        if kind == "act":
            cell.halting.bias.fill_(1.0)  # halts after a few deliveries: later copies are dropped
        if kind == "iter":
            cell.halting.bias.fill_(4.0)  # R = prod(1 - c) falls below 1e-7 within the budget
        if gate:
            cell.emit_gate.bias.fill_(0.6)  # some deliveries emit, some do not
    return cell


def run_sets(gs, msg: torch.Tensor) -> list[list[RunSpec]]:
    """One run per node (Tables 2 and 4) plus one run with two start nodes and its own messages."""
    out = []
    for g in gs:
        runs = [RunSpec((i,), msg, 100 * i + 3) for i in range(g.num_nodes)]
        two = torch.stack([msg[0], 2.0 * msg[0]])
        runs.append(RunSpec((g.num_nodes - 1, 0), two, 17))
        out.append(runs)
    return out


def loss_of(states: list[torch.Tensor]) -> torch.Tensor:
    return sum((s * s).sum() + s.sum() for s in states)


def both(cell, gs, runs, budget, delay, fifo, mode="auto", msg=None):
    """``runs`` is a list of run lists, or a function making it (fresh autograd nodes per call)."""
    make = runs if callable(runs) else (lambda: runs)
    params = list(cell.parameters()) + ([msg] if msg is not None else [])
    engine = EngineExecutor()
    ref = [engine.execute(cell, g, r, budget, delay, fifo) for g, r in zip(gs, make())]
    gref = torch.autograd.grad(loss_of(ref), params, allow_unused=True)
    bx = BatchedExecutor(mode=mode)
    got = bx.execute_many(cell, gs, make(), budget, delay, fifo)
    ggot = torch.autograd.grad(loss_of(got), params, allow_unused=True)
    return ref, got, gref, ggot, bx.last


def assert_same(ref, got, gref, ggot, atol=1e-5, rtol=0.0):
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, atol=atol, rtol=rtol)
    for a, b in zip(gref, ggot):
        if a is None:
            assert b is None or float(b.abs().max()) == 0.0
        else:
            torch.testing.assert_close(b, a, atol=atol, rtol=rtol)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("delay,fifo", [("constant", False), ("uniform", False), ("uniform", True)])
def test_outputs_and_gradients_equal_the_engine(kind, gate, delay, fifo):
    gs = graphs()
    cell = make_cell(kind, gate)
    msg = torch.randn(1, M, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    ref, got, gref, ggot, unrolled = both(cell, gs, lambda: run_sets(gs, msg), 11, delay, fifo, msg=msg)
    assert_same(ref, got, gref, ggot)
    assert any(float(g.abs().max()) > 0 for g in ggot if g is not None)


@pytest.mark.parametrize("kind", ["act", "iter"])
def test_halted_nodes_drop_and_drops_do_not_count(kind):
    gs = graphs()
    cell = make_cell(kind, False)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    engine = EngineExecutor(tracer_factory=lambda i: ListTracer(states=False))
    tracers = []
    engine.tracer_factory = lambda i: tracers.append(ListTracer(states=False)) or tracers[-1]
    ref = [engine.execute(cell, g, r, 25, "uniform") for g, r in zip(gs, runs)]
    bx = BatchedExecutor(record=True)
    got = bx.execute_many(cell, gs, runs, 25, "uniform")
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0.0)
    want = [[(r.event, r.dst, r.msg_id, r.cause_id) for r in t.records if r.event in ("deliver", "drop")]
            for t in tracers]
    assert bx.last.records == want
    drops = sum(e == "drop" for recs in want for e, *_ in recs)
    assert drops > 0
    # runs cut by the budget processed exactly 25 deliveries, drops excluded
    for recs, reason in zip(bx.last.records, bx.last.reasons):
        delivered = sum(e == "deliver" for e, *_ in recs)
        assert delivered == 25 if reason == "message_budget" else delivered < 25


def test_gate_makes_runs_quiet_and_the_sequence_matches():
    gs = graphs()
    cell = make_cell("gru", True)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    tracers = []
    engine = EngineExecutor(tracer_factory=lambda i: tracers.append(ListTracer(states=False)) or tracers[-1])
    for g, r in zip(gs, runs):
        engine.execute(cell, g, r, 30, "constant")
    bx = BatchedExecutor(record=True)
    bx.execute_many(cell, gs, runs, 30, "constant")
    want = [[(r.event, r.dst, r.msg_id, r.cause_id) for r in t.records if r.event in ("deliver", "drop")]
            for t in tracers]
    assert bx.last.records == want
    assert "quiescent" in bx.last.reasons and "message_budget" in bx.last.reasons


def test_budget_cut_mid_level():
    g = graphs()[1]
    sched = plan(graph_of(g), [((0,), 3)], 200)
    # a budget whose last delivery shares its level with deliveries that come after it
    budget = next(b for b in range(2, 200) if (sched.level[b:] == sched.level[b - 1]).any())
    cell = make_cell("gru", False)
    runs = [[RunSpec((0,), torch.ones(1, M, dtype=torch.float64), 3)]]
    ref, got, gref, ggot, unrolled = both(cell, [g], runs, budget, "constant", False)
    assert_same(ref, got, gref, ggot)
    assert unrolled.deliveries == (budget,)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_lockstep_driver_equals_levels_for_always_emit_cells(kind, delay):
    gs = graphs()
    cell = make_cell(kind, False)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    params = list(cell.parameters())
    outs, grads = [], []
    for mode in ("levels", "lockstep"):
        bx = BatchedExecutor(mode=mode)
        states = bx.execute_many(cell, gs, runs, 20, delay)
        outs.append(states)
        grads.append(torch.autograd.grad(loss_of(states), params))
    assert_same(outs[0], outs[1], grads[0], grads[1], atol=1e-10)


def test_float32_matches_to_relative_1e5():
    gs = graphs(torch.float32)
    cell = make_cell("gru", False, torch.float32)
    runs = run_sets(gs, torch.ones(1, M))
    ref, got, gref, ggot, _ = both(cell, gs, runs, 15, "uniform", False)
    scale = max(float(a.abs().max()) for a in gref)
    assert_same(ref, got, gref, ggot, atol=1e-5 * max(scale, 1.0))


def test_levels_mode_refuses_value_dependent_cells():
    with pytest.raises(ValueError, match="lockstep"):
        BatchedExecutor(mode="levels").execute(make_cell("act", False), graphs()[0],
                                               [RunSpec((0,), torch.ones(1, M, dtype=torch.float64))], 5)


def test_bad_runs_are_rejected():
    g = graphs()[0]
    cell = make_cell("rnn", False)
    with pytest.raises(ValueError, match="messages"):
        BatchedExecutor().execute(cell, g, [RunSpec((0, 1), torch.ones(1, M, dtype=torch.float64))], 5)
    with pytest.raises(ValueError, match=r"^runs\[0\]\.starts\[0\] must be a node index in 0\.\.4, got 9$"):
        BatchedExecutor().execute(cell, g, [RunSpec((9,), torch.ones(1, M, dtype=torch.float64))], 5)
    with pytest.raises(ValueError, match="budget"):
        BatchedExecutor().execute(cell, g, [RunSpec((0,), torch.ones(1, M, dtype=torch.float64))], 0)
    with pytest.raises(ValueError, match="mode"):
        BatchedExecutor(mode="fast")


def test_no_grad_forward_and_history():
    gs = graphs()
    cell = make_cell("rnn", False)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    with torch.no_grad():
        ref = [EngineExecutor().execute(cell, g, r, 9) for g, r in zip(gs, runs)]
        bx = BatchedExecutor()
        got = bx.execute_many(cell, gs, runs, 9)
    assert not got[0].requires_grad
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=0.0)
    # history: the start node of run 0 on the path graph 0-1-2 (+ isolated 3), budget 4:
    # deliveries 0 (start), 1, 0, 2 -> node 0 holds [encoding, after d0, after d2]
    u = bx.unroll(cell, [gs[3]], [[(0,)]], [[3]], torch.ones(1, M, dtype=torch.float64), 4)
    e = u.entry(0, 0, 0)
    hist = u.history(torch.tensor([e]), 4)[0]
    assert float(hist[0].abs().max()) == 0.0  # left padding
    enc = cell.init_state(gs[3].x[:1])
    torch.testing.assert_close(hist[1:2], enc.detach())
    torch.testing.assert_close(hist[3], u.final()[e])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("kind,gate", [("gru", False), ("act", False), ("rnn", True)])
def test_cuda_matches_cpu(kind, gate):
    gs = graphs()
    cell = make_cell(kind, gate)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    cpu = BatchedExecutor().execute_many(cell, gs, runs, 15, "uniform")
    gcell = make_cell(kind, gate).cuda()
    gruns = [[RunSpec(r.starts, r.messages.cuda(), r.seed) for r in rs] for rs in runs]
    gpu = BatchedExecutor().execute_many(gcell, gs, gruns, 15, "uniform")
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, atol=1e-8, rtol=0.0)


@pytest.mark.parametrize("fifo", [False, True])
def test_lockstep_windows_span_several_deliveries_under_uniform_delays(fifo):
    # the lookahead over pre-drawn delays batches several deliveries of one run; same sequence
    g = graph_data(nx.gnp_random_graph(30, 0.12, seed=11), 4)
    cell = make_cell("iter", True)
    runs = [[RunSpec((0, 7), torch.ones(2, M, dtype=torch.float64), 9)]]
    tracers = []
    engine = EngineExecutor(tracer_factory=lambda i: tracers.append(ListTracer(states=False)) or tracers[-1])
    ref = engine.execute(cell, g, runs[0], 150, "uniform", fifo)
    bx = BatchedExecutor(record=True)
    got = bx.execute_many(cell, [g], runs, 150, "uniform", fifo)[0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0.0)
    want = [(r.event, r.dst, r.msg_id, r.cause_id) for r in tracers[0].records if r.event in ("deliver", "drop")]
    assert bx.last.records == [want]
    assert bx.last.deliveries[0] > 2 * bx.last.batches


def test_retain_freed_memory_applies_on_linux_glibc():
    import platform
    import sys

    from ampsim.batched import retain_freed_memory

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is expected


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("delay", ["constant", "uniform"])
def test_checkpointed_segments_equal_the_engine(kind, delay):
    # segments of 7 deliveries: many cuts, rows carried across several of them, a compact result
    gs = graphs()
    cell = make_cell(kind, False)
    msg = torch.randn(1, M, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    params = list(cell.parameters()) + [msg]
    ref = [EngineExecutor().execute(cell, g, r, 11, delay) for g, r in zip(gs, run_sets(gs, msg))]
    gref = torch.autograd.grad(loss_of(ref), params)
    bx = BatchedExecutor(segment_rows=7)
    got = bx.execute_many(cell, gs, run_sets(gs, msg), 11, delay)
    assert bx.last.compact
    assert_same(ref, got, gref, torch.autograd.grad(loss_of(got), params))


def test_checkpointed_long_run_equals_one_segment():
    # one run of 6,000 deliveries on a 600-node tree with cycles: 23 segments vs none, float64
    G = nx.random_labeled_tree(600, seed=1)
    rnd = torch.Generator().manual_seed(2)
    while G.number_of_edges() < 720:
        u, v = torch.randint(0, 600, (2,), generator=rnd).tolist()
        if u != v:
            G.add_edge(u, v)
    g = graph_data(G, 6)
    cell = make_cell("gru", False)
    msg = torch.ones(1, M, dtype=torch.float64, requires_grad=True)
    params = list(cell.parameters()) + [msg]
    out, grads = [], []
    for rows in (0, 256):
        bx = BatchedExecutor(segment_rows=rows)
        u = bx.unroll(cell, [g], [[(0,)]], [[4]], msg, 6000, "uniform")
        assert sum(u.deliveries) == 6000 and u.compact == (rows > 0)
        final = u.final()
        out.append(final.detach())
        grads.append(torch.autograd.grad((final * final).sum() + final.sum(), params))
    assert len(bx._segments(bx._programs[next(iter(bx._programs))], cell, torch.float64,
                            torch.device("cpu")).levels) > 20
    torch.testing.assert_close(out[1], out[0], atol=1e-10, rtol=0.0)
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-10)
    assert float(grads[0][0].abs().max()) > 0


def test_checkpoint_stores_hold_each_carried_row_once():
    # brute force over the 600-node run's segments: a segment carries in exactly the rows made before it
    # that it reads (the last one also the final states), and the store holds each such row once
    G = nx.random_labeled_tree(600, seed=1)
    G.add_edges_from([(0, 300), (5, 450), (17, 599)])
    g = graph_data(G, 6)
    cell = make_cell("gru", False)
    bx = BatchedExecutor(segment_rows=256)
    bx.unroll(cell, [g], [[(0,)]], [[4]], torch.ones(1, M, dtype=torch.float64), 3000, "uniform")
    prog = bx._programs[next(iter(bx._programs))]
    seg = bx._segments(prog, cell, torch.float64, torch.device("cpu"))
    assert seg.compact and seg.count > 5
    base, K, D = 1 + prog.n_init, prog.n_starts, prog.num_deliveries
    ssrc, msrc, finals = prog.state_src.tolist(), prog.msg_src.tolist(), set(prog.final_rows.tolist())
    ends = list(seg.starts[1:]) + [D]
    want_s, want_m = set(range(base)), set(range(K))
    for s, (lo, hi) in enumerate(zip(seg.starts, ends)):
        read_s = {r for r in ssrc[lo:hi] if r < base + lo}
        if s == seg.count - 1:
            read_s |= {r for r in finals if r < base + lo}
        read_m = {r for r in msrc[lo:hi] if r < K + lo}
        assert seg.cin_state(s).tolist() == sorted(read_s)
        assert seg.cin_msg(s).tolist() == sorted(read_m)
        want_s |= read_s
        want_m |= read_m
    assert seg.store_state.tolist() == sorted(want_s)
    assert seg.store_msg.tolist() == sorted(want_m)


def test_checkpointed_history_needs_every_row():
    g = graphs()[1]
    cell = make_cell("gru", False)
    u = BatchedExecutor(segment_rows=5).unroll(cell, [g], [[(0,)]], [[1]], torch.ones(1, M, dtype=torch.float64), 30)
    assert u.compact
    torch.testing.assert_close(u.history(torch.tensor([3]), 1)[:, 0], u.final()[3:4])
    with pytest.raises(ValueError, match="checkpointed"):
        u.history(torch.tensor([3]), 2)
    with pytest.raises(ValueError, match="segment_rows"):
        BatchedExecutor(segment_rows=-1)


def test_level_sizes_are_the_levels_execute_many_runs():
    gs = graphs()
    cell = make_cell("rnn", False)
    runs = run_sets(gs, torch.ones(1, M, dtype=torch.float64))
    n_init = sum(g.num_nodes for g in gs)
    for dedup in (False, True):
        bx = BatchedExecutor(dedup=dedup)
        sizes = bx.level_sizes(gs, runs, 25)
        assert len(bx._programs) == 1  # planned once, and kept for the run
        bx.execute_many(cell, gs, runs, 25)
        assert len(bx._programs) == 1
        assert len(sizes) == bx.last.batches and sum(sizes) == bx.last.states.shape[0] - 1 - n_init
        assert all(s > 0 for s in sizes)
        if not dedup:
            assert sum(sizes) == sum(bx.last.deliveries)
            every = sum(sizes)
    assert sum(sizes) < every  # equal start messages: some deliveries of a level are equal
    with pytest.raises(ValueError, match="budget"):
        bx.level_sizes(gs, runs, 0)


def own_runs(gs):
    """One run per node, started there (Table 4), and each run's start node's entry (``keep``)."""
    starts = [[(i,) for i in range(g.num_nodes)] for g in gs]
    seeds = [[100 * i + 3 for i in range(g.num_nodes)] for g in gs]
    keep, off = [], 0
    for g in gs:
        keep += [off + i * (g.num_nodes + 1) for i in range(g.num_nodes)]
        off += g.num_nodes ** 2
    return starts, seeds, torch.tensor(keep)


def reads(u, keep, history: bool, params) -> tuple:
    """``(u, final states of keep, their 4-state histories (or the finals again), gradients of a loss of both)``."""
    z = u.final_of(keep)
    hist = u.history(keep, 4) if history else z
    return u, z, hist, torch.autograd.grad((z * z).sum() + z.sum() + hist.sum(), params)


def assert_fewer_rows_same_reads(ref, got) -> None:
    """``got`` (a :func:`reads`) ran the same schedule as ``ref`` on fewer rows, with the same reads to 1e-12."""
    (a, z0, h0, g0), (b, z1, h1, g1) = ref, got
    assert b.reasons == a.reasons and b.deliveries == a.deliveries  # the same schedule
    assert b.states.shape[0] < a.states.shape[0]
    torch.testing.assert_close(z1, z0, atol=1e-12, rtol=0.0)
    torch.testing.assert_close(h1, h0, atol=1e-12, rtol=0.0)
    for x, y in zip(g0, g1):
        torch.testing.assert_close(y, x, atol=1e-12, rtol=0.0)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("delay,segment_rows", [("constant", 0), ("uniform", 0), ("constant", 8)])
def test_keep_computes_only_the_causal_past_with_the_same_values_and_gradients(kind, delay, segment_rows):
    gs = graphs()
    cell = make_cell(kind, False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64, requires_grad=True)
    params = list(cell.parameters()) + [msgs]
    full, kept = [reads(BatchedExecutor(segment_rows=segment_rows).unroll(cell, gs, starts, seeds, msgs, 9, delay,
                                                                          keep=k), keep, segment_rows == 0, params)
                  for k in (None, keep)]
    assert_fewer_rows_same_reads(full, kept)
    full, kept = full[0], kept[0]
    left_out = torch.nonzero(kept.final_rows < 0)[:, 0]
    assert len(left_out) > 0
    with pytest.raises(ValueError, match=f"entry {int(left_out[0])} was not computed"):
        kept.final_of(left_out[:1])
    with pytest.raises(ValueError, match="was not computed"):
        kept.final()
    readable = torch.nonzero(kept.final_rows >= 0)[:, 0]
    torch.testing.assert_close(kept.final_of(readable), full.final_of(readable), atol=1e-12, rtol=0.0)


def test_keep_on_a_path_drops_the_delivery_no_kept_state_reads():
    # path 0-1-2 (+ isolated 3), one run from node 0, budget 4: deliveries d0 = node 0 (start),
    # d1 = node 1 (from d0), d2 = node 0 (from d1), d3 = node 2 (from d1). Node 0's final state
    # (d2) reads d0 and d1; nothing reads d3.
    g = graphs()[3]
    cell = make_cell("gru", False)
    one = torch.ones(1, M, dtype=torch.float64)
    full = BatchedExecutor().unroll(cell, [g], [[(0,)]], [[3]], one, 4)
    kept = BatchedExecutor().unroll(cell, [g], [[(0,)]], [[3]], one, 4, keep=[0])
    assert full.states.shape[0] == 1 + 4 + 4 and kept.states.shape[0] == 1 + 4 + 3
    assert full.final_rows.tolist() == [7, 6, 8, 4]
    assert kept.final_rows.tolist() == [7, 6, -1, 4]  # node 2's only delivery is not computed
    assert kept.deliveries == (4,) and kept.reasons == ("message_budget",)
    torch.testing.assert_close(kept.final_of(torch.tensor([0, 1, 3])), full.final_of(torch.tensor([0, 1, 3])),
                               atol=1e-12, rtol=0.0)  # a level of 1 row, not 2: the last bit may differ


@pytest.mark.parametrize("keep,match", [([[0]], "1-D sequence of integer entries"), ([0.5], "integer entries"),
                                        ([4], r"entries must be in 0\.\.3"), ([-1], r"entries must be in 0\.\.3")])
def test_bad_keep_is_refused(keep, match):
    g = graphs()[3]
    with pytest.raises(ValueError, match=match):
        BatchedExecutor().unroll(make_cell("rnn", False), [g], [[(0,)]], [[3]], torch.ones(1, M, dtype=torch.float64),
                                 4, keep=keep)


def test_keep_with_a_value_dependent_schedule_computes_every_row():
    gs = graphs()
    cell = make_cell("act", False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64)
    with torch.no_grad():
        full = BatchedExecutor().unroll(cell, gs, starts, seeds, msgs, 9)
        kept = BatchedExecutor().unroll(cell, gs, starts, seeds, msgs, 9, keep=keep)
    assert kept.states.shape == full.states.shape
    torch.testing.assert_close(kept.final(), full.final(), atol=0.0, rtol=0.0)


def labelled_graphs() -> list[GraphData]:
    """The test graphs with one-hot features of 2 labels (as the TU data sets): many start states are equal."""
    out = []
    for g in graphs():
        x = torch.nn.functional.one_hot(torch.arange(g.num_nodes) % 2, F).double()
        out.append(GraphData(g.edge_index, x, g.y, g.num_nodes, g.level))
    return out


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("delay,segment_rows,pruned", [("constant", 0, False), ("constant", 0, True),
                                                       ("uniform", 0, True), ("constant", 8, True)])
def test_dedup_computes_equal_rows_once_with_the_same_values_and_gradients(kind, delay, segment_rows, pruned):
    gs = labelled_graphs()
    cell = make_cell(kind, False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64)  # no gradient: equal rows share a number
    params = list(cell.parameters())
    plain, dedup = [reads(BatchedExecutor(segment_rows=segment_rows, dedup=d).unroll(
        cell, gs, starts, seeds, msgs, 9, delay, keep=keep if pruned else None), keep, segment_rows == 0, params)
        for d in (False, True)]
    assert_fewer_rows_same_reads(plain, dedup)
    if not pruned:
        torch.testing.assert_close(dedup[0].final(), plain[0].final(), atol=1e-12, rtol=0.0)


def test_dedup_keeps_rows_apart_whose_own_gradient_is_wanted():
    gs = labelled_graphs()
    cell = make_cell("gru", False)
    starts, seeds, keep = own_runs(gs)
    outs = []
    for dedup in (False, True):
        msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64, requires_grad=True)
        u = BatchedExecutor(dedup=dedup).unroll(cell, gs, starts, seeds, msgs, 9, keep=keep)
        z = u.final_of(keep)
        outs.append((u.states.shape[0], torch.autograd.grad((z * z).sum(), [msgs] + list(cell.parameters()))))
    (rows0, g0), (rows1, g1) = outs
    assert rows1 < rows0  # within a run, equal nodes reached by the same message still merge (the star's leaves)
    assert g1[0].abs().sum() > 0 and bool((g1[0] != 0).any(dim=1).all())  # every start message gets its own gradient
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=0.0)


def test_dedup_on_a_mirrored_path_computes_each_pair_of_runs_once():
    # path 0-1-2 (+ isolated 3), equal features, runs from 0 and from 2, budget 4: run 0 delivers
    # to 0 (start), 1, 0, 2 and run 1 to 2 (start), 1, 2, 0 -- the mirror image, level by level the
    # same (state, message) pairs. 8 deliveries, 4 computed rows
    g = graphs()[3]
    g = GraphData(g.edge_index, torch.ones(4, F, dtype=torch.float64), g.y, 4, g.level)
    cell = make_cell("gru", False)
    one = torch.ones(2, M, dtype=torch.float64)
    plain = BatchedExecutor(dedup=False).unroll(cell, [g], [[(0,), (2,)]], [[3, 3]], one, 4)
    dedup = BatchedExecutor().unroll(cell, [g], [[(0,), (2,)]], [[3, 3]], one, 4)
    # and the 4 equal start states are one row: row 0, 1 start state, 4 deliveries
    assert plain.states.shape[0] == 1 + 4 + 8 and dedup.states.shape[0] == 1 + 1 + 4
    assert dedup.deliveries == plain.deliveries == (4, 4)
    run0, run1 = dedup.final_rows.tolist()[:4], dedup.final_rows.tolist()[4:]
    assert run1 == [run0[2], run0[1], run0[0], 1] and run0[3] == 1  # the mirror; node 3 keeps its start state
    torch.testing.assert_close(dedup.final(), plain.final(), atol=1e-12, rtol=0.0)
    with pytest.raises(ValueError, match="dedup"):
        BatchedExecutor(dedup=1)


def test_dedup_sees_features_change_in_place_or_replaced():
    gs = labelled_graphs()
    cell = make_cell("rnn", False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64)
    bx, plain = BatchedExecutor(), BatchedExecutor(dedup=False)

    def same():
        with torch.no_grad():
            a = bx.unroll(cell, gs, starts, seeds, msgs, 9, keep=keep).final_of(keep)
            b = plain.unroll(cell, gs, starts, seeds, msgs, 9, keep=keep).final_of(keep)
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0.0)
        return bx.last.states.shape[0]

    merged = same()
    gs[0].x[0, 2] = 5.0  # in place: node 0 of the cycle now differs from every other node
    assert same() > merged
    g = gs[1]  # a new GraphData for the same graph (sharing its meta), other features
    gs[1] = GraphData(g.edge_index, torch.randn(g.num_nodes, F, dtype=torch.float64,
                                                generator=torch.Generator().manual_seed(4)), g.y, g.num_nodes,
                      g.level, meta=g.meta)
    assert same() > merged


def test_edges_changed_in_place_are_seen():
    g = graphs()[3]  # path 0-1-2 and an isolated node 3
    cell = make_cell("gru", False)
    one = torch.ones(1, M, dtype=torch.float64)
    bx = BatchedExecutor()
    with torch.no_grad():
        before = bx.unroll(cell, [g], [[(0,)]], [[3]], one, 6).final()
        g.edge_index[1, g.edge_index[1] == 2] = 3  # in place: the edge 1-2 becomes 1-3
        g.edge_index[0, g.edge_index[0] == 2] = 3
        fresh = GraphData(g.edge_index.clone(), g.x, g.y, g.num_nodes, g.level)
        after = bx.unroll(cell, [g], [[(0,)]], [[3]], one, 6).final()
        expected = BatchedExecutor().unroll(cell, [fresh], [[(0,)]], [[3]], one, 6).final()
    assert graph_of(g).neighbors == graph_of(fresh).neighbors == ((1,), (0, 3), (), (1,))
    torch.testing.assert_close(after, expected, atol=0.0, rtol=0.0)
    assert not torch.equal(after, before)


def test_dedup_with_distinct_leaves_leaves_the_program_alone():
    # distinct features and start messages that need their own gradients: no two rows can be equal
    from ampsim.batched.program import _dedup

    gs = graphs()
    cell = make_cell("rnn", False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.randn(sum(g.num_nodes for g in gs), M, dtype=torch.float64, requires_grad=True)
    bx = BatchedExecutor()
    u = bx.unroll(cell, gs, starts, seeds, msgs, 9)
    plain = BatchedExecutor(dedup=False).unroll(cell, gs, starts, seeds, msgs, 9)
    assert u.states.shape == plain.states.shape
    torch.testing.assert_close(u.final(), plain.final(), atol=0.0, rtol=0.0)
    program = next(iter(bx._programs.values()))
    n_init = sum(g.num_nodes for g in gs)
    assert _dedup(program, np.arange(n_init), np.arange(program.n_starts)) is program


@pytest.mark.parametrize("kind,segment_rows,k", [("gru", 0, None), ("gru", 0, 4), ("lstm", 8, None),
                                                 ("act", 0, None)])
def test_sum_by_equals_index_add_of_the_reads_with_the_same_gradients(kind, segment_rows, k):
    gs = labelled_graphs()
    cell = make_cell(kind, False)
    starts, seeds, keep = own_runs(gs)
    msgs = torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64)
    owner = torch.repeat_interleave(torch.arange(len(gs)), torch.tensor([g.num_nodes for g in gs]))
    u = BatchedExecutor(segment_rows=segment_rows).unroll(cell, gs, starts, seeds, msgs, 9, keep=keep,
                                                          history=k is not None)
    assert (u.program is None) == (kind == "act" or segment_rows > 0)  # lock-step / checkpointed: no program
    rows = u.final_of(keep) if k is None else u.history(keep, k)
    ref = torch.zeros((len(gs),) + rows.shape[1:], dtype=rows.dtype).index_add_(0, owner, rows)
    for again in range(2):  # the second call reads the matrix kept with the program
        got = u.sum_by(keep, owner, len(gs), k)
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0.0)
        g_ref, = torch.autograd.grad((ref * ref).sum(), [u.states], retain_graph=True)  # the readout's part
        g_got, = torch.autograd.grad((got * got).sum(), [u.states], retain_graph=True)
        torch.testing.assert_close(g_got, g_ref, atol=1e-12, rtol=0.0)
    if u.program is not None:
        assert sum(1 for key in u.program._device if key[0] == "sum_by") == 1
        # other groups (all entries in one group, one graph left empty): another matrix, not the kept one
        one = torch.zeros_like(owner)
        torch.testing.assert_close(u.sum_by(keep, one, 2, k)[0], ref.sum(0), atol=1e-12, rtol=0.0)
        assert float(u.sum_by(keep, one, 2, k)[1].abs().sum()) == 0.0


def test_sum_by_refuses_bad_groups():
    gs = labelled_graphs()
    starts, seeds, keep = own_runs(gs)
    u = BatchedExecutor().unroll(make_cell("rnn", False), gs, starts, seeds,
                                 torch.ones(sum(g.num_nodes for g in gs), M, dtype=torch.float64), 9, keep=keep)
    with pytest.raises(ValueError, match="one per entry"):
        u.sum_by(keep, torch.zeros(len(keep) - 1, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"group values must lie in 0\.\.1"):
        u.sum_by(keep, torch.full((len(keep),), 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="k must be"):
        u.sum_by(keep, torch.zeros(len(keep), dtype=torch.long), 1, 0)
    with pytest.raises(ValueError, match="groups must be"):
        u.sum_by(keep, torch.zeros(len(keep), dtype=torch.long), 0)
    with pytest.raises(ValueError, match="integer group numbers"):
        u.sum_by(keep, torch.zeros(len(keep)), 1)
    one = u.sum_by(keep, torch.zeros(len(keep), dtype=torch.int32), 1)  # any integer dtype
    torch.testing.assert_close(one[0], u.final_of(keep).sum(0), atol=1e-12, rtol=0.0)
