"""sGIN, the synchronous oracle (Section 4.1): exact values for sum, mean and GCN aggregation."""
from __future__ import annotations

import math

import networkx as nx
import pytest
import torch

from ampsim.protocols.sgin import SGIN, as_vector, run_sgin


def _identity(layers: int, d: int = 1, aggregation: str = "sum") -> SGIN:
    eye = [[1.0 if i == j else 0.0 for j in range(d)] for i in range(d)]
    return SGIN([eye] * layers, [[0.0] * d] * layers, aggregation)


def test_sum_layers_on_a_path_are_neighbour_sums():
    # path 0-1-2, features 1, 2, 4: h1 = (2, 5, 2), h2 = (5, 4, 5)
    h = run_sgin(nx.path_graph(3), [[1.0], [2.0], [4.0]], _identity(2))
    assert h == (((1.0,), (2.0,), (4.0,)), ((2.0,), (5.0,), (2.0,)), ((5.0,), (4.0,), (5.0,)))


def test_no_self_term():
    # star centre 0 with leaves 1, 2: the centre's own feature never enters its sum
    h = run_sgin(nx.star_graph(2), [[100.0], [1.0], [2.0]], _identity(1))
    assert h[1] == ((3.0,), (100.0,), (100.0,))


def test_mean_divides_by_the_receiver_degree():
    h = run_sgin(nx.star_graph(2), [[6.0], [1.0], [2.0]], _identity(1, aggregation="mean"))
    assert h[1] == ((1.5,), (6.0,), (6.0,))


def test_gcn_normalises_by_both_degrees():
    # star with 2 leaves: d(centre) = 2, d(leaf) = 1
    h = run_sgin(nx.star_graph(2), [[6.0], [1.0], [2.0]], _identity(1, aggregation="gcn"))
    assert h[1][0][0] == pytest.approx(3.0 / math.sqrt(2.0), abs=1e-15)
    assert h[1][1][0] == pytest.approx(6.0 / math.sqrt(2.0), abs=1e-15)


def test_linear_layer_bias_and_relu():
    model = SGIN([[[1.0, -1.0], [2.0, 0.0]]], [[0.5, -10.0]])
    assert model.layer(0, (3.0, 1.0)) == (2.5, 0.0)  # (3-1+0.5, relu(6-10))
    h = run_sgin(nx.path_graph(2), [[3.0, 1.0], [0.0, 0.0]], model)
    assert h[1] == ((0.5, 0.0), (2.5, 0.0))


def test_layers_use_their_own_weights():
    model = SGIN([[[2.0]], [[-1.0]], [[3.0]]], [[0.0], [10.0], [0.0]])
    h = run_sgin(nx.path_graph(2), [[1.0], [1.0]], model)
    assert [h[k][0][0] for k in range(4)] == [1.0, 2.0, 8.0, 24.0]


def test_features_default_to_ones_and_accept_tensors():
    assert as_vector(None, 3) == (1.0, 1.0, 1.0)
    assert as_vector(torch.tensor([0.5, -2.0]), 2) == (0.5, -2.0)
    assert as_vector(7, 1) == (7.0,)
    assert run_sgin(nx.path_graph(2), None, _identity(1))[1] == ((1.0,), (1.0,))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="dimension 1, but the sGIN model has dimension 2"):
        as_vector([1.0], 2)
    with pytest.raises(ValueError, match="finite"):
        as_vector([float("nan")], 1)
    with pytest.raises(ValueError, match="unknown aggregation"):
        SGIN([[[1.0]]], [[0.0]], "max")
    with pytest.raises(ValueError, match="square"):
        SGIN([[[1.0, 2.0]]], [[0.0]])
    with pytest.raises(ValueError, match="1 weight matrices but 2 bias"):
        SGIN([[[1.0]]], [[0.0], [0.0]])
    with pytest.raises(ValueError, match="at least one layer"):
        SGIN([], [])
    with pytest.raises(ValueError, match="features have 1 rows for 2 nodes"):
        run_sgin(nx.path_graph(2), [[1.0]], _identity(1))


def test_random_models_are_reproducible_and_serialisable():
    a, b = SGIN.random(3, 2, seed=4), SGIN.random(3, 2, seed=4)
    assert a == b and a != SGIN.random(3, 2, seed=5)
    assert (a.layers, a.dim) == (2, 3)
    assert SGIN.from_dict(a.to_dict()) == a
    assert all(abs(w) <= 1 / math.sqrt(3) for m in a.weights for r in m for w in r)
