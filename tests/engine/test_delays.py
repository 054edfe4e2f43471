"""Delay models (ampsim.engine.delays): the test-time distributions exponential and pareto."""
from __future__ import annotations

import math
from random import Random

import networkx as nx
import numpy as np
import pytest
import torch

from ampsim import ListTracer, Message, Simulation
from ampsim.batched import BatchedExecutor, plan, plan_key
from ampsim.cells.cells import AMPCell
from ampsim.cells.execute import EngineExecutor, RunSpec
from ampsim.data.graphdata import GraphData
from ampsim.engine.delays import DELAYS, Custom, Exponential, FromTrace, Pareto, get_delay
from ampsim.engine.errors import DelayError
from ampsim.graphs import as_graph
from ampsim.protocols import Echo, Flooding


def test_registry_names_and_defaults():
    assert sorted(DELAYS) == ["constant", "exponential", "pareto", "uniform"]
    assert get_delay("exponential").describe() == {"name": "exponential", "mean": 0.5}
    assert get_delay("pareto").describe() == {"name": "pareto", "alpha": 1.5, "scale": 1.0 / 6.0}
    assert get_delay("exponential").random and get_delay("pareto").random


def test_exponential_draws_are_minus_mean_log_u():
    rng, ref = Random(4), Random(4)
    sample = Exponential(2.0).bind(rng)
    assert [sample(i, 0, 1) for i in range(5)] == [-2.0 * math.log(ref.random()) for _ in range(5)]


def test_exponential_redraws_a_zero():
    class Zero(Random):
        def __init__(self):
            super().__init__(0)
            self.first = True

        def random(self):
            if self.first:
                self.first = False
                return 0.0
            return 0.25

    assert Exponential(1.0).bind(Zero())(0, 0, 1) == -math.log(0.25)


def test_pareto_draws_are_the_inverse_cdf_and_at_least_scale():
    rng, ref = Random(5), Random(5)
    sample = Pareto(2.0, 0.5).bind(rng)
    got = [sample(i, 0, 1) for i in range(1000)]
    assert got[:3] == [0.5 * (1.0 - ref.random()) ** -0.5 for _ in range(3)]
    assert min(got) >= 0.5 and all(math.isfinite(d) for d in got)


def test_means_are_one_half_and_pareto_is_heavy_tailed():
    n = 200_000
    exp, par = Exponential().bind(Random(0)), Pareto().bind(Random(0))
    e = [exp(i, 0, 1) for i in range(n)]
    p = [par(i, 0, 1) for i in range(n)]
    assert abs(sum(e) / n - 0.5) < 0.005 and abs(sum(p) / n - 0.5) < 0.02
    # P(d > 5): exp(-10) = 4.5e-5 for the exponential, (1/30)^1.5 = 6.1e-3 for the Pareto law
    assert sum(d > 5 for d in e) / n < 2e-4 and abs(sum(d > 5 for d in p) / n - 30 ** -1.5) < 1e-3


@pytest.mark.parametrize("bad", [dict(mean=0.0), dict(mean=-1), dict(mean=math.inf), dict(mean=math.nan),
                                 dict(mean="1"), dict(mean=True)])
def test_exponential_rejects_bad_means(bad):
    with pytest.raises(DelayError, match="exponential delay needs a finite mean > 0"):
        Exponential(**bad)


@pytest.mark.parametrize("bad", [dict(alpha=0.0), dict(scale=0.0), dict(alpha=math.inf), dict(scale=math.nan),
                                 dict(alpha="2")])
def test_pareto_rejects_bad_parameters(bad):
    with pytest.raises(DelayError, match="pareto delay needs finite alpha > 0 and scale > 0"):
        Pareto(**bad)


def test_unknown_name_lists_the_new_models():
    with pytest.raises(DelayError, match=r"choose one of \['constant', 'exponential', 'pareto', 'uniform'\]"):
        get_delay("gaussian")


@pytest.mark.parametrize("delay", ["exponential", "pareto", Exponential(3.0)])
def test_engine_runs_are_reproducible_and_match_the_planner(delay):
    graph = as_graph(nx.gnp_random_graph(9, 0.4, seed=2))

    def deliveries(seed):
        tracer = ListTracer(states=False)
        sim = Simulation(graph, Echo(), delay=delay, seed=seed, tracer=tracer, allow_isolated=True,
                         start={0: Message("start"), 4: Message("start")})
        sim.run(max_deliveries=60)
        return [(r.dst, r.msg_id, r.cause_id, r.src, r.t_deliver) for r in tracer.records if r.event == "deliver"]

    assert deliveries(3) == deliveries(3) and deliveries(3) != deliveries(4)
    s = plan(graph, [((0, 4), 3)], 60, delay)
    assert [(d.dst, d.msg_id, d.cause_id, d.src, d.t) for d in s.deliveries(0)] == deliveries(3)


def test_plans_under_the_new_models_are_cacheable_by_their_parameters():
    graph = as_graph(nx.path_graph(4))
    key = lambda d: plan_key(graph, [((0,), 1)], 10, d, False)  # noqa: E731
    assert key("exponential") == key(Exponential(0.5)) != key(Exponential(0.6)) is not None
    assert key("pareto") == key(Pareto()) != key(Pareto(2.0)) is not None
    assert key(Custom(lambda rng, m, s, d: 1.0, name="exponential")) is None


@pytest.mark.parametrize("delay", ["exponential", "pareto"])
def test_batched_executor_equals_the_engine_under_the_new_models(delay):
    torch.manual_seed(0)
    g = nx.gnp_random_graph(7, 0.45, seed=3)
    pairs = [(u, v) for u, v in g.edges()] + [(v, u) for u, v in g.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).t().contiguous()
    data = GraphData(ei, torch.randn(7, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.long), 7, "graph")
    cell = AMPCell("gru", 3, 5, 3).to(torch.float64)
    runs = [RunSpec(tuple(range(7)), torch.ones(7, 3, dtype=torch.float64), 11)]
    a = BatchedExecutor().execute(cell, data, runs, 40, delay)
    b = EngineExecutor().execute(cell, data, runs, 40, delay)
    assert torch.allclose(a, b, atol=1e-10)


# ---------------------------------------------------------------- float64 at the model's boundary
class OwnModel:
    """A user's DelayModel (not one of ampsim's classes) returning float32."""

    name = "own"
    random = True

    def bind(self, rng):
        return lambda msg_id, src, dst: np.float32(0.1)

    def describe(self):
        return {"name": self.name, "random": True}


@pytest.mark.parametrize("delay", [
    Custom(lambda rng, mid, src, dst: np.float32(0.1)),
    Custom(lambda rng, mid, src, dst: torch.tensor(0.1, dtype=torch.float32)),
    Custom(lambda rng, mid, src, dst: np.array(0.1, dtype=np.float32)),
    Custom(lambda rng, mid, src, dst: np.int64(1)),
    OwnModel(),
    FromTrace({i: np.float32(0.1) for i in range(20)}),
])
def test_the_clock_is_float64_whatever_the_delay_dtype(delay):
    tr = ListTracer()
    sim = Simulation(nx.path_graph(3), Flooding(), delay=delay, tracer=tr)
    result = sim.run()
    assert type(result.time) is float and type(sim.now) is float
    assert all(type(r.t_deliver) is float and type(r.delay) is float for r in tr.messages)
    d = 1.0 if result.time > 1 else float(np.float32(0.1))  # the float32 value, exactly, in float64
    assert result.time == d + d + d  # three hops, summed in float64


@pytest.mark.parametrize("value, match", [
    (True, "gave True"), ("0.5", "gave '0.5'"), (np.ones(2), "gave array"), (torch.ones(1, 1), "gave tensor"),
])
def test_a_delay_that_is_not_one_number_is_refused(value, match):
    with pytest.raises(DelayError, match=match):
        Simulation(nx.path_graph(3), Flooding(), delay=Custom(lambda rng, mid, src, dst: value)).run()


def test_a_from_trace_table_is_checked_once():
    with pytest.raises(DelayError, match="keyed by message id"):
        FromTrace({"a": np.float32(1.0)})
    class NoDescribe:
        name, random = "x", True

        def bind(self, rng):
            return lambda *a: 1.0
    with pytest.raises(DelayError, match=r"NoDescribe lacks \['describe'\]"):
        Simulation(nx.path_graph(3), Flooding(), delay=NoDescribe())
