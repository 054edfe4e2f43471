"""Property tests (hypothesis): the engine's invariants on random graphs, delays, loss and budgets."""
from __future__ import annotations

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampsim import Flooding, ListTracer, Message, Simulation

REASONS = {"quiescent", "stalled", "time_limit", "message_budget", "halted"}


class Relay:
    """Forward each message while its hop count is below a limit: finite but busy."""

    name, assumes = "relay", frozenset()

    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        hops = message.payload or 0
        return state + 1, (Message("relay", hops + 1) if hops < 4 else None)


@st.composite
def cases(draw):
    n = draw(st.integers(2, 14))
    gseed = draw(st.integers(0, 10_000))
    g = nx.gnp_random_graph(n, draw(st.floats(0.15, 0.9)), seed=gseed)
    g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
    if g.number_of_nodes() < 2:
        g = nx.path_graph(2)
    return dict(
        graph=g,
        rule=draw(st.sampled_from([Flooding(), Relay()])),
        delay=draw(st.sampled_from(["constant", "uniform"])),
        fifo=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
        loss=draw(st.sampled_from([0.0, 0.0, 0.25])),
        budget=draw(st.sampled_from([None, 1, 5, 40])),
    )


def simulate(case):
    tr = ListTracer(states=False)
    sim = Simulation(case["graph"], case["rule"], delay=case["delay"], fifo=case["fifo"], seed=case["seed"],
                     loss=case["loss"], tracer=tr)
    result = sim.run(max_deliveries=case["budget"]) if case["budget"] else sim.run()
    return sim, result, tr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_invariants(case):
    sim, result, tr = simulate(case)
    assert result.reason in REASONS
    msgs = tr.messages
    delivered = [(r.t_deliver, r.msg_id) for r in msgs if r.event == "deliver"]
    assert delivered == sorted(delivered)  # (arrival, msg_id) order
    sent = {r.msg_id for r in msgs if r.event == "send"}
    finished = [r.msg_id for r in msgs if r.event == "deliver" or (r.event == "drop" and r.reason != "lost")]
    assert len(finished) == len(set(finished)) and set(finished) <= sent
    assert set(finished) | set(tr.ends[-1].in_flight) == sent
    assert not set(finished) & set(tr.ends[-1].in_flight)
    assert result.sent == result.total_deliveries + result.dropped + result.in_flight
    assert all(r.delay > 0 for r in msgs if r.src >= 0)
    if case["budget"]:
        assert result.deliveries <= case["budget"]
    if case["fifo"] or case["delay"] == "constant":
        per_edge = {}
        for r in msgs:
            if r.event == "deliver" and r.src >= 0:
                per_edge.setdefault((r.src, r.dst), []).append(r.msg_id)
        assert all(ids == sorted(ids) for ids in per_edge.values())
    _, again, tr2 = simulate(case)
    assert tr2.records == tr.records and again.reason == result.reason
