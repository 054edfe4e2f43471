"""Classical GNN baselines for node classification: a two-layer GCN and a two-layer GAT, in plain torch.

* :class:`GCN` (Kipf & Welling, ICLR 2017, Eq. 9): ``log_softmax(Â drop(ReLU(Â drop(X) W0)) W1)``
  with ``Â = D^-1/2 (A + I) D^-1/2`` (:func:`gcn_adjacency`), Glorot initialisation.
* :class:`GAT` (Veličković et al., ICLR 2018, Section 2.1 and the transductive setting of
  Section 3.3): layer 1 has K = 8 heads of F' = 8 features, each
  ``h_i' = Σ_{j ∈ N(i) ∪ {i}} α_ij W x_j``,
  ``α_ij = softmax_j(LeakyReLU_0.2(a_dst · W x_i + a_src · W x_j))``, concatenated and passed
  through ELU; layer 2 is one head with C outputs (the classes). Dropout 0.6 on each layer's input
  and on the normalised attention coefficients α; Glorot initialisation, zero biases.

Both take a dropout ``generator`` (``None``: evaluation, no dropout), so every mask comes from the
seed. The attention softmax runs over each receiver's incoming edges with a per-receiver maximum
subtracted (``scatter_reduce`` amax), so it is exact in float32 for any score range.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..cells.aggregate import feature_product

__all__ = ["GCN", "GAT", "gcn_adjacency", "identity_adjacency", "self_loop_edges", "dropout", "glorot"]


def dropout(x: Tensor, p: float, generator: Optional[torch.Generator]) -> Tensor:
    """Inverted dropout with masks from ``generator`` (``None``: the identity, evaluation).

    A sparse ``x`` drops among its non-zeros only (Kipf & Welling's sparse dropout: the same law,
    since a dropped zero stays zero).
    """
    if generator is None or p == 0.0:
        return x
    if x.is_sparse:
        values = x.values()
        keep = torch.rand(values.shape, generator=generator, device=x.device) >= p
        return torch.sparse_coo_tensor(x.indices(), values * keep.to(values.dtype) / (1.0 - p), x.shape,
                                       is_coalesced=True, check_invariants=False)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


def glorot(w: Tensor, generator: torch.Generator) -> None:
    """Glorot-uniform ``U(-b, b)``, ``b = sqrt(6 / (fan_in + fan_out))`` over the last two dimensions."""
    fan_in, fan_out = w.shape[-2], w.shape[-1]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.copy_((2 * torch.rand(w.shape, generator=generator) - 1) * bound)


def gcn_adjacency(edge_index: Tensor, n: int) -> Tensor:
    """``Â = D^-1/2 (A + I) D^-1/2`` as a sparse COO tensor (Kipf & Welling, Eq. 2), D the degree of A + I."""
    loops = torch.arange(n)
    idx = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    deg = torch.bincount(idx[0], minlength=n).to(torch.float32)
    inv = deg.pow(-0.5)
    values = inv[idx[0]] * inv[idx[1]]
    return torch.sparse_coo_tensor(idx, values, (n, n), check_invariants=False).coalesce()


def identity_adjacency(n: int) -> Tensor:
    """``I`` (n, n) as a sparse COO tensor: the :class:`GCN` on it is a two-layer MLP (no neighbours)."""
    loops = torch.arange(n)
    return torch.sparse_coo_tensor(torch.stack([loops, loops]), torch.ones(n), (n, n), is_coalesced=True,
                                   check_invariants=False)


def self_loop_edges(edge_index: Tensor, n: int) -> Tensor:
    """``edge_index`` (2, E) with one self-loop per node appended: the neighbourhoods ``N(i) ∪ {i}`` of GAT."""
    loops = torch.arange(n, dtype=edge_index.dtype)
    return torch.cat([edge_index, torch.stack([loops, loops])], dim=1)


class GCN(nn.Module):
    """Two-layer GCN: ``log_softmax(Â drop(ReLU(Â drop(X) W0)) W1)`` (Kipf & Welling 2017, Eq. 9)."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.w0 = nn.Parameter(torch.empty(in_features, hidden))
        self.w1 = nn.Parameter(torch.empty(hidden, num_classes))
        self.dropout = dropout

    def reset(self, generator: torch.Generator) -> None:
        """Glorot-uniform weights (the reference code's init), drawn from ``generator``."""
        for w in (self.w0, self.w1):
            glorot(w, generator)

    def decayed(self) -> list[Tensor]:
        """The weights under weight decay: the first layer only (the reference code)."""
        return [self.w0]

    def forward(self, x: Tensor, adj: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """``x`` dense or sparse (n, F)."""
        x = dropout(x, self.dropout, generator)
        xw = feature_product(x, self.w0)
        h = torch.relu(torch.sparse.mm(adj, xw))
        z = torch.sparse.mm(adj, dropout(h, self.dropout, generator) @ self.w1)
        return torch.log_softmax(z, dim=-1)


def attend(h: Tensor, a_src: Tensor, a_dst: Tensor, edges: Tensor, p: float,
           generator: Optional[torch.Generator], slope: float = 0.2) -> Tensor:
    """One GAT aggregation: ``out_i = Σ_{(j, i) ∈ edges} drop(α_ij) h_j`` per head (Veličković et al., Eq. 3-4).

    ``h`` (n, K, F) the transformed features ``W x``; ``a_src``, ``a_dst`` (K, F) the two halves of
    the attention vector a; ``edges`` (2, E) sender, receiver (self-loops included).
    ``α_ij = exp(e_ij - m_i) / Σ_j' exp(e_ij' - m_i)``, ``e_ij = LeakyReLU(a_dst·h_i + a_src·h_j)``,
    ``m_i`` the receiver's largest score. Returns (n, K, F).
    """
    src, dst = edges[0], edges[1]
    n, heads = h.shape[0], h.shape[1]
    score = nn.functional.leaky_relu((h * a_src).sum(-1)[src] + (h * a_dst).sum(-1)[dst], slope)  # (E, K)
    top = torch.full((n, heads), -math.inf, dtype=h.dtype).scatter_reduce(
        0, dst.unsqueeze(1).expand_as(score), score, "amax", include_self=True)
    w = torch.exp(score - top.index_select(0, dst))
    alpha = w / torch.zeros(n, heads, dtype=h.dtype).index_add(0, dst, w).index_select(0, dst)
    alpha = dropout(alpha, p, generator)
    return torch.zeros_like(h).index_add(0, dst, alpha.unsqueeze(-1) * h.index_select(0, src))


class GAT(nn.Module):
    """Two-layer GAT (Veličković et al. 2018, Cora/CiteSeer architecture): K heads × F' features, ELU, one output head.

    ``log_softmax(att_1(drop(ELU(‖_k att_0^k(drop(X) W0^k) + b0))) W1) + b1)``, dropout ``p`` on each
    layer's input and on the attention coefficients (:func:`attend`).
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, heads: int = 8,
                 dropout: float = 0.6) -> None:
        super().__init__()
        self.heads, self.hidden, self.dropout = heads, hidden, dropout
        self.w0 = nn.Parameter(torch.empty(in_features, heads * hidden))
        self.a0_src = nn.Parameter(torch.empty(heads, hidden))
        self.a0_dst = nn.Parameter(torch.empty(heads, hidden))
        self.b0 = nn.Parameter(torch.zeros(heads * hidden))
        self.w1 = nn.Parameter(torch.empty(heads * hidden, num_classes))
        self.a1_src = nn.Parameter(torch.empty(1, num_classes))
        self.a1_dst = nn.Parameter(torch.empty(1, num_classes))
        self.b1 = nn.Parameter(torch.zeros(num_classes))

    def reset(self, generator: torch.Generator) -> None:
        """Glorot-uniform weights and attention vectors (per head), zero biases, drawn from ``generator``."""
        for w in (self.w0, self.w1):
            glorot(w, generator)
        for a in (self.a0_src, self.a0_dst, self.a1_src, self.a1_dst):
            glorot(a.view(a.shape[0], 1, a.shape[1]), generator)
        with torch.no_grad():
            self.b0.zero_()
            self.b1.zero_()

    def decayed(self) -> list[Tensor]:
        """The weights under weight decay: every parameter but the biases (the reference code's L2)."""
        return [self.w0, self.a0_src, self.a0_dst, self.w1, self.a1_src, self.a1_dst]

    def forward(self, x: Tensor, edges: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """``x`` dense or sparse (n, F); ``edges`` (2, E) with self-loops (:func:`self_loop_edges`)."""
        n, p = x.shape[0], self.dropout
        x = dropout(x, p, generator)
        h = feature_product(x, self.w0).view(n, self.heads, self.hidden)
        h = nn.functional.elu(attend(h, self.a0_src, self.a0_dst, edges, p, generator).reshape(n, -1) + self.b0)
        z = (dropout(h, p, generator) @ self.w1).unsqueeze(1)
        z = attend(z, self.a1_src, self.a1_dst, edges, p, generator).squeeze(1) + self.b1
        return torch.log_softmax(z, dim=-1)
