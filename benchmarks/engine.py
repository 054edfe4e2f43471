"""Engine overhead: deliveries/s of ampsim (no tracer, trivial rule) vs a bare SimPy loop, side by side.

Both run the same message pattern: every node re-broadcasts every message it
receives to all neighbours (an echo storm), one SimPy timeout per copy whose
callback puts into the receiver's ``simpy.Store``, one process per node; both stop
after the same number of processed deliveries. The bare loop has no rule call,
no ids, no checks. Rounds alternate between the two to spread machine noise; the
median of each is reported. Goal (issue 3): ratio >= 0.5.

    python benchmarks/engine.py [--deliveries 100000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import networkx as nx
import simpy

from ampsim import Message, Simulation


class Echo:
    """Trivial rule: forward every message (the state counts deliveries)."""

    name = "echo"
    assumes = frozenset()
    _msg = Message("echo")

    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        return state + 1, self._msg


def bare_simpy(graph: nx.Graph, deliveries: int, seed: int) -> float:
    """The same echo storm written directly on SimPy; returns seconds."""
    env = simpy.Environment()
    n = graph.number_of_nodes()
    nbrs = [sorted(graph.neighbors(v)) for v in range(n)]
    boxes = [simpy.Store(env) for _ in range(n)]
    rng = random.Random(seed)
    count = [0]
    done = env.event()

    def put_cb(box):
        return lambda ev: box.put(ev.value)

    cbs = [put_cb(b) for b in boxes]

    def node(v):
        while True:
            msg = yield boxes[v].get()
            count[0] += 1
            if count[0] == deliveries:
                done.succeed()
            for u in nbrs[v]:
                env.timeout(1.0 - rng.random(), msg).callbacks.append(cbs[u])

    for v in range(n):
        env.process(node(v))
    boxes[0].put("start")
    t0 = time.perf_counter()
    env.run(until=done)
    return time.perf_counter() - t0


def ampsim_run(graph: nx.Graph, deliveries: int, seed: int) -> float:
    sim = Simulation(graph, Echo(), delay="uniform", seed=seed)
    t0 = time.perf_counter()
    result = sim.run(max_deliveries=deliveries)
    elapsed = time.perf_counter() - t0
    assert result.reason == "message_budget" and result.deliveries == deliveries
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deliveries", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    graph = nx.random_regular_graph(3, 64, seed=1)
    ours, bare = [], []
    for r in range(args.rounds):
        bare.append(bare_simpy(graph, args.deliveries, r))
        ours.append(ampsim_run(graph, args.deliveries, r))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"graph: random 3-regular, 64 nodes; {args.deliveries} deliveries per run; {args.rounds} rounds each")
    print(f"bare simpy : {args.deliveries / b:12,.0f} deliveries/s (median {b:.3f} s)")
    print(f"ampsim     : {args.deliveries / o:12,.0f} deliveries/s (median {o:.3f} s)")
    print(f"ratio ampsim/bare: {b / o:.2f}")


if __name__ == "__main__":
    main()
