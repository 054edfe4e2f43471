"""Aggregating AMP cells: a GCN-like mean cell and a GAT-like attention cell, emitting once per wave.

Section 4.1 of the paper: AMP can express any GNN (the synchronizer). These cells do it
with an **order-free** aggregate, so that once a run is quiescent the result does not depend
on the delays. Both compute K *waves* (K GNN layers). Messages carry a slot per wave and a
K-bit mask saying which waves they carry::

    message = [ slot_0 (d_1) | ... | slot_{K-1} (d_K) | mask (K) ]        # mask all zero: the start message

Emission (both cells; :class:`WaveCount`, a plannable count rule, emission ``"counted"``):

* the start message (all-zero mask) starts the node: it counts its own wave-0 message z_v^0
  into wave 0 and emits it;
* a neighbour's message adds each slot it carries to that wave's aggregate and counts it;
* wave w of a started node *completes* when it has counted ``degree + 1`` messages (its own
  included): the node computes ``h^{w+1}`` from the aggregate and, if w + 1 < K, counts its own
  wave-(w+1) message and emits it (waves completed by the same delivery go out in one message);
* after wave K-1 the node is finished: ``output`` is ``h^K``. It never halts (it drops nothing);
  in a loss-free run it has then heard every message it will get.

So every node emits K times and a run with every node started makes ``n + K * 2|E|``
deliveries. Messages of a later wave may arrive before the node has finished the wave
before (random delays): the state keeps one aggregate per wave.

**Message loss** (engine ``loss``): a node missing a message never completes that wave and
its neighbours then miss its later waves; the run goes quiet with such nodes unfinished (the
engine reports ``stalled``). ``output`` is defined for every state: it *reads out what
arrived*, finishing the remaining waves with the aggregate of the messages counted, scaled
to the full neighbourhood (``(degree + 1) / count``), and the node's own messages of the
waves it did not reach. For a finished node this is exactly ``h^K``.
"""
from __future__ import annotations

import ctypes
import math
import warnings
from typing import Any, Optional

import torch
from torch import Tensor, nn

from .. import native
from . import noise
from .protocol import NodeInputs

__all__ = ["WaveCount", "MeanCell", "AttentionCell", "NORMS", "feature_product"]

NORMS = ("sym", "mean")


class WaveCount:
    """Emit once per wave: wave w completes when ``degree + 1`` of its messages were counted (own included).

    Counter state ``[started, w, c_0, ..., c_{K-1}, degree]``; a message's tag is its wave
    mask (bit j: carries wave j; 0: the start message). ``deliver`` returns the tag of the
    emitted message (0: no emission). Plannable: it reads counts and the degree only.
    """

    def __init__(self, waves: int) -> None:
        if isinstance(waves, bool) or not isinstance(waves, int) or waves < 1:
            raise ValueError(f"waves must be an int >= 1, got {waves!r}")
        self.waves = waves
        self.key = f"wave-count/{waves}"
        #: Every emission carries one wave (K <= 2: completing wave 0 can at most emit wave 1), so the
        #: number of deliveries of a loss-free run does not depend on the delays
        #: (:mod:`ampsim.batched.settled`). With K >= 3 two waves can complete on one delivery.
        self.fixed_messages = waves <= 2

    def start(self, degree: int) -> list:
        return [False, 0] + [0] * self.waves + [int(degree)]

    def deliver(self, state: list, tag: int) -> tuple[list, int]:
        K = self.waves
        out = 0
        if tag == 0:
            if not state[0]:
                state[0] = True
                state[2] += 1
                out = 1
        else:
            for j in range(K):
                if tag >> j & 1:
                    state[2 + j] += 1
        need = state[-1] + 1
        if state[0]:
            w = state[1]
            while w < K and state[2 + w] >= need:
                w += 1
                if w < K:
                    state[2 + w] += 1
                    out |= 1 << w
            state[1] = w
        return state, out

    def finished(self, state: list) -> bool:
        return state[1] >= self.waves


def feature_product(x: Tensor, w: Tensor) -> Tensor:
    """``x @ w`` for a dense or a sparse COO ``x`` (features: a bag of words is 1-2% non-zero).

    A sparse ``x`` is multiplied in CSR form: forward and backward together about twice as fast as
    COO's ``torch.sparse.mm`` on Cora's features (the GCN, the GAT and the wave cells all use it)."""
    if not x.is_sparse:
        return x @ w
    with warnings.catch_warnings():  # torch marks CSR support "beta"; this product is tested here
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr() @ w


def _linear(lin: nn.Linear, h: Tensor) -> Tensor:
    """``h W^T`` (no bias) for a dense or a sparse COO ``h``."""
    return feature_product(h, lin.weight.t()) if h.is_sparse else lin(h)


def _dims(in_features: int, hidden: int, out_features: Optional[int], waves: int) -> list[int]:
    for name, v in (("in_features", in_features), ("hidden", hidden), ("waves", waves)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    out = hidden if out_features is None else out_features
    if isinstance(out, bool) or not isinstance(out, int) or out < 1:
        raise ValueError(f"out_features must be an int >= 1, got {out_features!r}")
    return [in_features] + [hidden] * (waves - 1) + [out]


class _WaveCell(nn.Module):
    """Shared layout and bookkeeping of the wave cells (state columns, message slots, counts)."""

    emission = "counted"
    node_inputs = frozenset({"degree", "noise"})
    #: The aggregates are sums / running softmaxes: the settled driver applies (:mod:`ampsim.batched.settled`).
    order_free = True

    def _layout(self, own: int, agg: list[int], extra: int, msg_extra: int = 0) -> None:
        """State: ``[own wave-0 message (own) | aggregate of wave j (agg[j]) ... | extra | counts (K) |
        wave | started | degree | noise key]``; message: ``[slot_j (slot sizes) ... | msg_extra | mask (K)]``."""
        K = self.waves
        self._agg_slices = []
        pos = own
        for a in agg:
            self._agg_slices.append(slice(pos, pos + a))
            pos += a
        self._extra = slice(pos, pos + extra)
        pos += extra
        self._counts = slice(pos, pos + K)
        self._w, self._started, self._deg, self._key = pos + K, pos + K + 1, pos + K + 2, pos + K + 3
        self.state_size = pos + K + 4
        self._slots = []
        pos = 0
        for d in self.slot_sizes:
            self._slots.append(slice(pos, pos + d))
            pos += d
        self._msg_extra = slice(pos, pos + msg_extra)
        self.msg_size = pos + msg_extra + K
        self.count_rule = WaveCount(K)

    def start_message(self, k: int = 1) -> Tensor:
        """(k, M) zeros: an all-zero wave mask marks the start message."""
        ref = next(self.parameters())
        return torch.zeros(k, self.msg_size, dtype=ref.dtype, device=ref.device)

    def halted(self, state: Tensor) -> Tensor:
        """Never: these cells drop nothing."""
        return torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)

    def finished(self, state: Tensor) -> Tensor:
        """(B,) bool: every wave completed (``output`` is then the exact K-layer result)."""
        return state[:, self._w] > self.waves - 0.5

    def _tail(self, counts: list[Tensor], w: Tensor, started: Tensor, state: Tensor) -> list[Tensor]:
        return [torch.stack(counts, dim=1), w.unsqueeze(1), started.unsqueeze(1), state[:, self._deg:]]

    def message_tags(self, messages: Tensor) -> Tensor:
        """(B,) int64: the tag :class:`WaveCount` reads from each message, its wave mask ``Σ_j 2^j 1[mask_j]``
        (0: a start message)."""
        bits = (messages[:, -self.waves:].detach() > 0.5).to(torch.int64)
        return (bits * (1 << torch.arange(self.waves, device=messages.device))).sum(1)

    def settle(self, x: Tensor, inputs: NodeInputs, start: Tensor, started: Tensor, edges: tuple[Tensor, Tensor],
               delivered: Optional[list[tuple[Tensor, Tensor]]]) -> tuple[Tensor, Tensor]:
        """Final states from the delivered copies, wave by wave (the settled driver, :mod:`ampsim.batched.settled`).

        Rows are the run's nodes: ``x`` features, ``start`` (B, M) the start message of each row
        (zeros where ``started`` is False). ``delivered[j]``: ``(sender rows, receiver rows)`` of the
        delivered copies of wave j; ``None``: every copy, over ``edges``, of every wave-j message
        sent (a loss-free run that its budget does not cut). Per wave j: ``c_v^j`` = the copies
        received + the own message once counted; the wave completes where the node has completed
        wave j - 1 (``w == j``) and ``c_v^j = degree + 1``, which sends wave j + 1 (counted as own).
        Returns the states (``step``'s layout, equal up to float rounding) and ``sent`` (B, K) bool.
        """
        K = self.waves
        deg, key = inputs.degree.to(x.dtype), inputs.noise
        own = started.to(x.dtype)
        w = torch.zeros_like(deg)
        z0 = self._first(x, deg, key)
        z, aggs, counts, sent = z0, [], [], []
        for j in range(K):
            sent.append(own > 0.5)
            if delivered is None:
                live = (own > 0.5).index_select(0, edges[0]).nonzero().flatten()
                src, dst = edges[0].index_select(0, live), edges[1].index_select(0, live)
            else:
                src, dst = delivered[j]
            agg, cnt = self._gather(j, z, z0, own, src, dst, key, start)
            hit = (w == j) & started & (cnt > deg + 0.5)
            done = hit.to(x.dtype)
            if j + 1 < K:
                z = self._next(j, agg, cnt, deg, key)
                own = done
            w = w + done
            aggs.append(agg)
            counts.append(cnt)
        tail = [torch.stack(counts, dim=1), w.unsqueeze(1), started.to(x.dtype).unsqueeze(1), deg.unsqueeze(1),
                key.to(x.dtype).unsqueeze(1)]
        return torch.cat([z0] + aggs + tail, dim=1), torch.stack(sent, dim=1)

    @staticmethod
    def _check_inputs(x: Tensor, inputs: Optional[NodeInputs]) -> NodeInputs:
        if inputs is None:
            raise ValueError("this cell reads the node degree: pass inputs=NodeInputs(degree, noise) to init_state")
        if inputs.degree.shape[0] != x.shape[0] or inputs.noise.shape[0] != x.shape[0]:
            raise ValueError(f"inputs have {inputs.degree.shape[0]} rows for {x.shape[0]} feature rows")
        return inputs


class MeanCell(_WaveCell):
    """GCN-like aggregation over K waves: ``MeanCell(in_features, hidden, out_features=None, waves=2,
    norm="sym", dropout=0.0)`` (Kipf & Welling 2017, Eq. 2, as an AMP cell).

    Per wave j (layer j + 1), with ``d_v`` the degree of v and ``N(v)`` its neighbours:

    * own message   ``z_v^j = s(d_v) · drop(h_v^j) W_j``   (``h_v^0 = x_v``; ``s(d) = (d+1)^-1/2`` for
      ``norm="sym"``, 1 for ``"mean"``): the sender scales by its own degree, so the receiver
      gets GCN's symmetric normalisation without knowing the sender's degree;
    * per message   ``S_v^j += z_u^j``, ``c_v^j += 1``  (state: one running sum and count per wave);
    * completion    ``h_v^{j+1} = act(r(d_v) · S_v^j · (d_v+1)/c_v^j + b_j)`` with ``r(d) = (d+1)^-1/2``
      (``"sym"``) or ``1/(d+1)`` (``"mean"``); ``act`` = ReLU except after the last wave (identity).
      At completion ``c_v^j = d_v + 1`` and this is the GCN layer
      ``h_v^{j+1} = act(Σ_{u ∈ N(v) ∪ {v}} (d_u+1)^-1/2 (d_v+1)^-1/2 h_u^j W_j + b_j)``;
    * emission      :class:`WaveCount` (module docstring); output ``h^K`` (``out_features`` wide),
      or what arrived (message loss).

    ``dropout``: inverted dropout on ``h^j`` before ``W_j`` (GCN's), drawn from the run's noise keys
    (:mod:`ampsim.cells.noise`; only in training mode). Sums are order-free: any arrival order
    gives the same state up to float rounding.
    """

    kind = "mean"

    def __init__(self, in_features: int, hidden: int, out_features: Optional[int] = None, waves: int = 2,
                 norm: str = "sym", dropout: float = 0.0) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dims = _dims(in_features, hidden, out_features, waves)
        self.in_features, self.hidden, self.waves, self.norm, self.dropout = in_features, hidden, waves, norm, float(dropout)
        self.output_size = self.dims[-1]
        self.weights = nn.ModuleList(nn.Linear(self.dims[j], self.dims[j + 1], bias=False) for j in range(waves))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(self.dims[j + 1])) for j in range(waves))
        self.slot_sizes = self.dims[1:]
        self._layout(self.dims[1], self.dims[1:], 0)

    # ------------------------------------------------------------- formulas
    def _send(self, deg: Tensor) -> Tensor:
        return (deg + 1.0).rsqrt().unsqueeze(1) if self.norm == "sym" else torch.ones_like(deg).unsqueeze(1)

    def _own(self, j: int, h: Tensor, deg: Tensor, key: Tensor) -> Tensor:
        """``z^j = s(d) · drop(h^j) W_j``."""
        if self.training and self.dropout > 0.0:
            h = noise.dropout(h, self.dropout, key, j)
        return self._send(deg) * _linear(self.weights[j], h)

    def _complete(self, j: int, S: Tensor, c: Tensor, deg: Tensor) -> Tensor:
        """``act(r(d) · S (d+1)/c + b_j)``."""
        d1 = deg + 1.0
        r = d1.rsqrt() if self.norm == "sym" else 1.0 / d1
        a = S * (r * d1 / c.clamp_min(1.0)).unsqueeze(1) + self.biases[j]
        return torch.relu(a) if j + 1 < self.waves else a

    # ------------------------------------------------------------- settled driver
    def _first(self, x: Tensor, deg: Tensor, key: Tensor) -> Tensor:
        return self._own(0, x, deg, key)

    def _gather(self, j: int, z: Tensor, z0: Tensor, own: Tensor, src: Tensor, dst: Tensor, key: Tensor,
                start: Tensor) -> tuple[Tensor, Tensor]:
        """``S_v^j = Σ_{u -> v} z_u^j + own_v z_v^j`` (+ the start message's slot), and the count."""
        S = start[:, self._slots[j]] + own.unsqueeze(1) * z
        S = S.index_add(0, dst, z.index_select(0, src))
        cnt = own.index_add(0, dst, own.new_ones(dst.shape[0]))
        return S, cnt

    def _next(self, j: int, S: Tensor, cnt: Tensor, deg: Tensor, key: Tensor) -> Tensor:
        return self._own(j + 1, self._complete(j, S, cnt, deg), deg, key)

    # ------------------------------------------------------------- protocol
    def init_state(self, x: Tensor, inputs: Optional[NodeInputs] = None) -> Tensor:
        """``[z_v^0 | 0 ... | counts 0 | wave 0 | not started | d_v | noise key]``."""
        inputs = self._check_inputs(x, inputs)
        deg = inputs.degree.to(x.dtype)
        key = inputs.noise
        z0 = self._own(0, x, deg, key)
        B = x.shape[0]
        zeros = z0.new_zeros(B, self.state_size - self.dims[1] - 2)
        return torch.cat([z0, zeros, deg.unsqueeze(1), key.to(x.dtype).unsqueeze(1)], dim=1)

    def step(self, state: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One delivery (class docstring): add the message's slots, complete waves, emit own messages."""
        K = self.waves
        z0 = state[:, : self.dims[1]]
        deg, key = state[:, self._deg], state[:, self._key]
        w, started = state[:, self._w], state[:, self._started]
        mask = m[:, -K:]
        start = (mask.sum(1) == 0).to(state.dtype)
        fresh = start * (1.0 - started)
        S = [state[:, s] + m[:, t] for s, t in zip(self._agg_slices, self._slots)]
        cnt = state[:, self._counts] + mask
        counts = [cnt[:, j] for j in range(K)]
        S[0] = S[0] + fresh.unsqueeze(1) * z0
        counts[0] = counts[0] + fresh
        started = started + fresh
        slots = [fresh.unsqueeze(1) * z0] + [None] * (K - 1)
        flags = [fresh] + [None] * (K - 1)
        for j in range(K):
            hit = (w == j) & (started > 0.5) & (counts[j] > deg + 0.5)
            done = hit.to(state.dtype)
            if j + 1 < K:  # own messages of the rows that complete wave j (few per batch, often none)
                rows = hit.nonzero().flatten()
                if rows.numel():
                    h = self._complete(j, S[j].index_select(0, rows), counts[j].index_select(0, rows),
                                       deg.index_select(0, rows))
                    z = self._own(j + 1, h, deg.index_select(0, rows), key.index_select(0, rows))
                    z = S[j + 1].new_zeros(S[j + 1].shape).index_add(0, rows, z)
                    S[j + 1] = S[j + 1] + z
                    counts[j + 1] = counts[j + 1] + done
                else:  # no row completes: nothing to compute (the level's graph stays small for backward)
                    z = S[j + 1].new_zeros(S[j + 1].shape)
                slots[j + 1] = z
                flags[j + 1] = done
            w = w + done
        mask_out = torch.stack(flags, dim=1)
        new = torch.cat([z0] + S + self._tail(counts, w, started, state), dim=1)
        out = torch.cat(slots + [mask_out], dim=1)
        return new, out, (mask_out.sum(1) > 0).to(state.dtype)

    def output(self, state: Tensor) -> Tensor:
        """``h^K``: the waves not completed are finished with what arrived (module docstring)."""
        K = self.waves
        deg, w, cnt = state[:, self._deg], state[:, self._w], state[:, self._counts]
        if bool((w > K - 0.5).all()):  # every node finished (a loss-free run): h^K from the last aggregate alone
            return self._complete(K - 1, state[:, self._agg_slices[K - 1]], cnt[:, K - 1], deg)
        key, started = state[:, self._key], state[:, self._started]
        missing = (1.0 - started)
        S = state[:, self._agg_slices[0]] + missing.unsqueeze(1) * state[:, : self.dims[1]]
        c = cnt[:, 0] + missing
        h = self._complete(0, S, c, deg)
        for j in range(1, self.waves):
            add = (w < j).to(state.dtype)
            S = state[:, self._agg_slices[j]]
            if bool(add.any()):  # some node did not reach wave j: its own message, as if it had
                S = S + add.unsqueeze(1) * self._own(j, h, deg, key)
            h = self._complete(j, S, cnt[:, j] + add, deg)
        return h

    def extra_repr(self) -> str:
        return f"dims={self.dims}, waves={self.waves}, norm={self.norm!r}, dropout={self.dropout}"


class _AttendArgs(ctypes.Structure):
    """``csrc/attend.cpp``'s ``Attend``."""

    _fields_ = ([(k, ctypes.c_int64) for k in ("B", "E", "H", "F")]
                + [(k, ctypes.c_void_p) for k in ("src", "dst", "keys")]
                + [("counter", ctypes.c_int64), ("p", ctypes.c_double), ("slope", ctypes.c_double)]
                + [(k, ctypes.c_void_p) for k in ("z", "s", "q", "indptr", "order", "ex", "drop", "slope_k", "mu",
                                                  "lam", "A", "gA", "glam", "gz", "gs", "gq")])


class _Attend(torch.autograd.Function):
    """The attention cell's wave aggregate in compiled code (``csrc/attend.cpp``): ``(μ, λ, A)`` from the
    messages ``z`` (B, H·F), sender scores ``s`` and receiver scores ``q`` (B, H) over the copies
    ``src -> dst``, with attention dropout drawn from ``keys`` (None: none).

    ``μ`` is returned without gradient: every use of ``(μ, λ, A)`` depends on them only through
    ``(λe^μ, Ae^μ)``, so the gradient terms through ``μ`` cancel (the eager path computes them and
    they sum to zero up to rounding)."""

    @staticmethod
    def _args(z: Tensor, s: Tensor, q: Tensor, src: Tensor, dst: Tensor, keys: Optional[Tensor], counter: int,
              p: float, slope: float, bufs: dict) -> _AttendArgs:
        B, H = s.shape
        ptr = lambda name: 0 if bufs.get(name) is None else bufs[name].data_ptr()  # noqa: E731
        return _AttendArgs(B, src.shape[0], H, z.shape[1] // H, src.data_ptr(), dst.data_ptr(),
                           0 if keys is None else keys.data_ptr(), counter, p, slope, z.data_ptr(), s.data_ptr(),
                           q.data_ptr(), *[ptr(k) for k in ("indptr", "order", "ex", "drop", "slope_k", "mu", "lam", "A",
                                                           "gA", "glam", "gz", "gs", "gq")])

    @staticmethod
    def forward(ctx, lib, z, s, q, src, dst, keys, counter, p, slope):  # type: ignore[override]
        z, s, q = z.contiguous(), s.contiguous(), q.contiguous()
        src, dst = src.to(torch.int64).contiguous(), dst.to(torch.int64).contiguous()
        if keys is not None:
            keys = keys.detach().to(torch.int64).contiguous()
        B, H = s.shape
        E = src.shape[0]
        bufs = {"indptr": torch.empty(B + 1, dtype=torch.int64), "order": torch.empty(E, dtype=torch.int64),
                "ex": z.new_empty(E, H), "drop": None if keys is None else z.new_empty(E, H),
                "slope_k": z.new_empty(E, H) if any(ctx.needs_input_grad[1:4]) else None,
                "mu": z.new_empty(B, H), "lam": z.new_empty(B, H), "A": z.new_empty(B, z.shape[1])}
        a = _Attend._args(z, s, q, src, dst, keys, counter, p, slope, bufs)
        rc = lib.ampsim_attend_forward(ctypes.byref(a), native.DTYPES[z.dtype])
        if rc != 0:
            raise ValueError(f"the compiled attention refused its input (code {rc}): a copy names a row outside 0..{B - 1}"
                             if rc == 3 else f"the compiled attention refused dtype {z.dtype}")
        ctx.mark_non_differentiable(bufs["mu"])
        ctx.lib, ctx.counter, ctx.p, ctx.slope = lib, counter, p, slope
        ctx.save_for_backward(z, s, q, src, dst, bufs["indptr"], bufs["order"], bufs["ex"], bufs["drop"],
                              bufs["slope_k"])
        return bufs["mu"], bufs["lam"], bufs["A"]

    @staticmethod
    def backward(ctx, g_mu, g_lam, g_A):  # type: ignore[override]
        z, s, q, src, dst, indptr, order, ex, drop, slope_k = ctx.saved_tensors
        g_lam = torch.zeros_like(s) if g_lam is None else g_lam.contiguous()
        g_A = torch.zeros_like(z) if g_A is None else g_A.contiguous()
        bufs = {"indptr": indptr, "order": order, "ex": ex, "drop": drop, "slope_k": slope_k, "gA": g_A, "glam": g_lam,
                "gz": torch.zeros_like(z), "gs": torch.zeros_like(s), "gq": torch.zeros_like(q)}
        a = _Attend._args(z, s, q, src, dst, None, ctx.counter, ctx.p, ctx.slope, bufs)
        if ctx.lib.ampsim_attend_backward(ctypes.byref(a), native.DTYPES[z.dtype]) != 0:
            raise RuntimeError(f"the compiled attention refused dtype {z.dtype}")
        return None, bufs["gz"], bufs["gs"], bufs["gq"], None, None, None, None, None, None


class AttentionCell(_WaveCell):
    """GAT-like aggregation over K waves, order-free: ``AttentionCell(in_features, hidden, out_features=None,
    heads=8, out_heads=1, waves=2, dropout=0.0, attn_dropout=0.0, negative_slope=0.2)``
    (Veličković et al. 2018, Eqs. 1-6, as an AMP cell).

    Wave j has ``H_j`` heads of ``f_j`` features (hidden waves: ``heads`` x ``hidden``, concatenated;
    the last wave: ``out_heads`` x ``out_features``, averaged). Per wave j:

    * own message   ``z_v^j = drop(h_v^j) W_j``  (``h_v^0 = x_v``), sent with the node's noise key;
    * score         ``e_vu = LeakyReLU(q_j(z_v^0) + a_j · z_u^j)`` per head: the message against the
      receiver's state. The receiver's half uses its own wave-0 message ``z_v^0`` (a linear map
      ``q_j``; GAT: ``a_dst · z_v^j``), which the node holds from the start, so a message can be
      scored whenever it arrives -- under random delays a message of wave j + 1 may arrive before
      the node has finished wave j;
    * per message   a running softmax per head, ``(μ, λ, A)`` = (max, sum of exponentials, weighted
      sum): ``μ' = max(μ, e)``, ``λ' = λ e^{μ-μ'} + e^{e-μ'}``, ``A' = A e^{μ-μ'} + e^{e-μ'} δ z_u``
      (the log-sum-exp is ``μ + log λ``); ``δ`` is attention dropout (a pure function of the two
      nodes' noise keys, :mod:`ampsim.cells.noise`). The result ``A / λ`` does not depend on the
      arrival order (up to float rounding);
    * completion    ``h_v^{j+1} = ELU(‖_heads A/λ + b_j)``, or for the last wave ``mean_heads A/λ + b``;
      the node's own message is scored like any other (GAT's self-loop);
    * emission      :class:`WaveCount` (module docstring); output ``h^K``; under message loss the
      softmax of what arrived.
    """

    kind = "attention"

    def __init__(self, in_features: int, hidden: int, out_features: Optional[int] = None, heads: int = 8,
                 out_heads: int = 1, waves: int = 2, dropout: float = 0.0, attn_dropout: float = 0.0,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        for name, v in (("heads", heads), ("out_heads", out_heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for name, v in (("dropout", dropout), ("attn_dropout", attn_dropout)):
            if not 0.0 <= float(v) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        out = _dims(in_features, hidden, out_features, waves)[-1]
        self.in_features, self.hidden, self.waves = in_features, hidden, waves
        self.dropout, self.attn_dropout, self.negative_slope = float(dropout), float(attn_dropout), negative_slope
        self.heads_of = [heads] * (waves - 1) + [out_heads]
        self.feats_of = [hidden] * (waves - 1) + [out]
        self.dims = [in_features] + [heads * hidden] * (waves - 1) + [out]
        self.output_size = out
        self.weights = nn.ModuleList(nn.Linear(self.dims[j], self.heads_of[j] * self.feats_of[j], bias=False)
                                     for j in range(waves))
        self.query = nn.ModuleList(nn.Linear(self.heads_of[0] * self.feats_of[0], self.heads_of[j], bias=False)
                                   for j in range(waves))
        self.att = nn.ParameterList(nn.Parameter(torch.empty(self.heads_of[j], self.feats_of[j])) for j in range(waves))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(self.dims[j + 1])) for j in range(waves))
        for a in self.att:
            nn.init.xavier_uniform_(a)
        self.slot_sizes = [h * f for h, f in zip(self.heads_of, self.feats_of)]
        self._layout(self.slot_sizes[0], [2 * h + h * f for h, f in zip(self.heads_of, self.feats_of)], 0, 1)

    # ------------------------------------------------------------- formulas
    def _own(self, j: int, h: Tensor, key: Tensor) -> Tensor:
        """``z^j = drop(h^j) W_j``."""
        if self.training and self.dropout > 0.0:
            h = noise.dropout(h, self.dropout, key, j)
        return _linear(self.weights[j], h)

    def _absorb(self, j: int, acc: Tensor, count: Tensor, z: Tensor, z0: Tensor, key: Tensor, sender: Tensor,
                present: Tensor) -> Tensor:
        """Wave j's running softmax ``[μ | λ | A]`` after the messages ``z`` of the rows where ``present``."""
        H, f = self.heads_of[j], self.feats_of[j]
        B = z.shape[0]
        mu, lam, A = acc[:, :H], acc[:, H: 2 * H], acc[:, 2 * H:].reshape(B, H, f)
        zz = z.reshape(B, H, f)
        e = nn.functional.leaky_relu(self.query[j](z0) + (zz * self.att[j]).sum(-1), self.negative_slope)
        first = (count < 0.5).unsqueeze(1)
        mu2 = torch.where(first, e, torch.maximum(mu, e))
        shift = torch.where(first, torch.zeros_like(mu), mu - mu2)
        old = torch.where(first, torch.zeros_like(mu), torch.exp(shift))
        new = torch.exp(e - mu2)
        weight = new
        if self.training and self.attn_dropout > 0.0:
            weight = new * self._attn_mask(j, key, sender, H, new.dtype)
        lam2 = lam * old + new
        A2 = A * old.unsqueeze(2) + weight.unsqueeze(2) * zz
        out = torch.cat([mu2, lam2, A2.reshape(B, H * f)], dim=1)
        return torch.where(present.unsqueeze(1), out, acc)

    def _attn_mask(self, j: int, key: Tensor, sender: Tensor, H: int, dtype: torch.dtype) -> Tensor:
        """``1[u(key_v, 64 + j, H key_u + head) >= p] / (1 - p)``; 1 where either key is -1: the cells' dropout
        draw on (key, column) pairs (:func:`ampsim.cells.noise.dropout`'s factors), one row per copy."""
        s = sender.detach().to(torch.int64)
        k = torch.where(s >= 0, key.detach().to(torch.int64), -1)  # a sender without a key: no noise either
        cols = s.clamp_min(0).unsqueeze(1) * H + torch.arange(H, device=key.device)
        return noise.factors(k.repeat_interleave(H), 64 + j, cols.reshape(-1), 0, self.attn_dropout,
                             dtype).reshape(-1, H)

    def _complete(self, j: int, acc: Tensor) -> Tensor:
        """``ELU(‖ A/λ + b)`` (hidden waves) or ``mean A/λ + b`` (the last)."""
        H, f = self.heads_of[j], self.feats_of[j]
        B = acc.shape[0]
        agg = acc[:, 2 * H:].reshape(B, H, f) / acc[:, H: 2 * H].clamp_min(1e-30).unsqueeze(2)
        if j + 1 < self.waves:
            return nn.functional.elu(agg.reshape(B, H * f) + self.biases[j])
        return agg.mean(1) + self.biases[j]

    # ------------------------------------------------------------- settled driver
    def _first(self, x: Tensor, deg: Tensor, key: Tensor) -> Tensor:
        return self._own(0, x, key)

    def _gather(self, j: int, z: Tensor, z0: Tensor, own: Tensor, src: Tensor, dst: Tensor, key: Tensor,
                start: Tensor) -> tuple[Tensor, Tensor]:
        """Wave j's softmax ``[μ | λ | A]`` over the delivered copies and the own message, at once:
        ``μ = max e``, ``λ = Σ e^{e-μ}``, ``A = Σ e^{e-μ} δ z`` (what the running softmax ends with).

        In one compiled pass per receiver where the library is available (:class:`_Attend`), else
        in tensor operations over the copies (:meth:`_gather_eager`, the reference)."""
        H = self.heads_of[j]
        B = z.shape[0]
        mine = (own > 0.5).nonzero().flatten()
        src, dst = torch.cat([src, mine]), torch.cat([dst, mine])
        score = (z.reshape(B, H, -1) * self.att[j]).sum(-1)  # a_j · z_u^j once per sender, not per copy
        q = self.query[j](z0)
        drop = self.training and self.attn_dropout > 0.0
        lib = native.usable(z)
        if lib is None:
            acc = self._gather_eager(j, z, score, q, src, dst, key if drop else None)
        else:
            acc = torch.cat(_Attend.apply(lib, z, score, q, src, dst, key if drop else None, 64 + j,
                                          self.attn_dropout, self.negative_slope), dim=1)
        cnt = own.new_zeros(B).index_add(0, dst, own.new_ones(dst.shape[0]))
        return acc, cnt

    def _gather_eager(self, j: int, z: Tensor, score: Tensor, q: Tensor, src: Tensor, dst: Tensor,
                      key: Optional[Tensor]) -> Tensor:
        """:meth:`_gather`'s ``[μ | λ | A]`` in tensor operations (``key`` None: no attention dropout)."""
        H, f = self.heads_of[j], self.feats_of[j]
        B = z.shape[0]
        zz = z.index_select(0, src).reshape(-1, H, f)
        e = nn.functional.leaky_relu(q.index_select(0, dst) + score.index_select(0, src), self.negative_slope)
        mu = e.new_zeros(B, H).scatter_reduce(0, dst.unsqueeze(1).expand(-1, H), e, "amax", include_self=False)
        ex = torch.exp(e - mu.index_select(0, dst))
        weight = ex
        if key is not None:
            kf = key.to(z.dtype)
            weight = ex * self._attn_mask(j, kf.index_select(0, dst), kf.index_select(0, src), H, ex.dtype)
        lam = ex.new_zeros(B, H).index_add(0, dst, ex)
        A = zz.new_zeros(B, H, f).index_add(0, dst, weight.unsqueeze(2) * zz)
        return torch.cat([mu, lam, A.reshape(B, H * f)], dim=1)

    def _next(self, j: int, acc: Tensor, cnt: Tensor, deg: Tensor, key: Tensor) -> Tensor:
        return self._own(j + 1, self._complete(j, acc), key)

    # ------------------------------------------------------------- protocol
    def init_state(self, x: Tensor, inputs: Optional[NodeInputs] = None) -> Tensor:
        """``[z_v^0 | running softmaxes 0 | counts 0 | wave 0 | not started | d_v | noise key]``."""
        inputs = self._check_inputs(x, inputs)
        key = inputs.noise
        z0 = self._own(0, x, key)
        zeros = z0.new_zeros(x.shape[0], self.state_size - self.slot_sizes[0] - 2)
        return torch.cat([z0, zeros, inputs.degree.to(x.dtype).unsqueeze(1), key.to(x.dtype).unsqueeze(1)], dim=1)

    def step(self, state: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One delivery (class docstring): score and absorb the message's waves, complete waves, emit."""
        K = self.waves
        z0 = state[:, : self.slot_sizes[0]]
        deg, key = state[:, self._deg], state[:, self._key]
        w, started = state[:, self._w], state[:, self._started]
        mask = m[:, -K:]
        sender = m[:, self._msg_extra.start]
        start = mask.sum(1) == 0
        fresh = start & (started < 0.5)
        cnt = state[:, self._counts]
        counts = [cnt[:, j] for j in range(K)]
        accs = [state[:, sl] for sl in self._agg_slices]
        for j in range(K):
            accs[j] = self._absorb(j, accs[j], counts[j], m[:, self._slots[j]], z0, key, sender, mask[:, j] > 0.5)
            counts[j] = counts[j] + mask[:, j]
        accs[0] = self._absorb(0, accs[0], counts[0], z0, z0, key, key, fresh)
        counts[0] = counts[0] + fresh.to(state.dtype)
        started = started + fresh.to(state.dtype)
        slots = [fresh.to(state.dtype).unsqueeze(1) * z0] + [None] * (K - 1)
        flags = [fresh.to(state.dtype)] + [None] * (K - 1)
        for j in range(K):
            hit = (w == j) & (started > 0.5) & (counts[j] > deg + 0.5)
            done = hit.to(state.dtype)
            if j + 1 < K:  # own messages of the rows that complete wave j (often none)
                rows = hit.nonzero().flatten()
                if rows.numel():
                    z = self._own(j + 1, self._complete(j, accs[j].index_select(0, rows)), key.index_select(0, rows))
                    z = z.new_zeros(state.shape[0], z.shape[1]).index_add(0, rows, z)
                    accs[j + 1] = self._absorb(j + 1, accs[j + 1], counts[j + 1], z, z0, key, key, hit)
                    counts[j + 1] = counts[j + 1] + done
                else:
                    z = state.new_zeros(state.shape[0], self.slot_sizes[j + 1])
                slots[j + 1] = z
                flags[j + 1] = done
            w = w + done
        mask_out = torch.stack(flags, dim=1)
        emit = (mask_out.sum(1) > 0).to(state.dtype)
        new = torch.cat([z0] + accs + self._tail(counts, w, started, state), dim=1)
        out = torch.cat(slots + [key.unsqueeze(1), mask_out], dim=1)
        return new, out, emit

    def output(self, state: Tensor) -> Tensor:
        """``h^K``: the waves not completed are finished with the softmax of what arrived (module docstring)."""
        K = self.waves
        w = state[:, self._w]
        if bool((w > K - 0.5).all()):  # every node finished (a loss-free run): h^K from the last aggregate alone
            return self._complete(K - 1, state[:, self._agg_slices[K - 1]])
        z0 = state[:, : self.slot_sizes[0]]
        key, started = state[:, self._key], state[:, self._started]
        cnt = state[:, self._counts]
        acc, fresh = state[:, self._agg_slices[0]], started < 0.5
        if bool(fresh.any()):  # a node never started: its own wave-0 message, as if it had
            acc = self._absorb(0, acc, cnt[:, 0], z0, z0, key, key, fresh)
        h = self._complete(0, acc)
        for j in range(1, K):
            add, acc = w < j, state[:, self._agg_slices[j]]
            if bool(add.any()):
                acc = self._absorb(j, acc, cnt[:, j], self._own(j, h, key), z0, key, key, add)
            h = self._complete(j, acc)
        return h

    def extra_repr(self) -> str:
        return (f"dims={self.dims}, heads={self.heads_of}, waves={self.waves}, dropout={self.dropout}, "
                f"attn_dropout={self.attn_dropout}")
