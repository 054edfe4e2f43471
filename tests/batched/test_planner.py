"""The planner reproduces the engine's schedule of always-emit runs, delivery for delivery."""
from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest

from ampsim import ListTracer, Message, Simulation
from ampsim.batched import PlanCache, engine_ties, plan, plan_key, planner, start_slots
from ampsim.batched.planner import start_index
from ampsim.engine.delays import Custom, Uniform
from ampsim.engine.errors import DelayError
from ampsim.graphs import as_graph
from ampsim.protocols import Echo


def engine_deliveries(graph, starts, seed, budget, delay, fifo):
    tracer = ListTracer(states=False)
    sim = Simulation(graph, Echo(), delay=delay, fifo=fifo, seed=seed, tracer=tracer, allow_isolated=True,
                     start={v: Message("start") for v in starts})
    result = sim.run(max_deliveries=budget)
    recs = [(r.dst, r.msg_id, r.cause_id, r.src, r.t_deliver) for r in tracer.records if r.event == "deliver"]
    return recs, result


def planned(schedule, run):
    return [(d.dst, d.msg_id, d.cause_id, d.src, d.t) for d in schedule.deliveries(run)]


def test_engine_ties_is_the_documented_rule():
    # the engine's semantics 3: copies of one instant are processed in msg_id order
    assert engine_ties() == "msg_id"


def test_same_instant_tie_rules():
    # edges 0-2, 0-3, 1-2; starts 0 and 1: at t=1 copies 2 (->2), 3 (->3), 4 (->2) arrive
    g = as_graph([[0, 0, 1], [2, 3, 2]], num_nodes=4)
    s = plan(g, [((0, 1), 0)], 5, ties="mailbox")
    assert [(d.dst, d.msg_id, d.cause_id) for d in s.deliveries(0)] == [
        (0, 0, -1), (1, 1, -1), (2, 2, 0), (2, 4, 1), (3, 3, 0)]
    s2 = plan(g, [((0, 1), 0)], 5, ties="msg_id")
    assert [d.msg_id for d in s2.deliveries(0)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("trial", range(60))
def test_random_graphs_match_engine_traces(trial):
    rnd = random.Random(trial)
    n = rnd.randint(1, 12)
    graph = as_graph(nx.gnp_random_graph(n, rnd.uniform(0.15, 0.6), seed=trial))
    starts = [rnd.randrange(n) for _ in range(rnd.randint(0, 3))]
    delay = rnd.choice(["constant", "uniform", 0.5, Uniform(0.25, 2.0)])
    fifo = rnd.random() < 0.5
    budget = rnd.randint(1, 70)
    seed = rnd.randint(0, 999)
    s = plan(graph, [(starts, seed)], budget, delay, fifo)
    recs, result = engine_deliveries(graph, starts, seed, budget, delay, fifo)
    assert planned(s, 0) == recs
    assert s.reasons[0] == result.reason
    assert s.sent[0] == result.sent


def test_several_runs_are_independent_and_concatenated():
    graph = as_graph(nx.petersen_graph())
    runs = [((0,), 1), ((3, 7), 2), ((), 3), ((5, 5), 4)]
    s = plan(graph, runs, 30, "uniform")
    for r, (starts, seed) in enumerate(runs):
        recs, result = engine_deliveries(graph, starts, seed, 30, "uniform", False)
        assert planned(s, r) == recs
    assert s.reasons == ("message_budget", "message_budget", "quiescent", "message_budget")
    assert np.array_equal(np.bincount(s.run, minlength=4), [30, 30, 0, 30])


def test_levels_follow_cause_and_previous_delivery():
    # path 0-1-2, start at 0, constant delays: 0@t0; 1@t1; 0,2@t2; 1,1@t3 ...
    g = as_graph(nx.path_graph(3))
    s = plan(g, [((0,), 0)], 7)
    got = [(d.dst, d.msg_id, d.cause_id, d.level) for d in s.deliveries(0)]
    assert got == [(0, 0, -1, 0), (1, 1, 0, 1), (0, 2, 1, 2), (2, 3, 1, 2), (1, 4, 2, 3), (1, 5, 3, 4), (0, 6, 4, 4)]
    for i in range(s.num_deliveries):
        for dep in (s.cause[i], s.prev[i]):
            if dep >= 0:
                assert s.level[dep] < s.level[i]
    # no level holds two deliveries at the same (run, node)
    pairs = list(zip(s.level.tolist(), s.run.tolist(), s.node.tolist()))
    assert len(pairs) == len(set(pairs))


def test_final_and_prev_indices():
    g = as_graph(nx.path_graph(3))
    s = plan(g, [((0,), 0), ((2,), 0)], 4)
    # run 0: 0, 1, 0, 2 ; run 1: 2, 1, 0, 2
    assert s.node.tolist() == [0, 1, 0, 2, 2, 1, 0, 2]
    assert s.prev.tolist() == [-1, -1, 0, -1, -1, -1, -1, 4]
    assert s.final.tolist() == [[2, 1, 3], [6, 5, 7]]


@pytest.mark.parametrize("starts", [(0, 1, 2, 5), range(6), [3, 1, 3], (), (2,), np.array([0, 4, 5]), np.array([5, 0, 5]),
                                    (True, 3), (1.0, 2.0), [np.int32(1), np.int32(4)]])
def test_start_index_is_start_slots_as_arrays(starts):
    nodes, j = start_index(starts, 6)
    assert nodes.dtype == np.int64 and j.dtype == np.int64
    assert list(zip(nodes.tolist(), j.tolist())) == start_slots(list(starts), 6)


@pytest.mark.parametrize("starts", [(0, 6), range(7), np.array([-1, 2]), [7, 1]])
def test_start_index_refuses_a_node_outside_the_graph(starts):
    with pytest.raises(ValueError, match="is not in the graph"):
        start_index(starts, 6)


def test_start_slots_follow_the_engine_dict():
    assert start_slots([3, 1, 3], 4) == [(1, 1), (3, 2)]
    with pytest.raises(ValueError, match="not in the graph"):
        start_slots([4], 4)


def test_bad_input_is_rejected():
    g = as_graph(nx.path_graph(3))
    with pytest.raises(ValueError, match="budget"):
        plan(g, [((0,), 0)], 0)
    with pytest.raises(ValueError, match="ties"):
        plan(g, [((0,), 0)], 3, ties="random")
    bad = Custom(lambda rng, mid, src, dst: -1.0)
    with pytest.raises(DelayError, match="finite and > 0"):
        plan(g, [((0,), 0)], 3, bad)


def test_cache_is_keyed_by_everything_the_plan_depends_on():
    g = as_graph(nx.cycle_graph(5))
    cache = PlanCache()
    a = cache.get(g, [((0,), 1)], 10, "uniform", False)
    assert cache.get(g, [((0,), 1)], 10, "uniform", False) is a
    assert cache.hits == 1
    for other in ([((0,), 2)], [((1,), 1)]):
        assert cache.get(g, other, 10, "uniform", False) is not a
    assert cache.get(g, [((0,), 1)], 11, "uniform", False) is not a
    assert cache.get(g, [((0,), 1)], 10, "uniform", True) is not a
    assert cache.get(as_graph(nx.path_graph(5)), [((0,), 1)], 10, "uniform", False) is not a
    keys = {plan_key(g, [((0,), 1)], 10, d, False) for d in ("uniform", "constant", 2.0, Uniform(0.0, 2.0))}
    assert len(keys) == 4
    # a custom model cannot be described by a key: planned afresh every time
    custom = Custom(lambda rng, mid, src, dst: 1.0)
    assert plan_key(g, [((0,), 1)], 10, custom, False) is None
    assert cache.get(g, [((0,), 1)], 10, custom, False) is not cache.get(g, [((0,), 1)], 10, custom, False)


def test_constant_delays_share_one_plan_across_seeds():
    """Under constant delays the schedule ignores the seed: a training loop with fresh seeds hits the cache."""
    g = as_graph(nx.petersen_graph())
    cache = PlanCache()
    a = cache.get(g, [((0,), 1), ((3,), 2)], 30, "constant", False)
    b = cache.get(g, [((0,), 7), ((3,), 9)], 30, "constant", False)
    assert b is a and (cache.hits, cache.misses) == (1, 1)
    fresh = plan(g, [((0,), 7), ((3,), 9)], 30, "constant", False)
    assert fresh.msg_id.tolist() == a.msg_id.tolist() and fresh.level.tolist() == a.level.tolist()
    assert cache.get(g, [((3,), 1), ((0,), 2)], 30, "constant", False) is not a  # start nodes still count
    assert plan_key(g, [((0,), 1)], 30, 1.0, False) == plan_key(g, [((0,), 5)], 30, "constant", False)
    assert plan_key(g, [((0,), 1)], 30, "uniform", False) != plan_key(g, [((0,), 5)], 30, "uniform", False)


def test_the_executor_compiles_a_constant_delay_batch_once_across_seeds():
    import torch

    from ampsim.batched import BatchedExecutor
    from ampsim.cells.models import AMPCell

    torch.manual_seed(0)
    cell = AMPCell("rnn", 3, 4, 3)
    ex = BatchedExecutor()
    g = as_graph(nx.cycle_graph(6))
    x = torch.randn(6, 3)
    msgs = torch.ones(2, 3)
    first = ex.unroll(cell, [g], [[(0,), (2,)]], [[11, 12]], msgs, 18, "constant", features=[x])
    again = ex.unroll(cell, [g], [[(0,), (2,)]], [[21, 22]], msgs, 18, "constant", features=[x])
    assert len(ex._programs) == 1 and ex.plans.misses == 1
    torch.testing.assert_close(again.final(), first.final(), rtol=0, atol=0)
    ex.unroll(cell, [g], [[(0,), (2,)]], [[21, 22]], msgs, 18, "uniform", features=[x])
    assert len(ex._programs) == 2


def _columns(s):
    return {k: getattr(s, k) for k in ("run", "node", "msg_id", "cause", "prev", "slot", "src", "time", "level",
                                       "final")}


@pytest.mark.parametrize("trial", range(12))
@pytest.mark.parametrize("ties", ["msg_id", "mailbox"])
def test_constant_delay_waves_equal_the_event_queue(trial, ties, monkeypatch):
    import ampsim.batched.planner as planner

    rnd = random.Random(100 + trial)
    n = rnd.randint(2, 40)
    graph = as_graph(nx.gnp_random_graph(n, rnd.uniform(0.05, 0.4), seed=trial))
    runs = [([rnd.randrange(n) for _ in range(rnd.randint(0, 4))], rnd.randint(0, 9)) for _ in range(3)]
    budget = rnd.randint(1, 400)
    delay = rnd.choice(["constant", 0.3])
    monkeypatch.setattr(planner, "WAVES_MIN_BUDGET", 1)
    fast = plan(graph, runs, budget, delay, ties=ties)
    monkeypatch.setattr(planner, "WAVES_MIN_BUDGET", 10 ** 9)
    slow = plan(graph, runs, budget, delay, ties=ties)
    for k, v in _columns(slow).items():
        np.testing.assert_array_equal(_columns(fast)[k], v, err_msg=k)
    assert fast.reasons == slow.reasons and fast.sent == slow.sent


def test_constant_delay_waves_match_an_engine_trace():
    graph = as_graph(nx.random_labeled_tree(60, seed=3))
    recs, result = engine_deliveries(graph, [0, 17], 0, 500, "constant", False)
    s = plan(graph, [([0, 17], 0)], 500, "constant")
    assert planned(s, 0) == recs
    assert s.reasons[0] == result.reason and s.sent[0] == result.sent


@pytest.mark.parametrize("trial", range(10))
def test_compiled_uniform_loop_equals_the_python_loop(trial, monkeypatch):
    from ampsim.batched import fused

    if not fused.available():
        pytest.skip(f"the compiled planner loop cannot be built here: {fused.failure()}")
    rnd = random.Random(200 + trial)
    n = rnd.randint(2, 60)
    graph = as_graph(nx.gnp_random_graph(n, rnd.uniform(0.03, 0.3), seed=trial))
    runs = [([rnd.randrange(n) for _ in range(rnd.randint(0, 4))], rnd.randint(0, 99)) for _ in range(3)]
    budget = rnd.randint(1, 3000)
    delay = rnd.choice(["uniform", Uniform(0.25, 2.0), Uniform(0.0, 3.5)])
    monkeypatch.setenv(fused.ENV, "1")
    if trial % 2:   # arrays that fill up before the budget: the loop resumes in larger ones
        monkeypatch.setattr(planner, "NATIVE_ROWS", rnd.randint(1, 40))
    native = plan(graph, runs, budget, delay, ties="msg_id")
    monkeypatch.setenv(fused.ENV, "0")
    python = plan(graph, runs, budget, delay, ties="msg_id")
    np.testing.assert_array_equal(native.final, python.final)
    for k, v in _columns(python).items():
        np.testing.assert_array_equal(_columns(native)[k], v, err_msg=k)
    assert native.reasons == python.reasons and native.sent == python.sent
    assert native.num_deliveries > 0 or not any(s for s, _ in runs)


def test_compiled_uniform_loop_drops_only_copies_that_cannot_arrive_in_the_budget(monkeypatch):
    # a complete graph: every delivery sends 39 copies, so most copies in flight arrive after the budget
    from ampsim.batched import fused

    if not fused.available():
        pytest.skip(f"the compiled planner loop cannot be built here: {fused.failure()}")
    graph = as_graph(nx.complete_graph(40))
    for budget in (1, 39, 40, 500, 4000):
        monkeypatch.setenv(fused.ENV, "1")
        native = plan(graph, [([0], 1), ([3, 7], 2)], budget, "uniform", ties="msg_id")
        monkeypatch.setenv(fused.ENV, "0")
        python = plan(graph, [([0], 1), ([3, 7], 2)], budget, "uniform", ties="msg_id")
        np.testing.assert_array_equal(native.final, python.final)
        for k, v in _columns(python).items():
            np.testing.assert_array_equal(_columns(native)[k], v, err_msg=k)
        assert native.sent == python.sent and native.reasons == python.reasons
