"""One validation layer: every bad argument of a public entry point gets one clear error.

Each row is (entry point, bad input, error class, message pattern). The message must name
the argument and repeat the user's value; the error is an AmpsimError and a ValueError.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

from ampsim import (
    AmpsimError,
    Flooding,
    GraphError,
    ListTracer,
    Message,
    Simulation,
    TraceFormatError,
    as_graph,
    parse_graph_spec,
    replay,
)
from ampsim import validate as V
from ampsim.engine.errors import ArgumentError, DelayError, EdgeListError, FeatureError, SizeLimitError
from ampsim.graphs import DEFAULT_MAX_EDGES, estimate_spec


def cycle(n=6):
    return nx.cycle_graph(n)


# ----------------------------------------------------------------- the checkers
@pytest.mark.parametrize("check, value, match", [
    (lambda v: V.positive_int("k", v), 2.0, r"k must be an integer >= 1, got 2\.0 \(float\)"),
    (lambda v: V.positive_int("k", v), True, r"k must be an integer >= 1, got True"),
    (lambda v: V.positive_int("k", v), 0, r"k must be an integer >= 1, got 0"),
    (lambda v: V.positive_int("k", v), "3", r"k must be an integer >= 1, got '3'"),
    (lambda v: V.nonneg_int("k", v), -1, r"k must be an integer >= 0, got -1"),
    (lambda v: V.number("x", v), math.nan, r"x must be a finite number \(not NaN\), got nan"),
    (lambda v: V.number("x", v), math.inf, r"x must be a finite number, got inf"),
    (lambda v: V.number("x", v), False, r"x must be a finite number, got False"),
    (lambda v: V.positive_float("d", v), 0.0, r"d must be a finite number > 0, got 0\.0"),
    (lambda v: V.probability("p", v, allow_one=False), 1.0, r"p must be a finite number >= 0 and < 1, got 1\.0"),
    (lambda v: V.probability("p", v), -0.1, r"p must be a finite number >= 0 and <= 1, got -0\.1"),
    (lambda v: V.boolean("flag", v), 1, r"flag must be True or False, got 1"),
    (lambda v: V.choice("mode", v, ["a", "b", "a"]), "c", r"mode must be one of 'a', 'b'; got 'c'"),
    (lambda v: V.node_id("v", v, 5), 5, r"v must be a node index in 0\.\.4, got 5"),
    (lambda v: V.node_ids("s", v, 5), [1, 1], r"s lists node\(s\) \[1\] more than once"),
    (lambda v: V.callable_or_none("f", v), 3, r"f must be a function or None, got 3"),
])
def test_checkers_name_the_argument_and_the_value(check, value, match):
    with pytest.raises(ArgumentError, match=match) as info:
        check(value)
    assert isinstance(info.value, (AmpsimError, ValueError, TypeError))


def test_checkers_return_plain_values():
    assert V.positive_int("k", np.int64(3)) == 3 and type(V.positive_int("k", np.int64(3))) is int
    assert V.number("x", np.float32(0.5)) == 0.5
    assert V.number("t", math.inf, allow_inf=True) == math.inf
    assert V.boolean("b", np.bool_(True)) is True


@pytest.mark.parametrize("value", [
    [1.0, math.nan], (0, math.inf), {"a": [math.nan]}, np.array([1.0, np.nan]), torch.tensor([[0.0, -math.inf]]),
    [[1, 2], [3, np.float64("nan")]], complex(1, math.inf), torch.tensor([math.inf, -math.inf]),
    torch.tensor([1.0, math.nan, 2.0], dtype=torch.float16),
])
def test_nonfinite_found_anywhere(value):
    assert V.nonfinite_at(value)


@pytest.mark.parametrize("value", [[1, 2], "nan", None, torch.ones(3, dtype=torch.long), np.zeros(3), {"a": 1},
                                   torch.full((4,), 3e38), torch.full((8,), 6e4, dtype=torch.float16), torch.zeros(0)])
def test_finite_values_pass(value):
    assert not V.nonfinite_at(value)  # finite values whose sum overflows too (the fast path's sum is inf)


# ----------------------------------------------------------------- Simulation(...)
SIM_BAD = [
    (dict(fifo=1), ArgumentError, r"fifo must be True or False, got 1"),
    (dict(fifo="yes"), ArgumentError, r"fifo must be True or False, got 'yes'"),
    (dict(seed=1.5), ArgumentError, r"seed must be an integer, got 1\.5"),
    (dict(seed=True), ArgumentError, r"seed must be an integer, got True"),
    (dict(seed="0"), ArgumentError, r"seed must be an integer, got '0'"),
    (dict(loss=1.0), ArgumentError, r"loss must be a finite number >= 0 and < 1, got 1\.0"),
    (dict(loss=math.nan), ArgumentError, r"loss must be .*NaN.*got nan"),
    (dict(loss=-0.5), ArgumentError, r"loss must be .*got -0\.5"),
    (dict(loss="0.1"), ArgumentError, r"loss must be .*got '0\.1'"),
    (dict(budget=0), ArgumentError, r"budget must be an integer >= 1, got 0"),
    (dict(budget=10.0), ArgumentError, r"budget must be an integer >= 1, got 10\.0"),
    (dict(allow_isolated="no"), ArgumentError, r"allow_isolated must be True or False, got 'no'"),
    (dict(start=9), ArgumentError, r"start node 9 is not in the graph: start nodes are indices 0\.\.5"),
    (dict(start=-1), ArgumentError, r"start node -1 is not in the graph"),
    (dict(start=1.0), ArgumentError, r"start must be a .*node indices, got 1\.0"),
    (dict(start=True), ArgumentError, r"got True"),
    (dict(start=[0, 7]), ArgumentError, r"start\[1\] must be a node index in 0\.\.5, got 7"),
    (dict(start=[0.5]), ArgumentError, r"start\[0\] must be a node index in 0\.\.5, got 0\.5"),
    (dict(start="first"), ArgumentError, r"start must be .*'all' or None; got 'first'"),
    (dict(start={0: "hi"}), ArgumentError, r"start\[0\] must be a Message, got 'hi'"),
    (dict(start={9: Message()}), ArgumentError, r"start node 9 is not in the graph"),
    (dict(start_message="start"), ArgumentError, r"start_message must be a Message, got 'start'"),
    (dict(tracer=[]), ArgumentError, r"tracer must be a Tracer .* got \[\]"),
    (dict(delay=0), DelayError, r"constant delay must be finite and > 0, got 0"),
    (dict(delay=-1.0), DelayError, r"got -1\.0"),
    (dict(delay=math.nan), DelayError, r"got nan"),
    (dict(delay=True), DelayError, r"delay must be a name, a number or a DelayModel, got True"),
    (dict(delay="gauss"), DelayError, r"unknown delay model 'gauss'"),
    (dict(num_nodes=0), ArgumentError, r"num_nodes must be an integer >= 1, got 0"),
    (dict(features=[[0.0]] * 5 + [[math.nan]]), FeatureError, r"features contain NaN or infinite values at node\(s\) \[5\]"),
    (dict(features=[[0.0]] * 5 + [None]), FeatureError, r"features are given on only some nodes: missing \(None\) on node\(s\) \[5\]"),
    (dict(features={0: [1.0], 1: [2.0]}), FeatureError, r"only some nodes: missing on 4 node\(s\) \[2, 3, 4, 5\]"),
    (dict(features={0: 1, 9: 2}), FeatureError, r"features are given for 9, which is not a node of the graph"),
    (dict(features=[[1.0]] * 4), FeatureError, r"features have 4 rows for 6 nodes"),
    (dict(features=torch.ones(5, 2)), FeatureError, r"features have 5 rows for 6 nodes"),
    (dict(features=np.full((6, 2), np.inf)), FeatureError, r"NaN or infinite values at node\(s\) \[0, 1, 2, 3, 4, 5\]"),
    (dict(features={v: [0.0, math.nan if v == 3 else 1.0] for v in range(6)}), FeatureError, r"at node\(s\) \[3\]"),
    (dict(features="abc"), FeatureError, r"features must be one row per node"),
    (dict(start=[1, 2, 1]), ArgumentError, r"start lists node\(s\) \[1\] more than once"),
    (dict(start=np.array([3, 3])), ArgumentError, r"start lists node\(s\) \[3\] more than once"),
    (dict(features=[[1.0, 2.0]] * 5 + [[1.0]]), FeatureError, r"ragged: node 0 has shape \(2,\), node 5 has shape \(1,\)"),
    (dict(features=[[1.0]] * 5 + [2.0]), FeatureError, r"ragged: node 0 has shape \(1,\), node 5 has shape \(\)"),
    (dict(features=[[[1.0], [2.0, 3.0]]] * 6), FeatureError, r"node 0 are a ragged nested list"),
    (dict(features=[np.ones(2)] * 5 + [np.ones(3)]), FeatureError, r"ragged: node 0 has shape \(2,\), node 5 has shape \(3,\)"),
    (dict(features=7), FeatureError, r"features must be one row per node"),
]


@pytest.mark.parametrize("kwargs, cls, match", SIM_BAD, ids=[str(k) for k, _, _ in SIM_BAD])
def test_simulation_bad_arguments(kwargs, cls, match):
    with pytest.raises(cls, match=match) as info:
        Simulation(cycle(), Flooding(), **kwargs)
    assert isinstance(info.value, AmpsimError) and isinstance(info.value, ValueError)


def test_simulation_rule_must_be_a_node_rule():
    with pytest.raises(ArgumentError, match=r"rule must implement NodeRule .* got 'flooding'"):
        Simulation(cycle(), "flooding")


def test_features_on_networkx_attributes_partial_or_nan():
    g = cycle()
    for v in range(5):
        g.nodes[v]["x"] = [1.0]
    with pytest.raises(FeatureError, match=r"'x' \(features\) is set on only some nodes: missing on 1 node\(s\) \[5\]"):
        Simulation(g, Flooding())
    g.nodes[5]["x"] = [math.nan]
    with pytest.raises(FeatureError, match=r"NaN or infinite values at node\(s\) \[5\]"):
        Simulation(g, Flooding())
    g.nodes[5]["x"] = [2.0]
    assert Simulation(g, Flooding()).views[5].features == [2.0]


def test_features_by_label_and_graphdata():
    g = nx.Graph([("a", "b"), ("b", "c")])
    sim = Simulation(g, Flooding(), features={"a": 1.0, "b": 2.0, "c": 3.0})
    assert [view.features for view in sim.views] == [1.0, 2.0, 3.0]
    with pytest.raises(FeatureError, match=r"missing on 1 node\(s\) \['c'\]"):
        Simulation(g, Flooding(), features={"a": 1.0, "b": 2.0})
    from ampsim.data.graphdata import GraphData

    data = GraphData(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), torch.ones(3, 2), torch.zeros(3, dtype=torch.long), 3)
    sim = Simulation(data, Flooding())
    assert sim.graph.num_nodes == 3 and torch.equal(sim.views[2].features, torch.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        GraphData(torch.tensor([[0, 1], [1, 0]]), torch.tensor([[math.nan], [0.0]]), torch.zeros(2), 2)


def test_isolated_node_named_by_the_users_id():
    g = nx.Graph([("a", "b")])
    g.add_node("zz")
    with pytest.raises(GraphError, match=r"node\(s\) \['zz'\] have no neighbours .* allow_isolated=True"):
        Simulation(g, Flooding())


# ----------------------------------------------------------------- run / step
RUN_BAD = [
    (dict(until=math.nan), r"until must be a number \(not NaN\), got nan"),
    (dict(until="5"), r"until must be a number, got '5'"),
    (dict(until=0.0), r"until must be greater than the current time 0, got 0\.0"),
    (dict(until=-3), r"until must be greater than the current time 0, got -3"),
    (dict(max_deliveries=0), r"max_deliveries must be an integer >= 1, got 0"),
    (dict(max_deliveries=2.5), r"max_deliveries must be an integer >= 1, got 2\.5"),
    (dict(max_deliveries=True), r"max_deliveries must be an integer >= 1, got True"),
    (dict(stop_when=5), r"stop_when must be a function or None, got 5"),
]


@pytest.mark.parametrize("kwargs, match", RUN_BAD, ids=[str(k) for k, _ in RUN_BAD])
def test_run_bad_arguments(kwargs, match):
    sim = Simulation(cycle(), Flooding())
    with pytest.raises(ArgumentError, match=match):
        sim.run(**kwargs)
    assert sim.run().reason == "quiescent"  # a refused call changed nothing


def test_until_inf_reports_quiescent_at_the_real_time():
    tracer = ListTracer()
    r = Simulation(cycle(), Flooding(), tracer=tracer).run(until=math.inf)
    assert (r.reason, r.time, r.deliveries) == ("quiescent", 4.0, 13)
    assert tracer.ends[-1].until is None  # JSON-safe: no Infinity in a trace


def test_until_inf_on_a_rule_that_never_stops_is_bounded_by_the_budget():
    from ampsim.protocols import Echo

    r = Simulation(cycle(), Echo(), budget=50).run(until=math.inf)
    assert r.reason == "message_budget" and r.deliveries == 50


# ----------------------------------------------------------------- graph input
GRAPH_BAD = [
    ([[0, 1], [1]], r"edge_index must have shape \(2, E\), got 2 rows of lengths \[2, 1\]"),
    ([[0, 1, 2]], r"edge_index must have shape \(2, E\), got 1 rows"),
    ([[0, 1.5], [1, 2]], r"edge_index must hold integer node ids, got 1\.5 \(float\) at \[0, 1\]"),
    ([[0, True], [1, 2]], r"edge_index must hold integer node ids, got True at \[0, 1\]"),
    ([[0, -1], [1, 2]], r"edge_index holds a negative node id -1 at \[0, 1\]"),
    (torch.tensor([[0.0, 1.0], [1.0, 2.0]]), r"edge_index must hold integer node ids, got dtype torch.float32"),
    (np.array([[0.0, 1.0], [1.0, 0.0]]), r"edge_index must hold integer node ids, got dtype float64"),
    ("cycle:5", r"cannot read a graph from 'cycle:5'"),
    (None, r"cannot read a graph from None"),
    (42, r"cannot read a graph from int"),
    ([[0, 0], [1, 0]], r"self-loop at node 0"),
    ([[], []], r"the graph is empty"),
]


@pytest.mark.parametrize("graph, match", GRAPH_BAD, ids=[str(i) for i in range(len(GRAPH_BAD))])
def test_graph_input_bad(graph, match):
    with pytest.raises(GraphError, match=match):
        as_graph(graph)


def test_edge_index_num_nodes_checked():
    with pytest.raises(GraphError, match=r"edge \(0, 5\) refers to a node outside 0\.\.2"):
        as_graph([[0], [5]], num_nodes=3)
    with pytest.raises(ArgumentError, match=r"num_nodes must be an integer >= 1, got 2\.0"):
        as_graph([[0], [1]], num_nodes=2.0)
    assert as_graph(torch.tensor([[0, 1], [1, 2]])).num_nodes == 3


SPEC_BAD = [
    ("cycle:2", GraphError, r"a cycle needs at least 3 nodes"),
    ("cycle:x", GraphError, r"expected integers, got 'x'"),
    ("cycle:5:6", GraphError, r"needs 1 number\(s\)"),
    ("path:-3", GraphError, r"numbers must be >= 0"),
    ("gnp:10:nan:1", GraphError, r"P must be in \[0, 1\]"),
    ("gnp:10:1.5:1", GraphError, r"P must be in \[0, 1\]"),
    ("grid:3x", GraphError, r"expected integers"),
    ("random-regular:3:5:0", GraphError, r"needs d < n and d\*n even"),
    ("wheel:5", GraphError, r"unknown graph spec 'wheel:5'"),
    ("complete:100000", SizeLimitError, r"graph spec 'complete:100000' would have 100,000 nodes and 4,999,950,000 "
                                        r"edges .* the limit is 1,500,000 edges: raise it with max_edges="),
    ("path:10000000000", SizeLimitError, r"10,000,000,000 nodes"),
    ("grid:100000x100000", SizeLimitError, r"19,999,800,000 edges"),
    ("random-regular:500:100000:1", SizeLimitError, r"25,000,000 edges"),
    ("gnp:100000:0.5:1", SizeLimitError, r"the limit is 1,500,000 edges"),
]


@pytest.mark.parametrize("spec, cls, match", SPEC_BAD, ids=[s for s, _, _ in SPEC_BAD])
def test_graph_spec_bad(spec, cls, match):
    with pytest.raises(cls, match=match):
        parse_graph_spec(spec)


def test_size_limit_is_overridable_and_estimated_exactly():
    with pytest.raises(SizeLimitError, match="the limit is 10 edges"):
        parse_graph_spec("complete:6", max_edges=10)
    assert parse_graph_spec("complete:6", max_edges=15).num_edges == 15
    for spec in ("path:7", "cycle:9", "star:4", "complete:12", "grid:3x5", "random-regular:3:10:1", "tree:9:2"):
        est, g = estimate_spec(spec), parse_graph_spec(spec)
        assert (est.nodes, est.edges) == (g.num_nodes, g.num_edges), spec
    assert estimate_spec("complete:800").in_flight == 800 * 799
    with pytest.raises(ArgumentError, match=r"max_edges must be an integer >= 1, got 0"):
        parse_graph_spec("cycle:5", max_edges=0)
    with pytest.raises(ArgumentError, match=r"graph spec must be a string .* got 5"):
        parse_graph_spec(5)
    assert DEFAULT_MAX_EDGES == 1_500_000
    from ampsim.graphs import SizeEstimate

    # the largest graph the default admits (as many nodes as edges) stays within about 2 GB by the estimate
    assert SizeEstimate(DEFAULT_MAX_EDGES, DEFAULT_MAX_EDGES).bytes <= 2_000_000_000


EDGE_LIST_BAD = [
    ("0 1\n1 2 7\n", r"{p}:2: expected 'u v' \(two integer node ids\), got 3 columns: '1 2 7'"),
    ("0 1\n1,2,0.5\n", r"{p}:2: expected 'u v' \(two integer node ids\), got 3 columns"),
    ("0 1\na b\n", r"{p}:2: expected 'u v' with integer node ids, got 'a b'"),
    ("0 1\n1 1.5\n", r"{p}:2: expected 'u v' with integer node ids"),
    ("0 1\n2 2\n", r"{p}:2: self-loop at node 2"),
    ("# only a comment\n\n", r"{p}: the edge list is empty"),
    ("", r"{p}: the edge list is empty"),
]


@pytest.mark.parametrize("text, match", EDGE_LIST_BAD, ids=[str(i) for i in range(len(EDGE_LIST_BAD))])
def test_edge_list_bad(tmp_path, text, match):
    p = tmp_path / "g.txt"
    p.write_text(text)
    with pytest.raises(EdgeListError, match=match.format(p=str(p))):
        parse_graph_spec(str(p))


def test_edge_list_missing_folder_binary(tmp_path):
    with pytest.raises(EdgeListError, match=r"edge-list file not found: .*nope\.txt"):
        parse_graph_spec(str(tmp_path / "nope.txt"))
    with pytest.raises(EdgeListError, match=r"is a directory"):
        parse_graph_spec(str(tmp_path) + "/")
    p = tmp_path / "g.txt"
    p.write_bytes(b"0 1\n\xff\xfe 2\n")
    with pytest.raises(EdgeListError, match=rf"{p}: not a text edge-list file \(undecodable byte at position .* of line 2\)"):
        parse_graph_spec(str(p))
    p.write_text("0 1\n1 2\n" * 30)
    with pytest.raises(SizeLimitError, match=r"more than 2 edge lines"):
        parse_graph_spec(str(p), max_edges=1)


def test_edge_list_good(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# a path\n10 20\n20,30  # comment\n30 20\n")
    g = parse_graph_spec(str(p))
    assert g.labels == (10, 20, 30) and g.num_edges == 2


# ----------------------------------------------------------------- replay / plot
def test_replay_bad_arguments(tmp_path):
    with pytest.raises(ArgumentError, match=r"trace must be a Trace or a trace file path, got 5"):
        replay(5)
    with pytest.raises(FileNotFoundError, match="not found"):
        replay(tmp_path / "missing.jsonl")
    tracer = ListTracer()
    Simulation(cycle(), Flooding(), tracer=tracer).run()
    with pytest.raises(ArgumentError, match=r"verify must be True or False, got 'yes'"):
        replay(tracer.trace(), verify="yes")
    with pytest.raises(ArgumentError, match=r"rule must implement NodeRule"):
        replay(tracer.trace(), rule="flooding")
    assert len(replay(tracer.trace()).records) == len(tracer.records)


def test_plot_validates_an_in_memory_trace_like_loading():
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    from ampsim.trace.io import Trace
    from ampsim.viz import plot_spacetime

    tracer = ListTracer()
    Simulation(cycle(), Flooding(), tracer=tracer).run()
    t = tracer.trace()
    bad = Trace(t.header, tuple(r for r in t.records if not (getattr(r, "event", "") == "deliver" and r.msg_id == 3)),
                t.ends)
    with pytest.raises(TraceFormatError, match="never sent|a record is missing"):
        plot_spacetime(bad)
    other = dataclasses.replace(t, header={**t.header, "graph": {"n": 6, "edges": [[0, 1]], "name": ""}})
    with pytest.raises(TraceFormatError, match="graph_hash"):
        plot_spacetime(other)


# ----------------------------------------------------------------- batched executor, data loaders
def test_batched_executor_argument_checks():
    from ampsim.batched.executor import BatchedExecutor
    from ampsim.cells.cells import AMPCell
    from ampsim.data.graphdata import GraphData

    ex = BatchedExecutor()
    cell = AMPCell("rnn", in_features=2, hidden=4, msg_size=4)
    g = GraphData(torch.tensor([[0, 1], [1, 0]]), torch.ones(2, 2), torch.zeros(2, dtype=torch.long), 2)
    msgs = torch.zeros(1, 4)
    for budget, match in ((0, r"budget must be an integer >= 1, got 0"), (3.0, r"got 3\.0"), (True, "got True")):
        with pytest.raises(ArgumentError, match=match):
            ex.unroll(cell, [g], [[[0]]], [[0]], msgs, budget)
    with pytest.raises(ArgumentError, match=r"fifo must be True or False, got 'no'"):
        ex.unroll(cell, [g], [[[0]]], [[0]], msgs, 5, fifo="no")
    with pytest.raises(ArgumentError, match=r"start messages contain NaN"):
        ex.unroll(cell, [g], [[[0]]], [[0]], torch.full((1, 4), math.nan), 5)


def test_parity_loaders_check_sizes():
    from ampsim.data import tasks as T

    with pytest.raises(ArgumentError, match=r"num_graphs must be an integer >= 0, got 2\.0"):
        T.shortest_path_parity(2.0, 10, 0)
    with pytest.raises(ArgumentError, match=r"num_nodes must be an integer >= 1, got 0"):
        T.shortest_path_parity(2, 0, 0)
    with pytest.raises(ArgumentError, match=r"sources must be an integer >= 1 and <= 5, got 6"):
        T.multi_source_parity(1, 5, 0, sources=6)


# ----------------------------------------------------------------- delay models
@pytest.mark.parametrize("make, match", [
    (lambda: __import__("ampsim").Uniform("a", 1), r"uniform delay needs numbers 0 <= low < high < inf, got low='a'"),
    (lambda: __import__("ampsim").Uniform(0.5, 0.5), r"got low=0\.5, high=0\.5"),
    (lambda: __import__("ampsim").Uniform(0, math.inf), r"high=inf"),
    (lambda: __import__("ampsim").Constant(math.nan), r"constant delay must be finite and > 0, got nan"),
    (lambda: __import__("ampsim").Custom(5), r"needs a function"),
    (lambda: __import__("ampsim").FromTrace([1.0]), r"must be a mapping"),
])
def test_delay_models_bad(make, match):
    with pytest.raises(DelayError, match=match):
        make()


@pytest.mark.parametrize("value, match", [(0.0, r"gave delay 0\.0"), (-1.0, r"gave delay -1\.0"),
                                          (math.nan, r"gave delay nan"), (math.inf, r"gave delay inf"),
                                          ("1", r"gave '1'"), (None, r"gave None")])
def test_delay_model_output_checked_never_clamped(value, match):
    from ampsim import Custom

    with pytest.raises(DelayError, match=match):
        Simulation(cycle(), Flooding(), delay=Custom(lambda rng, m, s, d: value)).run()


def test_flag_types_are_one_checker_with_each_commands_wording():
    """Every flag type, in the CLI and in the sweeps below it, is :func:`V.flag_type` over a checker of this
    module: one usage line ``expected <what>, got '<text>'``, with the wording its command chose."""
    import argparse

    from ampsim.cli import args as cli_args
    from ampsim.protocols import verify_ids, verify_synchronizer
    from ampsim import sweeps

    cases = [
        (V.whole_flag(1, 64), "3", 3, ["x", "0", "65", "1.0"],
         ["a whole number", "a whole number >= 1 and <= 64", "a whole number >= 1 and <= 64", "a whole number"]),
        (cli_args.whole(0), "0", 0, ["-1"], ["a whole number >= 0"]),
        (sweeps._count, "0", 0, ["-1", "z"], ["a whole number >= 0 (0: no limit)"] * 2),
        (verify_ids._positive, "2", 2, ["0", "x"], ["a whole number >= 1"] * 2),
        (verify_ids._start_arg, "vary", "vary", ["-1", "x"], ["a node index >= 0 or 'vary'"] * 2),
        (verify_synchronizer._whole(1, 4096), "8", 8, ["0", "y"], ["a whole number in 1..4,096", "a whole number"]),
        (verify_synchronizer._loss, "0.5", 0.5, ["1", "p"], ["a probability in [0, 1)"] * 2),
    ]
    for parse, good, value, bad, wording in cases:
        assert parse(good) == value
        for text, what in zip(bad, wording):
            with pytest.raises(argparse.ArgumentTypeError) as info:
                parse(text)
            assert str(info.value) == f"expected {what}, got {text!r}"
    assert verify_ids._start_arg(" 3") == 3
