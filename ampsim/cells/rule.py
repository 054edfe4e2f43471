"""CellRule: the adapter that runs a torch :class:`AMPCell` as an engine :class:`NodeRule`.

Learned dynamics then run on the same SimPy engine as hand-written protocols: they
are traced, plotted and replayed like any rule, and gradients flow through the
whole simulated run (full BPTT, reference notes 1.1), because the states kept by
the engine are the autograd tensors themselves.

Per node (Section 3): ``start`` encodes the features into the packed state row;
``receive`` applies :meth:`AMPCell.step` to (state, message payload) and emits the
outgoing message when the cell emits (always, or the learned gate says so).
A halted node (ACT/Iter) drops later deliveries (engine semantics: drops do not
count toward the budget).

Any cell of the protocol (:mod:`ampsim.cells.protocol`) runs here. A cell with per-node
inputs (``node_inputs``: degree, noise) makes the rule assume ``degree`` and ``ids`` (the
noise key is a function of the node's index and ``noise_seed``); a cell with ``finished``
makes a run that goes quiet with unfinished nodes end ``stalled`` (e.g. messages were lost).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..engine.messages import Message, NodeView
from .noise import noise_keys
from .protocol import Cell, NodeInputs

__all__ = ["CellRule"]


class CellRule:
    """``CellRule(cell, noise_seed=None)``: node features -> packed state; (state, m) -> (state', m' or nothing)."""

    name = "amp-cell"

    def __init__(self, cell: Cell, noise_seed: Optional[int] = None) -> None:
        self.cell = cell
        self.noise_seed = noise_seed
        self.inputs = bool(getattr(cell, "node_inputs", frozenset()))
        self.assumes = frozenset({"degree", "ids"}) if self.inputs else frozenset()
        if hasattr(cell, "finished"):
            self.finished = lambda state: bool(cell.finished(state)[0])

    def start(self, node: NodeView) -> tuple[Tensor, Optional[Message]]:
        x = node.features
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, dtype=torch.float32)
        x = x.reshape(1, -1)
        inputs = None
        if self.inputs:
            inputs = NodeInputs(torch.tensor([float(node.degree)], dtype=x.dtype),
                                noise_keys(self.noise_seed, torch.tensor([node.id])))
        return self.cell.init_state(x, inputs), None

    def receive(self, node: NodeView, state: Tensor, message: Message) -> tuple[Tensor, Optional[Message]]:
        new, out, emit = self.cell.step(state, message.payload.reshape(1, -1))
        if float(emit[0].detach()) > 0.5:
            return new, Message("amp", out[0])
        return new, None

    def halted(self, state: Tensor) -> bool:
        return bool(self.cell.halted(state)[0])

    def summarize_state(self, state: Tensor) -> str:
        return "[" + ",".join(f"{v:.4g}" for v in self.cell.output(state)[0, :4].tolist()) + ",...]"

    def params(self) -> dict:
        c = self.cell
        out = {"kind": c.kind, "hidden": getattr(c, "hidden", None), "msg_size": c.msg_size,
               "gate": getattr(c, "gate", False)}
        if c.emission == "counted":
            out["waves"] = getattr(c, "waves", None)
        return out
