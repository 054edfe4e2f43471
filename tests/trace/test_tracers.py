"""The tracer interface: one hook per event, called in event order; TeeTracer fans out."""
from __future__ import annotations

import networkx as nx

from ampsim import Flooding, ListTracer, Simulation, TeeTracer


class Log:
    def __init__(self, states):
        self.wants_states = states
        self.calls = []

    def run_start(self, header):
        self.calls.append(("run_start", header["rule"]["name"]))

    def send(self, r):
        self.calls.append(("send", r.msg_id))

    def deliver(self, r):
        self.calls.append(("deliver", r.msg_id))

    def drop(self, r):
        self.calls.append(("drop", r.msg_id, r.reason))

    def state(self, r):
        self.calls.append(("state", r.node))

    def run_end(self, r):
        self.calls.append(("run_end", r.reason))


def test_hooks_in_event_order():
    log = Log(states=False)
    Simulation(nx.path_graph(3), Flooding(), tracer=log, loss=lambda m, s, d: m == 3).run()
    assert log.calls == [
        ("run_start", "flooding"), ("send", 0), ("deliver", 0), ("send", 1), ("deliver", 1),
        ("send", 2), ("drop", 3, "lost"), ("deliver", 2), ("run_end", "stalled"),
    ]


def test_state_hook_only_when_wanted_and_tee():
    with_states, without = Log(states=True), Log(states=False)
    lt = ListTracer(states=False)
    Simulation(nx.path_graph(2), Flooding(), tracer=TeeTracer([with_states, without, lt])).run()
    assert ("state", 0) in with_states.calls and not any(c[0] == "state" for c in without.calls)
    assert [c for c in with_states.calls if c[0] != "state"] == without.calls
    assert [r.msg_id for r in lt.records] == [0, 0, 1, 1, 2, 2]
