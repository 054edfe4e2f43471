"""The NodeRule and Tracer contracts at the boundary: a user's broken rule or tracer is named, never an engine error."""
from __future__ import annotations

import networkx as nx
import pytest

from ampsim import ListTracer, Message, Simulation, replay
from ampsim.engine.errors import ArgumentError, RuleError
from ampsim.protocols import Flooding


class Minimal:
    """start and receive only: no name, no assumes (both optional)."""

    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        return state + 1, (Message("m") if state == 0 else None)


def test_a_rule_with_only_start_and_receive_works():
    tr = ListTracer()
    result = Simulation(nx.path_graph(3), Minimal(), tracer=tr).run()
    assert (result.reason, result.total_deliveries) == ("quiescent", 5)
    assert tr.header_["rule"] == {"name": "Minimal", "params": {}}
    assert len(replay(tr.trace(), Minimal()).records) == len(tr.records)


@pytest.mark.parametrize("receive, match", [
    (lambda self, node, state, message: None, r"Bad\.receive must return a pair .*NoneType"),
    (lambda self, node, state, message: (1, 2, 3), r"Bad\.receive must return a pair .*too many values"),
    (lambda self, node, state, message: (1, "hello"), r"Bad\.receive must return \(state, Message or None\); its message is a str"),
    (lambda self, node, state, message: [1, {"kind": "m"}], r"Bad\.receive .* its message is a dict"),
])
def test_a_wrong_receive_result_names_the_class_and_method(receive, match):
    Bad = type("Bad", (Minimal,), {"receive": receive})
    with pytest.raises(RuleError, match=match) as err:
        Simulation(nx.path_graph(3), Bad(), delay="uniform").run()
    assert isinstance(err.value, ValueError)


def test_a_wrong_start_result_and_a_missing_method_are_named():
    Bad = type("Bad", (Minimal,), {"start": lambda self, node: "idle"})
    with pytest.raises(RuleError, match=r"Bad\.start must return a pair \(state, Message or None\), got str"):
        Simulation(nx.path_graph(3), Bad())
    NoReceive = type("NoReceive", (), {"start": lambda self, node: (0, None)})
    with pytest.raises(RuleError, match=r"rule NoReceive has no method 'receive'"):
        Simulation(nx.path_graph(3), NoReceive())
    BadHook = type("BadHook", (Minimal,), {"halted": True})
    with pytest.raises(RuleError, match=r"BadHook\.halted must be a method"):
        Simulation(nx.path_graph(3), BadHook())
    BadAssumes = type("BadAssumes", (Minimal,), {"assumes": "fifo"})
    with pytest.raises(RuleError, match=r"BadAssumes\.assumes must be a set of names"):
        Simulation(nx.path_graph(3), BadAssumes())
    with pytest.raises(ArgumentError, match=r"rule must implement NodeRule .* got <class"):
        Simulation(nx.path_graph(3), Flooding)


def test_an_error_inside_the_rule_is_the_users_own():
    class Boom(Minimal):
        def receive(self, node, state, message):
            raise ValueError("cannot unpack my own thing")

    with pytest.raises(ValueError, match="cannot unpack my own thing") as err:
        Simulation(nx.path_graph(3), Boom()).run()
    assert not isinstance(err.value, RuleError)


class Counting:
    """send, deliver and drop only: the optional hooks (run_start, run_end, state, wants_states) are absent."""

    def __init__(self):
        self.n = 0

    def send(self, record):
        self.n += 1

    deliver = drop = send


def test_a_tracer_without_optional_hooks_works():
    tracer = Counting()
    result = Simulation(nx.cycle_graph(4), Flooding(), tracer=tracer, loss=0.3, delay="uniform").run()
    assert tracer.n == result.sent + result.total_deliveries


@pytest.mark.parametrize("attrs, match", [
    ({"deliver": None}, r"tracer Broken has no method 'deliver'"),
    ({"drop": 5}, r"tracer Broken\.drop must be a method, got int"),
    ({"wants_states": "yes"}, r"tracer Broken\.wants_states must be True or False"),
    ({"wants_states": True}, r"tracer Broken wants states .* no method 'state'"),
])
def test_a_broken_tracer_is_named(attrs, match):
    Broken = type("Broken", (Counting,), attrs)
    with pytest.raises(RuleError, match=match):
        Simulation(nx.cycle_graph(4), Flooding(), tracer=Broken())
