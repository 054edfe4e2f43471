"""plan_events: the engine's schedule with message loss and with a counted emission rule, delivery for delivery."""
from __future__ import annotations

import random

import networkx as nx
import pytest

from ampsim import ListTracer, Message, Simulation
from ampsim.batched import plan, plan_key
from ampsim.cells.aggregate import WaveCount
from ampsim.engine.delays import Uniform
from ampsim.graphs import as_graph
from ampsim.protocols import Echo


class WaveEcho:
    """A hand-written rule that emits exactly when :class:`WaveCount` says (tags ride in the payload)."""

    name = "wave-echo"
    assumes = frozenset({"degree"})

    def __init__(self, waves: int) -> None:
        self.rule = WaveCount(waves)

    def start(self, node):
        return self.rule.start(node.degree), None

    def receive(self, node, state, message):
        state = list(state)
        state, out = self.rule.deliver(state, message.payload or 0)
        return state, (Message("w", out) if out else None)

    def finished(self, state):
        return self.rule.finished(state)


def engine(graph, rule, starts, seed, budget, delay, fifo, loss):
    tracer = ListTracer(states=False)
    sim = Simulation(graph, rule, delay=delay, fifo=fifo, seed=seed, tracer=tracer, allow_isolated=True,
                     start={v: Message("start") for v in starts}, loss=loss)
    result = sim.run(max_deliveries=budget)
    recs = [(r.dst, r.msg_id, r.cause_id, r.src, r.t_deliver) for r in tracer.records if r.event == "deliver"]
    return recs, result


def planned(schedule):
    return [(d.dst, d.msg_id, d.cause_id, d.src, d.t) for d in schedule.deliveries(0)]


@pytest.mark.parametrize("trial", range(40))
def test_loss_and_counted_rule_match_engine_traces(trial):
    rnd = random.Random(trial)
    n = rnd.randint(2, 12)
    graph = as_graph(nx.gnp_random_graph(n, rnd.uniform(0.2, 0.6), seed=trial))
    delay = rnd.choice(["constant", "uniform", Uniform(0.25, 2.0)])
    fifo = rnd.random() < 0.5
    seed = rnd.randint(0, 999)
    loss = rnd.choice([0.0, 0.1, 0.3])
    if trial % 2:   # always emit (Echo), with loss
        starts = [rnd.randrange(n) for _ in range(rnd.randint(1, 3))]
        budget = rnd.randint(1, 70)
        s = plan(graph, [(starts, seed)], budget, delay, fifo, loss=loss or 0.2)
        recs, result = engine(graph, Echo(), starts, seed, budget, delay, fifo, loss or 0.2)
    else:           # every node started, the wave-count rule
        starts = list(range(n))
        budget = rnd.choice([5, 10_000])
        rule = WaveEcho(rnd.randint(1, 3))
        s = plan(graph, [(starts, seed)], budget, delay, fifo, loss=loss, rule=rule.rule)
        recs, result = engine(graph, rule, starts, seed, budget, delay, fifo, loss)
    assert planned(s) == recs
    assert s.reasons[0] == result.reason
    assert s.sent[0] == result.sent


def test_loss_and_rule_are_in_the_plan_key():
    g = as_graph(nx.cycle_graph(5))
    runs = [((0, 1), 3)]
    base = plan_key(g, runs, 50, "constant", False)
    lossy = plan_key(g, runs, 50, "constant", False, loss=0.1)
    counted = plan_key(g, runs, 50, "constant", False, rule=WaveCount(2))
    assert len({base, lossy, counted, plan_key(g, runs, 50, "constant", False, rule=WaveCount(3))}) == 4
    # constant delays ignore the seed, unless copies are lost
    assert plan_key(g, [((0, 1), 4)], 50, "constant", False) == base
    assert plan_key(g, [((0, 1), 4)], 50, "constant", False, loss=0.1) != lossy
