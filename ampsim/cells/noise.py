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

Dropout factors are drawn by the compiled library where it is available (``csrc/attend.cpp``,
:mod:`ampsim.native`; ``AMPSIM_FUSED=0`` keeps them in torch): the same formula in uint32
arithmetic, so the same bits and the same masks, in one pass instead of a dozen int64 tensor
operations.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import torch
from torch import Tensor

from .. import native
from ..engine.rng import derive_seed

__all__ = ["noise_keys", "uniform", "dropout", "factors", "NO_NOISE"]

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


class _Draw(ctypes.Structure):
    """``csrc/attend.cpp``'s ``Noise``: dropout factors on a grid (``C`` columns per key) or on (key, column) pairs."""

    _fields_ = [("n", ctypes.c_int64), ("C", ctypes.c_int64), ("keys", ctypes.c_void_p), ("cols", ctypes.c_void_p),
                ("counter", ctypes.c_int64), ("p", ctypes.c_double), ("out", ctypes.c_void_p)]


def factors(keys: Tensor, counter: int, cols: Optional[Tensor], C: int, p: float, dtype: torch.dtype) -> Tensor:
    """Dropout factors ``1[u(key, counter, j) >= p] / (1 - p)``, and 1 where the key is -1:
    ``(len(keys), C)`` on a grid of columns ``0..C-1`` (``cols`` None), else one per (key, column) pair.
    Compiled where the library is available, else the torch formula (the same values)."""
    lib = native.usable(torch.empty(0, dtype=dtype, device=keys.device))
    if lib is None:
        live = keys >= 0
        if cols is None:
            u = uniform(keys, counter, C, dtype)
            live = live.unsqueeze(1)
        else:
            u = (_bits(keys, counter, cols) >> 8).to(dtype) * (1.0 / (1 << 24))
        return torch.where(live, (u >= p).to(dtype) * (1.0 / (1.0 - p)), torch.ones_like(u))
    keys = keys.detach().to(torch.int64).contiguous()
    n = keys.shape[0] * C if cols is None else keys.shape[0]
    out = torch.empty((keys.shape[0], C) if cols is None else (n,), dtype=dtype)
    if n:
        cols = None if cols is None else cols.to(torch.int64).contiguous()
        a = _Draw(n, C if cols is None else 0, keys.data_ptr(), 0 if cols is None else cols.data_ptr(), int(counter),
                  float(p), out.data_ptr())
        if lib.ampsim_dropout_factors(ctypes.byref(a), native.DTYPES[dtype]) != 0:
            raise RuntimeError(f"the compiled noise draw refused dtype {dtype}")
    return out


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
    if x.is_sparse:  # a sparse COO x: its stored entries draw, as a dense x's non-zero entries
        x = x.coalesce()
        (r, c), v = x.indices(), x.values()
        factor = factors(keys.index_select(0, r), counter, c, 0, p, v.dtype)
        return torch.sparse_coo_tensor(x.indices(), v * factor, x.shape, is_coalesced=True, check_invariants=False)
    if not x.requires_grad:
        r, c = ((x != 0) & (keys >= 0).unsqueeze(1)).nonzero(as_tuple=True)
        return x.index_put((r, c), x[r, c] * factors(keys.index_select(0, r), counter, c, 0, p, x.dtype))
    return x * factors(keys, counter, None, x.shape[1], p, x.dtype)
