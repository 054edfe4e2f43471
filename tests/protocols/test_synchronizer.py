"""The corrected synchronizer: each case of its table, its message counts, loss, and AMP's limits."""
from __future__ import annotations

import math
import random
from collections import Counter

import networkx as nx
import pytest

from ampsim import NodeView, Simulation
from ampsim.cli import main as cli_main
from ampsim.graphs import parse_graph_spec
from ampsim.protocols import get_rule
from ampsim.protocols.sgin import SGIN, run_sgin
from ampsim.protocols.synchronizer import ORIGIN, Synchronizer, Table1Literal, sync_message
from ampsim.protocols.verify_synchronizer import EARLY_PULSE_RUN, run_counterexample
from ampsim.trace.io import load_trace
from ampsim.trace.replay import replay
from ampsim.trace.tracers import JSONLTracer, ListTracer

ONE = SGIN([[[1.0]], [[1.0]]], [[0.0], [0.0]])
RULE = Synchronizer(ONE)
D2 = NodeView(features=(9.0,), degree=2)


def pulse(m: float, safe: int = 0):
    return sync_message((m,), 1, safe)


SAFE = sync_message((0.0,), 0, 1)


def st(s, a, w, u, l, sigma):
    return ((float(s),), (float(a),), w, u, l, sigma)


def test_start_state_and_assumptions():
    assert RULE.start(D2) == (st(9, 0, 2, 0, 2, 1), None)
    assert RULE.assumes == frozenset({"degree"})  # no ids, no sender, no FIFO
    with pytest.raises(ValueError, match="degree >= 1"):
        RULE.start(NodeView(features=(1.0,), degree=0))


@pytest.mark.parametrize(
    "state, message, new, out",
    [
        # origin at a fresh node: proceed (pulse 1 with x)
        (st(9, 0, 2, 0, 2, 1), ORIGIN, st(9, 0, 2, 2, 2, 0), pulse(9.0)),
        # E: absorb a pulse of the current layer
        (st(9, 0, 2, 2, 2, 0), pulse(3.0), st(9, 3, 1, 2, 2, 0), None),
        # A: the last pulse completes the layer: compute, announce safe
        (st(9, 3, 1, 2, 2, 0), pulse(4.0), st(7, 0, 2, 2, 1, 1), sync_message((0.0,), 0, 1)),
        # A on the last layer: no safe message (nobody waits for pulse L+1)
        (st(9, 3, 1, 2, 1, 0), pulse(4.0), st(7, 0, 2, 2, 0, 1), None),
        # E: a safe message while waiting
        (st(7, 0, 2, 2, 1, 1), SAFE, st(7, 0, 2, 1, 1, 1), None),
        # E: an early pulse of the next layer goes into a, s is kept for the next pulse
        (st(7, 0, 2, 1, 1, 1), pulse(5.0), st(7, 5, 1, 1, 1, 1), None),
        # D: the last safe message: proceed, pulse carries s
        (st(7, 5, 1, 1, 1, 1), SAFE, st(7, 5, 1, 2, 1, 0), pulse(7.0)),
        # C: proceed, then the early pulses already complete the layer: compute in the same step
        (st(7, 5, 1, 1, 1, 1), pulse(6.0, safe=1), st(11, 0, 2, 2, 0, 1), pulse(7.0)),
        (st(7, 5, 1, 1, 2, 1), pulse(6.0, safe=1), st(11, 0, 2, 2, 1, 1), pulse(7.0, safe=1)),
        # B: the layer completes after every neighbour is safe: compute, then proceed
        (st(9, 3, 1, 0, 2, 0), pulse(4.0), st(7, 0, 2, 2, 1, 0), pulse(7.0, safe=1)),
        # F: finished nodes ignore everything
        (st(7, 0, 2, 2, 0, 1), pulse(4.0), st(7, 0, 2, 2, 0, 1), None),
    ],
    ids=["origin", "absorb", "compute", "compute-last", "safe", "early-pulse", "proceed",
         "proceed-compute-last", "proceed-compute", "compute-proceed", "finished"],
)
def test_each_case_of_the_corrected_table(state, message, new, out):
    assert RULE.receive(D2, state, message) == (new, out)


def test_mean_and_gcn_scale_sums_and_payloads():
    view = NodeView(features=(8.0,), degree=4)
    mean, gcn = Synchronizer(SGIN(ONE.weights, ONE.biases, "mean")), Synchronizer(SGIN(ONE.weights, ONE.biases, "gcn"))
    assert mean.receive(view, st(8, 6, 1, 4, 2, 0), pulse(2.0))[0] == st(2, 0, 4, 4, 1, 1)     # (6 + 2) / 4
    assert gcn.receive(view, st(8, 6, 1, 4, 2, 0), pulse(2.0))[0] == st(4, 0, 4, 4, 1, 1)  # 8 / sqrt(4)
    assert gcn.receive(view, st(8, 0, 4, 0, 2, 1), ORIGIN)[1] == pulse(4.0)               # payload 8 / sqrt(4)


@pytest.mark.parametrize("spec", ["path:2", "star:4", "cycle:5", "petersen", "grid:3x3", "gnp:15:0.3:2"])
@pytest.mark.parametrize("aggregation", ["sum", "mean", "gcn"])
def test_matches_sgin_under_random_delays(spec, aggregation):
    g = parse_graph_spec(spec)
    model = SGIN.random(2, 3, seed=11, aggregation=aggregation)
    rng = random.Random(5)
    feats = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(g.num_nodes)]
    ref = run_sgin(g, feats, model)[3]
    for seed in range(3):
        for fifo in (False, True):
            res = Simulation(g, Synchronizer(model), delay="uniform", fifo=fifo, seed=seed, start=seed % g.num_nodes,
                             start_message=ORIGIN, features=feats).run()
            assert res.reason == "quiescent"
            for v in range(g.num_nodes):
                assert res.states[v][4] == 0
                assert res.states[v][0] == pytest.approx(ref[v], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("spec, delay, seed", [("petersen", "constant", 0), ("petersen", "uniform", 1),
                                               ("star:5", "uniform", 2), ("path:2", "constant", 0)])
def test_every_node_sends_L_pulse_bits_and_L_minus_1_safe_bits(spec, delay, seed):
    g, L = parse_graph_spec(spec), 3
    tracer = ListTracer(states=False)
    res = Simulation(g, Synchronizer(SGIN.random(2, L, seed=1)), delay=delay, seed=seed, tracer=tracer,
                     start_message=ORIGIN).run()
    sends = [r for r in tracer.records if r.event == "send" and r.src >= 0]
    broadcasts = {}
    for r in sends:  # one broadcast per (sender, cause): AMP's one message per activation
        broadcasts.setdefault((r.src, r.cause_id), []).append(r)
    bits = Counter()
    for (src, _), copies in broadcasts.items():
        assert sorted(c.dst for c in copies) == list(g.neighbors[src]) and len({c.payload for c in copies}) == 1
        bits[src, "P"] += "P" in copies[0].payload.split()[0]
        bits[src, "S"] += "S" in copies[0].payload.split()[0]
    assert all(bits[v, "P"] == L and bits[v, "S"] == L - 1 for v in range(g.num_nodes))
    merged = sum(len(c) for c in broadcasts.values() if c[0].kind == "pulse+safe")
    assert res.total_deliveries + merged == 1 + (2 * L - 1) * 2 * g.num_edges


def test_constant_delays_cost_exactly_2L_minus_1_waves_on_a_regular_graph():
    g = parse_graph_spec("petersen")
    res = Simulation(g, Synchronizer(SGIN.random(3, 3, seed=0)), start_message=ORIGIN).run()
    assert res.total_deliveries == 1 + 5 * 2 * 15


def test_early_pulse_needs_the_second_accumulator():
    """path:4, start 1, L = 2, constant delays: at t = 4 node 1 is safe at pulse 1 (s = h^(1) = 5,
    still to be sent) and waits for node 2's safe message when node 0's pulse 2 (h^(1)_0 = 2)
    arrives. The corrected rule keeps s and sums the early pulse into a; Table 1 would fire row 5."""
    ex = run_counterexample(EARLY_PULSE_RUN, rule="synchronizer")
    assert ex.outcome == "pass"
    early = [s for s in ex.steps if s[2].payload and s[2].payload[1] and s[1][5] == 1 and s[1][3] - s[2].payload[2] > 0]
    assert len(early) == 1
    view, state, message, new, out, t, k = early[0]
    assert (ex.node_of(early[0]), t, k, out) == (1, 4.0, 10, None)
    assert (state, message.payload, new) == (st(5, 0, 2, 1, 1, 1), ((2.0,), 1, 0, 0), st(5, 2, 1, 1, 1, 1))
    assert ex.reference[1][1] == (5.0,) and ex.reference[1][0] == (2.0,)
    assert Table1Literal(ONE).row(((5.0,), 0, 1, 1), message) == 5  # Table 1 after computing: w = 0


def test_message_loss_ends_stalled_with_the_stuck_nodes_named():
    g = parse_graph_spec("petersen")
    model = SGIN.random(2, 3, seed=3)
    feats = [[0.1 * v, 1.0] for v in range(10)]
    ref = run_sgin(g, feats, model)[3]
    seen_stall = 0
    for seed in range(5):
        res = Simulation(g, Synchronizer(model), delay="uniform", seed=seed, loss=0.05, features=feats,
                         start_message=ORIGIN).run()
        assert res.reason in ("stalled", "quiescent") and res.in_flight == 0
        assert res.stuck == tuple(v for v in range(10) if res.states[v][4] != 0)
        for v in range(10):
            if res.states[v][4] == 0:  # what finished is right: loss stalls, it never corrupts
                assert res.states[v][0] == pytest.approx(ref[v], rel=1e-9, abs=1e-12)
        seen_stall += res.reason == "stalled"
        assert res.dropped > 0 or res.reason == "quiescent"
    assert seen_stall == 5


def test_registered_replayable_and_runnable_from_the_cli(tmp_path, capsys):
    rule = get_rule("synchronizer", **RULE.params())
    assert isinstance(rule, Synchronizer) and rule.model == ONE
    path = tmp_path / "t.jsonl"
    feats = [[1.0], [2.0], [4.0], [8.0]]
    with JSONLTracer(path) as tracer:
        Simulation(nx.cycle_graph(4), rule, delay="uniform", seed=3, tracer=tracer, start_message=ORIGIN,
                   features=feats).run()
    trace = load_trace(path)
    assert replay(trace, start_message=ORIGIN, features=feats).records == trace.records
    # default parameters, featureless graph (all-ones features), the engine's start message
    assert cli_main(["run", "--graph", "petersen", "--rule", "synchronizer", "--delay", "uniform"]) == 0
    assert "ended: quiescent" in capsys.readouterr().out


def test_all_ones_default_features_match_sgin():
    g = parse_graph_spec("grid:2x3")
    rule = Synchronizer(dim=2, layers=2, seed=4)
    res = Simulation(g, rule, delay="uniform", seed=1).run()
    ref = run_sgin(g, None, rule.model)[2]
    assert all(res.states[v][0] == pytest.approx(ref[v], rel=1e-12) for v in range(g.num_nodes))
    assert math.isclose(sum(sum(x) for x in ref), sum(sum(res.states[v][0]) for v in range(g.num_nodes)))
