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

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from . import noise
from .protocol import NodeInputs

__all__ = ["WaveCount", "MeanCell", "NORMS"]

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

    def _layout(self, own: int, agg: list[int], extra: int) -> None:
        """State: ``[own wave-0 message (own) | aggregate of wave j (agg[j]) ... | extra | counts (K) |
        wave | started | degree | noise key]``; message: ``[slot_j (slot sizes) ... | mask (K)]``."""
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
        self.msg_size = pos + K
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
        return self._send(deg) * self.weights[j](h)

    def _complete(self, j: int, S: Tensor, c: Tensor, deg: Tensor) -> Tensor:
        """``act(r(d) · S (d+1)/c + b_j)``."""
        d1 = deg + 1.0
        r = d1.rsqrt() if self.norm == "sym" else 1.0 / d1
        a = S * (r * d1 / c.clamp_min(1.0)).unsqueeze(1) + self.biases[j]
        return torch.relu(a) if j + 1 < self.waves else a

    # ------------------------------------------------------------- protocol
    def init_state(self, x: Tensor, inputs: Optional[NodeInputs] = None) -> Tensor:
        """``[z_v^0 | 0 ... | counts 0 | wave 0 | not started | d_v | noise key]``."""
        inputs = self._check_inputs(x, inputs)
        deg = inputs.degree.to(x.dtype)
        key = inputs.noise
        z0 = self._own(0, x, deg, key)
        B = x.shape[0]
        zeros = x.new_zeros(B, self.state_size - self.dims[1] - 2)
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
            done = ((w == j) & (started > 0.5) & (counts[j] > deg + 0.5)).to(state.dtype)
            if j + 1 < K:
                z = self._own(j + 1, self._complete(j, S[j], counts[j], deg), deg, key)
                S[j + 1] = S[j + 1] + done.unsqueeze(1) * z
                counts[j + 1] = counts[j + 1] + done
                slots[j + 1] = done.unsqueeze(1) * z
                flags[j + 1] = done
            w = w + done
        mask_out = torch.stack(flags, dim=1)
        new = torch.cat([z0] + S + self._tail(counts, w, started, state), dim=1)
        out = torch.cat(slots + [mask_out], dim=1)
        return new, out, (mask_out.sum(1) > 0).to(state.dtype)

    def output(self, state: Tensor) -> Tensor:
        """``h^K``: the waves not completed are finished with what arrived (module docstring)."""
        deg, key = state[:, self._deg], state[:, self._key]
        w, started = state[:, self._w], state[:, self._started]
        cnt = state[:, self._counts]
        missing = (1.0 - started)
        S = state[:, self._agg_slices[0]] + missing.unsqueeze(1) * state[:, : self.dims[1]]
        c = cnt[:, 0] + missing
        h = self._complete(0, S, c, deg)
        for j in range(1, self.waves):
            add = (w < j).to(state.dtype)
            S = state[:, self._agg_slices[j]] + add.unsqueeze(1) * self._own(j, h, deg, key)
            h = self._complete(j, S, cnt[:, j] + add, deg)
        return h

    def extra_repr(self) -> str:
        return f"dims={self.dims}, waves={self.waves}, norm={self.norm!r}, dropout={self.dropout}"
