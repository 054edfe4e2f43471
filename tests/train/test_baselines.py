"""The classical baselines (ampsim.train.baselines): GCN adjacency, GAT attention against a dense reference."""
from __future__ import annotations

import torch

from ampsim.train.baselines import GAT, attend, dropout, gcn_adjacency, glorot, self_loop_edges

# a triangle 0-1-2 with a pendant 3 on node 2, both directions
EDGES = torch.tensor([[0, 1, 0, 2, 1, 2, 2, 3], [1, 0, 2, 0, 2, 1, 3, 2]])


def dense_attention(h, a_src, a_dst, edges, slope=0.2):
    """out_i = sum_j softmax_j(LeakyReLU(a_dst.h_i + a_src.h_j)) h_j over the edges j -> i, one head at a time."""
    n, heads, _ = h.shape
    out = torch.zeros_like(h)
    for k in range(heads):
        score = torch.full((n, n), -float("inf"), dtype=h.dtype)
        for j, i in edges.t().tolist():
            score[i, j] = torch.nn.functional.leaky_relu(a_dst[k] @ h[i, k] + a_src[k] @ h[j, k], slope)
        out[:, k] = torch.softmax(score, dim=1) @ h[:, k]
    return out


def test_self_loop_edges_appends_one_loop_per_node():
    e = self_loop_edges(EDGES, 4)
    assert e.shape == (2, 12) and e[:, 8:].tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]


def test_attend_equals_dense_softmax_per_head():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    a_src, a_dst = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    edges = self_loop_edges(EDGES, 4)
    got = attend(h, a_src, a_dst, edges, 0.6, None)
    assert torch.allclose(got, dense_attention(h, a_src, a_dst, edges), atol=1e-12)


def test_attend_is_exact_for_huge_scores():
    # scores of 1e4 would overflow exp() without the per-receiver maximum
    h = torch.tensor([[[1.0]], [[2.0]], [[3.0]], [[4.0]]])
    got = attend(h, torch.tensor([[1e4]]), torch.tensor([[0.0]]), self_loop_edges(EDGES, 4), 0.0, None)
    # each receiver attends to its neighbour (or itself) with the largest h: 0 <- 2, 1 <- 2, 2 <- 3, 3 <- 3
    assert got.flatten().tolist() == [3.0, 3.0, 4.0, 4.0]


def test_gat_shapes_dense_equals_sparse_and_dropout_changes_output():
    x = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    model = GAT(3, 2, 2, heads=4)
    model.reset(torch.Generator().manual_seed(3))
    edges = self_loop_edges(EDGES, 4)
    dense = model(x, edges)
    assert dense.shape == (4, 2) and torch.allclose(dense.exp().sum(1), torch.ones(4))
    assert torch.allclose(model(x.to_sparse_coo().coalesce(), edges), dense, atol=1e-6)
    dropped = model(x, edges, torch.Generator().manual_seed(1))
    assert not torch.allclose(dropped, dense)
    assert [p.shape for p in model.decayed()] == [(3, 8), (4, 2), (4, 2), (8, 2), (1, 2), (1, 2)]
    assert model.b0.abs().sum() == 0 and model.b1.abs().sum() == 0


def test_glorot_bound_and_dropout_scale():
    w = torch.empty(30, 20)
    glorot(w, torch.Generator().manual_seed(0))
    assert w.abs().max() <= (6.0 / 50) ** 0.5 and w.abs().max() > 0.9 * (6.0 / 50) ** 0.5
    x = torch.ones(1000)
    y = dropout(x, 0.6, torch.Generator().manual_seed(0))
    assert set(torch.unique(y).tolist()) == {0.0, 2.5}
    assert dropout(x, 0.6, None) is x


def test_gcn_adjacency_rows_of_a_star():
    # star: centre 0 with leaves 1, 2; degrees with self-loops 3, 2, 2
    adj = gcn_adjacency(torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]]), 3).to_dense()
    assert torch.allclose(adj[0], torch.tensor([1 / 3, 1 / 6 ** 0.5, 1 / 6 ** 0.5]))
