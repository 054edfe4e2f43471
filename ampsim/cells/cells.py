"""AMP cells (Section 3): encoder, state update, message map, halting, emission gate — batched over rows.

Every function here works on a batch of rows (one row = one node in one run), so
the per-message adapter calls them with one row and the batched executor with
thousands. A node's whole state is **one packed row** of width ``state_size``::

    [ h (H) | c (H, LSTM only) | acc (H, ACT/Iter only) | mass (1, ACT/Iter only) ]

For a node in state h receiving message m (reference notes 1.1-1.3):

* update      h' = ReLU(W[h ‖ m]) (RNN), GRUCell(m, h) (GRU), LSTMCell(m, (h, c)) (LSTM);
              ACT and Iter use the RNN update.
* message     m' = W_m [h' ‖ m]            (no activation, as the authors' code)
* ACT         p = σ(W_p [h ‖ m]); w = min(p, 1 - S); acc += w h'; S += w; halted iff S > 1 - 1e-7
* Iter        c = σ(W_p [h ‖ m]); acc += R c h'; R ← R (1 - c); halted iff R < 1e-7
* emission    always (the authors' code), or with ``gate=True`` a learned gate
              g = σ(W_g [h' ‖ m]); emit iff g > 1/2; the message is scaled by the
              straight-through value ``1[g > 1/2] + g - stopgrad(g)`` so gradients reach W_g.
* output      h (RNN/GRU/LSTM) or acc (ACT/Iter); decoded by the task's readout.

It follows the cell protocol (:mod:`ampsim.cells.protocol`): emission ``"always"`` (no gate,
RNN/GRU/LSTM) or ``"learned"`` (the gate, or ACT/Iter halting: the schedule depends on values);
no per-node inputs; the start message is ``ones(msg_size)``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .protocol import NodeInputs

__all__ = ["AMPCell", "CELL_KINDS", "HALT_EPS"]

CELL_KINDS = ("rnn", "gru", "lstm", "act", "iter")
HALT_EPS = 1e-7


class AMPCell(nn.Module):
    """One AMP node model shared by all nodes: ``AMPCell("gru", in_features, hidden, msg_size)``."""

    def __init__(self, kind: str, in_features: int, hidden: int, msg_size: int, gate: bool = False) -> None:
        super().__init__()
        if kind not in CELL_KINDS:
            raise ValueError(f"unknown cell kind {kind!r}; choose one of {CELL_KINDS}")
        if min(in_features, hidden, msg_size) < 1:
            raise ValueError("in_features, hidden and msg_size must be >= 1")
        self.kind, self.hidden, self.msg_size, self.gate = kind, hidden, msg_size, gate
        self.in_features = in_features
        self.encoder = nn.Linear(in_features, hidden)
        if kind == "gru":
            self.update = nn.GRUCell(msg_size, hidden)
        elif kind == "lstm":
            self.update = nn.LSTMCell(msg_size, hidden)
        else:
            self.update = nn.Linear(hidden + msg_size, hidden)
        self.message = nn.Linear(hidden + msg_size, msg_size)
        self.halting = nn.Linear(hidden + msg_size, 1) if kind in ("act", "iter") else None
        self.emit_gate = nn.Linear(hidden + msg_size, 1) if gate else None
        H = hidden
        self.state_size = H + (H if kind == "lstm" else 0) + (H + 1 if kind in ("act", "iter") else 0)
        self.output_size = H
        self.node_inputs: frozenset = frozenset()

    @property
    def emission(self) -> str:
        """``"learned"`` with a gate or halting (ACT, Iter): the schedule depends on values; else ``"always"``."""
        return "learned" if self.gate or self.kind in ("act", "iter") else "always"

    def start_message(self, k: int = 1) -> Tensor:
        """(k, M) ``ones``: the paper's initial message as the authors' code sends it (Table 2)."""
        w = self.message.weight
        return torch.ones(k, self.msg_size, dtype=w.dtype, device=w.device)

    # ----------------------------------------------------------------- rows
    def init_state(self, x: Tensor, inputs: Optional[NodeInputs] = None) -> Tensor:
        """Packed start states for features ``x`` (B, F): h = W_e x (no activation); ``inputs`` unused."""
        h = self.encoder(x)
        B, H = h.shape
        parts = [h]
        if self.kind == "lstm":
            parts.append(h.new_zeros(B, H))
        elif self.kind == "act":
            parts += [h.new_zeros(B, H), h.new_zeros(B, 1)]
        elif self.kind == "iter":
            parts += [h.new_zeros(B, H), h.new_ones(B, 1)]
        return torch.cat(parts, dim=1) if len(parts) > 1 else h

    def halted(self, state: Tensor) -> Tensor:
        """(B,) bool: the node drops what it receives (ACT: S > 1 - eps; Iter: R < eps)."""
        if self.kind == "act":
            return state[:, -1] > 1.0 - HALT_EPS
        if self.kind == "iter":
            return state[:, -1] < HALT_EPS
        return torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)

    def output(self, state: Tensor) -> Tensor:
        """(B, H): the node's output state (h, or the halting-weighted accumulator)."""
        H = self.hidden
        if self.kind in ("act", "iter"):
            return state[:, H : 2 * H]
        return state[:, :H]

    def step(self, state: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One delivery on B rows: ``(new_state, out_message, emit)``; ``emit`` (B,) is 1.0 or the ST gate."""
        H = self.hidden
        h = state[:, :H]
        hm = torch.cat([h, m], dim=1)
        if self.kind == "gru":
            h2 = self.update(m, h)
            new = h2
        elif self.kind == "lstm":
            h2, c2 = self.update(m, (h, state[:, H:]))
            new = torch.cat([h2, c2], dim=1)
        else:
            h2 = torch.relu(self.update(hm))
            new = h2
        if self.kind == "act":
            acc, S = state[:, H : 2 * H], state[:, -1:]
            p = torch.sigmoid(self.halting(hm))
            w = torch.minimum(p, 1.0 - S)
            new = torch.cat([h2, acc + w * h2, S + w], dim=1)
        elif self.kind == "iter":
            acc, R = state[:, H : 2 * H], state[:, -1:]
            c = torch.sigmoid(self.halting(hm))
            new = torch.cat([h2, acc + R * c * h2, R * (1.0 - c)], dim=1)
        h2m = torch.cat([h2, m], dim=1)
        out = self.message(h2m)
        if self.emit_gate is None:
            emit = torch.ones(state.shape[0], dtype=state.dtype, device=state.device)
        else:
            g = torch.sigmoid(self.emit_gate(h2m)).squeeze(1)
            emit = (g > 0.5).to(g.dtype) + g - g.detach()
            out = out * emit.unsqueeze(1)
        return new, out, emit

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, hidden={self.hidden}, msg_size={self.msg_size}, gate={self.gate}"
