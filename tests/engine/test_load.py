"""The engine under load: lean per-copy timers, bursts under constant delays, GC restored.

A ``Burst`` (constant delays) must process exactly the deliveries, in exactly the order,
that one timer per copy gives: compared against the same delays through a ``Custom``
model, which takes the per-copy path.
"""
from __future__ import annotations

import gc
import tracemalloc

import networkx as nx
import pytest

from ampsim import Custom, Flooding, ListTracer, Simulation
from ampsim.engine.simulation import Burst, Copy
from ampsim.protocols import Echo, HaltingFlooding

PER_COPY_ONE = Custom(lambda rng, mid, src, dst: 1.0, random=False, name="one")


def _records(graph, rule, delay, **kw):
    tracer = ListTracer()
    sim = Simulation(graph, rule, delay=delay, tracer=tracer, **kw)
    sim.step()
    sim.step()
    mid_in_flight = [r.msg_id for r in sim.in_flight()]
    peek = sim.peek()
    sim.run(max_deliveries=40)
    sim.run()
    return tracer.records, tracer.ends, mid_in_flight, peek


@pytest.mark.parametrize("graph", [nx.complete_graph(7), nx.petersen_graph(), nx.star_graph(5), nx.path_graph(4)])
@pytest.mark.parametrize("rule", [Flooding, HaltingFlooding, Echo])
@pytest.mark.parametrize("start", [0, "all", [1, 2]])
def test_burst_order_equals_one_timer_per_copy(graph, rule, start):
    a = _records(graph, rule(), 1.0, start=start, budget=300)
    b = _records(graph, rule(), PER_COPY_ONE, start=start, budget=300)
    assert a == b


def test_bursts_hold_the_heap_under_constant_delays_and_copies_otherwise():
    sim = Simulation(nx.complete_graph(30), Flooding(), delay="constant")
    sim.run(until=1.5)
    kinds = {type(entry[3]) for entry in sim.env._queue}
    assert Burst in kinds and Copy not in kinds and len(sim.in_flight()) == 29 * 29
    sim = Simulation(nx.complete_graph(30), Flooding(), delay="uniform")
    sim.run(max_deliveries=3)
    assert {type(entry[3]) for entry in sim.env._queue} >= {Copy}


def test_peek_and_in_flight_inside_a_burst():
    sim = Simulation(nx.complete_graph(5), Flooding(), delay=2.0)
    sim.run(max_deliveries=3)  # start, then two copies of node 0's burst
    assert sim.peek() == 2.0
    pending = [(r.src, r.dst, r.t_deliver) for r in sim.in_flight()]
    assert pending[:2] == [(0, 3, 2.0), (0, 4, 2.0)]  # the rest of node 0's burst comes first
    assert pending[2:] == [(1, v, 4.0) for v in (0, 2, 3, 4)] + [(2, v, 4.0) for v in (0, 1, 3, 4)]


def test_gc_thresholds_restored_on_every_path():
    before = gc.get_threshold()
    Simulation(nx.cycle_graph(6), Flooding()).run()
    assert gc.get_threshold() == before

    class Boom(Flooding):
        def receive(self, node, state, message):
            assert gc.get_threshold()[2] > before[2]  # no full collections during the run
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Simulation(nx.cycle_graph(6), Boom()).run()
    assert gc.get_threshold() == before

    class Nested(Flooding):
        def receive(self, node, state, message):
            Simulation(nx.path_graph(3), Flooding()).run()
            return super().receive(node, state, message)

    Simulation(nx.cycle_graph(4), Nested()).run()
    assert gc.get_threshold() == before


def _bytes_per_copy(delay):
    graph = nx.complete_graph(120)
    gc.collect()
    tracemalloc.start()
    try:
        sim = Simulation(graph, Flooding(), delay=delay, seed=0)
        base = tracemalloc.get_traced_memory()[0]
        r = sim.run(until=1.5) if delay == "constant" else sim.run(max_deliveries=120)
        return (tracemalloc.get_traced_memory()[0] - base) / r.in_flight
    finally:
        tracemalloc.stop()


def test_memory_per_in_flight_copy():
    assert _bytes_per_copy("constant") < 20  # a burst per broadcast, no object per copy
    assert _bytes_per_copy("uniform") < 400  # one slotted timer per copy (0.6 KB as a SimPy Timeout)
