"""Engine overhead: deliveries/s of ampsim (no tracer, trivial rule) vs a bare SimPy loop, side by side.

Both run the same message pattern: every node re-broadcasts every message it
receives to all neighbours (an echo storm), one SimPy timeout per copy whose
callback puts into the receiver's ``simpy.Store``, one process per node; both stop
after the same number of processed deliveries. The bare loop has no rule call,
no ids, no checks. Rounds alternate between the two to spread machine noise; the
median of each is reported. Goal: ratio >= 0.5.

    python benchmarks/engine.py [--deliveries 100000] [--rounds 5]

``--scale``: the engine under load. Flooding on complete:200, :400 and :800
with constant delays puts up to n(n-1) copies in flight at once (all sent at t=1,
all delivered at t=2). It prints deliveries/s at each size, the ratio of :800 to
:200 (goal >= 0.8), and the memory the engine holds per in-flight copy (tracemalloc,
measured in a separate run stopped while every copy is in flight; goal <= 0.3 KB).

    python benchmarks/engine.py --scale [--sizes 200,400,800] [--rounds 3]

``--trace`` measures tracing instead: flooding on complete:300 (89,701
messages) untraced, with a JSONL trace and with a Parquet trace, rounds alternating
after one untimed warm-up run of each on cycle:8 (one-time imports are not throughput);
prints messages/s, the ratio to untraced (goal for Parquet: >= 0.5) and the bytes
per message on disk (goal: <= 60).

    python benchmarks/engine.py --trace [--trace-graph complete:300] [--rounds 5]
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc

import networkx as nx
import simpy

from ampsim import Flooding, Message, Simulation


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


def flood_throughput(n: int) -> tuple[float, int]:
    """Deliveries/s of one flood of complete:n with constant delays (until quiescent), and the deliveries."""
    graph = nx.complete_graph(n)
    sim = Simulation(graph, Flooding(), delay="constant", seed=0)
    gc.collect()
    t0 = time.process_time()
    result = sim.run()
    elapsed = time.process_time() - t0
    assert result.reason == "quiescent" and result.deliveries == n * (n - 1) + 1  # every copy plus the start
    return result.deliveries / elapsed, result.deliveries


def flood_memory_per_copy(n: int, delay: str = "constant") -> tuple[float, int]:
    """Bytes the engine holds per in-flight copy: complete:n stopped while (almost) every copy is in flight.

    Constant delays: at t=1.5 (every copy sent at t=1, none delivered). Uniform delays:
    after the first n deliveries (most nodes have broadcast, few copies arrived).
    """
    graph = nx.complete_graph(n)
    gc.collect()
    tracemalloc.start()
    sim = Simulation(graph, Flooding(), delay=delay, seed=0)
    base = tracemalloc.get_traced_memory()[0]
    result = sim.run(until=1.5) if delay == "constant" else sim.run(max_deliveries=n)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held / result.in_flight, result.in_flight


def scale(sizes: list[int], rounds: int) -> None:
    """The ``--scale`` figures: throughput at each size relative to the smallest, and bytes per in-flight copy."""
    rates = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            rates[n].append(flood_throughput(n)[0])
    base = max(rates[sizes[0]])
    print(f"flooding on complete:n, constant delays, until quiescent; CPU time (process_time), best of {rounds} "
          "interleaved rounds (the machine is shared: the best round is the least disturbed)")
    for n in sizes:
        r = max(rates[n])
        print(f"complete:{n:<5d}: {r:12,.0f} deliveries/s   ratio to complete:{sizes[0]}: {r / base:.2f}")
    top = sizes[-1]
    for delay in ("constant", "uniform"):
        per_copy, in_flight = flood_memory_per_copy(top, delay)
        print(f"memory per in-flight copy, complete:{top}, {delay} delays ({in_flight:,} in flight): "
              f"{per_copy / 1000:.3f} KB (goal <= 0.3 KB; ratio to goal {per_copy / 300:.2f})")
    ratio = max(rates[top]) / base
    print(f"throughput ratio complete:{top}/complete:{sizes[0]}: {ratio:.2f} (goal >= 0.80)")


def traced_run(spec: str, path: str | None, seed: int) -> tuple[float, float, int]:
    """One flooding run with the tracer its path's suffix picks (None: untraced); (seconds, CPU seconds, deliveries)."""
    from ampsim import get_rule, parse_graph_spec
    from ampsim.trace.columnar import open_tracer

    tracer = open_tracer(path) if path else None
    sim = Simulation(parse_graph_spec(spec), get_rule("flooding"), delay="uniform", seed=seed, tracer=tracer)
    c0, t0 = time.process_time(), time.perf_counter()
    result = sim.run()
    if tracer is not None:
        tracer.close()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert result.reason == "quiescent"
    return elapsed, cpu, result.total_deliveries


def trace_benchmark(spec: str, rounds: int) -> None:
    """Untraced vs JSONL vs Parquet, side by side (rounds alternate); throughput ratios and bytes/message."""
    import gc
    import os
    import tempfile

    from ampsim import load_trace

    times: dict[str, list[float]] = {"untraced": [], "jsonl": [], "parquet": []}
    cpus: dict[str, list[float]] = {name: [] for name in times}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"untraced": None, "jsonl": os.path.join(tmp, "t.jsonl"), "parquet": os.path.join(tmp, "t.parquet")}
        for path in paths.values():  # warm-up, not timed: one-time imports (pyarrow loads pandas on first use)
            traced_run("cycle:8", path, seed=0)
        for r in range(rounds):
            for name, path in paths.items():
                gc.collect()
                elapsed, cpu, messages = traced_run(spec, path, seed=r)
                times[name].append(elapsed)
                cpus[name].append(cpu)
        sizes = {name: os.path.getsize(path) for name, path in paths.items() if path}
        same = load_trace(paths["jsonl"]) == load_trace(paths["parquet"])
    base = statistics.median(times["untraced"])
    cpu_base = statistics.median(cpus["untraced"])
    print(f"flooding on {spec}, uniform delays: {messages:,} messages per run; {rounds} rounds each, alternating")
    print("(ratio: wall-clock throughput / untraced; cpu: the same in process CPU time, steadier on a shared machine)")
    for name, ts in times.items():
        med = statistics.median(ts)
        line = (f"{name:9s}: {messages / med:10,.0f} messages/s (median {med:.3f} s), ratio to untraced {base / med:.2f}"
                f" (cpu {cpu_base / statistics.median(cpus[name]):.2f})")
        if name in sizes:
            line += f", {sizes[name] / messages:6.1f} bytes/message ({sizes[name] / 1e6:.1f} MB)"
        print(line)
    print(f"the JSONL and Parquet traces of the last round read back identical: {same}")


def overhead(args: argparse.Namespace) -> None:
    """The default mode: ampsim against a bare SimPy loop doing the same deliveries."""
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deliveries", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=None, help="rounds per figure (default 5; 3 with --scale)")
    p.add_argument("--scale", action="store_true", help="the engine under load: complete:200/400/800 flooding")
    p.add_argument("--sizes", default="200,400,800", help="--scale: comma-separated n of complete:n")
    p.add_argument("--trace", action="store_true", help="measure tracing: untraced vs JSONL vs Parquet")
    p.add_argument("--trace-graph", default="complete:300", help="graph spec for --trace")
    args = p.parse_args()
    if args.trace:
        trace_benchmark(args.trace_graph, args.rounds or 5)
    elif args.scale:
        scale([int(x) for x in args.sizes.split(",")], args.rounds or 3)
    else:
        args.rounds = args.rounds or 5
        overhead(args)


if __name__ == "__main__":
    main()
