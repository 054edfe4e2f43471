"""Table 1 exactly as printed, and every cause of its failures pinned to a row by a minimal run.

The counterexamples use sGIN with d = 1, W = 1, b = 0 (a layer is the sum of the
neighbours' previous states) and features x_v = 2^v, with the start node's feature 0
unless the cause is row 2's: every value below is exact. "#k" is the k-th delivery.
"""
from __future__ import annotations

import networkx as nx
import pytest

from ampsim import Message, NodeView, Simulation
from ampsim.protocols import get_rule
from ampsim.protocols.sgin import SGIN
from ampsim.protocols.synchronizer import ORIGIN, TABLE1_ROWS, Table1Literal, sync_message
from ampsim.protocols.verify_synchronizer import CAUSES, COUNTEREXAMPLES, run_counterexample, search_counterexamples
from ampsim.trace.replay import replay
from ampsim.trace.tracers import ListTracer

RULE = Table1Literal(SGIN([[[1.0]], [[1.0]]], [[0.0], [0.0]]))
D3 = NodeView(features=(5.0,), degree=3)


def pulse(m: float) -> Message:
    return sync_message((m,), 1, 0)


def safe(m: float) -> Message:
    return sync_message((m,), 0, 1)


def step(ex, k: int):
    """(node, row name, state before, message, state after, emission) of delivery #k."""
    view, state, message, new, out, _, number = next(s for s in ex.steps if s[6] == k)
    return ex.node_of(ex.steps[number - 1]), TABLE1_ROWS[RULE.row(state, message)], state, message, new, out


# ---------------------------------------------------------------- the table as printed
def test_start_state_is_x_0_0_L():
    assert RULE.start(D3) == (((5.0,), 0, 0, 2), None)


@pytest.mark.parametrize(
    "state, message, row",
    [
        (((1.0,), 0, 0, 0), ORIGIN, 1),           # l=0 before everything
        (((1.0,), 0, 0, 2), ORIGIN, 2),           # origin before u=0
        (((1.0,), 0, 0, 2), safe(3.0), 3),        # u=0 before safe=1: a safe message fires row 3
        (((1.0,), 0, 2, 2), safe(3.0), 4),        # safe=1 before w=0
        (((1.0,), 0, 2, 2), pulse(3.0), 5),       # w=0 before pulse=1
        (((1.0,), 2, 2, 2), pulse(3.0), 6),
    ],
)
def test_first_matching_row_wins(state, message, row):
    assert RULE.row(state, message) == row


@pytest.mark.parametrize(
    "state, message, new, out",
    [
        (((1.0,), 4, 4, 0), pulse(3.0), ((1.0,), 4, 4, 0), None),
        (((1.0,), 0, 0, 2), ORIGIN, ((1.0,), 2, 3, 2), pulse(1.0)),            # s, D-1, D, l, pulse
        (((1.0,), 0, 0, 2), pulse(3.0), ((3.0,), 1, 3, 2), pulse(1.0)),        # m, D-2, D, l, pulse (old s)
        (((1.0,), 1, 2, 2), safe(3.0), ((1.0,), 1, 1, 2), None),               # s, w, u-1, l, ⊥
        (((1.0,), 0, 2, 2), pulse(3.0), ((4.0,), 0, 1, 1), safe(1.0)),         # ReLU(W(s+m)+b), 0, u-1, l-1, safe
        (((1.0,), 2, 2, 2), pulse(3.0), ((4.0,), 1, 2, 2), None),              # s+m, w-1, u, l, ⊥
    ],
    ids=["l=0", "origin=1", "u=0", "safe=1", "w=0", "pulse=1"],
)
def test_each_row_updates_exactly_as_printed(state, message, new, out):
    assert RULE.receive(D3, state, message) == (new, out)


def test_row_5_uses_the_layer_l_counts_down_to():
    rule = Table1Literal(SGIN([[[2.0]], [[-1.0]]], [[0.0], [10.0]]))
    assert rule.receive(D3, ((1.0,), 0, 1, 2), pulse(1.0))[0][0] == (4.0,)    # layer 1: 2 * 2
    assert rule.receive(D3, ((1.0,), 0, 1, 1), pulse(1.0))[0][0] == (8.0,)    # layer 2: -2 + 10


def test_engine_start_message_is_an_origin_and_only_sum_is_printed():
    assert RULE.row(((1.0,), 0, 0, 2), Message("start")) == 2
    with pytest.raises(ValueError, match="sum aggregation"):
        Table1Literal(SGIN([[[1.0]]], [[0.0]], "mean"))


def test_registered_and_replayable():
    rule = get_rule("table1-literal", **RULE.params())
    assert isinstance(rule, Table1Literal) and rule.model == RULE.model
    tracer = ListTracer()
    sim = Simulation(nx.cycle_graph(3), rule, tracer=tracer, start_message=ORIGIN, features=[[1.0], [2.0], [4.0]])
    sim.run()
    again = replay(tracer.trace(), start_message=ORIGIN, features=[[1.0], [2.0], [4.0]])
    assert again.records == tracer.trace().records


# ---------------------------------------------------------------- every cause, pinned to its row
def test_every_cause_has_a_counterexample():
    assert set(COUNTEREXAMPLES) == set(CAUSES)
    for cause, cx in COUNTEREXAMPLES.items():
        assert cause in [c for _, _, c in run_counterexample(cx).causes], cause


def test_row2_origin_keeps_its_own_state():
    """cycle:3, start 0, constant delays, L = 1: the origin sums x0 + x1 + x2 = 7, sGIN says 6."""
    ex = run_counterexample(COUNTEREXAMPLES["origin-keeps-state"])
    assert ex.causes == [(1, 0, "origin-keeps-state")]
    assert step(ex, 1)[1:] == ("origin=1", ((1.0,), 0, 0, 1), ORIGIN, ((1.0,), 1, 2, 1), pulse(1.0))
    assert ex.outcome == "wrong"
    d = ex.divergence
    assert (d.node, d.pulse, d.expected, d.got, d.row) == (0, 1, (6.0,), (7.0,), "w=0")
    assert [s[0] for s in ex.result.states] == [(7.0,), (5.0,), (3.0,)]  # nodes 1, 2 are right


def test_row3_degree_one_node_never_computes():
    """path:2, start 0, L = 1: node 1 wakes with w = D-2 = -1 and w never returns to 0."""
    ex = run_counterexample(COUNTEREXAMPLES["degree-one"])
    assert ex.causes == [(2, 1, "degree-one")]
    assert step(ex, 2)[:5] == (1, "u=0", ((2.0,), 0, 0, 1), pulse(0.0), ((0.0,), -1, 1, 1))
    assert (ex.outcome, ex.result.reason, ex.result.stuck) == ("deadlock", "stalled", (1,))
    assert ex.result.states[1] == ((0.0,), -1, 0, 1)
    assert (ex.divergence.node, ex.divergence.pulse, ex.divergence.got) == (1, 1, None)


def test_row3_takes_a_safe_message_for_a_pulse():
    """cycle:3, start 0, constant delays, L = 2: from layer 2 on, the message that finds u = 0
    is a safe; row 3 takes its payload (the sender's old partial sum) as a neighbour state."""
    ex = run_counterexample(COUNTEREXAMPLES["u0-takes-safe"])
    assert [c for _, _, c in ex.causes] == ["u0-takes-safe"] * 3
    node, row, before, message, after, out = step(ex, 12)
    assert (node, row, message.kind, out.kind) == (0, "u=0", "safe", "pulse")
    assert (before, after) == (((6.0,), 0, 0, 1), ((0.0,), 0, 2, 1))
    assert ex.outcome == "wrong"
    d = ex.divergence
    assert (d.node, d.pulse, d.expected, d.got, d.delivery) == (0, 2, (6.0,), (4.0,), 14)


def test_row3_takes_the_nodes_own_pending_pulse():
    """cycle:3, start 0, L = 1, copy 3 (node 1 -> 0) delayed to 2.5: node 1's safe overtakes its
    pulse, u reaches 0 first, and row 3 takes the late pulse as the next layer's: layer 1 is skipped."""
    ex = run_counterexample(COUNTEREXAMPLES["u0-takes-stale-pulse"])
    assert ex.causes == [(11, 0, "u0-takes-stale-pulse")]
    node, row, before, message, after, out = step(ex, 11)
    assert (node, row, message.kind, out.kind) == (0, "u=0", "pulse", "pulse")
    assert (before, after) == (((4.0,), 0, 0, 1), ((2.0,), 0, 2, 1))
    assert (ex.outcome, ex.result.stuck) == ("deadlock", (0,))


def test_row5_refires_because_w_stays_0():
    """cycle:3, start 0, L = 2, copy 3 delayed: after row 3 fired early (#11), node 0 computes at
    #14 and the next pulse (#16) finds w = 0 again: a third layer from a 2-layer sGIN."""
    ex = run_counterexample(COUNTEREXAMPLES["w0-refires"])
    assert ex.causes == [(11, 0, "u0-takes-stale-pulse"), (16, 0, "w0-refires")]
    assert step(ex, 14)[1:5] == ("w=0", ((2.0,), 0, 2, 2), pulse(4.0), ((6.0,), 0, 1, 1))
    assert step(ex, 16)[1:5] == ("w=0", ((6.0,), 0, 1, 1), pulse(2.0), ((8.0,), 0, 0, 0))
    assert ex.outcome == "wrong" and ex.result.states[0][0] == (8.0,) and ex.reference[2][0] == (6.0,)


def test_rows_5_6_add_a_pulse_of_an_earlier_layer():
    """cycle:3, start 0, L = 2, copies 7 and 13 delayed: row 3 has fired at node 0 on safe messages
    (#14 is its pulse 2, #21 a third pulse of a 2-layer run); node 1's pulse 2, delayed, then
    arrives (#23) and row 5 sums it into that third window."""
    ex = run_counterexample(COUNTEREXAMPLES["late-pulse"])
    assert ex.causes == [(9, 1, "u0-takes-safe"), (12, 2, "u0-takes-safe"), (21, 0, "u0-takes-safe"),
                         (23, 0, "late-pulse")]
    assert step(ex, 23)[1:5] == ("w=0", ((2.0,), 0, 2, 1), pulse(4.0), ((6.0,), 0, 1, 0))
    assert ex.outcome == "wrong"


def test_rows_5_6_add_a_pulse_of_a_later_layer():
    """cycle:3, start 0, L = 2, copies 7 and 11 delayed: node 0 has computed layer 1 and waits for
    safe messages when a neighbour's layer-2 pulse arrives (#12); row 5 sums it into s = h^(1)."""
    ex = run_counterexample(COUNTEREXAMPLES["early-pulse"])
    assert [c for _, _, c in ex.causes] == ["u0-takes-safe", "u0-takes-safe", "w0-refires", "early-pulse"]
    assert ex.causes[-1] == (12, 0, "early-pulse")
    assert step(ex, 12)[1] == "w=0"
    assert ex.outcome == "wrong"


def test_nothing_starts_the_next_pulse_when_u_reaches_0():
    """path:2, start 0, L = 2: node 0 computes layer 1 at #3 (row 5) and u reaches 0 in the same
    step; Table 1 emits only the safe bit there and proceeds only on a *later* message (row 3).
    None comes (node 1, the degree-one leaf, is stuck at w = -1): node 0 waits forever at l = 1.
    It cannot occur alone: when every neighbour computes, each of them sends a safe, and the
    (D+1)-th event always arrives (and is misread by row 3: causes C3/C4)."""
    ex = run_counterexample(COUNTEREXAMPLES["u0-nothing-proceeds"])
    assert ex.causes == [(2, 1, "degree-one"), (3, 0, "u0-nothing-proceeds")]
    node, row, before, message, after, out = step(ex, 3)
    assert (node, row, before, message, after, out) == (0, "w=0", ((0.0,), 0, 1, 2), pulse(2.0),
                                                        ((2.0,), 0, 0, 1), safe(0.0))
    assert ex.result.total_deliveries == 4 and ex.result.states[0] == ((2.0,), 0, 0, 1)
    assert (ex.outcome, ex.result.reason, ex.result.stuck) == ("deadlock", "stalled", (0, 1))


def test_row3_takes_a_pulse_two_layers_ahead():
    """cycle:8, start 7, L = 3, 33 scripted copies (the sweep case table1-literal cycle:8 L=3 seed=6
    uniform, reduced): #42 node 2, at pulse 2 after earlier misfires, is at u = 0 and receives a
    neighbour's pulse two or more pulses ahead of its own, and row 3 takes it as the first of its next layer. Earlier
    row-3 misfires are needed to put a neighbour two pulses ahead: it never occurs alone."""
    ex = run_counterexample(COUNTEREXAMPLES["u0-takes-early-pulse"])
    first = [c for c in ex.causes if c[2] == "u0-takes-early-pulse"][0]
    assert first == (42, 2, "u0-takes-early-pulse")
    assert [c for _, _, c in ex.causes[:3]] == ["u0-takes-safe"] * 3
    node, row, before, message, after, out = step(ex, 42)
    assert (node, row, before, message, after, out) == (2, "u=0", ((11.0,), 0, 0, 1), pulse(4.0),
                                                        ((4.0,), 0, 2, 1), pulse(11.0))
    assert (ex.outcome, ex.result.stuck) == ("deadlock", (1, 3, 5))


def test_the_search_finds_these_counterexamples():
    found = search_counterexamples(graphs=("path:2", "cycle:3"), layers=(1, 2), slowed=1, max_msg_id=6, delays=(2.5,))
    for cause in ("origin-keeps-state", "degree-one", "u0-takes-safe", "u0-takes-stale-pulse", "w0-refires"):
        assert found[cause][1] == COUNTEREXAMPLES[cause], cause


def test_corrected_synchronizer_passes_every_counterexample():
    for cx in COUNTEREXAMPLES.values():
        ex = run_counterexample(cx, rule="synchronizer")
        assert ex.outcome == "pass", cx
