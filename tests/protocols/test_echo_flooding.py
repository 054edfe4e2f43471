"""Echo (always emits, never quiet) and HaltingFlooding (halted nodes drop): exact traces."""
from __future__ import annotations

from ampsim import ListTracer, Simulation, parse_graph_spec
from ampsim.protocols import Echo, Flooding, HaltingFlooding, get_rule
from ampsim.trace.records import MessageRecord


def _m(event, mid, cause, src, dst, ts, td, kind, payload, reason=""):
    return MessageRecord(event, mid, cause, src, dst, ts, td, td - ts, kind, payload, reason)


def test_echo_runs_until_the_budget_and_leaves_its_last_copy_in_flight():
    tracer = ListTracer(states=False)
    result = Simulation(parse_graph_spec("path:2"), Echo(), tracer=tracer).run(max_deliveries=3)
    assert result.reason == "message_budget" and result.states == (2, 1) and result.in_flight == 1
    assert tracer.messages == [
        _m("send", 0, -1, -1, 0, 0.0, 0.0, "start", ""),
        _m("deliver", 0, -1, -1, 0, 0.0, 0.0, "start", ""),
        _m("send", 1, 0, 0, 1, 0.0, 1.0, "echo", "1"),
        _m("deliver", 1, 0, 0, 1, 0.0, 1.0, "echo", "1"),
        _m("send", 2, 1, 1, 0, 1.0, 2.0, "echo", "1"),
        _m("deliver", 2, 1, 1, 0, 1.0, 2.0, "echo", "1"),
        _m("send", 3, 2, 0, 1, 2.0, 3.0, "echo", "2"),
    ]


def test_halting_flooding_drops_the_copies_that_reach_halted_nodes():
    tracer = ListTracer(states=False)
    result = Simulation(parse_graph_spec("path:3"), HaltingFlooding(), tracer=tracer).run()
    assert result.reason == "quiescent" and result.states == (0, 1, 2)
    assert (result.deliveries, result.sent, result.dropped) == (3, 5, 2)
    assert [r for r in tracer.messages if r.event == "drop"] == [
        _m("drop", 2, 1, 1, 0, 1.0, 2.0, "flood", "2", "halted"),
        _m("drop", 4, 3, 2, 1, 2.0, 3.0, "flood", "3", "halted"),
    ]
    # Plain flooding processes those two copies instead (and emits nothing for them).
    plain = Simulation(parse_graph_spec("path:3"), Flooding()).run()
    assert (plain.deliveries, plain.sent, plain.dropped, plain.states) == (5, 5, 0, (0, 1, 2))


def test_both_are_registered_by_name():
    assert isinstance(get_rule("echo"), Echo)
    assert isinstance(get_rule("flooding-halt"), HaltingFlooding)
