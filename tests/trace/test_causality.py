"""Vector clocks from cause ids, happens-before, and the ShiViz export (ampsim.trace.causality)."""
from __future__ import annotations

import itertools
import re

import pytest

from ampsim import ListTracer, Message, Simulation, get_rule, parse_graph_spec, save_trace
from ampsim.protocols import HaltingFlooding
from ampsim.trace.causality import (
    SHIVIZ_PARSER,
    SHIVIZ_PARSER_PY,
    STARTUP,
    as_trace,
    concurrent,
    happens_before,
    parse_shiviz,
    to_shiviz,
    vector_clocks,
    write_shiviz,
)
from ampsim.trace.records import MessageRecord


def _flood(spec: str, **kwargs) -> ListTracer:
    tracer = ListTracer()
    Simulation(parse_graph_spec(spec), get_rule("flooding"), tracer=tracer, **kwargs).run()
    return tracer


class Hello:
    """Every node says hello once at start-up and ignores what it hears."""

    name = "hello"
    assumes = frozenset()

    def start(self, node):
        return 0, Message("hello", 1)

    def receive(self, node, state, message):
        return state + 1, None


def test_path3_flooding_constant_delays_exact_clocks():
    # path 0-1-2, start at 0, delay 1: m0 start->0 (t0); m1 0->1 (t1); m2 1->0, m3 1->2 (t2); m4 2->1 (t3)
    events = vector_clocks(_flood("path:3"))
    assert [e.msg_id for e in events] == [0, 1, 2, 3, 4]
    assert [e.node for e in events] == [0, 1, 0, 2, 1]
    assert [e.clock for e in events] == [(1, 0, 0), (1, 1, 0), (2, 1, 0), (1, 1, 1), (1, 2, 1)]
    assert [e.local for e in events] == [1, 1, 2, 1, 2]
    assert [e.sent for e in events] == [1, 2, 0, 1, 0]
    assert [e.t for e in events] == [0.0, 1.0, 2.0, 2.0, 3.0]
    assert [(e.src, e.cause_id) for e in events] == [(-1, -1), (0, 0), (1, 1), (1, 1), (2, 3)]


def test_happens_before_and_concurrent_on_path3():
    e0, e1, e2, e3, e4 = vector_clocks(_flood("path:3"))
    assert happens_before(e0, e4) and happens_before(e1, e2) and happens_before(e3, e4)
    assert not happens_before(e2, e1) and not happens_before(e2, e2)
    assert concurrent(e2, e3) and concurrent(e2, e4)
    assert not concurrent(e1, e3) and not concurrent(e0, e0)
    assert happens_before((1, 0, 0), (1, 1, 0))
    with pytest.raises(ValueError, match="different lengths"):
        happens_before((1, 0), (1, 0, 0))


def test_startup_emissions_are_events():
    tracer = ListTracer()
    Simulation(parse_graph_spec("path:2"), Hello(), tracer=tracer, start=None).run()
    events = vector_clocks(tracer)
    # start-up n0 (1,0), start-up n1 (0,1); m0 0->1 and m1 1->0 both arrive at t=1, m0 first
    assert [(e.node, e.msg_id, e.clock, e.sent) for e in events] == [
        (0, STARTUP, (1, 0), 1),
        (1, STARTUP, (0, 1), 1),
        (1, 0, (1, 2), 0),
        (0, 1, (2, 1), 0),
    ]
    assert concurrent(events[0], events[1]) and happens_before(events[0], events[2])


def test_drops_are_not_events():
    tracer = ListTracer()
    Simulation(parse_graph_spec("cycle:4"), HaltingFlooding(), tracer=tracer).run()
    drops = [r for r in tracer.messages if r.event == "drop"]
    deliveries = [r for r in tracer.messages if r.event == "deliver"]
    assert drops and all(r.reason == "halted" for r in drops)
    events = vector_clocks(tracer)
    assert [e.msg_id for e in events] == [r.msg_id for r in deliveries]
    assert [e.local for e in events if e.node == 2] == [1]


def _causal_dag_reachability(events):
    """Brute force: a -> b iff b is reachable from a over (previous event on the node) and (sender) edges."""
    by_delivery = {e.msg_id: e.index for e in events if e.msg_id != STARTUP}
    startup = {e.node: e.index for e in events if e.msg_id == STARTUP}
    parents = {e.index: set() for e in events}
    last = {}
    for e in events:
        if e.node in last:
            parents[e.index].add(last[e.node])
        last[e.node] = e.index
        if e.msg_id != STARTUP and e.src >= 0:
            parents[e.index].add(by_delivery[e.cause_id] if e.cause_id >= 0 else startup[e.src])
    ancestors = {}
    for e in events:  # trace order is a topological order
        acc = set()
        for p in parents[e.index]:
            acc |= {p} | ancestors[p]
        ancestors[e.index] = acc
    return ancestors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vector_clocks_match_brute_force_reachability(seed):
    tracer = _flood("petersen", delay="uniform", seed=seed, loss=0.15, start=[0, 5])
    events = vector_clocks(tracer)
    ancestors = _causal_dag_reachability(events)
    for a, b in itertools.product(events, events):
        assert happens_before(a, b) == (a.index in ancestors[b.index]), (a, b)


def test_shiviz_golden_text_for_path3():
    assert to_shiviz(_flood("path:3")) == (
        "deliver m0 start from outside t=0 sends 1\n"
        'n0 {"n0":1}\n'
        "deliver m1 flood 1 from n0 t=1 sends 2\n"
        'n1 {"n0":1,"n1":1}\n'
        "deliver m2 flood 2 from n1 t=2\n"
        'n0 {"n0":2,"n1":1}\n'
        "deliver m3 flood 2 from n1 t=2 sends 1\n"
        'n2 {"n0":1,"n1":1,"n2":1}\n'
        "deliver m4 flood 3 from n2 t=3\n"
        'n1 {"n0":1,"n1":2,"n2":1}\n'
    )


def test_shiviz_parser_regexes_agree():
    assert SHIVIZ_PARSER.replace("(?<", "(?P<") == SHIVIZ_PARSER_PY
    assert re.compile(SHIVIZ_PARSER_PY).groupindex.keys() == {"event", "host", "clock"}


@pytest.mark.parametrize("seed", [3, 4])
def test_shiviz_round_trip_recovers_clocks(tmp_path, seed):
    tracer = _flood("random-regular:3:12:1", delay="uniform", seed=seed, loss=0.1, start="all")
    events = vector_clocks(tracer)
    path = write_shiviz(tracer, tmp_path / "run.log")
    text = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert text == SHIVIZ_PARSER + "\n\n" + to_shiviz(tracer)  # the upload file: parser, delimiter, log
    parsed = parse_shiviz(text)
    assert len(parsed) == len(events) and path == str(tmp_path / "run.log")
    for (host, event, clock), ev in zip(parsed, events):
        assert host == f"n{ev.node}"
        assert event.startswith(f"deliver m{ev.msg_id} ")
        dense = tuple(clock.get(f"n{v}", 0) for v in range(12))
        assert dense == ev.clock
        assert set(clock) <= {f"n{v}" for v in range(12)} and 0 not in clock.values()
    # ShiViz's rule: each host's own entry is 1, 2, 3, ... in log order
    seen = {}
    for host, _, clock in parsed:
        seen[host] = seen.get(host, 0) + 1
        assert clock[host] == seen[host]


def test_inputs_path_list_and_tracer_agree(tmp_path):
    tracer = _flood("cycle:5", delay="uniform", seed=7)
    save_trace(tracer.trace(), tmp_path / "t.jsonl")
    expected = vector_clocks(tracer)
    assert vector_clocks(tmp_path / "t.jsonl") == expected
    assert vector_clocks(str(tmp_path / "t.jsonl")) == expected
    assert vector_clocks(tracer.records + tracer.ends) == expected  # no header: n from the records
    assert as_trace(tracer.trace()) == tracer.trace()


def test_clear_errors():
    records = _flood("path:3").messages
    without_cause = [r for r in records if not (r.event == "deliver" and r.msg_id == 1)]
    with pytest.raises(ValueError, match="names cause 1, but no earlier delivery"):
        vector_clocks(without_cause)
    with pytest.raises(TypeError, match="not a trace record"):
        vector_clocks([records[0], "junk"])
    with pytest.raises(TypeError, match="expected a Trace"):
        vector_clocks(42)
    with pytest.raises(ValueError, match="host_prefix"):
        to_shiviz(records, host_prefix="a b")
    with pytest.raises(ValueError, match="bad vector clock"):
        parse_shiviz('deliver m0\nn0 {"n0":1,}\n')
    with pytest.raises(ValueError, match="own entry"):
        parse_shiviz('deliver m0\nn0 {"n1":1}\n')


def test_empty_trace_gives_no_events():
    assert vector_clocks([]) == [] and to_shiviz([]) == ""
    lone = MessageRecord("send", 0, -1, -1, 0, 0.0, 0.0, 0.0, "start", "")
    assert vector_clocks([lone]) == []
