"""Unrolled: the state buffer of a batch of runs and the readouts that read it (final states, history, sums).

A batch's result is one state buffer plus index arrays (:class:`Unrolled`); readouts
gather rows from it (``final``, ``history``) or sum them by group with one sparse count
matrix (``sum_by``, Section 5.3's sum readout) whose backward pass is its transpose
(:class:`_CountSum`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from .. import validate as V
from .program import _cached_on, _Program

__all__ = ["Unrolled"]


@dataclass(frozen=True, eq=False)
class Unrolled:
    """The states of a batch of runs: buffer rows plus the indices to read them.

    ``states`` (rows, S): row 0 zeros, rows ``1..n_init`` the start states (one per node, or
    one per distinct start state with ``dedup``), then one row per computed delivery. ``final_rows`` (E,) gives, for every (graph, run, node) in
    that order, the row of its final state; ``back`` (rows,) the row of each row's
    previous state (0 past the start state). ``entry_offsets[g]`` is the first entry of
    graph g; ``shapes[g] = (runs, n)``. ``reasons`` / ``deliveries`` per run (graphs
    concatenated). ``records`` (when asked for) per run: ``(event, dst, msg_id, cause_id)``.
    ``final_rows`` is -1 for an entry whose final state ``unroll(keep=...)`` did not compute
    (:meth:`final`, :meth:`final_of` and :meth:`history` refuse to read it).
    ``compact``: the run was checkpointed and ``states`` holds a zero row and the final
    states only (``back`` is all zeros; :meth:`history` with k > 1 refuses).
    ``program``: the compiled level program whose fixed rows ``final_rows`` and ``back`` are
    (``None`` for lock-step and checkpointed runs); readouts keep what they derive from those
    rows with it (:meth:`sum_by`).
    """

    states: Tensor
    final_rows: Tensor
    back: Tensor
    entry_offsets: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    reasons: tuple[str, ...]
    deliveries: tuple[int, ...]
    batches: int
    records: Optional[list] = None
    compact: bool = False
    program: Optional["_Program"] = field(default=None, repr=False)
    #: The final states themselves when a driver computed them in entry order (the settled driver):
    #: :meth:`final` returns this tensor, with no gather (and no scatter in the backward pass).
    finals: Optional[Tensor] = field(default=None, repr=False)

    def final(self) -> Tensor:
        """(E, S): the final packed state of every (graph, run, node)."""
        if self.finals is not None:
            return self.finals
        return self.states.index_select(0, self._rows(self.final_rows, None))

    def final_of(self, entries: Tensor) -> Tensor:
        """(len(entries), S): the final packed states of these entries (see :meth:`entry`)."""
        return self.states.index_select(0, self._rows(self.final_rows.index_select(0, entries), entries))

    def _rows(self, rows: Tensor, entries: Optional[Tensor]) -> Tensor:
        """``rows``, after checking that none is an entry left out by ``unroll(keep=...)`` (row -1)."""
        bad = rows < 0
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            e = i if entries is None else int(entries[i])
            raise ValueError(f"the final state of entry {e} was not computed: this run was unrolled with "
                             f"keep=..., which computes only the deliveries that the kept entries depend on")
        return rows

    def per_graph(self) -> list[Tensor]:
        """Final states as one ``(runs, n, S)`` tensor per graph (the :class:`Executor` layout)."""
        flat = self.final()
        S = flat.shape[1]
        return [flat[a:b].reshape(r, n, S) for (a, b), (r, n) in
                zip(zip(self.entry_offsets[:-1], self.entry_offsets[1:]), self.shapes)]

    def entry(self, graph: int, run: int, node: int) -> int:
        """Index into ``final_rows`` of (graph, run, node)."""
        r, n = self.shapes[graph]
        if not (0 <= run < r and 0 <= node < n):
            raise IndexError(f"(run {run}, node {node}) out of range for graph {graph} with {r} runs, {n} nodes")
        return self.entry_offsets[graph] + run * n + node

    def history(self, entries: Tensor, k: int) -> Tensor:
        """(len(entries), k, S): the last k states of each entry, oldest first, zero-padded on the left.

        The start state (encoding) counts as a state, as in the authors' skip readout
        (reference notes 1.4: the last 4 states of a start node, left-padded with zeros).
        """
        idx = self._history_rows(entries, k)
        return self.states.index_select(0, idx.reshape(-1)).reshape(idx.shape[0], k, -1)

    def _history_rows(self, entries: Tensor, k: int) -> Tensor:
        """(len(entries), k): the rows of the last k states of each entry, oldest first (see :meth:`history`)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if self.compact and k > 1:
            raise ValueError("history(k > 1) needs every state row; this run was checkpointed "
                             "(BatchedExecutor(segment_rows=0) keeps them all)")
        rows = [self._rows(self.final_rows.index_select(0, entries), entries)]
        for _ in range(k - 1):
            rows.append(self.back.index_select(0, rows[-1]))
        return torch.stack(rows[::-1], dim=1)

    def sum_by(self, entries: Tensor, group: Tensor, groups: int, k: Optional[int] = None) -> Tensor:
        """``out[g] = sum of final_of(entries)[i] over i with group[i] == g``: ``(groups, S)``; with ``k``,
        the same over :meth:`history` ``(entries, k)``: ``(groups, k, S)``.

        The sum readout of a batch (a graph's node states, Section 5.3), equal to
        ``zeros(groups, S).index_add_(0, group, final_of(entries))`` up to float summation
        order, computed as one sparse count matrix times ``states``: entries of a group that
        read the same row (with ``dedup``, most do) add it once, times their number, and the
        backward pass is the transposed product. A cell's ``output`` selects columns of a
        state, so ``output(sum_by(...)) == sum of output(...)``.
        """
        V.positive_int("groups", groups)
        idx = self._history_rows(entries, 1 if k is None else V.positive_int("k", k))  # (E, k)
        group = torch.as_tensor(group, device=idx.device)
        if group.is_floating_point() or group.is_complex() or group.dtype == torch.bool:
            raise ValueError(f"group must hold integer group numbers, got dtype {group.dtype}")
        if group.shape != (idx.shape[0],):
            raise ValueError(f"group has shape {tuple(group.shape)}, expected ({idx.shape[0]},): one per entry")
        group = group.long()
        if idx.shape[0] and not bool(((group >= 0) & (group < groups)).all()):
            raise ValueError(f"group values must lie in 0..{groups - 1}")
        kk, R = idx.shape[1], self.states.shape[0]

        def build() -> tuple[Tensor, Tensor]:
            out_rows = (group.unsqueeze(1) * kk + torch.arange(kk, device=idx.device)).reshape(-1)  # g * k + j
            keys, counts = torch.unique(out_rows * R + idx.reshape(-1), return_counts=True)  # sorted: coalesced
            coo = torch.sparse_coo_tensor(torch.stack([keys // R, keys % R]), counts.to(self.states.dtype),
                                          (groups * kk, R), is_coalesced=True, check_invariants=False)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR times dense is what we use
                warnings.simplefilter("ignore", UserWarning)
                return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()

        if self.program is None:
            matrix, transposed = build()
        else:  # a training loop reads the same entries every epoch: one matrix per program and readout
            matrix, transposed = _cached_on(self.program, "sum_by", [
                idx.cpu().numpy(), group.cpu().numpy(), f"{groups} {R} {self.states.dtype} {idx.device}"], build)
        out = _CountSum.apply(self.states, matrix, transposed)
        return out if k is None else out.reshape(groups, kk, -1)


class _CountSum(torch.autograd.Function):
    """``matrix @ states`` for a sparse CSR ``matrix`` whose transpose is given (also CSR): the backward
    pass is ``transposed @ grad``, one row-parallel product like the forward (torch's own sparse
    backward transposes and converts the matrix on every call, 2-8x slower here)."""

    @staticmethod
    def forward(ctx, states: Tensor, matrix: Tensor, transposed: Tensor) -> Tensor:  # noqa: D102
        ctx.transposed = transposed
        return matrix @ states

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return ctx.transposed @ grad.contiguous(), None, None
