"""Counter-based random numbers for cells: the same draw for the same (node, counter, column) everywhere.

A cell that uses dropout inside :meth:`step` must draw the same mask whether the
SimPy engine runs it (one row at a time, in delivery order) or the batched executor
(thousands of rows, level by level). A stateful generator cannot do that; a pure
function of a key can. Each node of a run gets a 24-bit *noise key* (a hash of the
run's noise seed and the node's index; -1 = no noise, e.g. evaluation), which the
cell keeps in its state row (24 bits are exact in float32). A draw is then

    u(key, counter, j) = mix(mix(key * K1 + counter) xor (j * K2)) / 2^32      in [0, 1)

with ``mix`` the 32-bit integer finaliser of MurmurHash3 (``x ^= x >> 16; x *= c; ...``),
``counter`` what the cell is drawing for (e.g. the wave number) and ``j`` the column.
Every operation stays below 2^63 in int64, so the numbers are the same on every platform.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..engine.rng import derive_seed

__all__ = ["noise_keys", "uniform", "dropout", "NO_NOISE"]

NO_NOISE = -1
_M32 = 0xFFFFFFFF
_K1, _K2, _K3 = 0x045D9F3B, 0x0119DE1F, 0x01000193


def _mix(x: Tensor) -> Tensor:
    """A 32-bit avalanche on int64 tensors (values kept in [0, 2^32)); in place on its own copy of ``x``."""
    x = x & _M32
    x ^= x >> 16
    x.mul_(_K1).bitwise_and_(_M32)
    x ^= x >> 16
    x.mul_(_K1).bitwise_and_(_M32)
    x ^= x >> 16
    return x


def noise_keys(seed: Optional[int], nodes: Tensor) -> Tensor:
    """(B,) int64 noise keys in [0, 2^24) of ``nodes`` in a run with noise seed ``seed`` (``None``: all -1)."""
    nodes = torch.as_tensor(nodes, dtype=torch.int64).reshape(-1)
    if seed is None:
        return torch.full_like(nodes, NO_NOISE)
    base = derive_seed(int(seed), "cell-noise") & _M32
    return _mix(_mix(nodes * _K3 + base) + base) & 0xFFFFFF


def _bits(keys: Tensor, counter: int, cols: Tensor) -> Tensor:
    """``mix(mix(key * K3 + counter) xor (j * K2))`` for matching ``keys`` and columns ``cols`` (broadcast)."""
    k = keys.detach().to(torch.int64).clamp_min(0)
    return _mix(_mix(k * _K3 + int(counter)) ^ (cols * _K2 & _M32))


def uniform(keys: Tensor, counter: int, cols: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, cols) uniforms in [0, 1): ``u(key_b, counter, j)``; ``keys`` (B,) may be a float column (exact ints)."""
    j = torch.arange(cols, dtype=torch.int64, device=keys.device).reshape(1, -1)
    return (_bits(keys.reshape(-1, 1), counter, j) >> 8).to(dtype) * (1.0 / (1 << 24))


def dropout(x: Tensor, p: float, keys: Tensor, counter: int) -> Tensor:
    """Inverted dropout of the rows of ``x`` (B, C): ``x_bj · 1[u(key_b, counter, j) >= p] / (1 - p)``;
    rows with key -1 are kept as they are.

    When ``x`` needs no gradient only its non-zero entries draw (a dropped zero stays zero: the
    same values; a bag-of-words row is 1-2% non-zero); a sparse COO ``x`` gives the sparse result
    (its stored entries draw).
    """
    if p <= 0.0:
        return x
    keys = keys.reshape(-1)
    live = keys >= 0
    scale = 1.0 / (1.0 - p)
    if x.is_sparse:  # a sparse COO x: its stored entries draw, as a dense x's non-zero entries
        x = x.coalesce()
        (r, c), v = x.indices(), x.values()
        u = (_bits(keys.index_select(0, r), counter, c) >> 8).to(v.dtype) * (1.0 / (1 << 24))
        factor = torch.where(live.index_select(0, r), (u >= p).to(v.dtype) * scale, torch.ones_like(u))
        return torch.sparse_coo_tensor(x.indices(), v * factor, x.shape, is_coalesced=True, check_invariants=False)
    if not x.requires_grad:
        r, c = ((x != 0) & live.unsqueeze(1)).nonzero(as_tuple=True)
        u = (_bits(keys.index_select(0, r), counter, c) >> 8).to(x.dtype) * (1.0 / (1 << 24))
        return x.index_put((r, c), x[r, c] * ((u >= p).to(x.dtype) * scale))
    keep = (uniform(keys, counter, x.shape[1], x.dtype) >= p) | ~live.unsqueeze(1)
    factor = torch.where(live, torch.full_like(keys, scale, dtype=x.dtype), torch.ones_like(keys, dtype=x.dtype))
    return x * keep.to(x.dtype) * factor.unsqueeze(1)
