"""The planned generic driver: a compiled level program run through the cell's own ``step``.

Cells with a planned schedule (emission ``"always"`` or ``"counted"``, see
:mod:`ampsim.cells.protocol`) but no hand-written step kernel (:mod:`ampsim.batched.kernels`)
run here: the level program (:mod:`ampsim.batched.program`) says which rows form each batch,
so no batch waits for the previous one's emission flags (no host synchronisation), and the
batches go through :func:`ampsim.batched.lockstep._forward_levels` and its autograd function
:class:`~ampsim.batched.lockstep._Unroll` (each batch's small graph kept, BPTT in reverse).
The buffer layout is the program's: states ``[0 | start states | one row per delivery]``,
messages ``[start messages | one row per delivery]``, deliveries in level order.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from .program import _Program

__all__ = ["ProgramDriver"]


class ProgramDriver:
    """The batches of a compiled program: one per level, ``(lo, hi, state rows, message rows)``."""

    needs_flags = False

    def __init__(self, program: _Program, device: torch.device) -> None:
        key = ("driver", str(device))
        if key not in program._device:
            ssrc, msrc = program.on(device)[:2]
            program._device[key] = [(lo, hi, ssrc[lo:hi].long(), msrc[lo:hi].long()) for lo, hi in program.bounds]
        self.batches = program._device[key]
        self.capacity = self.count = program.num_deliveries

    def __iter__(self) -> Iterator[tuple[int, int, Tensor, Tensor]]:
        return iter(self.batches)
