"""Appendix A: a fixed-weight 3-layer ReLU network equals the corrected update function f."""
from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from ampsim import NodeView, Simulation
from ampsim.graphs import parse_graph_spec
from ampsim.protocols.relu_net import build_relu_net, decode_output, encode_input, encode_output, in_size, out_size
from ampsim.protocols.sgin import SGIN
from ampsim.protocols.synchronizer import ORIGIN, Synchronizer, sync_message


class _Record:
    def __init__(self, rule):
        self.rule, self.name, self.assumes, self.rows = rule, rule.name, rule.assumes, []

    def start(self, node):
        return self.rule.start(node)

    def receive(self, node, state, message):
        new, out = self.rule.receive(node, state, message)
        self.rows.append((encode_input(state, message.payload, node.degree),
                          encode_output(new, None if out is None else out.payload)))
        return new, out


def _traced(model: SGIN, specs, seeds, features) -> tuple[torch.Tensor, torch.Tensor, int]:
    rec = _Record(Synchronizer(model))
    max_degree = 1
    for spec in specs:
        g = parse_graph_spec(spec)
        max_degree = max(max_degree, max(g.degrees))
        for seed in seeds:
            Simulation(g, rec, delay="uniform", seed=seed, start=seed % g.num_nodes, start_message=ORIGIN,
                       features=features(g.num_nodes)).run()
    x = torch.tensor([r[0] for r in rec.rows], dtype=torch.float64)
    y = torch.tensor([r[1] for r in rec.rows], dtype=torch.float64)
    return x, y, max_degree


def test_three_affine_layers_two_hidden_fixed_float64():
    f = build_relu_net(SGIN.random(2, 3, seed=0), max_degree=5)
    linear = [m for m in f.net if isinstance(m, nn.Linear)]
    assert f.depth == 3 and len(f.hidden) == 2
    assert [type(m) for m in f.net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert linear[0].in_features == in_size(2) and linear[-1].out_features == out_size(2)
    assert all(p.dtype == torch.float64 and not p.requires_grad for p in f.net.parameters())


def test_bitwise_equal_on_every_traced_step_with_integer_weights():
    # integer weights and features: every value is an exactly representable integer,
    # so the network and the rule must agree bit for bit
    model = SGIN([[[1.0, -1.0], [2.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]], [[-1.0, 2.0], [1.0, 0.0]]],
                 [[1.0, 0.0], [-2.0, 3.0], [0.0, 1.0]])
    x, y, max_degree = _traced(model, ["petersen", "star:4", "path:2", "grid:2x3"], range(4),
                               lambda n: [[float(v % 3), float(1 - v % 2)] for v in range(n)])
    assert x.shape[0] > 400
    f = build_relu_net(model, max_degree, bound=1024.0)
    assert torch.equal(f(x), y)


@pytest.mark.parametrize("aggregation", ["sum", "mean", "gcn"])
def test_equal_on_every_traced_step_with_real_weights(aggregation):
    model = SGIN.random(3, 3, seed=7, aggregation=aggregation)
    rng = random.Random(2)
    x, y, max_degree = _traced(model, ["cycle:5", "star:6", "gnp:12:0.3:1"], range(3),
                               lambda n: [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(n)])
    got = build_relu_net(model, max_degree, bound=256.0)(x)
    d = 3
    ints = list(range(2 * d, 2 * d + 4)) + list(range(3 * d + 4, 3 * d + 7))
    assert torch.equal(got[:, ints], y[:, ints])
    assert (got - y).abs().max().item() < 1e-9


@pytest.mark.parametrize("aggregation", ["sum", "mean", "gcn"])
def test_equal_on_the_whole_bounded_domain(aggregation):
    """Not only reachable states: random points of the box, every case of f."""
    d, L, max_degree, bound = 2, 3, 4, 8.0
    model = SGIN.random(d, L, seed=3, aggregation=aggregation)
    rule, f = Synchronizer(model), build_relu_net(model, max_degree, bound)
    rng = random.Random(9)
    xs, ys = [], []
    for _ in range(3000):
        D = rng.randint(1, max_degree)
        vec = lambda: tuple(rng.uniform(-bound / 4, bound / 4) for _ in range(d))  # noqa: E731
        state = (vec(), vec(), rng.randint(0, D), rng.randint(0, D), rng.randint(0, L), rng.randint(0, 1))
        pulse, safe = rng.randint(0, 1), rng.randint(0, 1)
        message = ORIGIN if rng.random() < 0.05 else sync_message(vec() if pulse else (0.0,) * d, pulse, safe)
        new, out = rule.receive(NodeView(features=None, degree=D), state, message)
        xs.append(encode_input(state, message.payload, D))
        ys.append(encode_output(new, None if out is None else out.payload))
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    got = f(x)
    assert (got - y).abs().max().item() < 1e-9
    # every case of the table was exercised: all emission kinds and no emission
    kinds = {tuple(r) for r in y[:, -3:].tolist()}
    assert kinds == {(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0)}


def test_the_bound_is_needed():
    """Outside |entries| <= bound the big-M gates leak: a finished node (l = 0) keeps s in f,
    but a gate switched off by the penalty K cannot hold back a value larger than K."""
    model = SGIN([[[1.0]]], [[0.0]])
    f = build_relu_net(model, max_degree=2, bound=4.0)
    state, message = ((1.0,), (0.0,), 2, 0, 0, 1), sync_message((1.0,), 1, 0)
    inside = f(torch.tensor([encode_input(state, message.payload, 2)], dtype=torch.float64))
    assert inside[0].tolist() == encode_output(state, None)
    huge = ((1.0,), (0.0,), 2, 0, 0, 1), sync_message((10.0 * f.big_m,), 1, 0)
    outside = f(torch.tensor([encode_input(huge[0], huge[1].payload, 2)], dtype=torch.float64))
    assert outside[0].tolist() != encode_output(huge[0], None)


def test_decode_output_and_bad_arguments():
    state, payload = ((1.5,), (0.0,), 2, 1, 1, 0), ((3.0,), 1, 1, 0)
    assert decode_output(encode_output(state, payload), 1) == (state, payload)
    assert decode_output(encode_output(state, None), 1) == (state, None)
    with pytest.raises(ValueError, match="max_degree"):
        build_relu_net(SGIN([[[1.0]]], [[0.0]]), max_degree=0)
    with pytest.raises(ValueError, match="bound"):
        build_relu_net(SGIN([[[1.0]]], [[0.0]]), max_degree=1, bound=float("inf"))


def test_one_hidden_layer_gates_a_relu_by_an_integer_equality():
    """The primitive behind docs/synchronizer.md's depth-2 remark, for integer w >= 0, |z| < K/2:
    [w = 1]·ReLU(z) = ReLU(z + K(w-1)) - (ReLU(z + K(w-1.5)) - ReLU(K(w-1.5))) - K·ReLU(w-1)."""
    K = 64.0
    hidden = nn.Linear(2, 4, dtype=torch.float64)
    out = nn.Linear(4, 1, dtype=torch.float64)
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([[1.0, K], [1.0, K], [0.0, K], [0.0, 1.0]], dtype=torch.float64))
        hidden.bias.copy_(torch.tensor([-K, -1.5 * K, -1.5 * K, -1.0], dtype=torch.float64))
        out.weight.copy_(torch.tensor([[1.0, -1.0, 1.0, -K]], dtype=torch.float64))
        out.bias.zero_()
    net = nn.Sequential(hidden, nn.ReLU(), out)
    z = torch.arange(-31.0, 31.25, 0.25, dtype=torch.float64)  # dyadic: no rounding next to K
    for w in range(6):
        x = torch.stack([z, torch.full_like(z, float(w))], dim=1)
        expected = torch.relu(z) if w == 1 else torch.zeros_like(z)
        assert torch.equal(net(x).detach()[:, 0], expected), w
