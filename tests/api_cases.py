"""Bad (and borderline) values at the library boundary, as a user would pass them, and how each ends.

Each case is ``Case(name, call, expect, words, check)``: ``call()`` uses the public API only;
``expect`` is ``"error"`` (it must raise a ``ValueError``/``TypeError`` -- an ``OSError`` for a path --
whose message names the argument: one of ``words``) or ``"ok"`` (it must return, and ``check(result)``
must hold: the value was normalised, e.g. a NumPy seed gives the stream of the equal ``int``).

Outcomes: ``ok`` / ``clear`` (as expected), ``misleading`` (a ValueError/TypeError that does not name
the argument), ``internal`` (any other exception: an engine-internal error), ``silent`` (accepted a bad
value, or returned a wrong result), ``hang`` (over the time bound). ``python tests/api_cases.py`` prints
the table of docs/reliability.md; ``tests/test_api_boundary.py`` asserts every case ends ok or clear.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import networkx as nx
import numpy as np
import torch

import ampsim
from ampsim import (Constant, Custom, FromTrace, ListTracer, Message, START, Simulation, Uniform, as_graph,
                    load_trace, parse_graph_spec, save_trace)
from ampsim.engine.delays import Exponential, Pareto
from ampsim.protocols import Flooding, get_rule

TIME_LIMIT = 10  # seconds per case


@dataclass
class Case:
    name: str
    call: Callable[[], Any]
    expect: str  # "error" or "ok"
    words: Sequence[str] = ()
    check: Optional[Callable[[Any], bool]] = None


def C4():
    return nx.cycle_graph(4)


def sim(**kw):
    kw.setdefault("delay", "uniform")
    graph = kw.pop("graph", None) or C4()
    rule = kw.pop("rule", None) or Flooding()
    return Simulation(graph, rule, **kw)


def ran(**kw):
    run_kw = kw.pop("run", {})
    s = sim(**kw)
    r = s.run(**run_kw)
    return s, r


def times(s) -> list:
    return [(type(r.t_deliver), r.t_deliver) for r in s.tracer.records if hasattr(r, "t_deliver")]


def traced(**kw):
    t = ListTracer()
    s, r = ran(tracer=t, **kw)
    return t, s, r


def same_as(ref_kw, **kw):
    """The run with ``kw`` equals the run with ``ref_kw`` record for record, and its clock is a Python float."""
    def check(_):
        t1, s1, _r1 = traced(**kw)
        t2, s2, _r2 = traced(**ref_kw)
        return (t1.records == t2.records and type(s1.now) is float
                and all(type(r.t_deliver) is float for r in t1.messages))
    return check


def clock_float(result) -> bool:
    s, r = result
    return type(s.now) is float and type(r.time) is float


# ----------------------------------------------------------------- user rules and tracers
class Rule:
    def start(self, node):
        return 0, None

    def receive(self, node, state, message):
        return state + 1, (Message("m", state) if state < 2 else None)


class StartNotPair(Rule):
    def start(self, node):
        return 0


class StartTriple(Rule):
    def start(self, node):
        return 0, None, 1


class StartStrMessage(Rule):
    def start(self, node):
        return 0, "hello"


class ReceiveNone(Rule):
    def receive(self, node, state, message):
        return None


class ReceiveStr(Rule):
    def receive(self, node, state, message):
        return state, "hello"


class ReceiveList(Rule):
    def receive(self, node, state, message):
        return [state, None]


class ReceiveTriple(Rule):
    def receive(self, node, state, message):
        return state, None, 0


class ReceiveDict(Rule):
    def receive(self, node, state, message):
        return {"state": state}


class HaltedAttr(Rule):
    halted = True


class FinishedNonCallable(Rule):
    finished = 1


class AssumesStr(Rule):
    assumes = "fifo"


class AssumesUnknown(Rule):
    assumes = frozenset({"telepathy"})


class ParamsList(Rule):
    def params(self):
        return [1, 2]


class SummarizeBad(Rule):
    def summarize(self, payload):
        return 5  # not a string


class NoReceive:
    def start(self, node):
        return 0, None


class StartRaises(Rule):
    def start(self, node):
        raise ZeroDivisionError("user code")


class HaltedRaises(Rule):
    def halted(self, state):
        raise KeyError("user code")


class OnlyRequired:
    def __init__(self):
        self.n = 0

    def send(self, r):
        self.n += 1

    def deliver(self, r):
        self.n += 1

    def drop(self, r):
        self.n += 1


class NoDrop:
    def send(self, r):
        pass

    def deliver(self, r):
        pass


class WantsStatesNoHook(OnlyRequired):
    wants_states = True


class WantsStatesInt(OnlyRequired):
    wants_states = 1


class SendAttr(OnlyRequired):
    send = 5


# ----------------------------------------------------------------- batched / cells
def cell(kind="rnn"):
    from ampsim.cells.cells import AMPCell
    from ampsim.cells.models import init_parameters

    c = AMPCell(kind, 2, 4, 3)
    init_parameters(c, torch.Generator().manual_seed(0))
    return c


def gdata(n=4):
    from ampsim.data.graphdata import GraphData

    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    return GraphData(ei, torch.ones(n, 2), torch.zeros(n, dtype=torch.long), n, "node")


def runspec(starts=(0,), seed=0, rows=None):
    from ampsim.cells.execute import RunSpec

    k = len(starts) if rows is None else rows
    return RunSpec(tuple(starts) if not isinstance(starts, tuple) else starts, torch.ones(k, 3), seed)


def execute(executor, runs=None, budget=8, **kw):
    return executor.execute(cell(), kw.pop("graph", None) or gdata(), runs if runs is not None else [runspec()],
                            budget, **kw)


def batched(**kw):
    from ampsim.batched import BatchedExecutor

    return BatchedExecutor(**kw)


def engine_ex():
    from ampsim.cells.execute import EngineExecutor

    return EngineExecutor()


def both_equal(runs_a, runs_b=None, **kw):
    """Batched and engine executors agree, and the run equals the one with plain Python values."""
    def call():
        a = execute(batched(), runs_a, **kw)
        b = execute(engine_ex(), runs_a, **kw)
        return a, b
    return call


def close(res) -> bool:
    a, b = res
    return bool(torch.allclose(a, b, atol=1e-5))


# ----------------------------------------------------------------- PyG
def pyg_Data():
    """PyG's ``Data``, imported with its import-time deprecation warnings silenced (they are torch's, not ours)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.data import Data
    return Data


def pyg_data(ei, n=None, **kw):
    Data = pyg_Data()

    return Data(edge_index=torch.tensor(ei, dtype=torch.long), num_nodes=n, **kw)


SYM = [[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]]


# ----------------------------------------------------------------- files
def _tmp() -> str:
    return tempfile.mkdtemp(prefix="ampsim-probe-")


def a_trace():
    t = ListTracer()
    s = sim(tracer=t)
    s.run()
    return t.trace()


def with_dir(fn):
    def call():
        d = _tmp()
        try:
            return fn(d)
        finally:
            import shutil

            shutil.rmtree(d, ignore_errors=True)
    return call


def fifo_path(d):
    p = os.path.join(d, "pipe.jsonl")
    os.mkfifo(p)
    return p


def write(d, name, data: bytes):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def save_then_list(path_of):
    """save_trace to ``path_of(d)`` must refuse and leave the folder as it was."""
    def call(d):
        path = path_of(d)
        before = sorted(os.listdir(d))
        try:
            save_trace(a_trace(), path)
        finally:
            after = sorted(os.listdir(d))
            if after != before:
                raise AssertionError(f"left files behind: {sorted(set(after) - set(before))}")
    return with_dir(call)


def train_config(**kw):
    from ampsim.train import TrainConfig

    kw.setdefault("task", "limits1")
    return TrainConfig(**kw)


# ----------------------------------------------------------------- the cases
def cases() -> list[Case]:
    E, O = "error", "ok"
    cs: list[Case] = []
    add = cs.append

    # seeds
    add(Case("seed np.int64 = int stream", lambda: None, O, check=same_as(dict(seed=3), seed=np.int64(3))))
    add(Case("seed np.int64 with loss = int stream", lambda: None, O,
             check=same_as(dict(seed=3, loss=0.3), seed=np.int64(3), loss=0.3)))
    add(Case("seed np.uint8", lambda: None, O, check=same_as(dict(seed=7), seed=np.uint8(7))))
    add(Case("seed negative", lambda: ran(seed=-5), O, check=clock_float))
    add(Case("seed huge", lambda: ran(seed=2 ** 200), O, check=clock_float))
    add(Case("seed float", lambda: sim(seed=1.0), E, ["seed"]))
    add(Case("seed str", lambda: sim(seed="1"), E, ["seed"]))
    add(Case("seed bool", lambda: sim(seed=True), E, ["seed"]))
    add(Case("seed None", lambda: sim(seed=None), E, ["seed"]))
    add(Case("seed np.float64", lambda: sim(seed=np.float64(1)), E, ["seed"]))
    add(Case("seed 0-d tensor", lambda: sim(seed=torch.tensor(3)), E, ["seed"]))
    # delays
    add(Case("delay np.float32 constant", lambda: ran(delay=np.float32(0.3)), O, check=clock_float))
    add(Case("delay np.float32 = float", lambda: None, O,
             check=same_as(dict(delay=float(np.float32(0.3))), delay=np.float32(0.3))))
    add(Case("delay np.int64", lambda: ran(delay=np.int64(2)), O, check=clock_float))
    add(Case("delay Constant(np.float16)", lambda: ran(delay=Constant(np.float16(0.5))), O, check=clock_float))
    add(Case("delay Uniform(np.float32)", lambda: ran(delay=Uniform(np.float32(0.1), np.float32(2))), O,
             check=clock_float))
    add(Case("delay Exponential(np.float32)", lambda: ran(delay=Exponential(np.float32(0.5))), O, check=clock_float))
    add(Case("delay Custom -> np.float32", lambda: ran(delay=Custom(lambda r, m, s, d: np.float32(0.25))), O,
             check=clock_float))
    add(Case("delay Custom -> 0-d tensor", lambda: ran(delay=Custom(lambda r, m, s, d: torch.tensor(0.5))), O,
             check=clock_float))
    add(Case("delay Custom -> int", lambda: ran(delay=Custom(lambda r, m, s, d: 1)), O, check=clock_float))
    add(Case("delay FromTrace np values", lambda: ran(delay=FromTrace({}, default=np.float32(0.5))), O,
             check=clock_float))
    add(Case("delay 0", lambda: sim(delay=0), E, ["delay"]))
    add(Case("delay -1", lambda: sim(delay=-1), E, ["delay"]))
    add(Case("delay nan", lambda: sim(delay=float("nan")), E, ["delay"]))
    add(Case("delay inf", lambda: sim(delay=math.inf), E, ["delay"]))
    add(Case("delay np.float32 nan", lambda: sim(delay=np.float32("nan")), E, ["delay"]))
    add(Case("delay bool", lambda: sim(delay=True), E, ["delay"]))
    add(Case("delay None", lambda: sim(delay=None), E, ["delay"]))
    add(Case("delay list", lambda: sim(delay=[1.0]), E, ["delay"]))
    add(Case("delay unknown name", lambda: sim(delay="gauss"), E, ["delay"]))
    add(Case("delay class not instance", lambda: sim(delay=Uniform), E, ["delay"]))
    add(Case("Uniform low > high", lambda: Uniform(2, 1), E, ["delay", "low"]))
    add(Case("Uniform str", lambda: Uniform("0", 1), E, ["delay", "low"]))
    add(Case("Pareto alpha 0", lambda: Pareto(0), E, ["alpha"]))
    add(Case("Custom not callable", lambda: Custom(5), E, ["custom", "fn", "delay"]))
    add(Case("Custom -> -1 at run", lambda: ran(delay=Custom(lambda r, m, s, d: -1.0)), E, ["delay"]))
    add(Case("Custom -> str at run", lambda: ran(delay=Custom(lambda r, m, s, d: "x")), E, ["delay"]))
    add(Case("Custom -> vector at run", lambda: ran(delay=Custom(lambda r, m, s, d: np.ones(2))), E, ["delay"]))
    add(Case("Custom -> nan tensor", lambda: ran(delay=Custom(lambda r, m, s, d: torch.tensor(float("nan")))), E,
             ["delay"]))
    add(Case("FromTrace str keys", lambda: FromTrace({"a": 1.0}), E, ["message id", "delays"]))
    add(Case("FromTrace not mapping", lambda: FromTrace([1.0]), E, ["delays", "mapping"]))
    add(Case("FromTrace default -1", lambda: FromTrace({}, default=-1), E, ["default"]))
    # fifo, allow_isolated, budget, num_nodes
    add(Case("fifo 1", lambda: sim(fifo=1), E, ["fifo"]))
    add(Case("fifo 'yes'", lambda: sim(fifo="yes"), E, ["fifo"]))
    add(Case("fifo np.bool_", lambda: ran(fifo=np.bool_(True)), O, check=lambda r: r[0].fifo is True))
    add(Case("allow_isolated 'no'", lambda: sim(allow_isolated="no"), E, ["allow_isolated"]))
    add(Case("budget 0", lambda: sim(budget=0), E, ["budget"]))
    add(Case("budget 2.5", lambda: sim(budget=2.5), E, ["budget"]))
    add(Case("budget np.int64", lambda: ran(budget=np.int64(3)), O,
             check=lambda r: r[1].deliveries == 3 and type(r[0].budget) is int))
    add(Case("num_nodes contradicts nx", lambda: sim(num_nodes=5), E, ["num_nodes"]))
    add(Case("num_nodes 0", lambda: sim(graph=[[0, 1], [1, 2]], num_nodes=0), E, ["num_nodes"]))
    add(Case("num_nodes np.int64", lambda: ran(graph=[[0, 1], [1, 2]], num_nodes=np.int64(3)), O,
             check=lambda r: r[0].graph.num_nodes == 3))
    add(Case("num_nodes 3.0", lambda: sim(graph=[[0, 1], [1, 2]], num_nodes=3.0), E, ["num_nodes"]))
    # loss
    add(Case("loss 1.0", lambda: sim(loss=1.0), E, ["loss"]))
    add(Case("loss -0.1", lambda: sim(loss=-0.1), E, ["loss"]))
    add(Case("loss nan", lambda: sim(loss=float("nan")), E, ["loss"]))
    add(Case("loss '0.1'", lambda: sim(loss="0.1"), E, ["loss"]))
    add(Case("loss None", lambda: sim(loss=None), E, ["loss"]))
    add(Case("loss np.float64 = float", lambda: None, O, check=same_as(dict(loss=0.25), loss=np.float64(0.25))))
    add(Case("loss fn -> not bool", lambda: ran(loss=lambda m, s, d: "maybe"), E, ["loss"]))
    # start
    add(Case("start np.int64", lambda: None, O, check=same_as(dict(start=1), start=np.int64(1))))
    add(Case("start np.array", lambda: None, O, check=same_as(dict(start=[0, 2]), start=np.array([0, 2]))))
    add(Case("start tensor list", lambda: None, O, check=same_as(dict(start=[0, 2]), start=torch.tensor([0, 2]))))
    add(Case("start 0-d tensor", lambda: None, O, check=same_as(dict(start=2), start=torch.tensor(2))))
    add(Case("start 0-d array", lambda: None, O, check=same_as(dict(start=2), start=np.array(2))))
    add(Case("start duplicate", lambda: sim(start=[0, 0]), E, ["start"]))
    add(Case("start np duplicate", lambda: sim(start=np.array([1, 1])), E, ["start"]))
    add(Case("start out of range", lambda: sim(start=4), E, ["start"]))
    add(Case("start negative", lambda: sim(start=-1), E, ["start"]))
    add(Case("start float", lambda: sim(start=1.0), E, ["start"]))
    add(Case("start bool", lambda: sim(start=True), E, ["start"]))
    add(Case("start 'first'", lambda: sim(start="first"), E, ["start"]))
    add(Case("start [[0, 1]]", lambda: sim(start=[[0, 1]]), E, ["start"]))
    add(Case("start float array", lambda: sim(start=np.array([0.0, 1.0])), E, ["start"]))
    add(Case("start dict bad message", lambda: sim(start={0: "go"}), E, ["start", "Message"]))
    add(Case("start dict bad node", lambda: sim(start={9: START}), E, ["start"]))
    add(Case("start dict np key", lambda: None, O,
             check=same_as(dict(start={1: START}), start={np.int64(1): START})))
    add(Case("start_message str", lambda: sim(start_message="go"), E, ["start_message"]))
    # features
    add(Case("features numpy rows", lambda: ran(features=np.zeros((4, 2))), O, check=clock_float))
    add(Case("features np rows wrong count", lambda: sim(features=np.zeros((3, 2))), E, ["features"]))
    add(Case("features tensor rows wrong count", lambda: sim(features=torch.zeros(5, 2)), E, ["features"]))
    add(Case("features scalar", lambda: sim(features=3.0), E, ["features"]))
    add(Case("features 0-d tensor", lambda: sim(features=torch.tensor(1.0)), E, ["features"]))
    add(Case("features str", lambda: sim(features="abcd"), E, ["features"]))
    add(Case("features ragged", lambda: sim(features=[[1.0], [1.0, 2.0], [1.0], [1.0]]), E, ["features"]))
    add(Case("features ragged nested", lambda: sim(features=[[[1], [1, 2]]] * 4), E, ["features"]))
    add(Case("features mixed arrays", lambda: sim(features=[np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2)]),
             E, ["features"]))
    add(Case("features nan tensor", lambda: sim(features=torch.tensor([[0.0], [math.nan], [0.0], [0.0]])), E,
             ["features"]))
    add(Case("features inf list", lambda: sim(features=[0.0, math.inf, 0.0, 0.0]), E, ["features"]))
    add(Case("features nan float16 array", lambda: sim(features=np.array([0, np.nan, 0, 0], np.float16)), E,
             ["features"]))
    add(Case("features partial dict", lambda: sim(features={0: [1.0], 1: [1.0]}), E, ["features"]))
    add(Case("features dict foreign key", lambda: sim(features={0: 1, 1: 1, 2: 1, 3: 1, 7: 1}), E, ["features"]))
    add(Case("features some None", lambda: sim(features=[None, [1.0], [1.0], [1.0]]), E, ["features"]))
    add(Case("features generator", lambda: ran(features=(float(v) for v in range(4))), O, check=clock_float))
    add(Case("features nx attr partial", lambda: sim(graph=_partial_x()), E, ["features", "'x'"]))
    add(Case("features np 3-D", lambda: ran(features=np.zeros((4, 2, 2))), O, check=clock_float))
    add(Case("features object array nan", lambda: sim(features=np.array([[0.0], [math.nan], [0.0], [0.0]],
                                                                          dtype=object)), E, ["features"]))
    # rules
    add(Case("rule None", lambda: Simulation(C4(), None), E, ["rule"]))
    add(Case("rule class not instance", lambda: Simulation(C4(), Flooding), E, ["rule", "Flooding"]))
    add(Case("rule object()", lambda: Simulation(C4(), object()), E, ["rule"]))
    add(Case("rule no receive", lambda: Simulation(C4(), NoReceive()), E, ["NoReceive", "receive"]))
    add(Case("rule start not pair", lambda: Simulation(C4(), StartNotPair()), E, ["StartNotPair.start"]))
    add(Case("rule start triple", lambda: Simulation(C4(), StartTriple()), E, ["StartTriple.start"]))
    add(Case("rule start str message", lambda: Simulation(C4(), StartStrMessage()), E, ["StartStrMessage.start"]))
    add(Case("rule receive None", lambda: Simulation(C4(), ReceiveNone()).run(), E, ["ReceiveNone.receive"]))
    add(Case("rule receive str message", lambda: Simulation(C4(), ReceiveStr()).run(), E, ["ReceiveStr.receive"]))
    add(Case("rule receive list pair (documented: a pair)", lambda: Simulation(C4(), ReceiveList()).run(), O,
             check=lambda r: r.reason == "quiescent"))
    add(Case("rule receive triple", lambda: Simulation(C4(), ReceiveTriple()).run(), E, ["ReceiveTriple.receive"]))
    add(Case("rule receive dict", lambda: Simulation(C4(), ReceiveDict()).run(), E, ["ReceiveDict.receive"]))
    add(Case("rule receive None, traced", lambda: Simulation(C4(), ReceiveNone(), tracer=ListTracer()).run(), E,
             ["ReceiveNone.receive"]))
    add(Case("rule receive None, step()", lambda: Simulation(C4(), ReceiveNone()).step(), E,
             ["ReceiveNone.receive"]))
    add(Case("rule halted attr", lambda: Simulation(C4(), HaltedAttr()), E, ["HaltedAttr.halted"]))
    add(Case("rule finished attr", lambda: Simulation(C4(), FinishedNonCallable()), E,
             ["FinishedNonCallable.finished"]))
    add(Case("rule assumes str", lambda: Simulation(C4(), AssumesStr()), E, ["AssumesStr.assumes"]))
    add(Case("rule assumes unknown", lambda: Simulation(C4(), AssumesUnknown()), E, ["telepathy"]))
    add(Case("rule params list, traced", lambda: Simulation(C4(), ParamsList(), tracer=ListTracer()), E,
             ["ParamsList.params"]))
    add(Case("rule summarize -> int, traced", lambda: Simulation(C4(), SummarizeBad(), tracer=ListTracer()).run(),
             E, ["SummarizeBad.summarize"]))
    add(Case("rule without optional hooks", lambda: Simulation(C4(), Rule()).run(), O,
             check=lambda r: r.reason == "quiescent"))
    add(Case("rule start raises: user error kept", lambda: _raises(ZeroDivisionError,
                                                                   lambda: Simulation(C4(), StartRaises())), O,
             check=bool))
    add(Case("rule halted raises: user error kept", lambda: _raises(KeyError,
                                                                    lambda: Simulation(C4(), HaltedRaises()).run()),
             O, check=bool))
    add(Case("get_rule unknown", lambda: get_rule("floodin"), E, ["floodin"]))
    add(Case("get_rule bad param", lambda: get_rule("flooding", hops=3), E, ["hops"]))
    # tracers
    add(Case("tracer object()", lambda: sim(tracer=object()), E, ["tracer"]))
    add(Case("tracer class", lambda: sim(tracer=ListTracer), E, ["tracer"]))
    add(Case("tracer only required hooks", lambda: _count_tracer(OnlyRequired()), O, check=lambda n: n > 0))
    add(Case("tracer no drop", lambda: sim(tracer=NoDrop()), E, ["NoDrop", "drop"]))
    add(Case("tracer wants_states no hook", lambda: sim(tracer=WantsStatesNoHook()), E, ["WantsStatesNoHook"]))
    add(Case("tracer wants_states 1", lambda: sim(tracer=WantsStatesInt()), E, ["WantsStatesInt.wants_states"]))
    add(Case("tracer send attr", lambda: sim(tracer=SendAttr()), E, ["SendAttr.send"]))
    add(Case("tracer str", lambda: sim(tracer="trace.jsonl"), E, ["tracer"]))
    # run / step / peek
    add(Case("run until np.float32", lambda: ran(run=dict(until=np.float32(1.5))), O, check=clock_float))
    add(Case("run until np.int64", lambda: ran(run=dict(until=np.int64(2))), O, check=clock_float))
    add(Case("run until 0", lambda: ran(run=dict(until=0)), E, ["until"]))
    add(Case("run until nan", lambda: ran(run=dict(until=math.nan)), E, ["until"]))
    add(Case("run until str", lambda: ran(run=dict(until="5")), E, ["until"]))
    add(Case("run until tensor", lambda: ran(run=dict(until=torch.tensor(2.0))), E, ["until"]))
    add(Case("run max_deliveries 0", lambda: ran(run=dict(max_deliveries=0)), E, ["max_deliveries"]))
    add(Case("run max_deliveries 1.5", lambda: ran(run=dict(max_deliveries=1.5)), E, ["max_deliveries"]))
    add(Case("run max_deliveries np.int32", lambda: ran(run=dict(max_deliveries=np.int32(2))), O,
             check=lambda r: r[1].deliveries == 2))
    add(Case("run max_deliveries True", lambda: ran(run=dict(max_deliveries=True)), E, ["max_deliveries"]))
    add(Case("run stop_when 3", lambda: ran(run=dict(stop_when=3)), E, ["stop_when"]))
    add(Case("run stop_when wrong arity", lambda: ran(run=dict(stop_when=lambda: True)), E, ["stop_when"]))
    add(Case("step/peek floats", lambda: _step_peek(), O, check=bool))
    add(Case("run after failure: says so", lambda: _rerun_after_failure(), O, check=bool))
    # graphs
    add(Case("graph DiGraph", lambda: as_graph(nx.DiGraph([(0, 1)])), E, ["directed"]))
    add(Case("graph MultiGraph", lambda: as_graph(nx.MultiGraph([(0, 1), (0, 1)])), E, ["multigraph"]))
    add(Case("graph self-loop", lambda: as_graph(nx.Graph([(0, 0)])), E, ["self-loop"]))
    add(Case("graph empty nx", lambda: as_graph(nx.Graph()), E, ["empty"]))
    add(Case("graph isolated node", lambda: sim(graph=_isolated()), E, ["neighbours", "allow_isolated"]))
    add(Case("edge_index list", lambda: as_graph([[0, 1], [1, 2]]), O, check=lambda g: g.num_edges == 2))
    add(Case("edge_index np.int32", lambda: as_graph(np.array([[0, 1], [1, 2]], np.int32)), O,
             check=lambda g: g.num_edges == 2))
    add(Case("edge_index np.uint64", lambda: as_graph(np.array([[0, 1], [1, 2]], np.uint64)), O,
             check=lambda g: g.num_edges == 2))
    add(Case("edge_index float array", lambda: as_graph(np.array([[0.0, 1.0], [1.0, 2.0]])), E, ["edge_index"]))
    add(Case("edge_index float list", lambda: as_graph([[0.0, 1.0], [1.0, 2.0]]), E, ["edge_index"]))
    add(Case("edge_index ragged", lambda: as_graph([[0, 1], [1]]), E, ["edge_index"]))
    add(Case("edge_index 1 row", lambda: as_graph([[0, 1]]), E, ["edge_index"]))
    add(Case("edge_index (E, 2)", lambda: as_graph(np.array([[0, 1], [1, 2], [2, 0]])), E, ["edge_index"]))
    add(Case("edge_index 3-D", lambda: as_graph(np.zeros((2, 2, 2), int)), E, ["edge_index"]))
    add(Case("edge_index negative", lambda: as_graph([[0, -1], [1, 2]]), E, ["edge_index", "negative"]))
    add(Case("edge_index str", lambda: as_graph("0 1"), E, ["graph", "edge_index"]))
    add(Case("edge_index None", lambda: as_graph(None), E, ["graph", "edge_index"]))
    add(Case("edge_index int", lambda: as_graph(5), E, ["graph", "edge_index"]))
    add(Case("edge_index empty, no n", lambda: as_graph([[], []]), E, ["num_nodes", "empty"]))
    add(Case("edge_index id >= num_nodes", lambda: as_graph([[0, 1], [1, 5]], num_nodes=3), E, ["outside", "node"]))
    add(Case("edge_index huge num_nodes", lambda: as_graph([[0], [1]], num_nodes=10 ** 12), E, ["num_nodes",
                                                                                                 "max_edges"]))
    add(Case("edge_index huge id", lambda: as_graph([[0], [10 ** 12]]), E, ["num_nodes", "max_edges"]))
    add(Case("edge_index num_nodes 2.0", lambda: as_graph([[0], [1]], num_nodes=2.0), E, ["num_nodes"]))
    add(Case("edge_index num_nodes np", lambda: as_graph([[0], [1]], num_nodes=np.int64(3)), O,
             check=lambda g: g.num_nodes == 3 and type(g.num_nodes) is int))
    add(Case("edge_index bool tensor", lambda: as_graph(torch.ones(2, 2, dtype=torch.bool)), E, ["edge_index"]))
    add(Case("edge_index object array", lambda: as_graph(np.array([[0, 1], [1, None]], dtype=object)), E,
             ["edge_index"]))
    add(Case("edge_index duplicate pair (documented: one edge)", lambda: as_graph([[0, 0, 1], [1, 1, 0]]), O,
             check=lambda g: g.num_edges == 1))
    add(Case("as_graph max_edges str", lambda: as_graph([[0], [1]], max_edges="10"), E, ["max_edges"]))
    add(Case("as_graph max_edges 0", lambda: as_graph([[0], [1]], max_edges=0), E, ["max_edges"]))
    add(Case("as_graph name int", lambda: as_graph([[0], [1]], name=5), E, ["name"]))
    add(Case("as_graph set", lambda: as_graph({(0, 1)}), E, ["graph", "edge_index"]))
    add(Case("as_graph num_nodes with nx np", lambda: as_graph(C4(), num_nodes=np.int64(4)), O,
             check=lambda g: g.num_nodes == 4))
    # specs
    add(Case("spec cycle:2", lambda: parse_graph_spec("cycle:2"), E, ["cycle:2"]))
    add(Case("spec path:0", lambda: parse_graph_spec("path:0"), E, ["path:0"]))
    add(Case("spec cycle:-3", lambda: parse_graph_spec("cycle:-3"), E, ["cycle:-3"]))
    add(Case("spec cycle:3.5", lambda: parse_graph_spec("cycle:3.5"), E, ["cycle:3.5"]))
    add(Case("spec gnp P 1.5", lambda: parse_graph_spec("gnp:10:1.5:0"), E, ["gnp:10:1.5:0"]))
    add(Case("spec gnp P nan", lambda: parse_graph_spec("gnp:10:nan:0"), E, ["gnp:10:nan:0"]))
    add(Case("spec complete huge", lambda: parse_graph_spec("complete:100000"), E, ["complete:100000", "max-edges"]))
    add(Case("spec cycle 1e20", lambda: parse_graph_spec("cycle:" + "9" * 20), E, ["max-edges", "max_edges"]))
    add(Case("spec grid 0x3", lambda: parse_graph_spec("grid:0x3"), E, ["grid:0x3"]))
    add(Case("spec grid huge", lambda: parse_graph_spec("grid:100000x100000"), E, ["max_edges"]))
    add(Case("spec random-regular odd", lambda: parse_graph_spec("random-regular:3:5:0"), E, ["random-regular"]))
    add(Case("spec random-regular huge", lambda: parse_graph_spec("random-regular:3:100000000:0"), E, ["max_edges"]))
    add(Case("spec tree no seed", lambda: parse_graph_spec("tree:5"), E, ["tree:5"]))
    add(Case("spec petersen:1", lambda: parse_graph_spec("petersen:1"), E, ["petersen:1"]))
    add(Case("spec empty", lambda: parse_graph_spec(""), E, ["graph spec", "''"]))
    add(Case("spec int", lambda: parse_graph_spec(5), E, ["graph spec"]))
    add(Case("spec unknown", lambda: parse_graph_spec("hypercube:3"), E, ["hypercube"]))
    add(Case("spec csl huge", lambda: parse_graph_spec("csl:100000000:3"), E, ["max_edges", "max-edges"]))
    add(Case("spec rook huge", lambda: parse_graph_spec("rook:100000"), E, ["max_edges", "max-edges"]))
    add(Case("spec figure4 bad", lambda: parse_graph_spec("figure4:4a:100000"), E, ["figure4"]))
    add(Case("spec max_edges 0", lambda: parse_graph_spec("cycle:4", max_edges=0), E, ["max_edges"]))
    add(Case("spec folder", with_dir(lambda d: parse_graph_spec(d)), E, ["directory", "folder"]))
    add(Case("spec fifo", with_dir(lambda d: parse_graph_spec(fifo_path(d))), E, ["FIFO", "pipe"]))
    # PyG
    add(Case("pyg symmetric", lambda: as_graph(pyg_data(SYM, 4)), O, check=lambda g: g.num_edges == 4))
    add(Case("pyg directed", lambda: as_graph(pyg_data([[0, 1, 2], [1, 2, 3]], 4)), E, ["directed"]))
    add(Case("pyg duplicate", lambda: as_graph(pyg_data([[0, 1, 0, 1], [1, 0, 1, 0]], 2)), E, ["twice"]))
    add(Case("pyg self-loop", lambda: as_graph(pyg_data([[0, 0], [0, 1]], 2)), E, ["self-loop"]))
    add(Case("pyg id >= n", lambda: as_graph(pyg_data([[0, 5], [5, 0]], 2)), E, ["outside"]))
    add(Case("pyg float edge_index", lambda: as_graph(_pyg_float()), E, ["edge_index"]))
    add(Case("pyg (3, E)", lambda: as_graph(pyg_data([[0, 1], [1, 0], [0, 0]], 2)), E, ["edge_index"]))
    add(Case("pyg no edges", lambda: as_graph(pyg_data([[], []], 3)), O, check=lambda g: g.num_nodes == 3))
    add(Case("pyg no nodes", lambda: as_graph(pyg_data([[], []], 0)), E, ["empty", "num_nodes"]))
    add(Case("pyg huge num_nodes", lambda: as_graph(pyg_data([[0, 1], [1, 0]], 10 ** 12)), E, ["max_edges",
                                                                                             "num_nodes"]))
    add(Case("pyg x rows != n", lambda: sim(graph=pyg_data(SYM, 4, x=torch.ones(3, 2))), E, ["features", "x"]))
    add(Case("pyg x nan", lambda: sim(graph=pyg_data(SYM, 4, x=torch.tensor([[0.], [math.nan], [0.], [0.]]))), E,
             ["features", "x"]))
    add(Case("pyg edge_attr ignored", lambda: ran(graph=pyg_data(SYM, 4, edge_attr=torch.ones(8, 1))), O,
             check=clock_float))
    add(Case("pyg x used as features", lambda: Simulation(pyg_data(SYM, 4, x=torch.arange(4.).reshape(4, 1)),
                                                          Flooding()), O,
             check=lambda s: [float(v.features[0]) for v in s.views] == [0.0, 1.0, 2.0, 3.0]))
    add(Case("pyg = networkx (same graph)", lambda: (as_graph(pyg_data(SYM, 4)), as_graph(C4())), O,
             check=lambda p: p[0].hash() == p[1].hash()))
    add(Case("pyg start np", lambda: ran(graph=pyg_data(SYM, 4), start=np.int64(3)), O, check=clock_float))
    # files
    add(Case("load_trace missing", lambda: load_trace("/nonexistent/t.jsonl"), E, ["/nonexistent/t.jsonl"]))
    add(Case("load_trace folder", with_dir(lambda d: load_trace(d)), E, ["folder", "directory"]))
    add(Case("load_trace fifo", with_dir(lambda d: load_trace(fifo_path(d))), E, ["FIFO", "pipe"]))
    add(Case("load_trace int", lambda: load_trace(5), E, ["path", "5"]))
    add(Case("load_trace None", lambda: load_trace(None), E, ["path", "None"]))
    add(Case("load_trace empty file", with_dir(lambda d: load_trace(write(d, "t.jsonl", b""))), E, ["t.jsonl"]))
    add(Case("load_trace garbage", with_dir(lambda d: load_trace(write(d, "t.jsonl", b"\x00\xff" * 50))), E,
             ["t.jsonl"]))
    add(Case("load_trace jsonl named parquet", with_dir(lambda d: load_trace(write(d, "t.parquet", b'{"a":1}\n'))),
             E, ["t.parquet"]))
    add(Case("load_trace max_records 0", with_dir(lambda d: _load_saved(d, max_records=0)), E, ["max_records"]))
    add(Case("load_trace max_records 'x'", with_dir(lambda d: _load_saved(d, max_records="x")), E, ["max_records"]))
    add(Case("save_trace to folder", save_then_list(lambda d: d), E, ["folder", "directory"]))
    add(Case("save_trace missing folder", save_then_list(lambda d: os.path.join(d, "no", "t.jsonl")), E,
             ["no", "folder"]))
    add(Case("save_trace unknown suffix", save_then_list(lambda d: os.path.join(d, "t.csv")), E, ["t.csv", ".csv"]))
    add(Case("save_trace fifo", save_then_list(fifo_path), E, ["FIFO", "pipe"]))
    add(Case("save_trace not a trace", with_dir(lambda d: save_trace("trace", os.path.join(d, "t.jsonl"))), E,
             ["trace"]))
    add(Case("save_trace path int", lambda: save_trace(a_trace(), 5), E, ["path", "5"]))
    add(Case("save/load round trip", with_dir(lambda d: _round_trip(d)), O, check=bool))
    # batched / engine executors
    add(Case("executor seed np.int64", both_equal([runspec(seed=np.int64(4))]), O, check=close))
    add(Case("executor starts np", both_equal([runspec(starts=(np.int64(1),))]), O, check=close))
    add(Case("executor budget np.int64", both_equal([runspec()], budget=np.int64(8)), O, check=close))
    add(Case("executor delay np.float32", both_equal([runspec()], delay=np.float32(0.5)), O, check=close))
    add(Case("batched budget 0", lambda: execute(batched(), budget=0), E, ["budget"]))
    add(Case("engine budget 0", lambda: execute(engine_ex(), budget=0), E, ["budget"]))
    add(Case("batched budget 1.5", lambda: execute(batched(), budget=1.5), E, ["budget"]))
    add(Case("engine budget 1.5", lambda: execute(engine_ex(), budget=1.5), E, ["budget"]))
    add(Case("batched start out of range", lambda: execute(batched(), [runspec(starts=(9,))]), E, ["start"]))
    add(Case("engine start out of range", lambda: execute(engine_ex(), [runspec(starts=(9,))]), E, ["start"]))
    add(Case("batched start negative", lambda: execute(batched(), [runspec(starts=(-1,))]), E, ["start"]))
    add(Case("batched start duplicate", lambda: execute(batched(), [runspec(starts=(1, 1))]), E, ["start"]))
    add(Case("engine start duplicate", lambda: execute(engine_ex(), [runspec(starts=(1, 1))]), E, ["start"]))
    add(Case("batched start float", lambda: execute(batched(), [runspec(starts=(1.0,))]), E, ["start"]))
    add(Case("batched seed float", lambda: execute(batched(), [runspec(seed=1.5)]), E, ["seed"]))
    add(Case("engine seed float", lambda: execute(engine_ex(), [runspec(seed=1.5)]), E, ["seed"]))
    add(Case("batched messages wrong width", lambda: execute(batched(), [_runspec_width(5)]), E, ["messages"]))
    add(Case("engine messages wrong width", lambda: execute(engine_ex(), [_runspec_width(5)]), E, ["messages"]))
    add(Case("batched delay bogus", lambda: execute(batched(), delay="gauss"), E, ["delay"]))
    add(Case("batched fifo 'yes'", lambda: execute(batched(), fifo="yes"), E, ["fifo"]))
    add(Case("engine fifo 'yes'", lambda: execute(engine_ex(), fifo="yes"), E, ["fifo"]))
    add(Case("batched loss 1.5", lambda: execute(batched(), loss=1.5), E, ["loss"]))
    add(Case("batched runs not list", lambda: execute(batched(), runs=5), E, ["runs"]))
    add(Case("batched graph nx", lambda: execute(batched(), graph=C4()), E, ["graph", "GraphData"]))
    add(Case("batched no runs", lambda: execute(batched(), runs=[]), O, check=lambda t: tuple(t.shape)[0] == 0))
    add(Case("BatchedExecutor mode", lambda: batched(mode="fast"), E, ["mode"]))
    add(Case("BatchedExecutor program_cache -1", lambda: batched(program_cache=-1), E, ["program_cache"]))
    add(Case("BatchedExecutor program_cache 'x'", lambda: batched(program_cache="x"), E, ["program_cache"]))
    add(Case("BatchedExecutor record 'yes'", lambda: batched(record="yes"), E, ["record"]))
    add(Case("BatchedExecutor segment_rows np", lambda: batched(segment_rows=np.int64(100)), O,
             check=lambda b: b.segment_rows == 100 and type(b.segment_rows) is int))
    add(Case("RunSpec starts int", lambda: execute(batched(), [_runspec_raw(1)]), E, ["starts"]))
    add(Case("RunSpec messages list", lambda: execute(batched(), [_runspec_raw((0,), [[1.0, 1.0, 1.0]])]), E,
             ["messages"]))
    add(Case("GraphData x rows", lambda: _graphdata(x=torch.ones(3, 2)), E, ["x"]))
    add(Case("GraphData edge id", lambda: _graphdata(ei=[[0, 9], [9, 0]]), E, ["edge_index"]))
    add(Case("GraphData negative id", lambda: _graphdata(ei=[[0, -1], [-1, 0]]), E, ["edge_index"]))
    add(Case("GraphData float edge_index", lambda: _graphdata(ei=[[0.0, 1.0], [1.0, 0.0]]), E, ["edge_index"]))
    add(Case("GraphData num_nodes float", lambda: _graphdata(n=4.0), E, ["num_nodes"]))
    add(Case("GraphData level", lambda: _graphdata(level="edge"), E, ["level"]))
    # training config
    add(Case("TrainConfig model", lambda: train_config(model="amp-cnn"), E, ["amp-cnn", "model"]))
    add(Case("TrainConfig delay", lambda: train_config(delay="pareto"), E, ["delay"]))
    add(Case("TrainConfig seed float", lambda: train_config(seed=1.5), E, ["seed"]))
    add(Case("TrainConfig seed np.int64", lambda: train_config(seed=np.int64(2)), O,
             check=lambda c: type(c.seed) is int and c.seed == 2 and c == train_config(seed=2)))
    add(Case("TrainConfig epochs 0 (honoured)", lambda: train_config(epochs=0), O, check=lambda c: c.epochs == 0))
    add(Case("TrainConfig epochs np.int64", lambda: train_config(epochs=np.int64(3)), O,
             check=lambda c: type(c.epochs) is int))
    add(Case("TrainConfig lr nan", lambda: train_config(lr=math.nan), E, ["lr"]))
    add(Case("TrainConfig lr np.float32", lambda: train_config(lr=np.float32(0.5)), O,
             check=lambda c: type(c.lr) is float))
    add(Case("TrainConfig gate 'yes'", lambda: train_config(gate="yes"), E, ["gate"]))
    add(Case("TrainConfig test_sizes [0]", lambda: train_config(test_sizes=[0]), E, ["test_sizes"]))
    add(Case("TrainConfig test_sizes ['a']", lambda: train_config(test_sizes=["a"]), E, ["test_sizes"]))
    add(Case("TrainConfig test_sizes 5", lambda: train_config(test_sizes=5), E, ["test_sizes"]))
    add(Case("TrainConfig test_sizes [2.5]", lambda: train_config(test_sizes=[2.5]), E, ["test_sizes"]))
    add(Case("TrainConfig sources 0", lambda: train_config(sources=0), E, ["sources"]))
    add(Case("TrainConfig task 5", lambda: train_config(task=5), E, ["task"]))
    add(Case("load_task unknown", lambda: _load_task("nope"), E, ["task", "nope"]))
    add(Case("TrainConfig hidden 0", lambda: train_config(hidden=0), E, ["hidden"]))
    add(Case("TrainConfig to_dict json (np values)", lambda: _config_json(), O, check=bool))
    return cs


def _partial_x():
    g = C4()
    g.nodes[0]["x"] = [1.0]
    return g


def _isolated():
    g = C4()
    g.add_node(9)
    return g


def _raises(exc, fn):
    try:
        fn()
    except exc:
        return True
    return False


def _count_tracer(t):
    s = Simulation(C4(), Flooding(), tracer=t)
    s.run()
    return t.n


def _step_peek():
    s = sim()
    t = s.peek()
    rec = s.step()
    return type(t) is float and type(s.now) is float and rec is not None and type(rec.t_deliver) is float


def _rerun_after_failure():
    s = Simulation(C4(), ReceiveNone())
    try:
        s.run()
    except ValueError:
        pass
    return _raises(RuntimeError, s.run)


def _load_task(name):
    from ampsim.train import load_task

    return load_task(name, 0)


def _pyg_float():
    Data = pyg_Data()

    return Data(edge_index=torch.tensor([[0.0, 1.0], [1.0, 0.0]]), num_nodes=2)


def _runspec_width(w):
    from ampsim.cells.execute import RunSpec

    return RunSpec((0,), torch.ones(1, w), 0)


def _runspec_raw(starts, messages=None):
    from ampsim.cells.execute import RunSpec

    return RunSpec(starts, torch.ones(1, 3) if messages is None else messages, 0)


def _graphdata(x=None, ei=None, n=4, level="node"):
    from ampsim.data.graphdata import GraphData

    ei = torch.tensor(ei if ei is not None else [[0, 1], [1, 0]])
    return GraphData(ei, torch.ones(4, 2) if x is None else x, torch.zeros(4, dtype=torch.long), n, level)


def _load_saved(d, **kw):
    p = os.path.join(d, "t.jsonl")
    save_trace(a_trace(), p)
    return load_trace(p, **kw)


def _round_trip(d):
    t = a_trace()
    p = os.path.join(d, "t.jsonl")
    save_trace(t, p)
    return load_trace(p).records == t.records and os.listdir(d) == ["t.jsonl"]


def _config_json():
    import json

    c = train_config(seed=np.int64(1), epochs=np.int64(2), lr=np.float64(0.1))
    return json.loads(json.dumps(c.to_dict())) == train_config(seed=1, epochs=2, lr=0.1).to_dict()


# ----------------------------------------------------------------- running them
class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def outcome(case: Case) -> tuple[str, str]:
    """``(outcome, detail)`` of one case (see the module docstring)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        try:
            result = case.call()
        finally:
            signal.alarm(0)
        if case.expect == "error":
            return "silent", f"accepted, returned {type(result).__name__}"
        try:
            ok = case.check(result) if case.check is not None else True
        except _Timeout:
            return "hang", "check over the time limit"
        except BaseException as exc:  # noqa: BLE001 -- the check's own failure is the finding
            return _classify_error(case, exc, checking=True)
        return ("ok", "") if ok else ("silent", "wrong result")
    except _Timeout:
        return "hang", f"over {TIME_LIMIT} s"
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _classify_error(case, exc)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _classify_error(case: Case, exc: BaseException, checking: bool = False) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {str(exc)[:150]}"
    if case.expect == "ok" and not checking:
        return "internal", text
    if not isinstance(exc, (ValueError, TypeError, OSError)):
        return "internal", text
    if case.expect == "ok":
        return "misleading", text
    if not any(w.lower() in str(exc).lower() for w in case.words):
        return "misleading", text
    return "clear", text


def main(argv: Sequence[str] = ()) -> int:
    verbose = "-v" in argv
    counts: dict[str, int] = {}
    for case in cases():
        what, detail = outcome(case)
        counts[what] = counts.get(what, 0) + 1
        if verbose or what not in ("ok", "clear"):
            print(f"{what:10s} {case.name}: {detail}")
    total = sum(counts.values())
    print(f"{total} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
