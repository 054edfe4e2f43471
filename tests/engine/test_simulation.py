"""Engine semantics (docs/design.md): exact traces, ordering, budgets, reasons, FIFO, errors."""
from __future__ import annotations

import math
import random

import networkx as nx
import pytest
import torch

from ampsim import (
    AssumptionError,
    Custom,
    DelayError,
    Flooding,
    GraphError,
    JSONLTracer,
    ListTracer,
    Message,
    MessageRecord,
    Simulation,
    StateRecord,
)
from ampsim.engine.simulation import DEFAULT_BUDGET


def msg(event, mid, cause, src, dst, ts, td, d, kind, payload, reason=""):
    return MessageRecord(event, mid, cause, src, dst, ts, td, d, kind, payload, reason)


def test_golden_trace_flooding_path3(path3):
    tr = ListTracer(states=False)
    result = Simulation(path3, Flooding(), delay="constant", tracer=tr).run()
    assert result.reason == "quiescent"
    assert tr.records == [
        msg("send", 0, -1, -1, 0, 0.0, 0.0, 0.0, "start", ""),
        msg("deliver", 0, -1, -1, 0, 0.0, 0.0, 0.0, "start", ""),
        msg("send", 1, 0, 0, 1, 0.0, 1.0, 1.0, "flood", "1"),
        msg("deliver", 1, 0, 0, 1, 0.0, 1.0, 1.0, "flood", "1"),
        msg("send", 2, 1, 1, 0, 1.0, 2.0, 1.0, "flood", "2"),
        msg("send", 3, 1, 1, 2, 1.0, 2.0, 1.0, "flood", "2"),
        msg("deliver", 2, 1, 1, 0, 1.0, 2.0, 1.0, "flood", "2"),
        msg("deliver", 3, 1, 1, 2, 1.0, 2.0, 1.0, "flood", "2"),
        msg("send", 4, 3, 2, 1, 2.0, 3.0, 1.0, "flood", "3"),
        msg("deliver", 4, 3, 2, 1, 2.0, 3.0, 1.0, "flood", "3"),
    ]
    assert result.states == (0, 1, 2)
    assert (result.deliveries, result.sent, result.dropped, result.in_flight) == (5, 5, 0, 0)


def test_state_records_follow_each_delivery(path3):
    tr = ListTracer(states=True)
    Simulation(path3, Flooding(), tracer=tr).run()
    states = [r for r in tr.records if isinstance(r, StateRecord)]
    assert states[:3] == [StateRecord(0.0, v, -1, "") for v in range(3)]
    assert states[3:] == [
        StateRecord(0.0, 0, 0, "0"), StateRecord(1.0, 1, 1, "1"), StateRecord(2.0, 0, 2, "0"),
        StateRecord(2.0, 2, 3, "2"), StateRecord(3.0, 1, 4, "1"),
    ]


def test_tie_break_is_arrival_time_then_msg_id():
    """Constant delays on a star: the centre's copies all arrive at t=2 and are processed in send (msg_id) order."""
    tr = ListTracer(states=False)
    Simulation(nx.star_graph(4), Flooding(), tracer=tr, start=1).run()
    delivered = [(r.t_deliver, r.msg_id, r.dst) for r in tr.messages if r.event == "deliver"]
    assert delivered == sorted(delivered)
    assert delivered == [(0.0, 0, 1), (1.0, 1, 0), (2.0, 2, 1), (2.0, 3, 2), (2.0, 4, 3), (2.0, 5, 4),
                         (3.0, 6, 0), (3.0, 7, 0), (3.0, 8, 0)]


def test_deliveries_ordered_by_time_then_id_under_uniform_delays():
    tr = ListTracer(states=False)
    Simulation(nx.petersen_graph(), Flooding(), delay="uniform", seed=5, tracer=tr).run()
    keys = [(r.t_deliver, r.msg_id) for r in tr.messages if r.event == "deliver"]
    assert keys == sorted(keys)


def test_same_seed_byte_identical_trace_and_different_seed_differs(tmp_path, echo):
    paths = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        p = tmp_path / f"{name}.jsonl"
        with JSONLTracer(p) as t:
            Simulation(nx.petersen_graph(), echo, delay="uniform", seed=seed, tracer=t).run(max_deliveries=300)
        paths.append(p.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_different_seeds_draw_different_uniform_delays(cycle6):
    def delays(seed):
        tr = ListTracer(states=False)
        Simulation(cycle6, Flooding(), delay="uniform", seed=seed, tracer=tr).run()
        return [r.delay for r in tr.messages if r.event == "send" and r.src >= 0]

    a, b = delays(1), delays(2)
    assert a != b and all(0.0 < d <= 1.0 for d in a + b)
    assert delays(1) == a


def test_global_rngs_untouched(cycle6):
    py, tor = random.getstate(), torch.random.get_rng_state()
    Simulation(cycle6, Flooding(), delay="uniform", seed=3, loss=0.3).run()
    assert random.getstate() == py
    assert torch.equal(torch.random.get_rng_state(), tor)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("loss", [0.0, 0.3])
@pytest.mark.parametrize("budget", [1, 17, 200])
def test_every_copy_delivered_or_dropped_once_or_in_flight(seed, loss, budget, echo):
    g = nx.gnp_random_graph(12, 0.3, seed=seed)
    g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
    tr = ListTracer(states=False)
    sim = Simulation(g, echo, delay="uniform", seed=seed, loss=loss, tracer=tr)
    result = sim.run(max_deliveries=budget)
    sends = [r.msg_id for r in tr.messages if r.event == "send"]
    lost = [r.msg_id for r in tr.messages if r.event == "drop" and r.reason == "lost"]
    ends = [r.msg_id for r in tr.messages if r.event in ("deliver", "drop") and r.reason != "lost"]
    in_flight = list(tr.ends[-1].in_flight)
    assert len(set(sends)) == len(sends)
    assert sorted(sends + lost) == list(range(sim.sent))
    assert sorted(ends + in_flight) == sorted(sends)  # each send ends exactly once, or is still in flight
    assert result.sent == result.total_deliveries + result.dropped + result.in_flight
    if result.reason != "message_budget":  # loss can kill the echo storm before the budget
        assert result.reason == "quiescent" and result.deliveries < budget and loss > 0
    else:
        assert result.deliveries == budget


def test_infinite_protocol_stops_at_budget_and_can_continue(echo, cycle6):
    sim = Simulation(cycle6, echo)
    first = sim.run(max_deliveries=50)
    assert (first.reason, first.deliveries, first.total_deliveries) == ("message_budget", 50, 50)
    second = sim.run(max_deliveries=25)
    assert (second.reason, second.deliveries, second.total_deliveries) == ("message_budget", 25, 75)


def test_default_budget_prevents_hangs(echo):
    sim = Simulation(nx.path_graph(2), echo, budget=1000)
    assert sim.run().reason == "message_budget"
    assert DEFAULT_BUDGET >= 10**5


def test_time_limit_is_exclusive_like_simpy(echo, path3):
    sim = Simulation(path3, echo)
    r = sim.run(until=3.0)
    assert r.reason == "time_limit" and r.time == 3.0
    # deliveries at t=0,1,2 only: 1 + 1 + 2
    assert r.deliveries == 4
    assert sim.peek() == 3.0
    r2 = sim.run(until=4.0)
    assert r2.deliveries == 2  # the two copies arriving at t=3


def test_until_must_be_in_the_future(echo, path3):
    sim = Simulation(path3, echo)
    sim.run(until=2.0)
    with pytest.raises(ValueError, match="until"):
        sim.run(until=1.0)


def test_stop_when_halts(echo, cycle6):
    sim = Simulation(cycle6, echo)
    r = sim.run(stop_when=lambda s: s.states[3] >= 2)
    assert r.reason == "halted" and sim.states[3] == 2


def test_step_peek_in_flight(cycle6):
    sim = Simulation(cycle6, Flooding(), delay="uniform", seed=2)
    assert sim.peek() == 0.0
    first = sim.step()
    assert (first.event, first.dst, first.kind, first.t_deliver) == ("deliver", 0, "start", 0.0)
    pending = sim.in_flight()
    assert [r.dst for r in pending] == sorted([1, 5], key=lambda d: next(p.t_deliver for p in pending if p.dst == d))
    assert sim.peek() == pending[0].t_deliver
    nxt = sim.step()
    assert (nxt.msg_id, nxt.t_deliver) == (pending[0].msg_id, pending[0].t_deliver)
    count = 2
    while sim.step() is not None:
        count += 1
    assert count == sim.deliveries and sim.in_flight() == [] and sim.peek() == math.inf


def test_stalled_names_stuck_nodes_under_loss():
    g = nx.path_graph(5)
    sim = Simulation(g, Flooding(), loss=lambda mid, src, dst: (src, dst) == (1, 2))
    r = sim.run()
    assert r.reason == "stalled" and r.stuck == (2, 3, 4)


def test_quiescent_when_all_finished(cycle6):
    assert Simulation(cycle6, Flooding()).run().reason == "quiescent"


def test_start_all_and_dict(silent):
    tr = ListTracer(states=False)
    Simulation(nx.path_graph(3), silent, start="all", tracer=tr).run()
    assert [(r.event, r.dst) for r in tr.messages] == [("send", 0), ("send", 1), ("send", 2), ("deliver", 0), ("deliver", 1), ("deliver", 2)]
    tr = ListTracer(states=False)
    Simulation(nx.path_graph(3), silent, start={2: Message("go", 5), 0: Message("go", 1)}, tracer=tr).run()
    assert [(r.dst, r.payload) for r in tr.messages if r.event == "deliver"] == [(0, "1"), (2, "5")]


def test_fifo_channels_keep_send_order(echo):
    def arrivals(fifo):
        tr = ListTracer(states=False)
        Simulation(nx.complete_graph(4), echo, delay="uniform", fifo=fifo, seed=11, tracer=tr).run(max_deliveries=300)
        per_edge = {}
        for r in tr.messages:
            if r.event == "deliver" and r.src >= 0:
                per_edge.setdefault((r.src, r.dst), []).append(r.msg_id)
        return per_edge

    assert all(ids == sorted(ids) for ids in arrivals(True).values())
    assert any(ids != sorted(ids) for ids in arrivals(False).values())


class HubForwards:
    """Leaves speak once (on their start message); the hub forwards everything."""

    name, assumes = "hub", frozenset()

    def start(self, node):
        return None, None

    def receive(self, node, state, message):
        return None, (Message("x") if node.features == "hub" or message.kind == "start" else None)


@pytest.mark.parametrize("fifo, arrival_of_6", [(True, 1.0), (False, 0.30000000000000004)])
def test_fifo_arrival_is_max_of_draw_and_last_on_that_edge(fifo, arrival_of_6):
    draws = {2: 0.1, 3: 0.2, 4: 0.9, 5: 0.5, 6: 0.1, 7: 0.5}
    tr = ListTracer(states=False)
    Simulation(nx.star_graph(2), HubForwards(), delay=Custom(lambda rng, m, s, d: draws[m]), fifo=fifo,
               features=["hub", "leaf", "leaf"], start=[1, 2], tracer=tr).run()
    sends = {r.msg_id: (r.src, r.dst, r.t_send, r.delay, r.t_deliver) for r in tr.messages if r.event == "send"}
    assert sends[4] == (0, 1, 0.1, 0.9, 1.0)
    assert sends[6][:4] == (0, 1, 0.2, 0.1) and sends[6][4] == arrival_of_6
    order = [r.msg_id for r in tr.messages if r.event == "deliver" and r.dst == 1]
    assert order == ([0, 4, 6] if fifo else [0, 6, 4])


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_delays_are_errors_never_clamped(bad, cycle6):
    with pytest.raises(DelayError, match="finite and > 0"):
        Simulation(cycle6, Flooding(), delay=Custom(lambda rng, m, s, d: bad)).run()


@pytest.mark.parametrize("value", [0, -2.0, math.nan, math.inf])
def test_constant_delay_must_be_positive(value, cycle6):
    with pytest.raises(DelayError):
        Simulation(cycle6, Flooding(), delay=value)


def test_unknown_delay_name(cycle6):
    with pytest.raises(DelayError, match="unknown delay model"):
        Simulation(cycle6, Flooding(), delay="gaussian")


def test_graph_errors():
    with pytest.raises(GraphError, match="directed"):
        Simulation(nx.DiGraph([(0, 1)]), Flooding())
    with pytest.raises(GraphError, match="multigraph"):
        Simulation(nx.MultiGraph([(0, 1), (0, 1)]), Flooding())
    with pytest.raises(GraphError, match="self-loop"):
        Simulation(nx.Graph([(0, 1), (1, 1)]), Flooding())
    with pytest.raises(GraphError, match="empty"):
        Simulation(nx.Graph(), Flooding())
    g = nx.path_graph(3)
    g.add_node(7)
    with pytest.raises(GraphError, match=r"\[7\] have no neighbours"):
        Simulation(g, Flooding())
    assert Simulation(g, Flooding(), allow_isolated=True).run().stuck == (3,)


def test_nan_features_rejected(cycle6):
    with pytest.raises(GraphError, match="NaN"):
        Simulation(cycle6, Flooding(), features=[[0.0]] * 5 + [[math.nan]])
    with pytest.raises(GraphError, match=r"node\(s\) \[2\]"):
        x = torch.zeros(6, 2)
        x[2, 1] = math.nan
        Simulation(cycle6, Flooding(), features=x)
    with pytest.raises(GraphError, match="6 nodes"):
        Simulation(cycle6, Flooding(), features=[[0.0]] * 4)


def test_bad_start_node(cycle6):
    with pytest.raises(ValueError, match="start node 9"):
        Simulation(cycle6, Flooding(), start=9)


def test_assumptions_checked_before_running(cycle6):
    class NeedsRandom(Flooding):
        assumes = frozenset({"random_delays"})

    class NeedsFifo(Flooding):
        assumes = frozenset({"fifo"})

    class Bogus(Flooding):
        assumes = frozenset({"telepathy"})

    with pytest.raises(AssumptionError, match="random message delays"):
        Simulation(cycle6, NeedsRandom(), delay="constant")
    Simulation(cycle6, NeedsRandom(), delay="uniform")
    with pytest.raises(AssumptionError, match="FIFO"):
        Simulation(cycle6, NeedsFifo(), delay="uniform")
    Simulation(cycle6, NeedsFifo(), delay="uniform", fifo=True)
    Simulation(cycle6, NeedsFifo(), delay="constant")
    with pytest.raises(AssumptionError, match="telepathy"):
        Simulation(cycle6, Bogus())


def test_node_view_reveals_only_what_is_assumed(cycle6):
    seen = []

    class Spy:
        name = "spy"

        def __init__(self, assumes):
            self.assumes = frozenset(assumes)

        def start(self, node):
            seen.append((node.degree, node.id))
            return None, None

        def receive(self, node, state, message):
            seen.append(message.sender)
            return state, None

    Simulation(cycle6, Spy([])).run()
    assert seen[:6] == [(None, None)] * 6 and seen[6] is None
    seen.clear()
    Simulation(cycle6, Spy(["degree", "ids", "sender"]), start="all").run()
    assert seen[:6] == [(2, v) for v in range(6)]


def test_sender_filled_only_when_assumed():
    got = []

    class Hear:
        name = "hear"

        def __init__(self, assumes):
            self.assumes = frozenset(assumes)

        def start(self, node):
            return 0, None

        def receive(self, node, state, message):
            got.append(message.sender)
            return state + 1, (Message("x") if state == 0 and message.kind == "start" else None)

    Simulation(nx.path_graph(3), Hear(["sender"]), start=1).run()
    assert got == [None, 1, 1]
    got.clear()
    Simulation(nx.path_graph(3), Hear([]), start=1).run()
    assert got == [None, None, None]


def test_rule_errors_surface_unchanged(cycle6):
    class Boom(Flooding):
        def receive(self, node, state, message):
            raise KeyError("boom")

    sim = Simulation(cycle6, Boom())
    with pytest.raises(KeyError, match="boom"):
        sim.run()
    with pytest.raises(RuntimeError, match="failed earlier"):
        sim.run()


def test_rule_must_implement_protocol(cycle6):
    with pytest.raises(TypeError, match="NodeRule"):
        Simulation(cycle6, object())


def test_halted_nodes_drop_and_do_not_count():
    class HaltAfterOne:
        name, assumes = "halt1", frozenset()

        def start(self, node):
            return 0, None

        def receive(self, node, state, message):
            return state + 1, Message("x")

        def halted(self, state):
            return state >= 1

    tr = ListTracer(states=False)
    r = Simulation(nx.complete_graph(3), HaltAfterOne(), tracer=tr).run()
    drops = [x for x in tr.messages if x.event == "drop"]
    assert r.reason == "quiescent" and r.deliveries == 3
    assert all(x.reason == "halted" for x in drops) and len(drops) == r.dropped == 4
    assert r.sent == 1 + 2 + 4


def test_from_trace_with_default_scripts_a_few_delays(path3):
    from ampsim import FromTrace

    tr = ListTracer(states=False)
    Simulation(path3, Flooding(), delay=FromTrace({1: 0.25}, default=1.0), tracer=tr).run()
    assert [(r.msg_id, r.delay) for r in tr.messages if r.event == "send" and r.src >= 0] == [(1, 0.25), (2, 1.0), (3, 1.0), (4, 1.0)]
    with pytest.raises(DelayError, match="no delay for message 2"):
        Simulation(path3, Flooding(), delay=FromTrace({1: 0.25})).run()


def test_a_time_limit_after_the_run_went_quiet_ends_quiescent_at_its_real_time(tmp_path):
    """run(until=10) of a flood of cycle:5 that is over at t=3: quiescent at t=3, not time_limit at t=10."""
    from ampsim import Flooding, JSONLTracer, replay

    path = tmp_path / "t.jsonl"
    with JSONLTracer(path) as tracer:
        sim = Simulation(nx.cycle_graph(5), Flooding(), tracer=tracer)
        r = sim.run(until=10.0)
        assert (r.reason, r.time, r.deliveries, r.in_flight) == ("quiescent", 3.0, 11, 0)
        assert sim.now == 3.0
        r2 = sim.run(until=2.5 + sim.now)  # nothing left: quiet again, at the same instant
        assert (r2.reason, r2.time, r2.deliveries) == ("quiescent", 3.0, 0)
    ends = replay(path, verify=True).ends  # replays (and verifies) the same way
    assert [(e.reason, e.time, e.until) for e in ends] == [("quiescent", 3.0, 10.0), ("quiescent", 3.0, 5.5)]
    # with work left at the limit it is still the time limit
    r3 = Simulation(nx.cycle_graph(5), Flooding()).run(until=2.0)
    assert (r3.reason, r3.time, r3.in_flight) == ("time_limit", 2.0, 4)
